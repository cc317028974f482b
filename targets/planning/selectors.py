"""Reads of targets: the tree level by level, incomplete leaves, roll-ups, versions, visibility."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Lookup,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Abs, Coalesce
from django.utils.translation import gettext as _

from crm.models import CompanySettings, DataScope, User
from crm.scopes import scope_q
from salesmgmt.lib import periods
from salesmgmt.lib.money import quantize
from targets.models import (
    ActionPlan,
    ActionStatus,
    AdjustmentKind,
    AdjustmentRequest,
    AdjustmentStatus,
    PeriodKind,
    TargetNode,
    TargetNodeAmount,
    TargetPlan,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

TREE_RELATED = ("region", "product_line", "product", "rep", "owner")
LABEL_RELATED = ("region", "product_line", "product", "rep")  # what `TargetNode.label` reads


class VisibleTotal(TypedDict):
    """What `with_visible_total` annotates a plan with."""

    sees_root: bool
    visible_total: Decimal


def nodes_visible_to(user: User) -> QuerySet[TargetNode]:
    """Target nodes `user` may see: their data scope over the node's region and owner, plus their own rep targets."""
    return TargetNode.objects.visible_to(user)


def plans_visible_to(user: User, *, visible: QuerySet[TargetNode] | None = None) -> QuerySet[TargetPlan]:
    """Plans with a node `user` may see (`visible`: those nodes, when the caller has them already)."""
    visible = nodes_visible_to(user) if visible is None else visible
    return TargetPlan.objects.filter(pk__in=visible.values("plan_id")).select_related("metric", "owner")


def plan_root(plan: TargetPlan) -> TargetNode:
    return TargetNode.objects.select_related(*TREE_RELATED).get(plan=plan, parent__isnull=True)


def plan_tree(plan: TargetPlan, parent: TargetNode | None = None, *, user: User | None = None) -> QuerySet[TargetNode]:
    """One level of the tree (the root when `parent` is None), each node with its number of children,
    for lazy expansion. With `user`, only the nodes they may see."""
    qs = TargetNode.objects.filter(plan=plan)
    qs = qs.filter(parent=parent) if parent is not None else qs.filter(parent__isnull=True)
    if user is not None:
        qs &= nodes_visible_to(user)  # the scope's own filter, which its indexes serve (not `pk IN (...)`)
    return qs.select_related(*TREE_RELATED).annotate(child_count=Count("children")).order_by("path")


def incomplete_leaves(plan: TargetPlan) -> QuerySet[TargetNode]:
    """Leaves that break 3定: no owner (定责任), or no period/deadline (定时间)."""
    return (
        TargetNode.objects.filter(plan=plan, split_dimension="")
        .filter(Q(owner__isnull=True) | Q(deadline__isnull=True) | Q(period_key=""))
        .select_related(*TREE_RELATED)
        .order_by("path")
    )


def unbalanced_nodes(plan: TargetPlan) -> QuerySet[TargetNode]:
    """Split nodes whose children do not add up to them (should never happen; checked before approval).

    One join and GROUP BY over the plan (not a subquery per node), so it stays fast on 60,000 leaves.
    """
    return (
        TargetNode.objects.filter(plan=plan)
        .exclude(split_dimension="")
        .annotate(children_sum=Coalesce(Sum("children__amount"), Value(Decimal(0))))
        # Half a cent of slack: SQLite adds decimals as floats; a real imbalance is at least a cent.
        .annotate(off_by=Abs(F("children_sum") - F("amount")))
        .filter(off_by__gte=Decimal("0.005"))
        .select_related(*TREE_RELATED)
    )


def _cents(value: Decimal | float | None) -> Decimal:
    # SQLite returns sums of decimals through floats; every amount is a whole number of cents.
    return quantize(Decimal(value or 0))


def node_gap(node: TargetNode) -> Decimal | None:
    """What the owner of `node` committed (bottom-up) minus its target (top-down); None until he commits."""
    return None if node.committed_amount is None else node.committed_amount - node.amount


def commitment_gap(node: TargetNode) -> dict:
    """Top-down vs bottom-up for a split node: what was handed down, what the owners below committed,
    the gap (bottom-up minus top-down) and who has not committed yet."""
    children = list(node.children.select_related(*TREE_RELATED).order_by("path"))
    committed = [c for c in children if c.committed_amount is not None]
    bottom_up = sum((c.committed_amount for c in committed if c.committed_amount is not None), Decimal(0))
    # Like with like: the commitments against what was handed down to those who committed.
    handed_to_committed = sum((c.amount for c in committed), Decimal(0))
    return {
        "top_down": node.amount,
        "bottom_up": bottom_up,
        "gap": bottom_up - handed_to_committed,
        "committed": committed,
        "missing": [c for c in children if c.committed_amount is None],
        "rows": [
            {
                "node": c,
                "top_down": c.amount,
                "bottom_up": c.committed_amount,
                "gap": node_gap(c),
            }
            for c in children
        ],
    }


# --- "My targets", commitments, action plans, adjustments and versions --------------------------

# Periods depth-first: a year, then its quarters, their months and weeks.
PERIOD_RANK = Case(
    When(period_kind=PeriodKind.YEAR, then=Value(0)),
    When(period_kind=PeriodKind.QUARTER, then=Value(1)),
    When(period_kind=PeriodKind.MONTH, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)
OPEN_ACTION_STATUSES = (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)


def owned_targets(
    user: User, *, owners: QuerySet[User] | None = None, plan: TargetPlan | None = None, period_kind: str = ""
) -> QuerySet[TargetNode]:
    """The targets owned by `owners` (a queryset of users; default: `user` alone) that `user` may see.

    For "my targets": newest plan first, then per owner the periods depth-first (a year, its quarters,
    months, weeks), each with the owner of its parent (who handed it down and may ask for a
    commitment) and its action plans (one extra query per page).
    """
    qs = nodes_visible_to(user)
    qs = qs.filter(owner=user) if owners is None else qs.filter(owner__in=owners)
    if plan is not None:
        qs = qs.filter(plan=plan)
    if period_kind:
        qs = qs.filter(period_kind=period_kind)
    actions = ActionPlan.objects.select_related("owner").order_by("due_date", "id")
    return (
        qs.select_related("plan", "plan__metric", *TREE_RELATED)
        .annotate(period_rank=PERIOD_RANK, parent_owner_id=F("parent__owner"))
        .prefetch_related(Prefetch("actions", queryset=actions))
        .order_by(
            "-plan__period_start", "plan_id", "owner__username", "owner_id", "period_start", "period_rank", "path"
        )
    )


def open_actions_of(user: User, *, limit: int = 20) -> QuerySet[ActionPlan]:
    """The user's own open action plans, soonest first, with what their targets' labels name (`TargetNode.label`).

    Not the plan and the owner too: eight tables joined cost PostgreSQL 6.5 ms to plan (a ninth of a "my targets"
    page) against 0.9 ms for these six, and an action's row shows its target's label alone."""
    return (
        ActionPlan.objects.filter(owner=user, status__in=OPEN_ACTION_STATUSES)
        .select_related("node", *(f"node__{f}" for f in LABEL_RELATED))
        .order_by("due_date", "id")[:limit]
    )


def actions_visible_to(user: User | None) -> QuerySet[ActionPlan]:
    """Action plans under the targets `user` may see, and those given to them."""
    if user is None or not user.is_authenticated:
        return ActionPlan.objects.none()
    return ActionPlan.objects.filter(Q(node__in=nodes_visible_to(user).values("pk")) | Q(owner=user))


def adjustments_visible_to(user: User | None) -> QuerySet[AdjustmentRequest]:
    """Adjustments a manager (or above) may look at: those of the plans they see, and their own proposals.

    Reps do not see them: a proposal lists colleagues' targets (and reps cannot propose any).
    Which of the changed targets a manager may see is left to `adjustment_rows(..., user=)`.
    """
    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return AdjustmentRequest.objects.none()
    return AdjustmentRequest.objects.filter(
        Q(plan__in=plans_visible_to(user).values("pk")) | Q(proposer=user)
    ).select_related("plan", "plan__metric", "proposer", "approver")


def adjustments_to_decide(user: User | None, *, only: int | None = None) -> list[AdjustmentRequest]:
    """Pending adjustments `user` may approve, oldest first (with `only`, that one adjustment if so).

    Mirrors the checks of `adjustment_approve` (which stays the authority): someone else's proposal,
    a change of the plan total only for directors and admins, every changed target inside the
    user's regions and not their own, and the user above the proposer (`targets.planning.approval_chain`).
    One query for the adjustments, one for all their targets, two for their regions.
    """
    from crm.models import DataScope
    from crm.scopes import visible_regions
    from targets.planning.approval_chain import adjustment_lines, outranks_proposer
    from targets.planning.rules import is_top

    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return []
    top = is_top(user)
    qs = adjustments_visible_to(user).filter(status=AdjustmentStatus.PENDING).exclude(proposer=user)
    if only is not None:
        qs = qs.filter(pk=only)
    if not top:
        qs = qs.exclude(kind=AdjustmentKind.TOTAL_CHANGE)
    pending = list(qs.order_by("created_at", "id"))
    if not pending:  # the usual case ("my targets" asks on every visit): no scope or targets to build and read
        return []
    ids = {change["node"] for adjustment in pending for change in adjustment.changes}
    nodes = {
        n["id"]: n for n in TargetNode.objects.filter(pk__in=ids).values("id", "region_id", "owner_id", "parent_id")
    }
    everything = user.effective_scope == DataScope.ALL
    regions: set[int] = set()
    if not everything:
        wanted = {n["region_id"] for n in nodes.values() if n["region_id"]}
        regions = set(visible_regions(user).filter(pk__in=wanted).values_list("pk", flat=True))

    def may_change(node: Mapping[str, Any] | None) -> bool:
        if node is None:
            return False
        in_scope = everything or (node["region_id"] is not None and node["region_id"] in regions)
        own = node["owner_id"] == user.pk and not (node["parent_id"] is None and top)
        return in_scope and not own

    pending = [a for a in pending if all(may_change(nodes.get(c["node"])) for c in a.changes)]
    lines = adjustment_lines(pending)
    return [a for a in pending if outranks_proposer(user, a, lines[a.pk])]


def adjustment_rows(adjustment: AdjustmentRequest, *, user: User | None = None) -> list[dict]:
    """The proposed changes of an adjustment with their differences: [{node, label, old, new, delta}].

    With `user`, only the targets they may see (one query).
    """
    changes = adjustment.changes
    if user is not None:
        ids = [change["node"] for change in changes]
        seen = set(nodes_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))
        changes = [change for change in changes if change["node"] in seen]
    rows = []
    for change in changes:
        old, new = Decimal(change["old"]), Decimal(change["new"])
        rows.append(
            {"node": change["node"], "label": change.get("label", ""), "old": old, "new": new, "delta": new - old}
        )
    return rows


def adjustments_with_net(adjustments: Iterable[AdjustmentRequest], user: User) -> list[AdjustmentRequest]:
    """Each adjustment with `net`, the change it makes to what `user` may see, and `partial`, whether it changes
    targets they may not see too: the plan total's change only for those who see every changed target, never a
    figure that would give away the hidden rows (one query for all the adjustments)."""
    adjustments = list(adjustments)
    ids = {change["node"] for adjustment in adjustments for change in adjustment.changes}
    seen = set(nodes_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    for adjustment in adjustments:
        shown = [change for change in adjustment.changes if change["node"] in seen]
        adjustment.net = sum((Decimal(c["new"]) - Decimal(c["old"]) for c in shown), Decimal(0))
        adjustment.partial = len(shown) < len(adjustment.changes)
    return adjustments


def plan_versions(plan: TargetPlan) -> list[dict]:
    """Every approved version of a plan, oldest first: number, when, who approved, who proposed, why.

    Version 1 is the approval of the plan; each approved adjustment made the next one (one query).
    """
    if plan.current_version < 1:
        return []
    versions: list[dict] = [
        {
            "number": 1,
            "at": plan.approved_at,
            "approver": plan.approved_by,
            "proposer": plan.submitted_by,  # version 1 was proposed by submitting the plan
            "reason": _("Original plan"),
            "adjustment": None,
        }
    ]
    adjustments = (
        AdjustmentRequest.objects.filter(plan=plan, status=AdjustmentStatus.APPROVED, resulting_version__isnull=False)
        .select_related("proposer", "approver")
        .order_by("resulting_version")
    )
    for adjustment in adjustments:
        versions.append(
            {
                "number": adjustment.resulting_version,
                "at": adjustment.decided_at,
                "approver": adjustment.approver,
                "proposer": adjustment.proposer,
                "reason": adjustment.reason,
                "adjustment": adjustment,
            }
        )
    return versions


def original_target_expression() -> Subquery:
    """A node's original target, as a column: its amount in the plan's first approved version (version 1), the
    plan as it was approved before any adjustment. Null for a node without one (a draft plan's, or a target added
    by a later adjustment: `original_targets` reads that as zero)."""
    return _amount_in(1)


def original_targets(node_ids: Iterable[int]) -> dict[int, Decimal | None]:
    """The original target of each node (one query): its amount in version 1 of its plan, zero for a target added
    later by an adjustment (a new hire's), None while its plan was never approved. The one definition of
    "original target": the tree, the weekly review and the API show this, beside the version in force."""
    rows = (
        TargetNode.objects.filter(pk__in=list(node_ids))
        .annotate(original=original_target_expression())
        .values_list("pk", "original", "plan__current_version")
    )
    return {
        pk: (None if version < 1 else (original if original is not None else Decimal(0)))
        for pk, original, version in rows
    }


def _amount_in(version: int) -> Subquery:
    return Subquery(
        TargetNodeAmount.objects.filter(node=OuterRef("pk"), version_from__lte=version)
        .filter(Q(version_to__isnull=True) | Q(version_to__gt=version))
        .values("amount")[:1]
    )


def version_changes(plan: TargetPlan, old: int, new: int, *, user: User | None = None) -> QuerySet[TargetNode]:
    """The nodes whose amount differs between versions `old` and `new`, in tree order, annotated with
    `old_amount` and `new_amount`.

    One query: each amount is a correlated lookup on the (node, version) index, so the diff pages in
    SQL however many nodes changed. With `user`, only the nodes they may see.
    """
    low, high = sorted((old, new))
    touched = TargetNodeAmount.objects.filter(plan=plan, version_from__gt=low, version_from__lte=high).values("node_id")
    qs = TargetNode.objects.filter(plan=plan, pk__in=touched)
    if user is not None:
        qs = qs.filter(pk__in=nodes_visible_to(user).filter(plan=plan).values("pk"))
    return (
        qs.annotate(old_amount=_amount_in(old), new_amount=_amount_in(new))
        .filter(~Q(old_amount=F("new_amount")))
        .select_related(*TREE_RELATED)
        .order_by("path")
    )


# --- API and Excel round trip: plan totals per version ----------------------------------------


def plan_version_totals(plan: TargetPlan, *, user: User | None = None) -> dict[int, Decimal]:
    """{version: plan total} for every approved version (the root's amount rows; one query).

    With `user`, what they are shown as the total (see `with_visible_total`): the plan total when they
    see the root, else their part, the amounts of their top visible targets in each version.
    """
    amounts = TargetNodeAmount.objects.filter(plan=plan)
    if user is None:
        amounts = amounts.filter(node__plan=plan, node__parent__isnull=True)
    else:
        amounts = amounts.filter(node__in=top_visible_nodes(user).filter(plan=plan).values("pk"))
    totals: dict[int, Decimal] = {}
    for start, end, amount in amounts.values_list("version_from", "version_to", "amount"):
        for version in range(start, (end or plan.current_version + 1)):
            totals[version] = totals.get(version, Decimal(0)) + amount
    return totals


# --- the plan screens: plan list, editor tree, grid (engineer A) ------------------------------

INCOMPLETE_LEAF = Q(split_dimension="") & (Q(owner__isnull=True) | Q(deadline__isnull=True) | Q(period_key=""))
GRID_ROWS = ("region", "rep")
GRID_COLUMNS = (periods.MONTH, periods.QUARTER)
OTHER_COLUMN = "other"


def _sees_all(user: User) -> bool:
    return user.effective_scope == DataScope.ALL


def plan_list(user: User) -> QuerySet[WithAnnotations[TargetPlan, VisibleTotal]]:
    """The plans `user` may see (any plan with a node in their scope), newest period first."""
    visible = None if _sees_all(user) else nodes_visible_to(user)  # built once: each build reads the scope
    qs = TargetPlan.objects.all() if visible is None else plans_visible_to(user, visible=visible)
    qs = with_visible_total(qs, user, visible=visible)
    order = ("-period_start", "metric__name", "region__path", "pk")
    return qs.select_related("metric", "owner", "region", "submitted_by", "approved_by").order_by(*order)


def _with_tree_columns(qs: QuerySet[TargetNode]) -> QuerySet[TargetNode]:
    """What a row of the editor tree shows: related labels, child count, and whether a leaf lacks 3定."""
    return (
        qs.select_related(*TREE_RELATED)
        .annotate(
            child_count=Count("children"),
            incomplete=ExpressionWrapper(INCOMPLETE_LEAF, output_field=BooleanField()),
        )
        .order_by("path")
    )


class _AmongFirst(Lookup):
    """`lhs` is one of the rows of a subquery that runs first, alone: PostgreSQL's `= ANY(ARRAY(subquery))`
    (an init plan, whose few values are then looked up by index), where `IN (subquery)` would let the
    planner join a misjudged subquery to the whole table. Elsewhere, `IN`."""

    lookup_name = "among_first"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        template = "%s = ANY(ARRAY%s)" if connection.vendor == "postgresql" else "%s IN %s"
        return template % (lhs, rhs), (*lhs_params, *rhs_params)


def _entry_q(user: User, visible: QuerySet[TargetNode], plan: TargetPlan | None = None) -> Q:
    """The top of what `user` sees of `plan` (of every plan, when None): the visible targets whose parent is
    not visible (the root, for whoever sees it; a manager's areas in a company-wide plan; a rep's own
    targets). `visible`: the user's visible nodes (`nodes_visible_to`).

    Not found by comparing every visible target with every other: the few that can be one are found first
    (`_entry_candidates`), then each is kept if its parent, looked up by primary key, is not visible.
    """
    if _sees_all(user):
        return Q(parent__isnull=True)
    candidates = Subquery(_entry_candidates(user, visible, plan))
    return Q(_AmongFirst(F("pk"), candidates)) & ~Q(Exists(visible.filter(pk=OuterRef("parent_id"))))


def _entry_candidates(user: User, visible: QuerySet[TargetNode], plan: TargetPlan | None) -> QuerySet:
    """The ids of the targets that can be the top of what `user` sees. Whether he sees a target depends on its
    region, owner and rep only (`TargetNode.visible_to`), so one he sees whose parent he does not differs from
    the parent in one of them; these are read by index, not every visible target:

    - the root;
    - the targets of the regions he runs (those his scope covers; the (region, plan) index) whose parent is
      not one of them: where his regions start, not the rest of a team's tree;
    - the targets he sees for their owner or rep, not for their region (his own, his people's outside his
      regions; the owner and rep indexes).
    """
    nodes = TargetNode.objects.order_by() if plan is None else TargetNode.objects.filter(plan=plan).order_by()
    by_region = scope_q(user, owner=None, region="region")
    parts = [
        nodes.filter(parent__isnull=True),
        nodes.filter(by_region).exclude(parent__in=nodes.filter(by_region)),
        visible.order_by().exclude(by_region),
    ]
    ids = [part.values("pk") for part in parts]
    return ids[0].union(*ids[1:], all=True)


def top_visible_nodes(user: User, *, visible: QuerySet[TargetNode] | None = None) -> QuerySet[TargetNode]:
    """The top of what `user` sees of each plan: the visible targets with no visible target above them.

    The root for whoever sees it; a manager's areas in a company-wide plan; a rep's own targets. Their
    amounts add up to the user's part of the plan without counting anything twice: a target visible
    under an invisible one under a visible one (an owner given a part far down) is already inside
    the upper one's amount. `visible`: the user's visible nodes, when the caller has them already.
    """
    visible = nodes_visible_to(user) if visible is None else visible
    entries = visible.filter(_entry_q(user, visible))
    if _sees_all(user):
        return entries
    above = (
        entries.filter(plan=OuterRef("plan"), depth__lt=OuterRef("depth"))
        .annotate(below=ExpressionWrapper(OuterRef("path"), output_field=CharField()))
        .filter(below__startswith=F("path"))
    )
    return entries.exclude(Exists(above))


def with_visible_total(
    plans: QuerySet[TargetPlan], user: User, *, visible: QuerySet[TargetNode] | None = None
) -> QuerySet[WithAnnotations[TargetPlan, VisibleTotal]]:
    """Each plan with what `user` is shown as its total, the same on every page, API and export:
    `sees_root`, whether they see the root target, and `visible_total`, the plan total if so, else
    their part (the sum of their top visible targets), never the total of targets they cannot see."""
    if _sees_all(user):
        return plans.annotate(sees_root=Value(True), visible_total=F("total"))
    top = top_visible_nodes(user, visible=visible).filter(plan=OuterRef("pk"))
    part = top.order_by().values("plan").annotate(part=Sum("amount")).values("part")
    money = DecimalField(max_digits=18, decimal_places=2)
    return plans.annotate(
        sees_root=Exists(top.filter(parent__isnull=True)),
        visible_total=Coalesce(Subquery(part, output_field=money), Value(Decimal(0)), output_field=money),
    )


def plan_level(plan: TargetPlan, parent: TargetNode | None, user: User) -> QuerySet[TargetNode]:
    """One level of the editor tree that `user` sees: the children of `parent`, or (None) the top of what he
    sees of `plan` (`_entry_q`). Plain rows: `tree_rows` and `level_summary` read it."""
    visible = nodes_visible_to(user).filter(plan=plan)
    return visible.filter(parent=parent) if parent is not None else visible.filter(_entry_q(user, visible, plan))


def tree_rows(level: QuerySet[TargetNode]) -> QuerySet[TargetNode]:
    """The nodes of a level (`plan_level`) as the editor tree shows them, in tree order, with child counts."""
    return _with_tree_columns(level)


def plan_entry_nodes(plan: TargetPlan, user: User) -> QuerySet[TargetNode]:
    """The first level of the editor tree for `user`, in tree order, with child counts."""
    return tree_rows(plan_level(plan, None, user))


def level_summary(level: QuerySet[TargetNode], parent: TargetNode | None) -> dict:
    """Totals of one level of the tree (`plan_level`: the children of `parent`, or the top) in one aggregate:
    its amount (to check against the parent), and top-down vs bottom-up over the nodes whose owners committed."""
    committed = Q(committed_amount__isnull=False)
    agg = level.order_by().aggregate(
        count=Count("pk"),
        level_total=Sum("amount"),
        bottom_up=Sum("committed_amount"),
        handed=Sum("amount", filter=committed),
        committed=Count("pk", filter=committed),
    )
    amount, bottom_up, handed = (_cents(agg[k]) for k in ("level_total", "bottom_up", "handed"))
    return {
        "count": agg["count"],
        "amount": amount,
        "committed": agg["committed"],
        "missing": agg["count"] - agg["committed"],
        "bottom_up": bottom_up if agg["committed"] else None,
        "gap": bottom_up - handed if agg["committed"] else None,
        # Children always add up (the services split exactly); shown should a manual database edit break it.
        "mismatch": parent is not None and not parent.is_leaf and agg["count"] and amount != parent.amount,
    }


def plan_overview(user: User, plans: Iterable[WithAnnotations[TargetPlan, VisibleTotal]]) -> dict[int, dict]:
    """For a page of plans (from `plan_list`), in one query: the incomplete leaves `user` may see, and
    the total they are shown (`with_visible_total`: the plan total when they see the root, else their part)."""
    ids = [p.pk for p in plans]
    result = {p.pk: {"incomplete": 0, "part": _cents(p.visible_total), "sees_root": p.sees_root} for p in plans}
    visible: QuerySet[TargetNode] = TargetNode.objects.filter(plan_id__in=ids)
    if not _sees_all(user):
        visible = nodes_visible_to(user).filter(plan_id__in=ids)
    for row in visible.filter(INCOMPLETE_LEAF).order_by().values("plan_id").annotate(n=Count("pk")):
        result[row["plan_id"]]["incomplete"] = row["n"]
    return result


def visible_incomplete_leaves(plan: TargetPlan, user: User) -> QuerySet[TargetNode]:
    """The leaves `user` may see that lack an owner or a period (定责任, 定时间)."""
    return incomplete_leaves(plan) & nodes_visible_to(user)


def grid_columns(node: TargetNode, cols: str) -> list[periods.Period]:
    """The months or quarters of `node`'s period; the period itself when it is not longer than one."""
    start_month = CompanySettings.load().fiscal_year_start_month
    parsed = periods.parse_key(node.period_key, start_month)
    period = periods.Period(node.period_start, node.period_end, node.period_kind, parsed.fiscal_year, parsed.number)
    if periods.KINDS.index(cols) > periods.KINDS.index(node.period_kind):
        return periods.children(period, cols, start_month)
    return [period]


def _grid_row_fields(rows: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if rows == "rep":
        return ("rep", "rep__username", "rep__first_name", "rep__last_name"), ("rep__username", "rep")
    return ("region", "region__name", "region__path"), ("region__path", "region")


def grid_leaves(plan: TargetPlan, node: TargetNode, user: User) -> QuerySet[TargetNode]:
    """The leaves under `node` that `user` may see: what every grid cell adds up."""
    leaves = TargetNode.objects.all() if _sees_all(user) else nodes_visible_to(user)
    return leaves.filter(plan=plan, path__startswith=node.path, split_dimension="")


def grid_rows(leaves: QuerySet[TargetNode], rows: str) -> QuerySet:
    """One row per region or rep under the node with its total, by name: ONE grouped query (to page)."""
    fields, order = _grid_row_fields(rows)
    return leaves.order_by(*order).values(*fields).annotate(total=Sum("amount"))


def _column_of(columns: list[periods.Period], kind: str, start: date) -> int | None:
    """Index of the column a leaf falls in; None for a leaf longer than a column (e.g. a whole year)."""
    if periods.KINDS.index(kind) < periods.KINDS.index(columns[0].kind):
        return None
    return next((i for i, c in enumerate(columns) if c.start <= start <= c.end), None)


def grid_table(
    *, leaves: QuerySet[TargetNode], rows: str, columns: list[periods.Period], row_page: Iterable[dict]
) -> dict:
    """The cells of a page of grid rows and the column totals of all rows: two grouped queries,
    however many rows. A cell holding exactly one leaf of the column's period can be edited."""
    row_field = rows
    keys = [r[row_field] for r in row_page]
    in_page = Q(**{f"{row_field}__in": [k for k in keys if k is not None]})
    if None in keys:
        in_page |= Q(**{f"{row_field}__isnull": True})
    cells = (
        leaves.filter(in_page)
        .order_by()
        .values(row_field, "period_kind", "period_start")
        .annotate(amount=Sum("amount"), n=Count("pk"), leaf=Min("pk"), version=Min("version"))
    )
    width = len(columns) + 1  # the last column: leaves longer than a column
    by_row: dict = {k: [None] * width for k in keys}
    for cell in cells:
        index = _column_of(columns, cell["period_kind"], cell["period_start"])
        slot = width - 1 if index is None else index
        current = by_row[cell[row_field]][slot]
        exact = (
            index is not None
            and cell["n"] == 1
            and cell["period_kind"] == columns[index].kind
            and cell["period_start"] == columns[index].start
        )
        if current is None:
            by_row[cell[row_field]][slot] = {
                "amount": _cents(cell["amount"]),
                "leaf": cell["leaf"] if exact else None,
                "version": cell["version"] if exact else None,
            }
        else:  # several leaves in one cell (e.g. weeks in a month): a sum, not editable
            current.update(amount=current["amount"] + _cents(cell["amount"]), leaf=None, version=None)
    column_totals = [Decimal(0)] * width
    for row in leaves.order_by().values("period_kind", "period_start").annotate(amount=Sum("amount")):
        index = _column_of(columns, row["period_kind"], row["period_start"])
        column_totals[width - 1 if index is None else index] += _cents(row["amount"])
    return {
        "rows": [
            {
                "key": r[row_field],
                "row": r,
                "cells": by_row[r[row_field]],
                "total": _cents(r["total"]),
            }
            for r in row_page
        ],
        "column_totals": column_totals,
        "grand_total": sum(column_totals, Decimal(0)),
        "has_other": bool(column_totals[-1]) or any(row_cells[-1] for row_cells in by_row.values()),
    }


def tree_node(plan: TargetPlan, pk: int, user: User) -> TargetNode | None:
    """One node of the editor tree as its row shows it (child count, 3定 completeness), if `user` may see it."""
    return _with_tree_columns(nodes_visible_to(user).filter(plan=plan, pk=pk)).first()


def leaves_below(node: TargetNode) -> QuerySet[TargetNode]:
    """Every leaf under `node` (what "split every leaf below" splits), in tree order."""
    return TargetNode.objects.filter(plan_id=node.plan_id, path__startswith=node.path, split_dimension="").order_by(
        "path"
    )
