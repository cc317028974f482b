"""REST endpoints of the pipeline: pipelines and stages, deals, stage moves, history,
collections and activities.

Every queryset starts from `visible_to(request.user)`, so a deal outside the user's scope is a
404 on every route; every write goes through `pipeline.services`.
"""

from django.db.models import Prefetch, prefetch_related_objects
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from crm.api import ScopedViewSetMixin
from crm.scopes import deal_data_keys
from pipeline import selectors, services
from pipeline.filters import ActivityFilter, CollectionFilter, OpportunityFilter
from pipeline.models import Activity, Collection, Opportunity, Pipeline, Stage
from pipeline.serializers import (
    ActivitySerializer,
    CollectionSerializer,
    DealTotalsSerializer,
    MoveStageSerializer,
    OpportunityHistorySerializer,
    OpportunitySerializer,
    OpportunityUpdateSerializer,
    PipelineSerializer,
)
from salesmgmt import freshness
from salesmgmt.api import FilterBackend, OrderingFilter, api_responses


@extend_schema_view(
    list=extend_schema(summary=_("Pipelines with their stages"), responses=api_responses({200: PipelineSerializer})),
    retrieve=extend_schema(responses=api_responses({200: PipelineSerializer}, 404)),
)
class PipelineViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Sales processes and their stages (progress %, won/lost, evidence required); configured by admins."""

    queryset = Pipeline.objects.prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("order")))
    serializer_class = PipelineSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["name"]


OPPORTUNITY_CREATE_FIELDS = (
    "name",
    "customer",
    "owner",
    "amount",
    "currency",
    "expected_close_date",
    "pipeline",
    "stage",
    "lines",
    "probability",
    "probability_reason",
    "forecast_category",
    "next_step",
    "next_step_date",
)


@extend_schema_view(
    list=extend_schema(summary=_("Deals in your data scope"), responses=api_responses({200: OpportunitySerializer})),
    retrieve=extend_schema(responses=api_responses({200: OpportunitySerializer}, 404)),
)
class OpportunityViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deals (商机). Deals are never deleted (no DELETE, no PUT): a lost deal is moved to a lost stage,
    so the funnel, conversion and attainment history stay whole."""

    queryset = Opportunity.objects.none()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    filter_backends = [FilterBackend, SearchFilter, OrderingFilter]
    search_fields = ["name", "customer__name"]
    ordering_fields = [
        "expected_close_date",
        "amount_company",
        "probability",
        "name",
        "created_at",
        "updated_at",
        "stage_entered_at",
        "stage__order",
    ]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        deals = Opportunity.objects.visible_to(self.request.user)
        if self.action == "move_stage":
            # Whether the deal is seen, no more: the move locks the deal and reads it itself, and answers with it.
            return deals.only("pk")
        return deals.select_related("customer", "owner", "region", "stage").prefetch_related("lines")

    @freshness.cached_data(deal_data_keys)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    # Query parameters that leave the list's rows those of the whole scope (its count is the scope's).
    WHOLE_SCOPE_PARAMS = frozenset({"page", "page_size", "ordering", "format"})

    def paginate_queryset(self, queryset):
        """The list of every deal in the user's scope counts them from totals kept per region
        (`selectors.scope_deal_count`); a filtered list counts its rows."""
        if self.action == "list" and set(self.request.query_params) <= self.WHOLE_SCOPE_PARAMS:
            count = selectors.scope_deal_count(self.request.user)
            if count is not None:
                return self.paginator.paginate_queryset(queryset, self.request, view=self, count=count)
        return super().paginate_queryset(queryset)

    @freshness.cached_data(deal_data_keys)
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary=_("Create a deal"),
        description=_(
            "The probability defaults to the stage's progress %; a different one needs `probability_reason`."
        ),
        request=OpportunitySerializer,
        responses=api_responses({201: OpportunitySerializer}, 400),
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if k in OPPORTUNITY_CREATE_FIELDS}
        data.setdefault("owner", request.user)
        opportunity = services.opportunity_create(**data, actor=request.user)
        return Response(self.get_serializer(self.refetch(opportunity)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Change a deal's fields"),
        description=_("Send the `version` you read; if someone changed the deal since, the answer is 409."),
        request=OpportunityUpdateSerializer,
        responses=api_responses({200: OpportunitySerializer}, 400, 404, 409),
    )
    def partial_update(self, request, pk=None):
        opportunity = self.get_object()
        serializer = OpportunityUpdateSerializer(
            opportunity, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        version = data.pop("version")
        lines = data.pop("lines", None)
        reason = data.pop("reason", "")
        opportunity = services.opportunity_update(
            opportunity=opportunity, data=data, lines=lines, expected_version=version, reason=reason, actor=request.user
        )
        return Response(self.get_serializer(self.refetch(opportunity)).data)

    @extend_schema(
        summary=_("Move a deal to another stage"),
        description=_(
            "Stages may require milestone evidence (关键节点标志性事件) and a lost stage a lost reason; "
            "send the `version` you read (409 if the deal changed since)."
        ),
        request=MoveStageSerializer,
        responses=api_responses({200: OpportunitySerializer}, 400, 404, 409),
    )
    @action(detail=True, methods=["post"], url_path="move-stage")
    def move_stage(self, request, pk=None):
        opportunity = self.get_object()
        serializer = MoveStageSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        opportunity = services.opportunity_move_stage(
            opportunity=opportunity,
            stage=data["stage"],
            evidence=data["evidence"],
            lost_reason=data["lost_reason"],
            closed_on=data["closed_on"],
            expected_version=data["version"],
            reason=data["reason"],
            actor=request.user,
        )
        # The deal as the move wrote it (its customer, owner, teams and stage read with it): only its lines to read.
        prefetch_related_objects([opportunity], "lines")
        return Response(self.get_serializer(opportunity).data)

    @extend_schema(
        summary=_("A deal's history"),
        description=_(
            "Every tracked change (stage, amount, close date, probability, owner...): who, when, old -> new."
        ),
        responses=api_responses({200: OpportunityHistorySerializer(many=True)}, 404),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        opportunity = self.get_object()
        rows = opportunity.history.select_related("changed_by", "old_stage", "new_stage")
        return Response(OpportunityHistorySerializer(rows, many=True).data)

    @extend_schema(
        summary=_("Totals of the deals the filters select"),
        description=_(
            "Count, Σ amount (company currency) and weighted Σ (amount × probability, rounded once) of the deals in "
            "your data scope that the list's filters select: the figures the team pipeline shows."
        ),
        responses=api_responses({200: DealTotalsSerializer}, 400),
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[FilterBackend])
    def totals(self, request):
        qs = self.filter_queryset(Opportunity.objects.visible_to(request.user))
        return Response(DealTotalsSerializer(selectors.totals(qs)).data)


@extend_schema_view(
    list=extend_schema(
        summary=_("Collections (回款) in your data scope"), responses=api_responses({200: CollectionSerializer})
    ),
    create=extend_schema(
        summary=_("Record a payment received against a won deal"),
        responses=api_responses({201: CollectionSerializer}, 400),
    ),
)
class CollectionViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Collection.objects.none()
    serializer_class = CollectionSerializer
    filterset_class = CollectionFilter
    ordering_fields = ["received_on", "amount_company", "created_at"]

    def get_queryset(self):
        return Collection.objects.visible_to(self.request.user).select_related("opportunity", "created_by")

    def perform_create(self, serializer):
        data = serializer.validated_data
        collection = services.collection_create(
            opportunity=data["opportunity"],
            received_on=data["received_on"],
            amount=data["amount"],
            currency=data.get("currency"),
            note=data.get("note", ""),
            actor=self.request.user,
        )
        serializer.instance = self.refetch(collection)


@extend_schema_view(
    list=extend_schema(
        summary=_("Activities (拜访, 电话, 会议) in your data scope"),
        responses=api_responses({200: ActivitySerializer}),
    ),
    create=extend_schema(summary=_("Log an activity"), responses=api_responses({201: ActivitySerializer}, 400)),
)
class ActivityViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Activity.objects.none()
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    ordering_fields = ["date", "created_at"]

    def get_queryset(self):
        return Activity.objects.visible_to(self.request.user).select_related("customer", "owner")

    def perform_create(self, serializer):
        data = serializer.validated_data
        activity = services.activity_log(
            customer=data["customer"],
            kind=data["kind"],
            date=data["date"],
            owner=data.get("owner"),
            notes=data.get("notes", ""),
            opportunity=data.get("opportunity"),
            actor=self.request.user,
        )
        serializer.instance = self.refetch(activity)
