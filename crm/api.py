"""REST endpoints of the organisation and customers.

Every queryset starts from the user's data scope (`visible_to`, `visible_users`, `visible_regions`),
so a row outside it is a 404, never a 403; every write goes through `crm.services`.
"""

from django import forms
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from crm import services
from crm.models import (
    Customer,
    CustomerRating,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    RegionKind,
    Role,
    Segment,
    Tier,
    User,
)
from crm.scopes import region_subtree, visible_regions, visible_users
from crm.serializers import (
    AuthTokenSerializer,
    ContactSerializer,
    CustomerRatingSerializer,
    CustomerSerializer,
    ExchangeRateSerializer,
    ProductLineSerializer,
    ProductSerializer,
    RegionSerializer,
    TokenSerializer,
    UserSerializer,
)
from salesmgmt.api import MAX_ID, FilterBackend, OrderingFilter, PageNumberPagination, api_responses
from salesmgmt.parsers import JSONParser
from salesmgmt.security import LockedOut, issue_token

# --- shared pieces (pipeline's API uses them too) -----------------------------------------


class IsAdminOrReadOnly(permissions.BasePermission):
    """Everyone signed in may read; only an admin may write (the catalogue, settings)."""

    message = _("Only an administrator may change this.")

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or user.role == Role.ADMIN))


class IdField(forms.IntegerField):
    """An id in a query string: a whole number from 1 to the largest a database integer holds."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


@extend_schema_field(ID_SCHEMA)
class IdFilter(filters.NumberFilter):
    """`?owner=7`: an integer id (a plain filter: ids outside the scope simply match nothing)."""

    field_class = IdField


@extend_schema_field(ID_SCHEMA)
class RegionSubtreeFilter(filters.NumberFilter):
    """`?region=4`: rows booked to region 4 or any region below it (a subquery over the regions)."""

    field_class = IdField

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        return qs.filter(**{f"{self.field_name}__in": region_subtree(value)})


class ScopedViewSetMixin:
    """Pagination with `page_size`, django-filter, ordering; `get_queryset` starts from the scope."""

    pagination_class = PageNumberPagination
    filter_backends = [FilterBackend, OrderingFilter]

    def refetch(self, obj):
        """The object as the list/detail serializer expects it (annotations, related rows)."""
        return self.get_queryset().filter(pk=obj.pk).first() or obj


# --- users, regions ------------------------------------------------------------------------


class UserFilter(filters.FilterSet):
    role = filters.ChoiceFilter(choices=Role.choices)
    region = RegionSubtreeFilter(field_name="region", help_text=_("Region id; includes its sub-regions."))

    class Meta:
        model = User
        fields = ["role", "region"]


@extend_schema_view(
    list=extend_schema(summary=_("Users in your data scope"), responses=api_responses({200: UserSerializer})),
    retrieve=extend_schema(responses=api_responses({200: UserSerializer}, 404)),
)
class UserViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = User.objects.none()
    serializer_class = UserSerializer
    filterset_class = UserFilter
    ordering_fields = ["username", "last_name", "role"]
    ordering = ["username"]

    def get_queryset(self):
        return visible_users(self.request.user).select_related("region").order_by("username")

    @extend_schema(summary=_("The signed-in user"), responses=api_responses({200: UserSerializer}))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def me(self, request):
        return Response(UserSerializer(request.user, context=self.get_serializer_context()).data)


class RegionFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=RegionKind.choices)
    parent = IdFilter(field_name="parent")

    class Meta:
        model = Region
        fields = ["kind", "parent"]


@extend_schema_view(
    list=extend_schema(summary=_("Regions in your data scope"), responses=api_responses({200: RegionSerializer})),
    retrieve=extend_schema(responses=api_responses({200: RegionSerializer}, 404)),
)
class RegionViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Region.objects.none()
    serializer_class = RegionSerializer
    filterset_class = RegionFilter
    ordering_fields = ["path", "name", "code"]

    def get_queryset(self):
        return visible_regions(self.request.user).select_related("manager").order_by("path")


# --- product catalogue ---------------------------------------------------------------------


class CatalogueViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Read for everyone, write for admins; never deleted (products are deactivated instead)."""

    permission_classes = [permissions.IsAuthenticated, IsAdminOrReadOnly]


@extend_schema_view(
    list=extend_schema(responses=api_responses({200: ProductLineSerializer})),
    retrieve=extend_schema(responses=api_responses({200: ProductLineSerializer}, 404)),
    create=extend_schema(responses=api_responses({201: ProductLineSerializer}, 400)),
    update=extend_schema(responses=api_responses({200: ProductLineSerializer}, 400, 404)),
    partial_update=extend_schema(responses=api_responses({200: ProductLineSerializer}, 400, 404)),
)
class ProductLineViewSet(CatalogueViewSet):
    queryset = ProductLine.objects.all()
    serializer_class = ProductLineSerializer
    filterset_fields = ["is_key"]
    ordering_fields = ["name", "code"]

    def perform_create(self, serializer):
        serializer.instance = services.product_line_create(**serializer.validated_data, actor=self.request.user)

    def perform_update(self, serializer):
        serializer.instance = services.product_line_update(
            product_line=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )


class ProductFilter(filters.FilterSet):
    line = IdFilter(field_name="line")
    is_active = filters.BooleanFilter()

    class Meta:
        model = Product
        fields = ["line", "is_active"]


@extend_schema_view(
    list=extend_schema(responses=api_responses({200: ProductSerializer})),
    retrieve=extend_schema(responses=api_responses({200: ProductSerializer}, 404)),
    create=extend_schema(responses=api_responses({201: ProductSerializer}, 400)),
    update=extend_schema(responses=api_responses({200: ProductSerializer}, 400, 404)),
    partial_update=extend_schema(responses=api_responses({200: ProductSerializer}, 400, 404)),
)
class ProductViewSet(CatalogueViewSet):
    queryset = Product.objects.select_related("line")
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    filter_backends = [FilterBackend, SearchFilter, OrderingFilter]
    search_fields = ["name", "code"]
    ordering_fields = ["name", "code", "list_price"]

    def perform_create(self, serializer):
        serializer.instance = services.product_create(**serializer.validated_data, actor=self.request.user)

    def perform_update(self, serializer):
        serializer.instance = services.product_update(
            product=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )


class ExchangeRateFilter(filters.FilterSet):
    currency = filters.CharFilter(field_name="currency")
    valid_from = filters.DateFromToRangeFilter()

    class Meta:
        model = ExchangeRate
        fields = ["currency", "valid_from"]


@extend_schema_view(
    list=extend_schema(responses=api_responses({200: ExchangeRateSerializer})),
    retrieve=extend_schema(responses=api_responses({200: ExchangeRateSerializer}, 404)),
)
class ExchangeRateViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Dated rates into the company currency (company units per one foreign unit)."""

    queryset = ExchangeRate.objects.all()
    serializer_class = ExchangeRateSerializer
    filterset_class = ExchangeRateFilter
    ordering_fields = ["currency", "valid_from"]


# --- customers -----------------------------------------------------------------------------


class CustomerFilter(filters.FilterSet):
    region = RegionSubtreeFilter(field_name="region", help_text=_("Region id; includes its sub-regions."))
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    tier = filters.MultipleChoiceFilter(choices=Tier.choices)
    segment = filters.ChoiceFilter(
        choices=Segment.choices, method="filter_segment", help_text=_("Existing (存量) or new (增量) customers.")
    )

    class Meta:
        model = Customer
        fields = ["region", "owner", "tier", "segment"]

    def filter_segment(self, queryset, name, value: str):
        return queryset.filter(first_won_on__isnull=value == Segment.NEW)


CUSTOMER_CREATE_FIELDS = ("name", "region", "owner", "industry", "tier", "notes")


@extend_schema_view(
    list=extend_schema(summary=_("Customers in your data scope"), responses=api_responses({200: CustomerSerializer})),
    retrieve=extend_schema(responses=api_responses({200: CustomerSerializer}, 404)),
    create=extend_schema(responses=api_responses({201: CustomerSerializer}, 400)),
    update=extend_schema(responses=api_responses({200: CustomerSerializer}, 400, 404)),
    partial_update=extend_schema(responses=api_responses({200: CustomerSerializer}, 400, 404)),
)
class CustomerViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Customers (客户) with their contacts. Customers are not deleted through the API (no DELETE):
    their deals, activities and attainment history hang on them."""

    queryset = Customer.objects.none()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    filter_backends = [FilterBackend, SearchFilter, OrderingFilter]
    search_fields = ["name"]
    ordering_fields = ["name", "tier", "created_at", "updated_at", "stars"]

    def get_queryset(self):
        latest_stars = CustomerRating.objects.filter(customer=OuterRef("pk")).order_by("-rated_at", "-id")
        return (
            Customer.objects.visible_to(self.request.user)
            .select_related("region", "owner")
            .prefetch_related("contacts")
            .annotate(stars=Subquery(latest_stars.values("stars")[:1]))
        )

    def perform_create(self, serializer):
        data = {k: v for k, v in serializer.validated_data.items() if k in CUSTOMER_CREATE_FIELDS}
        data.setdefault("owner", self.request.user)
        customer = services.customer_create(**data, actor=self.request.user)
        serializer.instance = self.refetch(customer)

    def perform_update(self, serializer):
        customer = services.customer_update(
            customer=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )
        serializer.instance = self.refetch(customer)

    @extend_schema(
        summary=_("Add a contact to a customer"),
        request=ContactSerializer,
        responses=api_responses({201: ContactSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def contacts(self, request, pk=None):
        customer = self.get_object()
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = services.contact_create(customer=customer, **serializer.validated_data, actor=request.user)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Rate a customer 1-5 stars (5星评级) with the reasons"),
        request=CustomerRatingSerializer,
        responses=api_responses({201: CustomerRatingSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        customer = self.get_object()
        serializer = CustomerRatingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rating = services.customer_rate(customer=customer, **serializer.validated_data, actor=request.user)
        return Response(CustomerRatingSerializer(rating).data, status=status.HTTP_201_CREATED)


# --- token ---------------------------------------------------------------------------------


@extend_schema(
    summary=_("Exchange a username and password for an API token"),
    description=_(
        "Send the token on every call as the header `Authorization: Token <token>`. A token expires "
        "API_TOKEN_TTL_HOURS after it was issued (a call with it is then answered 401, code `token_expired`); "
        "each call here issues a new token and revokes the previous one. After AXES_FAILURE_LIMIT failed "
        "attempts for one username from one address, that pair is locked out for the cool-off: 429, code "
        "`locked_out`, with Retry-After."
    ),
    request=AuthTokenSerializer,
    responses=api_responses({200: TokenSerializer}, 400, authenticated=False),
    tags=["auth"],
)
class ObtainTokenView(ObtainAuthToken):
    serializer_class = AuthTokenSerializer
    parser_classes = [JSONParser]  # DRF's view names its own parsers: ours, so its depth limit holds here too
    authentication_classes = []
    # The anonymous rate, and a stricter one of its own per address (API_RATE_TOKEN), besides the lockout.
    throttle_classes = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth_token"

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # axes flags the request it refused (locked out now, or already): the lockout answer, not "invalid".
            if getattr(request, "axes_locked_out", False):
                raise LockedOut()
            raise ValidationError(serializer.errors)
        return Response({"token": issue_token(serializer.validated_data["user"]).key})
