"""Query-string filters of the targets API (django-filter). They narrow querysets already limited to
the user's data scope (`nodes_visible_to`, `plans_visible_to`...), so a filter never widens what
someone sees."""

from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from crm.api import IdFilter, RegionSubtreeFilter
from crm.models import Segment
from targets.models import (
    ActionPlan,
    ActionStatus,
    AdjustmentKind,
    AdjustmentRequest,
    AdjustmentStatus,
    Dimension,
    PeriodKind,
    PlanStatus,
    TargetNode,
    TargetPlan,
)
from targets.planning.approval_chain import plans_awaiting_approval
from targets.planning.selectors import nodes_visible_to


class TargetPlanFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=PlanStatus.choices)
    metric = IdFilter(field_name="metric")
    region = IdFilter(field_name="region", help_text=_("Plans of this region (not its sub-regions)."))
    company_wide = filters.BooleanFilter(
        field_name="region", lookup_expr="isnull", help_text=_("true: company-wide plans only; false: regional plans.")
    )
    period_key = filters.CharFilter(help_text=_("A fiscal period such as FY2027 or FY2027-Q2."))
    awaiting_my_approval = filters.BooleanFilter(
        method="filter_awaiting_my_approval",
        help_text=_("true: submitted plans waiting for your approval; false: every other plan."),
    )

    class Meta:
        model = TargetPlan
        fields = ["status", "metric", "region", "company_wide", "period_key", "awaiting_my_approval"]

    def filter_awaiting_my_approval(self, queryset, name, value: bool):
        waiting = plans_awaiting_approval(getattr(self.request, "user", None), queryset)
        return waiting if value else queryset.exclude(pk__in=waiting.values("pk"))


class TargetNodeFilter(filters.FilterSet):
    plan = IdFilter(field_name="plan")
    parent = IdFilter(field_name="parent", help_text=_("The children of this target."))
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    region = IdFilter(field_name="region", help_text=_("Targets booked to exactly this region."))
    region_within = RegionSubtreeFilter(
        field_name="region", help_text=_("Targets booked to this region or any region below it.")
    )
    product_line = IdFilter(field_name="product_line")
    product = IdFilter(field_name="product")
    rep = IdFilter(field_name="rep", help_text=_("Rep targets of this user."))
    segment = filters.ChoiceFilter(choices=Segment.choices)
    period_kind = filters.ChoiceFilter(choices=PeriodKind.choices)
    period_key = filters.CharFilter(help_text=_("A fiscal period such as FY2027-Q2 or FY2027-M04."))
    split_dimension = filters.ChoiceFilter(choices=Dimension.choices, help_text=_("Targets split along this."))
    leaf = filters.BooleanFilter(method="filter_leaf", help_text=_("true: leaves only; false: split targets."))
    incomplete = filters.BooleanFilter(
        method="filter_incomplete",
        help_text=_("true: leaves that break 3定 (no owner or no deadline); false: every other target."),
    )
    top = filters.BooleanFilter(
        method="filter_top",
        help_text=_(
            "true: the highest targets you can see (the root for a director, an area's target for its manager): "
            "where a lazy tree starts."
        ),
    )

    class Meta:
        model = TargetNode
        fields = [
            "plan",
            "parent",
            "owner",
            "region",
            "region_within",
            "product_line",
            "product",
            "rep",
            "segment",
            "period_kind",
            "period_key",
            "split_dimension",
            "leaf",
            "incomplete",
            "top",
        ]

    def filter_leaf(self, queryset, name, value: bool):
        return queryset.filter(split_dimension="") if value else queryset.exclude(split_dimension="")

    def filter_incomplete(self, queryset, name, value: bool):
        broken = Q(split_dimension="") & (Q(owner__isnull=True) | Q(deadline__isnull=True) | Q(period_key=""))
        return queryset.filter(broken) if value else queryset.exclude(broken)

    def filter_top(self, queryset, name, value: bool):
        # A top node is one whose parent the user cannot see (the root's parent is NULL: never "in").
        visible = nodes_visible_to(getattr(self.request, "user", None)).values("pk")
        below_visible = Q(parent_id__in=visible)
        return queryset.exclude(below_visible) if value else queryset.filter(below_visible)


class AdjustmentFilter(filters.FilterSet):
    plan = IdFilter(field_name="plan")
    status = filters.MultipleChoiceFilter(choices=AdjustmentStatus.choices)
    kind = filters.ChoiceFilter(choices=AdjustmentKind.choices)
    proposer = IdFilter(field_name="proposer")

    class Meta:
        model = AdjustmentRequest
        fields = ["plan", "status", "kind", "proposer"]


class ActionPlanFilter(filters.FilterSet):
    node = IdFilter(field_name="node", help_text=_("The actions of this target."))
    plan = IdFilter(field_name="node__plan")
    owner = IdFilter(field_name="owner")
    status = filters.MultipleChoiceFilter(choices=ActionStatus.choices)
    due_date = filters.DateFromToRangeFilter(help_text=_("due_date_after / due_date_before (inclusive)."))

    class Meta:
        model = ActionPlan
        fields = ["node", "plan", "owner", "status", "due_date"]
