"""API shapes of the pipeline. They validate shape only (types, ids in the user's scope);
the services in `pipeline.services` decide everything else."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.models import Currency, Customer, Product, ProductLine
from crm.scopes import visible_users
from pipeline.models import Activity, Collection, Opportunity, OpportunityHistory, OpportunityLine, Pipeline, Stage
from pipeline.services import EDITABLE_FIELDS
from salesmgmt import fields as strict
from salesmgmt.api import VisiblePrimaryKeyRelatedField


class DealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


def visible_customers(user):
    return Customer.objects.visible_to(user)


def visible_opportunities(user):
    return Opportunity.objects.visible_to(user)


MONEY = {"max_digits": 18, "decimal_places": 2}


class StageSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = Stage
        fields = [
            "id",
            "name",
            "name_zh",
            "display_name",
            "order",
            "probability",
            "is_won",
            "is_lost",
            "forecast_category",
            "expected_days",
            "evidence_required",
        ]
        read_only_fields = fields


class PipelineSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Pipeline
        fields = ["id", "name", "name_zh", "display_name", "product_line", "is_default", "stages"]
        read_only_fields = fields


class OpportunityLineSerializer(strict.ModelSerializer):
    product_line = strict.PrimaryKeyRelatedField(
        queryset=ProductLine.objects.all(), required=False, help_text=_("Defaults to the product's line.")
    )
    product = strict.PrimaryKeyRelatedField(
        queryset=Product.objects.all(), required=False, allow_null=True, default=None
    )

    class Meta:
        model = OpportunityLine
        fields = ["id", "product_line", "product", "quantity", "amount", "amount_company"]
        read_only_fields = ["id", "amount_company"]


class OpportunitySerializer(strict.ModelSerializer):
    """A deal as read, and the fields a new deal may be created with."""

    customer = VisiblePrimaryKeyRelatedField(scope=visible_customers)
    owner = VisiblePrimaryKeyRelatedField(
        scope=visible_users, required=False, help_text=_("Defaults to the requesting user.")
    )
    pipeline = strict.PrimaryKeyRelatedField(
        queryset=Pipeline.objects.all(), required=False, help_text=_("Defaults to the stage's or the default pipeline.")
    )
    stage = strict.PrimaryKeyRelatedField(
        queryset=Stage.objects.all(), required=False, help_text=_("Defaults to the pipeline's first stage.")
    )
    currency = strict.PrimaryKeyRelatedField(
        queryset=Currency.objects.all(), required=False, help_text=_("Defaults to the company currency.")
    )
    amount = strict.DecimalField(
        **MONEY, required=False, help_text=_("Ignored when lines are given: the deal amount is then their total.")
    )
    probability = strict.IntegerField(
        min_value=0,
        max_value=100,
        required=False,
        help_text=_("Defaults to the stage's progress %; a different value needs `probability_reason`."),
    )
    lines = OpportunityLineSerializer(many=True, required=False)
    customer_name = serializers.StringRelatedField(source="customer", read_only=True)
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)
    region_name = serializers.StringRelatedField(source="region", read_only=True)
    customer_region = strict.PrimaryKeyRelatedField(
        source="customer.region",
        read_only=True,
        allow_null=True,
        help_text=_("The customer's own region: a separate attribute from `region`, the team the deal counts for."),
    )
    stage_name = strict.CharField(source="stage.display_name", read_only=True)
    status = serializers.SerializerMethodField()
    weighted_amount = strict.DecimalField(
        **MONEY, read_only=True, help_text=_("amount_company × probability, in the company currency.")
    )

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "customer",
            "customer_name",
            "owner",
            "owner_name",
            "region",
            "region_name",
            "customer_region",
            "pipeline",
            "stage",
            "stage_name",
            "status",
            "amount",
            "currency",
            "amount_company",
            "weighted_amount",
            "lines",
            "expected_close_date",
            "closed_on",
            "probability",
            "probability_reason",
            "forecast_category",
            "next_step",
            "next_step_date",
            "lost_reason",
            "star_rating",
            "version",
            "stage_entered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "region",
            "amount_company",
            "closed_on",
            "lost_reason",
            "star_rating",
            "version",
            "stage_entered_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(strict.ChoiceField(choices=DealStatus.choices))
    def get_status(self, obj) -> str:
        if obj.stage.is_won:
            return DealStatus.WON
        if obj.stage.is_lost:
            return DealStatus.LOST
        return DealStatus.OPEN


def closed_period_reason_field(help_text) -> strict.CharField:
    """The `reason` a change to a deal won in a closed period must give (kept in the deal's history, whose
    `reason` holds 200 characters); `help_text` says which changes need it."""
    return strict.CharField(
        required=False, allow_blank=True, default="", max_length=200, write_only=True, help_text=help_text
    )


class OpportunityUpdateSerializer(strict.ModelSerializer):
    """The editable fields of a deal plus the `version` it was read at (optimistic locking).

    The stage is changed with `move-stage`, never here."""

    customer = VisiblePrimaryKeyRelatedField(scope=visible_customers)
    owner = VisiblePrimaryKeyRelatedField(scope=visible_users)
    probability = strict.IntegerField(min_value=0, max_value=100)
    lines = OpportunityLineSerializer(many=True, required=False)
    version = strict.IntegerField(
        min_value=1, help_text=_("The deal's `version` when you read it; 409 if it changed since.")
    )
    reason = closed_period_reason_field(
        _(
            "Required when the deal was won in a closed period (closed before the start of the current fiscal "
            "month, or quarter or year as the company settings say) and its amount, currency, owner, close date or "
            "lines change: its figures were reported already. Kept in the deal's history."
        )
    )

    class Meta:
        model = Opportunity
        fields = [*EDITABLE_FIELDS, "lines", "version", "reason"]

    def validate(self, attrs):
        # PATCH makes every field optional; the version never is, or edits could be lost silently.
        if "version" not in attrs:
            raise serializers.ValidationError({"version": [_("Send the version of the deal you are changing.")]})
        return attrs


class MoveStageSerializer(serializers.Serializer):
    stage = strict.PrimaryKeyRelatedField(queryset=Stage.objects.all())
    evidence = strict.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Milestone evidence (关键节点标志性事件), required by stages that ask for it."),
    )
    lost_reason = strict.CharField(
        required=False, allow_blank=True, default="", help_text=_("Required when moving to a lost stage.")
    )
    closed_on = strict.DateField(
        required=False, allow_null=True, default=None, help_text=_("For won/lost stages; defaults to today.")
    )
    reason = closed_period_reason_field(
        _(
            "Required to move a deal won in a closed period (closed before the start of the current fiscal month, "
            "or quarter or year as the company settings say): its figures were reported already. Kept in the "
            "deal's history."
        )
    )
    version = strict.IntegerField(
        min_value=1, help_text=_("The deal's `version` when you read it; 409 if it changed since.")
    )


class OpportunityHistorySerializer(serializers.ModelSerializer):
    changed_by_name = serializers.StringRelatedField(source="changed_by", read_only=True)
    old_stage_name = serializers.CharField(source="old_stage.display_name", read_only=True, default=None)
    new_stage_name = serializers.CharField(source="new_stage.display_name", read_only=True, default=None)

    class Meta:
        model = OpportunityHistory
        fields = [
            "id",
            "field",
            "old_value",
            "new_value",
            "old_stage",
            "old_stage_name",
            "new_stage",
            "new_stage_name",
            "reason",
            "changed_by",
            "changed_by_name",
            "changed_at",
        ]
        read_only_fields = fields


class CollectionSerializer(strict.ModelSerializer):
    opportunity = VisiblePrimaryKeyRelatedField(scope=visible_opportunities)
    opportunity_name = serializers.StringRelatedField(source="opportunity", read_only=True)
    currency = strict.PrimaryKeyRelatedField(
        queryset=Currency.objects.all(), required=False, help_text=_("Defaults to the deal's currency.")
    )
    created_by_name = serializers.StringRelatedField(source="created_by", read_only=True)

    class Meta:
        model = Collection
        fields = [
            "id",
            "opportunity",
            "opportunity_name",
            "received_on",
            "amount",
            "currency",
            "amount_company",
            "note",
            "created_by",
            "created_by_name",
            "created_at",
        ]
        read_only_fields = ["amount_company", "created_by", "created_at"]


class ActivitySerializer(strict.ModelSerializer):
    customer = VisiblePrimaryKeyRelatedField(scope=visible_customers)
    customer_name = serializers.StringRelatedField(source="customer", read_only=True)
    opportunity = VisiblePrimaryKeyRelatedField(
        scope=visible_opportunities, required=False, allow_null=True, default=None
    )
    owner = VisiblePrimaryKeyRelatedField(
        scope=visible_users, required=False, help_text=_("Defaults to the requesting user.")
    )
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "customer",
            "customer_name",
            "opportunity",
            "owner",
            "owner_name",
            "kind",
            "date",
            "notes",
            "created_at",
        ]
        read_only_fields = ["created_at"]


class DealTotalsSerializer(serializers.Serializer):
    """The totals of a filtered deal list (`pipeline.selectors.totals`, the team pipeline's figures)."""

    count = serializers.IntegerField(read_only=True)
    total = serializers.DecimalField(**MONEY, read_only=True, help_text=_("Σ amount in the company currency."))
    weighted = serializers.DecimalField(
        **MONEY, read_only=True, help_text=_("Σ amount × probability / 100, rounded half up once.")
    )
