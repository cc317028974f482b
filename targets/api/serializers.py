"""API shapes of targets. They validate shape only (types, ids among the rows the user may see);
the services in `targets.services` decide everything else (who may change what, sums, versions)."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.models import Segment, Tier
from crm.scopes import visible_regions, visible_users
from salesmgmt import fields as strict
from salesmgmt.api import VisiblePrimaryKeyRelatedField, VisibleRows
from targets.models import (
    AMOUNT_KINDS,
    ActionPlan,
    ActionStatus,
    AdjustmentKind,
    AdjustmentRequest,
    Dimension,
    Metric,
    PeriodKind,
    SplitMethod,
    TargetNode,
    TargetPlan,
    WeightBasis,
)
from targets.planning.people import people_change_summary
from targets.planning.selectors import nodes_visible_to, plans_visible_to
from targets.planning.weights import SOURCES as SPLIT_SOURCES

MONEY = {"max_digits": 18, "decimal_places": 2}
VERSION_HELP = _("The target's `version` when you read it; 409 if someone changed it since.")


def visible_nodes(user):
    return nodes_visible_to(user)


def visible_plans(user):
    return plans_visible_to(user)


# --- plans -----------------------------------------------------------------------------------


class TotalScope(models.TextChoices):
    """What a plan's `total` is for the user who reads it (`targets.planning.selectors.with_visible_total`)."""

    PLAN = "plan", _("The plan total (you can see the root target)")
    PART = "part", _("Your part: the sum of the top targets you can see, not the plan total")


TOTAL_HELP = _(
    "The plan total when you can see the plan's root target; otherwise your part of it, the sum of the top "
    "targets you can see (`total_scope` says which)."
)


class TargetPlanSerializer(serializers.ModelSerializer):
    metric_name = serializers.CharField(source="metric.display_name", read_only=True)
    metric_unit = serializers.CharField(source="metric.unit", read_only=True)
    region_name = serializers.StringRelatedField(source="region", read_only=True)
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)
    approved_by_name = serializers.StringRelatedField(source="approved_by", read_only=True)
    submitted_by_name = serializers.StringRelatedField(source="submitted_by", read_only=True)
    root = serializers.IntegerField(
        source="root_id",
        read_only=True,
        allow_null=True,
        help_text=_("The id of the plan's root target; null if you cannot see it (start from `?plan=<id>&top=true`)."),
    )
    total = serializers.DecimalField(**MONEY, source="visible_total", read_only=True, help_text=TOTAL_HELP)
    total_scope = serializers.SerializerMethodField(help_text=_("`plan`: the plan total; `part`: your part of it."))

    class Meta:
        model = TargetPlan
        fields = [
            "id",
            "name",
            "metric",
            "metric_name",
            "metric_unit",
            "region",
            "region_name",
            "period_kind",
            "period_key",
            "period_start",
            "period_end",
            "total",
            "total_scope",
            "status",
            "owner",
            "owner_name",
            "root",
            "current_version",
            "created_by",
            "created_at",
            "submitted_at",
            "submitted_by",
            "submitted_by_name",
            "approved_by",
            "approved_by_name",
            "approved_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TotalScope.choices))
    def get_total_scope(self, plan) -> str:
        return TotalScope.PLAN if plan.sees_root else TotalScope.PART


class TargetPlanCreateSerializer(serializers.Serializer):
    metric = strict.PrimaryKeyRelatedField(queryset=Metric.objects.filter(is_active=True))
    period_key = strict.CharField(max_length=16, help_text=_("A fiscal year or quarter: FY2027, FY2027-Q2."))
    total = strict.DecimalField(**MONEY)
    region = VisiblePrimaryKeyRelatedField(
        scope=visible_regions,
        required=False,
        allow_null=True,
        default=None,
        help_text=_("A region for a regional plan; empty for a company-wide one (directors and admins)."),
    )
    owner = VisiblePrimaryKeyRelatedField(
        scope=visible_users,
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Defaults to the region's manager, else to you."),
    )
    name = strict.CharField(max_length=200, required=False, allow_blank=True, default="")


class PlanReturnSerializer(serializers.Serializer):
    reason = strict.CharField(allow_blank=True, help_text=_("What has to change before it is submitted again."))


class PlanApproverSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField(source="__str__")
    role = serializers.CharField()


class PlanVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    at = serializers.DateTimeField(allow_null=True, help_text=_("When the version came into force."))
    approver = serializers.IntegerField(source="approver.pk", allow_null=True, default=None)
    approver_name = serializers.CharField(source="approver", allow_null=True, default=None)
    proposer = serializers.IntegerField(source="proposer.pk", allow_null=True, default=None)
    proposer_name = serializers.CharField(source="proposer", allow_null=True, default=None)
    reason = serializers.CharField()
    adjustment = serializers.IntegerField(source="adjustment.pk", allow_null=True, default=None)
    adjustment_kind = serializers.ChoiceField(
        choices=AdjustmentKind.choices, source="adjustment.kind", allow_null=True, default=None
    )
    total = serializers.DecimalField(**MONEY, allow_null=True, help_text=TOTAL_HELP)
    total_scope = serializers.ChoiceField(choices=TotalScope.choices)


class VersionDiffQuerySerializer(serializers.Serializer):
    """`?from=1&to=2` (Python cannot name a field `from`, hence `get_fields`)."""

    def get_fields(self):
        return {
            "from": serializers.IntegerField(min_value=1, help_text=_("The older version, e.g. 1 (the original).")),
            "to": serializers.IntegerField(min_value=1, help_text=_("The newer version.")),
        }


class VersionChangeSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="pk")
    label = serializers.CharField()
    path = serializers.CharField()
    depth = serializers.IntegerField()
    old = serializers.DecimalField(**MONEY, source="old_amount", allow_null=True)
    new = serializers.DecimalField(**MONEY, source="new_amount", allow_null=True)
    delta = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_delta(self, obj) -> str:
        delta = (obj.new_amount or 0) - (obj.old_amount or 0)
        return serializers.DecimalField(**MONEY).to_representation(delta)


class VersionDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = VisibleRows(child=VersionChangeSerializer(), scope=visible_nodes, help_text=_("The targets you can see."))


# --- nodes -----------------------------------------------------------------------------------


class TargetNodeSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    region_name = serializers.StringRelatedField(source="region", read_only=True)
    product_line_name = serializers.StringRelatedField(source="product_line", read_only=True)
    product_name = serializers.StringRelatedField(source="product", read_only=True)
    rep_name = serializers.StringRelatedField(source="rep", read_only=True)
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)
    is_leaf = serializers.BooleanField(read_only=True)
    is_incomplete = serializers.SerializerMethodField(help_text=_("A leaf without an owner or a deadline (3定)."))
    child_count = serializers.IntegerField(read_only=True, default=None, help_text=_("Number of parts."))

    class Meta:
        model = TargetNode
        fields = [
            "id",
            "plan",
            "parent",
            "path",
            "depth",
            "label",
            "region",
            "region_name",
            "product_line",
            "product_line_name",
            "product",
            "product_name",
            "rep",
            "rep_name",
            "segment",
            "period_kind",
            "period_key",
            "period_start",
            "period_end",
            "split_dimension",
            "split_method",
            "is_leaf",
            "is_incomplete",
            "child_count",
            "amount",
            "owner",
            "owner_name",
            "deadline",
            "committed_amount",
            "stretch",
            "challenge",
            "version",
            "updated_at",
        ]
        read_only_fields = fields

    def get_is_incomplete(self, obj) -> bool:
        return obj.is_leaf and (obj.owner_id is None or obj.deadline is None or not obj.period_key)


class TargetNodeUpdateSerializer(serializers.Serializer):
    """A draft target's amount, owner or deadline, and the `version` it was read at."""

    amount = strict.DecimalField(**MONEY, required=False)
    owner = VisiblePrimaryKeyRelatedField(scope=visible_users, required=False)
    deadline = strict.DateField(required=False)
    rebalance = strict.BooleanField(
        default=False,
        help_text=_(
            "A new amount must keep the parent's sum; with `rebalance` the other parts absorb the difference "
            "in proportion to their amounts."
        ),
    )
    version = strict.IntegerField(min_value=1, help_text=VERSION_HELP)

    def validate(self, attrs):
        if not {"amount", "owner", "deadline"} & set(attrs):
            raise serializers.ValidationError(_("Send an amount, an owner or a deadline to change."))
        return attrs


class SplitLeavesRequestSerializer(serializers.Serializer):
    dimension = strict.ChoiceField(choices=Dimension.choices)
    method = strict.ChoiceField(choices=SplitMethod.choices)
    basis = strict.ChoiceField(
        choices=WeightBasis.choices, required=False, allow_null=True, default=None, help_text=_("For `weights`.")
    )
    weights = serializers.DictField(
        child=strict.DecimalField(max_digits=24, decimal_places=6),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("{member key: weight} for manual weights or market potential."),
    )
    tiers = serializers.ListField(
        child=strict.ChoiceField(choices=Tier.choices),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Customer tiers counted by the customers basis."),
    )


class SplitPreviewRequestSerializer(SplitLeavesRequestSerializer):
    members = serializers.ListField(
        child=strict.CharField(),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Only these members (region, product or user ids, segments, period keys); default all."),
    )
    amounts = serializers.DictField(
        child=strict.DecimalField(**MONEY),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("{member key: amount} for manual amounts; they must add up to the target."),
    )


class SplitRequestSerializer(SplitPreviewRequestSerializer):
    version = strict.IntegerField(
        min_value=1, help_text=_("The target's `version` when you read it: a split replaces its parts (409 if stale).")
    )


class ProposedChildSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=_("The member's key (id, segment or period key)."))
    label = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    weight = serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    owner_name = serializers.SerializerMethodField()
    deadline = serializers.DateField(allow_null=True)
    region = serializers.IntegerField(source="coords.region_id", allow_null=True, default=None)
    product_line = serializers.IntegerField(source="coords.product_line_id", allow_null=True, default=None)
    product = serializers.IntegerField(source="coords.product_id", allow_null=True, default=None)
    rep = serializers.IntegerField(source="coords.rep_id", allow_null=True, default=None)
    segment = serializers.ChoiceField(
        choices=[("", "")] + list(Segment.choices), source="coords.segment", allow_blank=True, default=""
    )
    period_kind = serializers.ChoiceField(choices=PeriodKind.choices, source="coords.period_kind")
    period_key = serializers.CharField(source="coords.period_key")
    period_start = serializers.DateField(source="coords.period_start")
    period_end = serializers.DateField(source="coords.period_end")
    committed_amount = serializers.DecimalField(**MONEY, allow_null=True)
    node = serializers.IntegerField(
        source="node_id", allow_null=True, help_text=_("Bottom-up: the existing part this row reconciles.")
    )
    source = serializers.ChoiceField(
        choices=[(s, s) for s in SPLIT_SOURCES],
        allow_null=True,
        help_text=_(
            "By history: where the part's weight comes from: the target's own history, its team's (a region's) "
            "curve or the company's where its own is too thin, equal when there is no history, none when nothing "
            "was sold in this part last year."
        ),
    )
    source_label = serializers.CharField(allow_null=True, help_text=_("The source, as a manager reads it."))

    def get_owner_name(self, obj) -> str | None:
        user = self.context.get("users", {}).get(obj.owner_id)
        return str(user) if user is not None else None


class SplitPreviewSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node.pk")
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    method = serializers.ChoiceField(choices=SplitMethod.choices)
    children = ProposedChildSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    top_down = serializers.DecimalField(**MONEY, allow_null=True, help_text=_("Bottom-up: the amount handed down."))
    bottom_up = serializers.DecimalField(**MONEY, allow_null=True, help_text=_("Bottom-up: what was committed."))
    gap = serializers.DecimalField(**MONEY, allow_null=True, help_text=_("Bottom-up minus top-down."))


class SplitLeavesPreviewRequestSerializer(SplitLeavesRequestSerializer):
    offset = strict.IntegerField(min_value=0, default=0, help_text=_("The first leaf shown (tree order)."))
    limit = strict.IntegerField(
        min_value=1, max_value=200, default=20, help_text=_("How many leaves to show, each with all its parts.")
    )


class LeafPreviewSerializer(serializers.Serializer):
    leaf = serializers.IntegerField(source="leaf.pk", help_text=_("The leaf target that would be split."))
    label = serializers.CharField(source="leaf.label")
    amount = serializers.DecimalField(**MONEY, source="leaf.amount")
    children = ProposedChildSerializer(many=True)


class SplitLeavesPreviewSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node.pk")
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    method = serializers.ChoiceField(choices=SplitMethod.choices)
    leaf_count = serializers.IntegerField(help_text=_("How many leaves the split would split."))
    part_count = serializers.IntegerField(help_text=_("How many parts it would create."))
    offset = serializers.IntegerField()
    leaves = LeafPreviewSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    sources = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("By history: {source label: parts}, over every leaf.")
    )


class SplitResultSerializer(serializers.Serializer):
    node = TargetNodeSerializer()
    children = VisibleRows(child=TargetNodeSerializer(), scope=visible_nodes, help_text=_("The parts you can see."))
    warnings = serializers.ListField(child=serializers.CharField())


class SplitLeavesResultSerializer(serializers.Serializer):
    node = TargetNodeSerializer()
    leaves = serializers.IntegerField(help_text=_("How many leaves were split."))
    created = serializers.IntegerField(help_text=_("How many targets were created."))
    warnings = serializers.ListField(child=serializers.CharField())


class LevelsSerializer(serializers.Serializer):
    stretch = strict.DecimalField(**MONEY, allow_null=True, help_text=_("Stretch target (冲刺); null clears it."))
    challenge = strict.DecimalField(**MONEY, allow_null=True, help_text=_("Challenge target (挑战); null clears it."))
    version = strict.IntegerField(required=False, help_text=_("The version you read (409 if it changed)."))


class CommitSerializer(serializers.Serializer):
    amount = strict.DecimalField(**MONEY, help_text=_("What you commit to (bottom-up)."))


# --- adjustments -----------------------------------------------------------------------------


class AdjustmentChangeSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    label = serializers.CharField(required=False, default="")
    old = serializers.DecimalField(**MONEY)
    new = serializers.DecimalField(**MONEY)


class PeopleChangeSerializer(serializers.Serializer):
    """What a transfer or a new hire moves (`targets.planning.people`)."""

    from_rep = serializers.IntegerField(
        allow_null=True, help_text=_("Who gives the target; null: the team's unassigned.")
    )
    to_rep = serializers.IntegerField(allow_null=True, help_text=_("Who receives it; null: the team, unassigned."))
    from_name = serializers.CharField()
    to_name = serializers.CharField()
    effective = serializers.DateField(help_text=_("From this day (a new hire's start)."))
    moved = serializers.DecimalField(**MONEY, help_text=_("The target moved, in total."))
    ramp = serializers.ListField(child=serializers.IntegerField(), help_text=_("A new hire's ramp, % per month."))


class AdjustmentSerializer(serializers.ModelSerializer):
    plan_name = serializers.StringRelatedField(source="plan", read_only=True)
    people_change = serializers.SerializerMethodField(
        help_text=_("For a transfer or a new hire: who gives, who receives, from when; null for other kinds.")
    )

    @extend_schema_field(PeopleChangeSerializer(allow_null=True))
    def get_people_change(self, adjustment: AdjustmentRequest) -> dict | None:
        summary = people_change_summary(adjustment)
        if summary is None:
            return None
        d = adjustment.details
        return PeopleChangeSerializer(
            {
                "from_rep": d.get("from_rep"),
                "to_rep": d.get("to_rep"),
                "from_name": summary["from_rep"],
                "to_name": summary["to_rep"],
                "effective": summary["effective"],
                "moved": summary["moved"],
                "ramp": summary["ramp"],
            }
        ).data

    changes = VisibleRows(
        child=AdjustmentChangeSerializer(),
        scope=visible_nodes,
        key="node",
        help_text=_("The proposed new amounts of the targets you can see (the others are left out)."),
    )
    proposer_name = serializers.StringRelatedField(source="proposer", read_only=True)
    approver_name = serializers.StringRelatedField(source="approver", read_only=True)

    class Meta:
        model = AdjustmentRequest
        fields = [
            "id",
            "plan",
            "plan_name",
            "kind",
            "reason",
            "changes",
            "people_change",
            "status",
            "proposer",
            "proposer_name",
            "approver",
            "approver_name",
            "based_on_version",
            "resulting_version",
            "decision_note",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


class ProposedChangeSerializer(serializers.Serializer):
    node = VisiblePrimaryKeyRelatedField(scope=visible_nodes)
    amount = strict.DecimalField(**MONEY, help_text=_("The target's new amount."))


class AdjustmentCreateSerializer(serializers.Serializer):
    plan = VisiblePrimaryKeyRelatedField(scope=visible_plans)
    kind = strict.ChoiceField(choices=AMOUNT_KINDS)
    reason = strict.CharField(allow_blank=True)
    changes = ProposedChangeSerializer(
        many=True,
        help_text=_(
            "New amounts of some targets; each change moves the target's ancestors by the same difference and "
            "rescales its parts. A reallocation keeps the plan total."
        ),
    )


class AdjustmentDecisionSerializer(serializers.Serializer):
    note = strict.CharField(
        required=False, allow_blank=True, default="", help_text=_("Optional on approval, required on rejection.")
    )


# --- action plans ----------------------------------------------------------------------------


class ActionPlanSerializer(strict.ModelSerializer):
    node = VisiblePrimaryKeyRelatedField(scope=visible_nodes)
    node_label = strict.CharField(source="node.label", read_only=True)
    owner = VisiblePrimaryKeyRelatedField(
        scope=visible_users, required=False, help_text=_("Defaults to the requesting user.")
    )
    owner_name = serializers.StringRelatedField(source="owner", read_only=True)
    created_by_name = serializers.StringRelatedField(source="created_by", read_only=True)

    class Meta:
        model = ActionPlan
        fields = [
            "id",
            "node",
            "node_label",
            "activity",
            "owner",
            "owner_name",
            "due_date",
            "resources",
            "status",
            "created_by",
            "created_by_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "created_by", "created_at", "updated_at"]


class ActionPlanUpdateSerializer(serializers.Serializer):
    activity = strict.CharField(max_length=300, required=False)
    owner = VisiblePrimaryKeyRelatedField(scope=visible_users, required=False)
    due_date = strict.DateField(required=False)
    resources = strict.CharField(required=False, allow_blank=True)
    status = strict.ChoiceField(
        choices=ActionStatus.choices, required=False, help_text=_("Cancel an action instead of deleting it.")
    )
