"""API shapes of the organisation and customers. They validate shape only; the services decide."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.authtoken import serializers as authtoken_serializers

from crm.models import (
    Contact,
    Customer,
    CustomerRating,
    DataScope,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    Segment,
    User,
)
from crm.scopes import visible_regions, visible_users
from salesmgmt import fields as strict
from salesmgmt.api import VisiblePrimaryKeyRelatedField


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(source="__str__", read_only=True)
    region_name = serializers.StringRelatedField(source="region", read_only=True)
    effective_scope = serializers.ChoiceField(choices=DataScope.choices, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "full_name",
            "first_name",
            "last_name",
            "email",
            "role",
            "effective_scope",
            "region",
            "region_name",
            "employee_code",
        ]
        read_only_fields = fields


class RegionSerializer(serializers.ModelSerializer):
    manager_name = serializers.StringRelatedField(source="manager", read_only=True)

    class Meta:
        model = Region
        fields = ["id", "name", "code", "kind", "parent", "path", "depth", "manager", "manager_name"]
        read_only_fields = fields


class ProductLineSerializer(strict.ModelSerializer):
    class Meta:
        model = ProductLine
        fields = ["id", "name", "code", "is_key"]


class ProductSerializer(strict.ModelSerializer):
    line_name = serializers.StringRelatedField(source="line", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "line", "line_name", "name", "code", "list_price", "unit_cost", "is_active"]


class ExchangeRateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExchangeRate
        fields = ["id", "currency", "valid_from", "rate"]
        read_only_fields = fields


class ContactSerializer(strict.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "title", "phone", "email", "is_decision_maker"]


class CustomerSerializer(strict.ModelSerializer):
    """A customer with its contacts and the star rating in force (the latest one)."""

    region = VisiblePrimaryKeyRelatedField(scope=visible_regions)
    owner = VisiblePrimaryKeyRelatedField(
        scope=visible_users, required=False, help_text=_("Defaults to the requesting user.")
    )
    region_name = serializers.StringRelatedField(source="region", read_only=True)
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)
    segment = strict.ChoiceField(choices=Segment.choices, read_only=True)
    stars = strict.IntegerField(
        read_only=True, allow_null=True, help_text=_("The latest 5-star rating (5星评级), if any.")
    )
    contacts = ContactSerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "region",
            "region_name",
            "owner",
            "owner_name",
            "industry",
            "tier",
            "segment",
            "first_won_on",
            "stars",
            "external_id",
            "notes",
            "contacts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["first_won_on", "external_id", "created_at", "updated_at"]


class CustomerRatingSerializer(strict.ModelSerializer):
    stars = strict.IntegerField(min_value=1, max_value=5)
    # Blank reasons are let through so the service's own message ("Give the reasons...") answers.
    reasons = strict.CharField(allow_blank=True)
    rated_by_name = serializers.StringRelatedField(source="rated_by", read_only=True)

    class Meta:
        model = CustomerRating
        fields = ["id", "customer", "stars", "reasons", "rated_by", "rated_by_name", "rated_at"]
        read_only_fields = ["customer", "rated_by", "rated_at"]


class AuthTokenSerializer(authtoken_serializers.AuthTokenSerializer):
    """DRF's username and password (same name, so the schema's component keeps its name), as JSON strings."""

    username = strict.CharField(write_only=True)
    password = strict.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True, help_text=_("Send it as `Authorization: Token <token>`."))
