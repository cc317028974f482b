"""REST endpoints of targets: plans and their lifecycle, the breakdown tree (lazy children, edits,
splits, commitments), adjustments and versions, action plans.

Every queryset starts from the user's scope (`plans_visible_to`, `nodes_visible_to`,
`adjustments_visible_to`, `actions_visible_to`), so anything outside it is a 404 on every route,
writes included; every write goes through `targets.services`, which decide who may change what.
"""

from contextlib import contextmanager

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api import ScopedViewSetMixin
from crm.models import User
from salesmgmt.api import FilterBackend, OrderingFilter, api_responses, query_data
from targets import services
from targets.api.serializers import (
    ActionPlanSerializer,
    ActionPlanUpdateSerializer,
    AdjustmentCreateSerializer,
    AdjustmentDecisionSerializer,
    AdjustmentSerializer,
    CommitSerializer,
    LevelsSerializer,
    PlanApproverSerializer,
    PlanReturnSerializer,
    PlanVersionSerializer,
    SplitLeavesPreviewRequestSerializer,
    SplitLeavesPreviewSerializer,
    SplitLeavesRequestSerializer,
    SplitLeavesResultSerializer,
    SplitPreviewRequestSerializer,
    SplitPreviewSerializer,
    SplitRequestSerializer,
    SplitResultSerializer,
    TargetNodeSerializer,
    TargetNodeUpdateSerializer,
    TargetPlanCreateSerializer,
    TargetPlanSerializer,
    TotalScope,
    VersionDiffQuerySerializer,
    VersionDiffSerializer,
)
from targets.filters import ActionPlanFilter, AdjustmentFilter, TargetNodeFilter, TargetPlanFilter
from targets.models import ActionPlan, AdjustmentRequest, TargetNode, TargetPlan
from targets.planning.approval_chain import plan_approvers
from targets.planning.approvals import ApprovalRefused
from targets.planning.selectors import (
    TREE_RELATED,
    actions_visible_to,
    adjustments_visible_to,
    nodes_visible_to,
    plan_tree,
    plan_version_totals,
    plan_versions,
    plans_visible_to,
    version_changes,
    with_visible_total,
)

# --- plans -----------------------------------------------------------------------------------

NOT_APPROVER = gettext_lazy(
    "403 for the submitter (the proposer) and for anyone not above him; the message says who may decide."
)


@contextmanager
def refused_as_403():
    """A service's approval refusal (who you are, not what you sent) answers 403 with its message."""
    try:
        yield
    except ApprovalRefused as exc:
        raise exceptions.PermissionDenied(" ".join(exc.messages)) from exc


class PlanOrdering(OrderingFilter):
    """`?ordering=total` sorts by the total each user is shown (`with_visible_total`): a manager's part,
    never the company totals he cannot see."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view) or []
        return [term.replace("total", "visible_total") if term.lstrip("-") == "total" else term for term in ordering]


@extend_schema_view(
    list=extend_schema(
        summary=gettext_lazy("Target plans in your data scope"), responses=api_responses({200: TargetPlanSerializer})
    ),
    retrieve=extend_schema(responses=api_responses({200: TargetPlanSerializer}, 404)),
)
class TargetPlanViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Target plans (one metric for one fiscal year or quarter, company-wide or for a region): draft ->
    submitted -> approved. A plan is visible when you can see at least one of its targets."""

    queryset = TargetPlan.objects.none()
    serializer_class = TargetPlanSerializer
    filterset_class = TargetPlanFilter
    filter_backends = [FilterBackend, PlanOrdering]
    ordering_fields = ["period_start", "name", "created_at", "total"]

    def get_queryset(self):
        user = self.request.user
        visible = nodes_visible_to(user)  # built once: each build reads the user's scope
        root = visible.filter(plan=OuterRef("pk"), parent__isnull=True).values("pk")[:1]
        return (
            with_visible_total(plans_visible_to(user, visible=visible), user, visible=visible)
            .select_related("metric", "owner", "region", "approved_by", "submitted_by")
            .annotate(root_id=Subquery(root))
            .order_by("-period_start", "metric__name", "pk")
        )

    @extend_schema(
        summary=gettext_lazy("Create a target plan"),
        description=gettext_lazy(
            "Directors and admins create company-wide or regional plans; a manager creates plans for the regions "
            "in his scope. The plan starts as a draft whose root target holds the total."
        ),
        request=TargetPlanCreateSerializer,
        responses=api_responses({201: TargetPlanSerializer}, 400),
    )
    def create(self, request):
        serializer = TargetPlanCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("owner") is None:
            data.pop("owner", None)
        plan = services.plan_create(**data, actor=request.user)
        return Response(self.get_serializer(self.refetch(plan)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=gettext_lazy("Submit a draft plan for approval"),
        description=gettext_lazy(
            "Someone above you approves it (see `approvers`), and is told in the notification centre; "
            "400 when nobody could."
        ),
        request=None,
        responses=api_responses({200: TargetPlanSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        plan = services.plan_submit(plan=self.get_object(), actor=request.user)
        return Response(self.get_serializer(self.refetch(plan)).data)

    @extend_schema(
        summary=gettext_lazy("Approve a submitted plan (version 1)"),
        description=format_lazy(
            "{} {}",
            gettext_lazy(
                "Nobody approves what they submitted: someone above the submitter does (see `approvers`). "
                "400 while a leaf lacks an owner or a deadline (3定) or a split does not add up."
            ),
            NOT_APPROVER,
        ),
        request=None,
        responses=api_responses({200: TargetPlanSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        with refused_as_403():
            plan = services.plan_approve(plan=self.get_object(), actor=request.user)
        return Response(self.get_serializer(self.refetch(plan)).data)

    @extend_schema(
        summary=gettext_lazy("Send a submitted plan back to draft"),
        description=NOT_APPROVER,
        request=PlanReturnSerializer,
        responses=api_responses({200: TargetPlanSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"], url_path="return", url_name="return")
    def send_back(self, request, pk=None):
        plan = self.get_object()
        serializer = PlanReturnSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with refused_as_403():
            plan = services.plan_return(plan=plan, reason=serializer.validated_data["reason"], actor=request.user)
        return Response(self.get_serializer(self.refetch(plan)).data)

    @extend_schema(
        summary=gettext_lazy("Who may approve the plan"),
        description=gettext_lazy(
            "The people above its submitter who may approve it or send it back: managers of the regions "
            "above the plan's (nearest first), then directors and admins. Never the submitter."
        ),
        responses=api_responses({200: PlanApproverSerializer(many=True)}, 404),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def approvers(self, request, pk=None):
        return Response(PlanApproverSerializer(plan_approvers(self.get_object()), many=True).data)

    @extend_schema(
        summary=gettext_lazy("The approved versions of a plan"),
        description=gettext_lazy(
            "Version 1 is the approved plan; each approved adjustment made the next version. Empty while draft."
        ),
        responses=api_responses({200: PlanVersionSerializer(many=True)}, 404),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request, pk=None):
        plan = self.get_object()
        totals = plan_version_totals(plan, user=request.user)
        scope = TotalScope.PLAN if plan.sees_root else TotalScope.PART
        rows = [{**v, "total": totals.get(v["number"]), "total_scope": scope} for v in plan_versions(plan)]
        return Response(PlanVersionSerializer(rows, many=True).data)

    @extend_schema(
        summary=gettext_lazy("What changed between two versions"),
        description=gettext_lazy(
            "The targets you can see whose amount differs between `from` and `to`, in tree order."
        ),
        parameters=[VersionDiffQuerySerializer],
        responses=api_responses({200: VersionDiffSerializer}, 400, 404),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def diff(self, request, pk=None):
        plan = self.get_object()
        query = VersionDiffQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        old, new = query.validated_data["from"], query.validated_data["to"]
        for name, value in (("from", old), ("to", new)):
            if value > plan.current_version:
                message = (
                    _("The plan has no approved version yet.")
                    if not plan.current_version
                    else _("The plan has versions 1 to %(last)d.") % {"last": plan.current_version}
                )
                raise serializers.ValidationError({name: [message]})
        changes = version_changes(plan, old, new, user=request.user)
        payload = {"from_version": old, "to_version": new, "changes": changes}
        return Response(VersionDiffSerializer(payload, context=self.get_serializer_context()).data)


# --- nodes -----------------------------------------------------------------------------------


def _child_count():
    children = (
        TargetNode.objects.filter(parent=OuterRef("pk")).order_by().values("parent").annotate(n=Count("pk")).values("n")
    )
    return Coalesce(Subquery(children, output_field=IntegerField()), Value(0))


@extend_schema_view(
    list=extend_schema(
        summary=gettext_lazy("Targets in your data scope"),
        description=gettext_lazy(
            "A director sees every target, a manager those of his regions and people, a rep his own. "
            "Start a lazy tree with `?plan=<id>&top=true`, then open each target's `children`."
        ),
        responses=api_responses({200: TargetNodeSerializer}),
    ),
    retrieve=extend_schema(responses=api_responses({200: TargetNodeSerializer}, 404)),
)
class TargetNodeViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Targets (the 3定 breakdown tree): amount, owner, deadline, coordinates. Targets are created and
    removed only by splits, never one by one (no POST, no DELETE)."""

    queryset = TargetNode.objects.none()
    serializer_class = TargetNodeSerializer
    filterset_class = TargetNodeFilter
    ordering_fields = ["path", "amount", "deadline", "period_start", "updated_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (
            nodes_visible_to(self.request.user)
            .select_related(*TREE_RELATED)
            .annotate(child_count=_child_count())
            .order_by("plan_id", "path")
        )

    def _node(self, obj):
        return self.get_serializer(self.refetch(obj)).data

    @extend_schema(
        summary=gettext_lazy("Change a draft target's amount, owner or deadline"),
        description=gettext_lazy(
            "Send the `version` you read (409 if the target changed since). A new amount must keep the parent's "
            "sum unless `rebalance` is true; the target's own parts are rescaled in proportion."
        ),
        request=TargetNodeUpdateSerializer,
        responses=api_responses({200: TargetNodeSerializer}, 400, 404, 409),
    )
    def partial_update(self, request, pk=None):
        node = self.get_object()
        serializer = TargetNodeUpdateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        node = services.node_update(
            node=node,
            amount=data.get("amount"),
            owner=data.get("owner"),
            deadline=data.get("deadline"),
            rebalance=data["rebalance"],
            expected_version=data["version"],
            actor=request.user,
        )
        return Response(self._node(node))

    @extend_schema(
        summary=gettext_lazy("The parts of a target (one level, for lazy trees)"),
        responses=api_responses({200: TargetNodeSerializer(many=True)}, 404),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def children(self, request, pk=None):
        node = self.get_object()
        page = self.paginate_queryset(plan_tree(node.plan, node, user=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _split_args(self, data: dict) -> dict:
        return {
            k: data[k] for k in ("dimension", "method", "basis", "weights", "tiers", "members", "amounts") if k in data
        }

    @extend_schema(
        summary=gettext_lazy("Preview a split (writes nothing)"),
        description=gettext_lazy(
            "The parts a split would create: coordinates, amount (they add up exactly to the target), suggested "
            "owner and deadline, and warnings."
        ),
        request=SplitPreviewRequestSerializer,
        responses=api_responses({200: SplitPreviewSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"], url_path="split-preview")
    def split_preview(self, request, pk=None):
        node = self.get_object()
        serializer = SplitPreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = services.target_split_preview(
            node=node, **self._split_args(serializer.validated_data), actor=request.user
        )
        owners = {c.owner_id for c in preview.children if c.owner_id}
        users = {u.pk: u for u in User.objects.filter(pk__in=owners)}
        return Response(SplitPreviewSerializer(preview, context={"users": users}).data)

    @extend_schema(
        summary=gettext_lazy("Split a draft target into parts"),
        description=gettext_lazy(
            "Replaces the target's parts (draft plans only); the parts add up exactly to the target. "
            "`bottom_up` instead reconciles the existing parts with their owners' commitments. "
            "Send the target's `version` (409 if it changed since)."
        ),
        request=SplitRequestSerializer,
        responses=api_responses({200: SplitResultSerializer}, 400, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def split(self, request, pk=None):
        node = self.get_object()
        serializer = SplitRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.target_split(
            node=node, **self._split_args(data), expected_version=data["version"], actor=request.user
        )
        children = self.get_queryset().filter(parent=result.node).order_by("path")
        payload = {"node": self.refetch(result.node), "children": children, "warnings": result.warnings}
        return Response(SplitResultSerializer(payload, context=self.get_serializer_context()).data)

    @extend_schema(
        summary=gettext_lazy("Split every leaf under a target in one go"),
        description=gettext_lazy(
            "E.g. every rep target into 12 months. Equal, history and weights only (manual amounts and "
            "bottom-up go one target at a time)."
        ),
        request=SplitLeavesRequestSerializer,
        responses=api_responses({200: SplitLeavesResultSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"], url_path="split-leaves")
    def split_leaves(self, request, pk=None):
        node = self.get_object()
        serializer = SplitLeavesRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        args = {k: v for k, v in self._split_args(serializer.validated_data).items() if k not in ("members", "amounts")}
        result = services.target_split_leaves(node=node, **args, actor=request.user)
        payload = {
            "node": self.refetch(result.node),
            "leaves": result.leaves,
            "created": result.created,
            "warnings": result.warnings,
        }
        return Response(SplitLeavesResultSerializer(payload, context=self.get_serializer_context()).data)

    @extend_schema(
        summary=gettext_lazy("Preview splitting every leaf under a target (writes nothing)"),
        description=gettext_lazy(
            "Every part the split would create, for the leaves `offset` to `offset + limit` (tree order), each part "
            "with the source of its weight (by history: own history, a team's or the company's curve, equal); "
            "the warnings and the parts counted by source cover every leaf."
        ),
        request=SplitLeavesPreviewRequestSerializer,
        responses=api_responses({200: SplitLeavesPreviewSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"], url_path="split-leaves-preview")
    def split_leaves_preview(self, request, pk=None):
        node = self.get_object()
        serializer = SplitLeavesPreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        args = {k: v for k, v in self._split_args(data).items() if k not in ("members", "amounts")}
        preview = services.target_split_leaves_preview(
            node=node, offset=data["offset"], limit=data["limit"], **args, actor=request.user
        )
        owners = {c.owner_id for row in preview.leaves for c in row.children if c.owner_id}
        users = {u.pk: u for u in User.objects.filter(pk__in=owners)}
        return Response(SplitLeavesPreviewSerializer(preview, context={"users": users}).data)

    @extend_schema(
        summary=gettext_lazy("Set a draft target's stretch (冲刺) and challenge (挑战) levels"),
        description=gettext_lazy(
            "stretch >= the target, challenge >= stretch; its parts get the levels in proportion to their amounts."
        ),
        request=LevelsSerializer,
        responses=api_responses({200: TargetNodeSerializer}, 400, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def levels(self, request, pk=None):
        node = self.get_object()
        serializer = LevelsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        node = services.node_set_levels(
            node=node,
            stretch=data["stretch"],
            challenge=data["challenge"],
            expected_version=data.get("version"),
            actor=request.user,
        )
        return Response(self._node(node))

    @extend_schema(
        summary=gettext_lazy("Commit to your own target (bottom-up)"),
        description=gettext_lazy("Only the target's owner commits, while the plan is a draft."),
        request=CommitSerializer,
        responses=api_responses({200: TargetNodeSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        node = self.get_object()
        serializer = CommitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        node = services.node_commit(node=node, amount=serializer.validated_data["amount"], actor=request.user)
        return Response(self._node(node))


# --- adjustments -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary=gettext_lazy("Adjustments (季度目标动态调整) of the plans in your data scope"),
        responses=api_responses({200: AdjustmentSerializer}),
    ),
    retrieve=extend_schema(responses=api_responses({200: AdjustmentSerializer}, 404)),
)
class AdjustmentViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Mid-period adjustments of approved plans: proposed with a reason, approved by someone else
    (a change of the plan total by a director), which creates a new version."""

    queryset = AdjustmentRequest.objects.none()
    serializer_class = AdjustmentSerializer
    filterset_class = AdjustmentFilter
    ordering_fields = ["created_at", "decided_at"]

    def get_queryset(self):
        return adjustments_visible_to(self.request.user).order_by("-created_at", "-id")

    @extend_schema(
        summary=gettext_lazy("Propose an adjustment of an approved plan"),
        request=AdjustmentCreateSerializer,
        responses=api_responses({201: AdjustmentSerializer}, 400),
    )
    def create(self, request):
        serializer = AdjustmentCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        adjustment = services.adjustment_propose(
            plan=data["plan"],
            kind=data["kind"],
            reason=data["reason"],
            changes=[{"node": c["node"], "amount": c["amount"]} for c in data["changes"]],
            actor=request.user,
        )
        return Response(self.get_serializer(self.refetch(adjustment)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=gettext_lazy("Approve an adjustment (creates the plan's next version)"),
        description=format_lazy(
            "{} {}",
            gettext_lazy("409 if the plan moved to another version since the adjustment was proposed."),
            NOT_APPROVER,
        ),
        request=AdjustmentDecisionSerializer,
        responses=api_responses({200: AdjustmentSerializer}, 400, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        adjustment = self.get_object()
        serializer = AdjustmentDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with refused_as_403():
            adjustment = services.adjustment_approve(
                adjustment=adjustment, note=serializer.validated_data["note"], actor=request.user
            )
        return Response(self.get_serializer(self.refetch(adjustment)).data)

    @extend_schema(
        summary=gettext_lazy("Reject (or, as its proposer, withdraw) an adjustment"),
        description=NOT_APPROVER,
        request=AdjustmentDecisionSerializer,
        responses=api_responses({200: AdjustmentSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        adjustment = self.get_object()
        serializer = AdjustmentDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with refused_as_403():
            adjustment = services.adjustment_reject(
                adjustment=adjustment, note=serializer.validated_data["note"], actor=request.user
            )
        return Response(self.get_serializer(self.refetch(adjustment)).data)


# --- action plans ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary=gettext_lazy("Action plans (行动计划) under the targets you can see, and those given to you"),
        responses=api_responses({200: ActionPlanSerializer}),
    ),
    retrieve=extend_schema(responses=api_responses({200: ActionPlanSerializer}, 404)),
)
class ActionPlanViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What will be done to reach a target, by whom, when, with which resources. Actions are not
    deleted (no DELETE): set their status to cancelled, so the record of what was planned stays."""

    queryset = ActionPlan.objects.none()
    serializer_class = ActionPlanSerializer
    filterset_class = ActionPlanFilter
    ordering_fields = ["due_date", "created_at", "status"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        related = ("node", "owner", "created_by", *(f"node__{f}" for f in TREE_RELATED))
        return actions_visible_to(self.request.user).select_related(*related).order_by("due_date", "id")

    @extend_schema(
        summary=gettext_lazy("Plan an action under a target"),
        request=ActionPlanSerializer,
        responses=api_responses({201: ActionPlanSerializer}, 400),
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        action_plan = services.action_plan_create(
            node=data["node"],
            activity=data["activity"],
            owner=data.get("owner"),
            due_date=data["due_date"],
            resources=data.get("resources", ""),
            actor=request.user,
        )
        return Response(self.get_serializer(self.refetch(action_plan)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=gettext_lazy("Change an action: what, who, when, resources, status"),
        request=ActionPlanUpdateSerializer,
        responses=api_responses({200: ActionPlanSerializer}, 400, 404),
    )
    def partial_update(self, request, pk=None):
        action_plan = self.get_object()
        serializer = ActionPlanUpdateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        action_plan = services.action_plan_update(
            action_plan=action_plan, data=dict(serializer.validated_data), actor=request.user
        )
        return Response(self.get_serializer(self.refetch(action_plan)).data)
