"""Writes for targets: plans, the 3定 breakdown (splits, edits, commitments), approval, adjustments, actions.

Every function is keyword-only, atomic, validated and audited. Amounts are split with the
largest remainder method (`salesmgmt.lib.allocation`), so children always sum exactly to their
parent. Who may do what:

- only managers and above split or edit, and only inside their data scope (the node's region
  must be one of `visible_regions(actor)`; company-level nodes need the "all" scope);
- nobody edits, commits on behalf of, or approves their own target, except a director/admin on a
  plan root. Splitting one's own node is allowed: it distributes the amount handed down to the
  people below without changing it (DOMAIN: a manager "owns a region target, splits it to reps");
- a plan is changed only while draft; once approved, amounts move only through adjustments,
  which create a new version (`TargetNodeAmount` keeps every version).

Editing one part of a split (`node_update(amount=...)`) would break the parent's sum, so it is
refused unless the caller asks explicitly for `rebalance=True`: the siblings then absorb the
difference in proportion to their amounts. Whenever a node's amount changes, its own subtree is
rescaled proportionally so every level still adds up.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache, reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, F, Q, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.models import CompanySettings, Customer, DataScope, Product, ProductLine, Region, Role, Segment, User
from crm.scopes import scope_q, visible_regions, visible_users
from crm.services import audit
from pipeline.models import Collection, Opportunity, OpportunityLine
from pipeline.services import ConflictError
from salesmgmt.lib import allocation, periods
from salesmgmt.lib.money import CENT, to_decimal
from targets.models import (
    METRIC_FILTER_KEYS,
    TIME_DIMENSIONS,
    ActionPlan,
    ActionStatus,
    AdjustmentKind,
    AdjustmentRequest,
    AdjustmentStatus,
    Dimension,
    Metric,
    MetricSource,
    MetricUnit,
    PlanPeriodKind,
    PlanStatus,
    SplitMethod,
    TargetNode,
    TargetNodeAmount,
    TargetPlan,
    WeightBasis,
)
from targets.selectors import incomplete_leaves, unbalanced_nodes

TIME_ORDER = (periods.YEAR, periods.QUARTER, periods.MONTH, periods.WEEK)
PATH_STEP = 5  # "0001." per level
MAX_CHILDREN = 9999
# Split summaries in the audit log list each child only up to this many children.
AUDIT_CHILDREN_LIMIT = 100

BUILTIN_METRICS = [
    # code, name, name_zh, unit, source
    ("won_revenue", "Signed revenue", "签约额", MetricUnit.MONEY, MetricSource.WON_REVENUE),
    ("collections", "Cash collection", "回款额", MetricUnit.MONEY, MetricSource.COLLECTIONS),
    ("new_customers", "New customers", "新客户数", MetricUnit.COUNT, MetricSource.NEW_CUSTOMERS),
    ("gross_margin", "Gross margin", "毛利", MetricUnit.MONEY, MetricSource.GROSS_MARGIN),
    ("key_product_share", "Key-product revenue", "重点产品占比", MetricUnit.MONEY, MetricSource.KEY_PRODUCT_SHARE),
]


# --- metrics -----------------------------------------------------------------------------


@transaction.atomic
def metric_ensure_defaults() -> list[Metric]:
    """Create the built-in metrics once; running it again changes nothing."""
    result = []
    for code, name, name_zh, unit, source in BUILTIN_METRICS:
        metric, _created = Metric.objects.get_or_create(
            code=code, defaults={"name": name, "name_zh": name_zh, "unit": unit, "source": source, "is_builtin": True}
        )
        result.append(metric)
    return result


@transaction.atomic
def metric_create(
    *, code: str, name: str, source: str, unit: str = MetricUnit.MONEY, name_zh: str = "", filters=None, actor
) -> Metric:
    """An admin-defined metric: a built-in source narrowed by filters (e.g. one product line, tier A)."""
    if not (actor.is_superuser or actor.role == Role.ADMIN):
        raise ValidationError(_("Only an admin can define metrics."))
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(METRIC_FILTER_KEYS))
    if unknown:
        raise ValidationError(
            {
                "filters": _("Unknown filters: %(keys)s. Use %(allowed)s.")
                % {"keys": ", ".join(unknown), "allowed": ", ".join(METRIC_FILTER_KEYS)}
            }
        )
    lookups = {"product_line": ProductLine, "product": Product, "region": Region}
    for key, model in lookups.items():
        if key in filters and not model.objects.filter(pk=filters[key]).exists():
            raise ValidationError(
                {"filters": _("%(key)s %(value)s does not exist.") % {"key": key, "value": filters[key]}}
            )
    if "segment" in filters and filters["segment"] not in Segment.values:
        raise ValidationError({"filters": _("The segment must be “existing” or “new”.")})
    metric = Metric(code=code, name=name, name_zh=name_zh, unit=unit, source=source, filters=filters)
    metric.full_clean()
    metric.save()
    audit(actor=actor, action="metric.create", obj=metric, changes={"code": [None, code], "filters": [None, filters]})
    return metric


# --- permissions and small checks --------------------------------------------------------


def _is_top(actor) -> bool:
    """Directors and admins: the company-level people."""
    return bool(actor is not None and (actor.is_superuser or actor.role in (Role.DIRECTOR, Role.ADMIN)))


def _check_manager(actor) -> None:
    if actor is None or not actor.is_authenticated or not actor.is_manager_or_above:
        raise ValidationError(_("Only managers, directors and admins can change targets."))


def _check_scope(actor, node: TargetNode) -> None:
    """The node must lie inside the actor's regions (company-level nodes: the 'all' scope only)."""
    if node.region_id is None:
        if actor.effective_scope != DataScope.ALL:
            raise ValidationError(
                _("“%(target)s” is a company-level target; only a director can change it.") % {"target": node.label}
            )
    elif not visible_regions(actor).filter(pk=node.region_id).exists():
        raise ValidationError(_("“%(target)s” is outside your regions.") % {"target": node.label})


def _check_not_own(actor, node: TargetNode) -> None:
    if node.owner_id == actor.pk and not (node.parent_id is None and _is_top(actor)):
        raise ValidationError(
            _("“%(target)s” is your own target; your manager has to change it.") % {"target": node.label}
        )


def _check_draft(plan: TargetPlan) -> None:
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(
            _("The plan is %(status)s; its targets change only through an adjustment.")
            % {"status": plan.get_status_display().lower()}
        )


def _check_amount(value, places: int, *, field: str = "amount") -> Decimal:
    if value is None or value == "":
        raise ValidationError({field: _("Enter an amount.")})
    try:
        amount = to_decimal(value, field=field)
        allocation.to_units(amount, places)
    except (ArithmeticError, ValueError, TypeError):
        if places == 0:
            raise ValidationError({field: _("%(value)s is not a whole number.") % {"value": value}})
        raise ValidationError({field: _("%(value)s is not an amount with at most two decimals.") % {"value": value}})
    if amount < 0:
        raise ValidationError({field: _("The amount cannot be negative.")})
    return _q2(amount)


def _q2(amount: Decimal) -> Decimal:
    """Amounts are stored with cents; counts are whole numbers written as 12.00."""
    return amount.quantize(CENT)


def _lock(node: TargetNode, expected_version: int | None) -> TargetNode:
    """Re-read and lock the node; with `expected_version`, claim it only if nobody changed it meanwhile."""
    fresh = (
        TargetNode.objects.select_for_update(of=("self",))
        .select_related("plan", "plan__metric", "region")
        .get(pk=node.pk)
    )
    if expected_version is not None:
        claimed = TargetNode.objects.filter(pk=node.pk, version=expected_version).update(
            version=expected_version + 1, updated_at=timezone.now()
        )
        if not claimed:
            raise ConflictError(_("Someone else changed this target since you opened it. Reload and try again."))
        fresh.version = expected_version + 1
    return fresh


def _bump(node: TargetNode, *fields: str) -> None:
    """Save `fields` and move the version on (nodes are saved only through here or bulk updates)."""
    node.version = F("version") + 1
    node.save(update_fields=[*fields, "version", "updated_at"])
    node.refresh_from_db(fields=["version"])


def _fiscal_start() -> int:
    return CompanySettings.load().fiscal_year_start_month


def _ancestor_paths(path: str) -> list[str]:
    return [path[:i] for i in range(PATH_STEP, len(path), PATH_STEP)]


# --- plans -------------------------------------------------------------------------------


@transaction.atomic
def plan_create(*, metric: Metric, period_key: str, total, owner: User, name: str = "", actor) -> TargetPlan:
    """A plan for one metric and one fiscal year or quarter; its root node holds the total."""
    if not _is_top(actor):
        raise ValidationError(_("Only a director or an admin can create a target plan."))
    if not metric.is_active:
        raise ValidationError({"metric": _("The metric %(metric)s is not active.") % {"metric": metric}})
    try:
        period = periods.parse_key(period_key.strip(), _fiscal_start())
    except ValueError:
        raise ValidationError(
            {"period_key": _("“%(key)s” is not a period such as FY2027 or FY2027-Q2.") % {"key": period_key}}
        )
    if period.kind not in PlanPeriodKind.values:
        raise ValidationError({"period_key": _("A plan covers a fiscal year or a quarter.")})
    total = _check_amount(total, metric.places, field="total")
    if not owner.is_active or not owner.is_manager_or_above:
        raise ValidationError({"owner": _("A plan is owned by a director or a manager.")})
    if TargetPlan.objects.filter(metric=metric, period_key=period.key).exists():
        raise ValidationError(
            {
                "period_key": _("There is already a %(metric)s plan for %(period)s.")
                % {"metric": metric, "period": period.key}
            }
        )
    plan = TargetPlan(
        metric=metric,
        name=(name or "").strip() or f"{metric.display_name} {period.key}",
        period_kind=period.kind,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        total=total,
        owner=owner,
        created_by=actor,
    )
    plan.full_clean()
    plan.save()
    TargetNode.objects.create(
        plan=plan,
        parent=None,
        path="0001.",
        depth=0,
        period_kind=period.kind,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        amount=total,
        owner=owner,
        deadline=period.end,
    )
    audit(
        actor=actor,
        action="target_plan.create",
        obj=plan,
        changes={"metric": [None, metric.code], "period": [None, period.key], "total": [None, str(total)]},
    )
    return plan


@transaction.atomic
def plan_submit(*, plan: TargetPlan, actor) -> TargetPlan:
    plan = TargetPlan.objects.select_for_update().get(pk=plan.pk)
    if not (_is_top(actor) or actor.pk in (plan.owner_id, plan.created_by_id)):
        raise ValidationError(_("Only the plan's owner or a director can submit it."))
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(_("Only a draft plan can be submitted."))
    plan.status = PlanStatus.SUBMITTED
    plan.submitted_at = timezone.now()
    plan.save(update_fields=["status", "submitted_at"])
    audit(actor=actor, action="target_plan.submit", obj=plan, changes={"status": [PlanStatus.DRAFT, plan.status]})
    return plan


@transaction.atomic
def plan_return(*, plan: TargetPlan, reason: str, actor) -> TargetPlan:
    """Send a submitted plan back to draft so it can be changed."""
    plan = TargetPlan.objects.select_for_update().get(pk=plan.pk)
    if not _is_top(actor):
        raise ValidationError(_("Only a director or an admin can send a plan back."))
    if plan.status != PlanStatus.SUBMITTED:
        raise ValidationError(_("Only a submitted plan can be sent back to draft."))
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say what has to change.")})
    plan.status = PlanStatus.DRAFT
    plan.save(update_fields=["status"])
    audit(
        actor=actor,
        action="target_plan.return",
        obj=plan,
        changes={"status": [PlanStatus.SUBMITTED, PlanStatus.DRAFT], "reason": [None, reason.strip()]},
    )
    return plan


@transaction.atomic
def plan_approve(*, plan: TargetPlan, actor) -> TargetPlan:
    """Lock the plan: refused while a leaf lacks 3定; writes version 1 of every node in one statement."""
    plan = TargetPlan.objects.select_for_update().get(pk=plan.pk)
    if not _is_top(actor):
        raise ValidationError(_("Only a director or an admin can approve a target plan."))
    if plan.status != PlanStatus.SUBMITTED:
        raise ValidationError(_("Only a submitted plan can be approved."))
    incomplete = incomplete_leaves(plan)
    count = incomplete.count()
    if count:
        shown = "; ".join(n.label for n in incomplete[:20])
        raise ValidationError(
            ngettext(
                "%(count)d target has no owner or no period: %(targets)s.",
                "%(count)d targets have no owner or no period: %(targets)s.",
                count,
            )
            % {"count": count, "targets": shown},
            code="incomplete",
        )
    unbalanced = list(unbalanced_nodes(plan)[:5])
    if unbalanced:  # Only possible after a bug or a manual database edit; never lock a plan that does not add up.
        raise ValidationError(
            _("These targets do not add up to their parts: %(targets)s.")
            % {"targets": "; ".join(n.label for n in unbalanced)}
        )
    _write_version_one(plan)
    plan.status = PlanStatus.APPROVED
    plan.approved_by = actor
    plan.approved_at = timezone.now()
    plan.current_version = 1
    plan.save(update_fields=["status", "approved_by", "approved_at", "current_version"])
    audit(
        actor=actor,
        action="target_plan.approve",
        obj=plan,
        changes={"status": [PlanStatus.SUBMITTED, PlanStatus.APPROVED], "version": [0, 1]},
    )
    return plan


def _write_version_one(plan: TargetPlan) -> None:
    """INSERT ... SELECT: version 1 of every node, set-based however large the tree."""
    amounts = TargetNodeAmount._meta
    nodes = TargetNode._meta
    qn = connection.ops.quote_name
    col = {f.name: qn(f.column) for f in amounts.concrete_fields}
    ncol = {f.name: qn(f.column) for f in nodes.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(amounts.db_table)} ({col['plan']}, {col['node']}, {col['amount']}, "
            f"{col['version_from']}, {col['version_to']}) "
            f"SELECT {ncol['plan']}, {ncol['id']}, {ncol['amount']}, 1, NULL FROM {qn(nodes.db_table)} "
            f"WHERE {ncol['plan']} = %s",
            [plan.pk],
        )


# --- dimension members -------------------------------------------------------------------


@dataclasses.dataclass
class Member:
    """One child a split would create: its key (pk, segment or period key), label and coordinates."""

    key: str
    label: str
    coords: dict
    manager_id: int | None = None
    period: periods.Period | None = None


@dataclasses.dataclass
class ProposedChild:
    key: str
    label: str
    amount: Decimal
    weight: Decimal | None
    owner_id: int | None
    deadline: date | None
    coords: dict
    committed_amount: Decimal | None = None
    node_id: int | None = None


@dataclasses.dataclass
class SplitPreview:
    node: TargetNode
    dimension: str
    method: str
    children: list[ProposedChild]
    warnings: list[str]
    # Bottom-up only: what was handed down, what the people below committed, and the difference.
    top_down: Decimal | None = None
    bottom_up: Decimal | None = None
    gap: Decimal | None = None


@dataclasses.dataclass
class SplitResult:
    node: TargetNode
    children: list[TargetNode]
    warnings: list[str]


@dataclasses.dataclass
class LeavesSplitResult:
    node: TargetNode
    leaves: int
    created: int
    warnings: list[str]


COORD_FIELDS = ("region_id", "product_line_id", "product_id", "rep_id", "segment")


def _node_period(node: TargetNode, start_month: int) -> periods.Period:
    parsed = periods.parse_key(node.period_key, start_month)
    return periods.Period(node.period_start, node.period_end, node.period_kind, parsed.fiscal_year, parsed.number)


def _dimension_error(node: TargetNode, dimension: str) -> str | None:
    if dimension in TIME_DIMENSIONS:
        if TIME_ORDER.index(dimension) <= TIME_ORDER.index(node.period_kind):
            return _("“%(target)s” is already a %(kind)s target; it can only be split into shorter periods.") % {
                "target": node.label,
                "kind": node.get_period_kind_display().lower(),
            }
        return None
    if dimension == Dimension.REGION:
        return _("A rep's target cannot be split by region.") if node.rep_id else None
    fixed = {
        Dimension.PRODUCT_LINE: node.product_line_id or node.product_id,
        Dimension.PRODUCT: node.product_id,
        Dimension.REP: node.rep_id,
        Dimension.SEGMENT: node.segment,
    }
    if dimension not in fixed:
        return _("Unknown dimension “%(dimension)s”.") % {"dimension": dimension}
    if fixed[dimension]:
        return _("“%(target)s” is already for one %(dimension)s; split it along another dimension.") % {
            "target": node.label,
            "dimension": Dimension(dimension).label.lower(),
        }
    return None


def _user_label(row: dict) -> str:
    return f"{row['first_name']} {row['last_name']}".strip() or row["username"]


def _members_batch(nodes: list[TargetNode], dimension: str, regions: dict, start_month: int) -> list[list[Member]]:
    """The children each node would get along `dimension`, with one query for all nodes."""
    if dimension == Dimension.REGION:
        parent_ids = {n.region_id for n in nodes if n.region_id}
        rows = list(
            Region.objects.filter(Q(parent_id__in=parent_ids) | Q(parent__isnull=True) | Q(parent__parent__isnull=True))
            .order_by("path")
            .values("id", "name", "parent_id", "manager_id")
        )
        tops = [r for r in rows if r["parent_id"] is None]
        top_ids = {tops[0]["id"]} if len(tops) == 1 else {None}  # one company region: its areas are the top level
        by_parent = defaultdict(list)
        for r in rows:
            by_parent[r["parent_id"]].append(r)
        result = []
        for node in nodes:
            if node.region_id:
                found = by_parent.get(node.region_id, [])
            else:
                found = [r for pid in top_ids for r in by_parent.get(pid, [])]
            result.append(
                [Member(str(r["id"]), r["name"], {"region_id": r["id"]}, manager_id=r["manager_id"]) for r in found]
            )
        return result
    if dimension == Dimension.PRODUCT_LINE:
        lines = [Member(str(pl.pk), pl.name, {"product_line_id": pl.pk}) for pl in ProductLine.objects.order_by("name")]
        return [lines for _node in nodes]
    if dimension == Dimension.PRODUCT:
        by_line = defaultdict(list)
        everything = []
        for p in Product.objects.filter(is_active=True).order_by("name").values("id", "name", "line_id"):
            member = Member(str(p["id"]), p["name"], {"product_id": p["id"], "product_line_id": p["line_id"]})
            by_line[p["line_id"]].append(member)
            everything.append(member)
        return [by_line.get(n.product_line_id, []) if n.product_line_id else everything for n in nodes]
    if dimension == Dimension.REP:
        reps = list(
            User.objects.filter(is_active=True, role=Role.REP, region__isnull=False)
            .order_by("username")
            .values("id", "username", "first_name", "last_name", "region__path")
        )
        result = []
        for node in nodes:
            prefix = regions[node.region_id][0] if node.region_id else ""
            result.append(
                [
                    Member(str(r["id"]), _user_label(r), {"rep_id": r["id"]})
                    for r in reps
                    if r["region__path"].startswith(prefix)
                ]
            )
        return result
    if dimension == Dimension.SEGMENT:
        segments = [Member(value, str(label), {"segment": value}) for value, label in Segment.choices]
        return [segments for _node in nodes]
    # Time: the periods of the finer kind that tile the node's period.
    cache = {}
    result = []
    for node in nodes:
        cache_key = (node.period_key, node.period_start, node.period_end)
        if cache_key not in cache:
            parent = _node_period(node, start_month)
            cache[cache_key] = [
                Member(
                    p.key,
                    p.key,
                    {"period_kind": p.kind, "period_key": p.key, "period_start": p.start, "period_end": p.end},
                    period=p,
                )
                for p in periods.children(parent, dimension, start_month)
            ]
        result.append(cache[cache_key])
    return result


def _region_paths(nodes: list[TargetNode]) -> dict:
    ids = {n.region_id for n in nodes if n.region_id}
    return {r["id"]: (r["path"], r["depth"]) for r in Region.objects.filter(pk__in=ids).values("id", "path", "depth")}


# --- weights -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Facts:
    """Where a metric's facts live: the queryset and the lookups of its date, amount and coordinates."""

    qs: object
    total: object
    date: str
    rep: str
    customer: str | None
    product_line: str | None = None
    product: str | None = None

    @property
    def region(self) -> str:
        return f"{self.rep}__region"


def _lk(prefix: str | None, rest: str) -> str:
    return f"{prefix}__{rest}" if prefix else rest


def _facts(metric: Metric, *, with_products: bool, actor) -> _Facts | None:
    """The fact rows of a metric's source, or None when the source cannot be broken down that way.

    A fact counts for the region of its owner (the sales team), not the deal's booking region: the
    reps of a region node are the users of that region, so region and rep history must agree.

    Gross margin uses signed revenue as its history (deals carry no cost); key-product revenue
    counts the deal lines of key product lines.
    """
    source = metric.source
    with_products = with_products or source == MetricSource.KEY_PRODUCT_SHARE
    with_products = with_products or bool({"product_line", "product"} & set(metric.filters))
    if source in (MetricSource.WON_REVENUE, MetricSource.GROSS_MARGIN, MetricSource.KEY_PRODUCT_SHARE):
        if with_products:
            qs = OpportunityLine.objects.filter(
                scope_q(actor, owner="opportunity__owner", region="opportunity__region"),
                opportunity__stage__is_won=True,
            )
            if source == MetricSource.KEY_PRODUCT_SHARE:
                qs = qs.filter(product_line__is_key=True)
            return _Facts(
                qs,
                Sum("amount_company"),
                "opportunity__closed_on",
                "opportunity__owner",
                "opportunity__customer",
                "product_line",
                "product",
            )
        return _Facts(
            Opportunity.objects.visible_to(actor).won(),
            Sum("amount_company"),
            "closed_on",
            "owner",
            "customer",
        )
    if with_products:
        return None
    if source == MetricSource.COLLECTIONS:
        return _Facts(
            Collection.objects.visible_to(actor),
            Sum("amount_company"),
            "received_on",
            "opportunity__owner",
            "opportunity__customer",
        )
    if source == MetricSource.NEW_CUSTOMERS:
        return _Facts(
            Customer.objects.visible_to(actor).filter(first_won_on__isnull=False),
            Count("pk"),
            "first_won_on",
            "owner",
            None,
        )
    return None


def _segment_expression(facts: _Facts, metric: Metric):
    if metric.source == MetricSource.NEW_CUSTOMERS:
        return Value(Segment.NEW, output_field=CharField())
    return Case(
        When(**{_lk(facts.customer, "first_won_on__lt"): F(facts.date)}, then=Value(Segment.EXISTING)),
        default=Value(Segment.NEW),
        output_field=CharField(),
    )


@lru_cache(maxsize=4096)  # a bulk split asks for the same few periods once per leaf
def _last_year(kind: str, start: date, end: date, key: str, start_month: int) -> tuple[date, date]:
    """The same period one fiscal year earlier (weeks: 52 weeks earlier, so weekdays line up)."""
    if kind == periods.WEEK:
        return start - timedelta(weeks=52), end - timedelta(weeks=52)
    p = periods.parse_key(key, start_month)
    fy = p.fiscal_year - 1
    if kind == periods.YEAR:
        p = periods.year(fy, start_month)
    elif kind == periods.QUARTER:
        p = periods.quarter(fy, p.number, start_month)
    else:
        p = periods.month(fy, p.number, start_month)
    return p.start, p.end


def _bucket(date_field: str, ranges) -> Case:
    return Case(
        *[When(**{f"{date_field}__range": r}, then=Value(f"{r[0]}/{r[1]}")) for r in sorted(ranges)],
        default=None,
        output_field=CharField(),
    )


def _history_weights(*, metric, nodes, members, dimension, regions, start_month, actor) -> list[list[Decimal]] | None:
    """Each member's actual in the same period last year, for every node, in ONE aggregate query."""
    product_coords = any(n.product_line_id or n.product_id for n in nodes)
    facts = _facts(
        metric, with_products=dimension in (Dimension.PRODUCT_LINE, Dimension.PRODUCT) or product_coords, actor=actor
    )
    weights = [[Decimal(0)] * len(ms) for ms in members]
    if facts is None:
        return weights
    is_time = dimension in TIME_DIMENSIONS
    cell_ranges = [_last_year(n.period_kind, n.period_start, n.period_end, n.period_key, start_month) for n in nodes]
    child_ranges = (
        [
            [_last_year(m.period.kind, m.period.start, m.period.end, m.period.key, start_month) for m in ms]
            for ms in members
        ]
        if is_time
        else None
    )
    qs = facts.qs.filter(**{f"{facts.date}__range": (min(r[0] for r in cell_ranges), max(r[1] for r in cell_ranges))})
    qs = qs.annotate(seg=_segment_expression(facts, metric))
    filters = metric.filters or {}
    if "tier" in filters:
        if facts.customer is None:
            qs = qs.filter(tier=filters["tier"])
        else:
            qs = qs.filter(**{_lk(facts.customer, "tier"): filters["tier"]})
    if "segment" in filters:
        qs = qs.filter(seg=filters["segment"])
    if "product_line" in filters:
        qs = qs.filter(**{facts.product_line: filters["product_line"]})
    if "product" in filters:
        qs = qs.filter(**{facts.product: filters["product"]})
    if "region" in filters:
        path = Region.objects.filter(pk=filters["region"]).values_list("path", flat=True).first() or "-"
        qs = qs.filter(**{f"{facts.region}__path__startswith": path})

    # Coordinates shared by every node filter the facts; coordinates that vary are grouped by.
    lookup = {
        "region_id": f"{facts.region}__path",
        "rep_id": facts.rep,
        "product_line_id": facts.product_line,
        "product_id": facts.product,
        "segment": "seg",
    }
    varying = []
    for coord in COORD_FIELDS:
        values = {getattr(n, coord) for n in nodes}
        if len(values) > 1:
            varying.append(coord)
            continue
        value = values.pop()
        if not value:
            continue
        if coord == "region_id":
            qs = qs.filter(**{f"{facts.region}__path__startswith": regions[value][0]})
        else:
            qs = qs.filter(**{lookup[coord]: value})
    group = {lookup[c] for c in varying}
    dim_lookup = {
        Dimension.REGION: lookup["region_id"],
        Dimension.REP: lookup["rep_id"],
        Dimension.PRODUCT_LINE: lookup["product_line_id"],
        Dimension.PRODUCT: lookup["product_id"],
        Dimension.SEGMENT: "seg",
    }
    if is_time:
        qs = qs.annotate(child_bucket=_bucket(facts.date, {r for rs in child_ranges for r in rs}))
        group.add("child_bucket")
    else:
        group.add(dim_lookup[dimension])
    cells_vary_in_time = len(set(cell_ranges)) > 1
    if cells_vary_in_time:
        qs = qs.annotate(cell_bucket=_bucket(facts.date, set(cell_ranges)))
        group.add("cell_bucket")
    rows = qs.order_by().values(*group).annotate(value=facts.total)

    # Route every row to its node(s) and member.
    def cell_key(node, idx):
        key = tuple(getattr(node, c) for c in varying)
        if cells_vary_in_time:
            key += (f"{cell_ranges[idx][0]}/{cell_ranges[idx][1]}",)
        return key

    index = defaultdict(list)
    for i, node in enumerate(nodes):
        index[cell_key(node, i)].append(i)
    member_index = [{m.key: j for j, m in enumerate(ms)} for ms in members]
    child_index = [{f"{r[0]}/{r[1]}": j for j, r in enumerate(rs)} for rs in child_ranges] if is_time else None
    region_lookup = lookup["region_id"]
    for row in rows:
        value = row["value"]
        if not value:
            continue
        path_ids = [int(x) for x in (row.get(region_lookup) or "").strip("/").split("/") if x]
        candidates = [()]
        for coord in varying:
            if coord == "region_id":
                options = [*path_ids, None]
            elif coord == "segment":
                options = [row["seg"], ""]
            else:
                options = [row[lookup[coord]], None]
            candidates = [c + (o,) for c in candidates for o in options]
        if cells_vary_in_time:
            candidates = [c + (row["cell_bucket"],) for c in candidates]
        for candidate in candidates:
            for i in index.get(candidate, ()):
                if is_time:
                    j = child_index[i].get(row["child_bucket"])
                elif dimension == Dimension.REGION:
                    j = next((member_index[i][str(x)] for x in path_ids if str(x) in member_index[i]), None)
                else:
                    raw = row[dim_lookup[dimension]]
                    j = member_index[i].get(str(raw)) if raw is not None else None
                if j is not None:
                    weights[i][j] += Decimal(value)
    return weights


def _count_by_region_or_rep(qs, *, region_lookup: str, rep_lookup: str, dimension, nodes, members):
    """Count rows per member (regions: the member's whole subtree) with one aggregate query."""
    weights = [[Decimal(0)] * len(ms) for ms in members]
    if dimension == Dimension.REGION:
        counts = list(qs.order_by().values(region_lookup).annotate(n=Count("pk")))
        member_paths = dict(
            Region.objects.filter(pk__in={int(m.key) for ms in members for m in ms}).values_list("id", "path")
        )
        for i, ms in enumerate(members):
            for j, m in enumerate(ms):
                path = member_paths[int(m.key)]
                weights[i][j] = Decimal(sum(r["n"] for r in counts if (r[region_lookup] or "").startswith(path)))
    else:
        counts = {str(r[rep_lookup]): r["n"] for r in qs.order_by().values(rep_lookup).annotate(n=Count("pk"))}
        for i, ms in enumerate(members):
            for j, m in enumerate(ms):
                weights[i][j] = Decimal(counts.get(m.key, 0))
    return weights


def _weights_batch(
    *, plan, nodes, members, dimension, method, basis, weights, tiers, regions, start_month, actor
) -> tuple[list[list[Decimal]], list[str]]:
    warnings = []
    if method == SplitMethod.EQUAL:
        return [[Decimal(1)] * len(ms) for ms in members], warnings
    if method == SplitMethod.HISTORY:
        result = _history_weights(
            metric=plan.metric,
            nodes=nodes,
            members=members,
            dimension=dimension,
            regions=regions,
            start_month=start_month,
            actor=actor,
        )
        empty = [i for i, ws in enumerate(result) if not any(ws)]
        if empty:
            if len(nodes) == 1:
                warnings.append(
                    _("There is no history for “%(target)s” in the same period last year; it was split equally.")
                    % {"target": nodes[0].label}
                )
            else:
                warnings.append(
                    ngettext(
                        "%(count)d target has no history in the same period last year; it was split equally.",
                        "%(count)d targets have no history in the same period last year; they were split equally.",
                        len(empty),
                    )
                    % {"count": len(empty)}
                )
            for i in empty:
                result[i] = [Decimal(1)] * len(members[i])
        zero = sum(1 for i, ws in enumerate(result) if i not in empty for w in ws if not w)
        if zero:
            warnings.append(
                ngettext(
                    "%(count)d part had nothing last year and gets no target.",
                    "%(count)d parts had nothing last year and get no target.",
                    zero,
                )
                % {"count": zero}
            )
        return result, warnings
    if method != SplitMethod.WEIGHTS:
        raise ValidationError({"method": _("Unknown split method “%(method)s”.") % {"method": method}})
    basis = basis or WeightBasis.MANUAL
    if basis in (WeightBasis.MANUAL, WeightBasis.MARKET_POTENTIAL):
        if not weights:
            raise ValidationError({"weights": _("Give a weight for each part.")})
        given = {}
        for key, value in weights.items():
            try:
                given[str(key)] = Decimal(value)
            except (ArithmeticError, ValueError, TypeError):
                raise ValidationError({"weights": _("The weight %(value)s is not a number.") % {"value": value}})
            if not given[str(key)].is_finite() or given[str(key)] < 0:
                raise ValidationError({"weights": _("Weights cannot be negative.")})
        missing = {m.label for ms in members for m in ms if m.key not in given}
        if missing:
            warnings.append(
                _("No weight given for %(parts)s; they get no target.") % {"parts": ", ".join(sorted(missing)[:20])}
            )
        return [[given.get(m.key, Decimal(0)) for m in ms] for ms in members], warnings
    if basis == WeightBasis.DAYS:
        if dimension not in TIME_DIMENSIONS:
            raise ValidationError({"basis": _("Days in period only weigh a split by time.")})
        return [[Decimal(m.period.days) for m in ms] for ms in members], warnings
    if basis == WeightBasis.HEADCOUNT:
        if dimension == Dimension.REP:
            return [[Decimal(1)] * len(ms) for ms in members], warnings
        if dimension != Dimension.REGION:
            raise ValidationError({"basis": _("Headcount weighs a split by region or by rep.")})
        qs = visible_users(actor).filter(role=Role.REP, is_active=True)
        return (
            _count_by_region_or_rep(
                qs, region_lookup="region__path", rep_lookup="pk", dimension=dimension, nodes=nodes, members=members
            ),
            warnings,
        )
    if basis == WeightBasis.CUSTOMERS:
        if dimension not in (Dimension.REGION, Dimension.REP):
            raise ValidationError({"basis": _("Customer counts weigh a split by region or by rep.")})
        qs = Customer.objects.visible_to(actor)
        if tiers:
            qs = qs.filter(tier__in=list(tiers))
        return (
            _count_by_region_or_rep(
                qs,
                region_lookup="owner__region__path",
                rep_lookup="owner",
                dimension=dimension,
                nodes=nodes,
                members=members,
            ),
            warnings,
        )
    raise ValidationError({"basis": _("Unknown weight basis “%(basis)s”.") % {"basis": basis}})


# --- split -------------------------------------------------------------------------------


def _child_owner(node: TargetNode, dimension: str, member: Member) -> int | None:
    """Owner suggestion: the region's manager, the rep, otherwise the parent's owner."""
    if dimension == Dimension.REGION:
        return member.manager_id
    if dimension == Dimension.REP:
        return int(member.key)
    return node.owner_id


def _child_coords(node: TargetNode, member: Member) -> dict:
    coords = {
        "region_id": node.region_id,
        "product_line_id": node.product_line_id,
        "product_id": node.product_id,
        "rep_id": node.rep_id,
        "segment": node.segment,
        "period_kind": node.period_kind,
        "period_key": node.period_key,
        "period_start": node.period_start,
        "period_end": node.period_end,
    }
    coords.update(member.coords)
    return coords


def _select_members(node: TargetNode, all_members: list[Member], members) -> list[Member]:
    if members is None:
        chosen = all_members
    else:
        wanted = [str(getattr(m, "pk", m)) for m in members]
        known = {m.key: m for m in all_members}
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise ValidationError(
                {
                    "members": _("%(keys)s cannot be part of “%(target)s”.")
                    % {"keys": ", ".join(unknown), "target": node.label}
                }
            )
        chosen = [known[k] for k in dict.fromkeys(wanted)]
    if not chosen:
        raise ValidationError(
            _("“%(target)s” has nothing to split into along this dimension.") % {"target": node.label}
        )
    if len(chosen) > MAX_CHILDREN:
        raise ValidationError(_("A split can have at most %(max)d parts.") % {"max": MAX_CHILDREN})
    return chosen


def _manual_amounts(node: TargetNode, members: list[Member], amounts: dict, places: int) -> list[Decimal]:
    if not amounts:
        raise ValidationError({"amounts": _("Enter the amount of each part.")})
    given = {str(getattr(k, "pk", k)): v for k, v in amounts.items()}
    unknown = set(given) - {m.key for m in members}
    if unknown:
        raise ValidationError(
            {"amounts": _("%(keys)s are not parts of this split.") % {"keys": ", ".join(sorted(unknown))}}
        )
    result = [_check_amount(given.get(m.key, 0), places, field="amounts") for m in members]
    left = allocation.remainder(node.amount, result)
    if left > 0:
        raise ValidationError(
            {
                "amounts": _("The parts must add up to %(total)s: %(left)s is still unallocated.")
                % {"total": node.amount, "left": left}
            }
        )
    if left < 0:
        raise ValidationError(
            {
                "amounts": _("The parts must add up to %(total)s: they are %(over)s too much.")
                % {"total": node.amount, "over": -left}
            }
        )
    return result


def _preview(*, node, dimension, method, members, weights, amounts, basis, tiers, actor) -> SplitPreview:
    plan = node.plan
    places = plan.metric.places
    if method == SplitMethod.BOTTOM_UP:
        return _preview_bottom_up(node=node, dimension=dimension, places=places)
    error = _dimension_error(node, dimension)
    if error:
        raise ValidationError({"dimension": error})
    start_month = _fiscal_start()
    regions = _region_paths([node])
    chosen = _select_members(node, _members_batch([node], dimension, regions, start_month)[0], members)
    warnings = []
    if method == SplitMethod.MANUAL:
        parts = _manual_amounts(node, chosen, amounts, places)
        used = [None] * len(chosen)
    else:
        (used,), warnings = _weights_batch(
            plan=plan,
            nodes=[node],
            members=[chosen],
            dimension=dimension,
            method=method,
            basis=basis,
            weights=weights,
            tiers=tiers,
            regions=regions,
            start_month=start_month,
            actor=actor,
        )
        parts = [_q2(p) for p in allocation.largest_remainder(node.amount, used, places=places)]
    children = [
        ProposedChild(
            key=m.key,
            label=m.label,
            amount=amount,
            weight=w,
            owner_id=_child_owner(node, dimension, m),
            deadline=m.period.end if m.period else node.deadline,
            coords=_child_coords(node, m),
        )
        for m, amount, w in zip(chosen, parts, used, strict=True)
    ]
    if dimension == Dimension.REGION and any(c.owner_id is None for c in children):
        names = ", ".join(c.label for c in children if c.owner_id is None)
        warnings.append(_("No manager to own %(regions)s; assign an owner before approval.") % {"regions": names})
    return SplitPreview(node=node, dimension=dimension, method=method, children=children, warnings=warnings)


def _preview_bottom_up(*, node, dimension, places) -> SplitPreview:
    """Reconcile with the commitments of the existing children: they get what they committed, scaled
    to the amount handed down when the two differ (the gap is reported)."""
    if not node.split_dimension or dimension != node.split_dimension:
        raise ValidationError(
            {
                "method": _(
                    "Bottom-up reconciles an existing split: split “%(target)s” first so its owners can commit."
                )
                % {"target": node.label}
            }
        )
    kids = list(node.children.order_by("path"))
    missing = [k for k in kids if k.committed_amount is None]
    bases = [k.committed_amount if k.committed_amount is not None else k.amount for k in kids]
    bottom_up = sum(bases, Decimal(0))
    warnings = []
    if missing:
        warnings.append(
            _("No commitment yet from %(targets)s; their current targets are used.")
            % {"targets": ", ".join(k.label for k in missing[:20])}
        )
    gap = bottom_up - node.amount
    if gap:
        warnings.append(
            _(
                "Commitments total %(bottom_up)s, %(gap)s %(direction)s the %(top_down)s handed down; "
                "they are scaled to the target."
            )
            % {
                "bottom_up": bottom_up,
                "gap": abs(gap),
                "direction": _("above") if gap > 0 else _("below"),
                "top_down": node.amount,
            }
        )
        parts = [_q2(p) for p in allocation.largest_remainder(node.amount, bases, places=places)]
    else:
        parts = bases
    children = [
        ProposedChild(
            key=str(k.pk),
            label=k.label,
            amount=amount,
            weight=base,
            owner_id=k.owner_id,
            deadline=k.deadline,
            coords={
                f: getattr(k, f) for f in (*COORD_FIELDS, "period_kind", "period_key", "period_start", "period_end")
            },
            committed_amount=k.committed_amount,
            node_id=k.pk,
        )
        for k, amount, base in zip(kids, parts, bases, strict=True)
    ]
    return SplitPreview(
        node=node,
        dimension=dimension,
        method=SplitMethod.BOTTOM_UP,
        children=children,
        warnings=warnings,
        top_down=node.amount,
        bottom_up=bottom_up,
        gap=gap,
    )


def _check_can_split(actor, node: TargetNode) -> None:
    _check_manager(actor)
    _check_draft(node.plan)
    _check_scope(actor, node)


def target_split_preview(
    *, node, dimension, method, members=None, weights=None, amounts=None, basis=None, tiers=None, actor
) -> SplitPreview:
    """The children a split would create (coordinates, amount, owner suggestion, deadline) and warnings.

    Writes nothing. `members` limits the split to some of the dimension's members (keys or objects);
    `weights` ({key: weight}) and `basis` drive the weights method; `amounts` ({key: amount}) the manual one.
    """
    node = TargetNode.objects.select_related("plan", "plan__metric", "region").get(pk=node.pk)
    _check_can_split(actor, node)
    return _preview(
        node=node,
        dimension=dimension,
        method=method,
        members=members,
        weights=weights,
        amounts=amounts,
        basis=basis,
        tiers=tiers,
        actor=actor,
    )


NODE_COLUMNS = (
    "plan_id",
    "parent_id",
    "path",
    "depth",
    "region_id",
    "product_line_id",
    "product_id",
    "rep_id",
    "segment",
    "period_kind",
    "period_key",
    "period_start",
    "period_end",
    "split_dimension",
    "split_method",
    "amount",
    "owner_id",
    "deadline",
    "committed_amount",
    "version",
    "updated_at",
)


def _node_row(parent: TargetNode, index: int, coords: dict, amount, owner_id, deadline, now) -> tuple:
    return (
        parent.plan_id,
        parent.pk,
        f"{parent.path}{index:04d}.",
        parent.depth + 1,
        coords["region_id"],
        coords["product_line_id"],
        coords["product_id"],
        coords["rep_id"],
        coords["segment"],
        coords["period_kind"],
        coords["period_key"],
        coords["period_start"],
        coords["period_end"],
        "",
        "",
        amount,
        owner_id,
        deadline,
        None,
        1,
        now,
    )


def _insert_nodes(rows: list[tuple]) -> None:
    """Insert many nodes: COPY on PostgreSQL (60,000 rows in a fraction of a second), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        meta = TargetNode._meta
        qn = connection.ops.quote_name
        columns = {f.attname: f.column for f in meta.concrete_fields}
        sql = f"COPY {qn(meta.db_table)} ({', '.join(qn(columns[c]) for c in NODE_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    TargetNode.objects.bulk_create([TargetNode(**dict(zip(NODE_COLUMNS, row, strict=True))) for row in rows])


def _delete_descendants(node: TargetNode) -> int:
    """Remove a draft node's subtree (its action plans go with it); the node itself stays."""
    subtree = TargetNode.objects.filter(plan_id=node.plan_id, path__startswith=node.path).exclude(pk=node.pk)
    ActionPlan.objects.filter(node__in=subtree).delete()
    meta = TargetNode._meta
    qn = connection.ops.quote_name
    columns = {f.attname: qn(f.column) for f in meta.concrete_fields}
    # One statement: the parent links are deferred constraints, the whole subtree goes at once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {qn(meta.db_table)} WHERE {columns['plan_id']} = %s AND {columns['path']} LIKE %s "
            f"AND {columns['id']} <> %s",
            [node.plan_id, node.path + "%", node.pk],
        )
        return cursor.rowcount


@transaction.atomic
def target_split(
    *,
    node,
    dimension,
    method,
    members=None,
    weights=None,
    amounts=None,
    basis=None,
    tiers=None,
    expected_version=None,
    actor,
) -> SplitResult:
    """Split a node along one dimension; the children sum exactly to the node.

    Existing children are replaced (the plan is a draft). `method="bottom_up"` instead reconciles
    the existing children with their owners' commitments, keeping them and their subtrees.
    """
    node = _lock(node, expected_version)
    _check_can_split(actor, node)
    preview = _preview(
        node=node,
        dimension=dimension,
        method=method,
        members=members,
        weights=weights,
        amounts=amounts,
        basis=basis,
        tiers=tiers,
        actor=actor,
    )
    old = {"dimension": node.split_dimension, "method": node.split_method}
    if method == SplitMethod.BOTTOM_UP:
        changed = {c.node_id: c.amount for c in preview.children}
        _apply_amounts(node.plan, _rescale_subtrees(node.plan, changed, node.plan.metric.places, only_changed=True))
        node.split_method = SplitMethod.BOTTOM_UP
        _bump(node, "split_method")
    else:
        _delete_descendants(node)
        now = timezone.now()
        _insert_nodes(
            [
                _node_row(node, i, c.coords, c.amount, c.owner_id, c.deadline, now)
                for i, c in enumerate(preview.children, start=1)
            ]
        )
        node.split_dimension, node.split_method = dimension, method
        _bump(node, "split_dimension", "split_method")
    children = list(node.children.select_related("region", "rep", "owner", "product_line", "product").order_by("path"))
    changes = {
        "split": [old["dimension"] or None, dimension],
        "method": [old["method"] or None, method],
        "children": [None, len(children)],
    }
    if len(children) <= AUDIT_CHILDREN_LIMIT:
        changes["amounts"] = [None, {c.label: str(c.amount) for c in children}]
    if preview.gap:
        changes["gap"] = [None, str(preview.gap)]
    audit(actor=actor, action="target.split", obj=node, changes=changes)
    return SplitResult(node=node, children=children, warnings=preview.warnings)


@transaction.atomic
def target_split_leaves(*, node, dimension, method, basis=None, weights=None, tiers=None, actor) -> LeavesSplitResult:
    """Split every leaf under `node` along `dimension` in one go (e.g. 5,000 rep targets into 12 months).

    Set-based: one query for the leaves, one for the members, one aggregate for history or counts,
    one UPDATE for the leaves and one bulk insert (COPY on PostgreSQL) for the new leaves.
    Manual amounts and bottom-up need a node at a time (`target_split`).
    """
    if method in (SplitMethod.MANUAL, SplitMethod.BOTTOM_UP):
        raise ValidationError({"method": _("Manual and bottom-up splits are made one target at a time.")})
    node = _lock(node, None)
    _check_can_split(actor, node)
    plan = node.plan
    places = plan.metric.places
    leaves = list(
        TargetNode.objects.filter(plan=plan, path__startswith=node.path, split_dimension="")
        .select_for_update()
        .only(
            "id",
            "plan_id",
            "path",
            "depth",
            "amount",
            "owner_id",
            "deadline",
            "period_kind",
            "period_key",
            "period_start",
            "period_end",
            *COORD_FIELDS,
        )
        .order_by("path")
    )
    bad = [leaf for leaf in leaves if _dimension_error(leaf, dimension)]
    if bad:
        raise ValidationError(
            {
                "dimension": ngettext(
                    "%(count)d target cannot be split this way: %(error)s",
                    "%(count)d targets cannot be split this way, e.g. %(error)s",
                    len(bad),
                )
                % {"count": len(bad), "error": _dimension_error(bad[0], dimension)}
            }
        )
    start_month = _fiscal_start()
    regions = _region_paths(leaves)
    members = _members_batch(leaves, dimension, regions, start_month)
    empty = [leaf for leaf, ms in zip(leaves, members, strict=True) if not ms]
    if empty:
        raise ValidationError(
            _("%(target)s has nothing to split into along this dimension.") % {"target": empty[0].label}
        )
    used, warnings = _weights_batch(
        plan=plan,
        nodes=leaves,
        members=members,
        dimension=dimension,
        method=method,
        basis=basis,
        weights=weights,
        tiers=tiers,
        regions=regions,
        start_month=start_month,
        actor=actor,
    )
    now = timezone.now()
    rows = []
    scaled = {}  # the same weights recur for every leaf (months, equal): scale them to integers once
    for leaf, ms, ws in zip(leaves, members, used, strict=True):
        key = tuple(ws)
        if key not in scaled:
            scaled[key] = allocation.integer_weights(key)
        units = allocation.largest_remainder_units(allocation.to_units(leaf.amount, places), scaled[key])
        for i, (m, u) in enumerate(zip(ms, units, strict=True), start=1):
            rows.append(
                _node_row(
                    leaf,
                    i,
                    _child_coords(leaf, m),
                    allocation.from_units(u, places),
                    _child_owner(leaf, dimension, m),
                    m.period.end if m.period else leaf.deadline,
                    now,
                )
            )
    TargetNode.objects.filter(pk__in=[leaf.pk for leaf in leaves]).update(
        split_dimension=dimension, split_method=method, version=F("version") + 1, updated_at=now
    )
    _insert_nodes(rows)
    audit(
        actor=actor,
        action="target.split_leaves",
        obj=node,
        changes={
            "split": [None, dimension],
            "method": [None, method],
            "leaves": [None, len(leaves)],
            "created": [None, len(rows)],
        },
    )
    return LeavesSplitResult(node=node, leaves=len(leaves), created=len(rows), warnings=warnings)


# --- amounts: rescaling subtrees ---------------------------------------------------------


def _rescale_subtrees(plan, new_amounts: dict, places: int, *, only_changed: bool = False) -> dict:
    """{node id: (old, new)} for the given nodes and every descendant, rescaled in proportion.

    Descendants are loaded with one query; each parent's children are re-split with the largest
    remainder method over their current amounts, so every level keeps adding up exactly.
    """
    if not new_amounts:
        return {}
    roots = list(TargetNode.objects.filter(pk__in=list(new_amounts)).values("id", "path", "amount"))
    result = {r["id"]: (r["amount"], new_amounts[r["id"]]) for r in roots}
    q = reduce(or_, [Q(path__startswith=r["path"]) for r in roots])
    rows = TargetNode.objects.filter(q, plan=plan).exclude(pk__in=list(new_amounts)).values("id", "parent_id", "amount")
    children = defaultdict(list)
    for r in rows.order_by("path"):
        children[r["parent_id"]].append(r)
    queue = [r["id"] for r in roots if r["amount"] != new_amounts[r["id"]]]
    while queue:
        pid = queue.pop()
        kids = children.get(pid)
        if not kids:
            continue
        parts = allocation.rescale(result[pid][1], [k["amount"] for k in kids], places=places)
        for kid, part in zip(kids, parts, strict=True):
            if part != kid["amount"]:
                result[kid["id"]] = (kid["amount"], _q2(part))
                queue.append(kid["id"])
    if only_changed:
        result = {k: v for k, v in result.items() if v[0] != v[1]}
    return result


# Above this many changed nodes, PostgreSQL gets them through a temporary table (one UPDATE).
BULK_AMOUNTS = 500


def _apply_amounts(plan, changes: dict, *, version: int | None = None) -> None:
    """Write new amounts (and, for an approved plan, the new version's rows of the temporal table)."""
    changes = {k: v for k, v in changes.items() if v[0] != v[1]}
    if not changes:
        return
    now = timezone.now()
    if connection.vendor == "postgresql" and len(changes) > BULK_AMOUNTS:
        _apply_amounts_copy(plan, changes, version=version, now=now)
        return
    TargetNode.objects.bulk_update(
        [TargetNode(pk=pk, amount=new, updated_at=now) for pk, (_old, new) in changes.items()],
        ["amount", "updated_at"],
        batch_size=1000,
    )
    TargetNode.objects.filter(pk__in=list(changes)).update(version=F("version") + 1)
    if version is not None:
        TargetNodeAmount.objects.filter(node_id__in=list(changes), version_to__isnull=True).update(version_to=version)
        TargetNodeAmount.objects.bulk_create(
            [
                TargetNodeAmount(plan=plan, node_id=pk, amount=new, version_from=version)
                for pk, (_old, new) in changes.items()
            ],
            batch_size=1000,
        )


def _apply_amounts_copy(plan, changes: dict, *, version: int | None, now) -> None:
    """_apply_amounts for many nodes on PostgreSQL: COPY the new amounts into a temporary table, then
    one UPDATE (and, for a new version, one UPDATE closing the old rows and one INSERT ... SELECT)."""
    qn = connection.ops.quote_name
    nodes = TargetNode._meta
    amounts = TargetNodeAmount._meta
    n = {f.attname: qn(f.column) for f in nodes.concrete_fields}
    a = {f.attname: qn(f.column) for f in amounts.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE target_new_amounts (node_id bigint PRIMARY KEY, amount numeric(18, 2))")
        with cursor.cursor.copy("COPY target_new_amounts (node_id, amount) FROM STDIN") as copy:
            for pk, (_old, new) in changes.items():
                copy.write_row((pk, new))
        cursor.execute(
            f"UPDATE {qn(nodes.db_table)} AS node SET {n['amount']} = t.amount, "
            f"{n['version']} = node.{n['version']} + 1, {n['updated_at']} = %s "
            f"FROM target_new_amounts t WHERE node.{n['id']} = t.node_id",
            [now],
        )
        if version is not None:
            cursor.execute(
                f"UPDATE {qn(amounts.db_table)} AS a SET {a['version_to']} = %s FROM target_new_amounts t "
                f"WHERE a.{a['node_id']} = t.node_id AND a.{a['version_to']} IS NULL",
                [version],
            )
            cursor.execute(
                f"INSERT INTO {qn(amounts.db_table)} ({a['plan_id']}, {a['node_id']}, {a['amount']}, "
                f"{a['version_from']}, {a['version_to']}) SELECT %s, node_id, amount, %s, NULL FROM target_new_amounts",
                [plan.pk, version],
            )
        cursor.execute("DROP TABLE target_new_amounts")


# --- editing nodes -----------------------------------------------------------------------


@transaction.atomic
def node_update(
    *, node, amount=None, owner=None, deadline=None, expected_version: int, rebalance: bool = False, actor
) -> TargetNode:
    """Edit a draft node's amount, owner or deadline (a stale `expected_version` raises ConflictError).

    A new amount must keep the parent's sum: refused unless `rebalance=True`, in which case the
    siblings absorb the difference in proportion to their amounts. The root's amount is the plan
    total. The subtrees of every changed node are rescaled so all levels still add up.
    """
    node = _lock(node, expected_version)
    plan = node.plan
    _check_manager(actor)
    _check_draft(plan)
    _check_scope(actor, node)
    _check_not_own(actor, node)
    places = plan.metric.places
    changes = {}
    fields = []
    if owner is not None and owner.pk != node.owner_id:
        if not owner.is_active or not visible_users(actor).filter(pk=owner.pk).exists():
            raise ValidationError({"owner": _("You cannot make %(user)s responsible for a target.") % {"user": owner}})
        changes["owner"] = [str(node.owner) if node.owner_id else None, str(owner)]
        node.owner = owner
        fields.append("owner")
    if deadline is not None and deadline != node.deadline:
        if not node.period_start <= deadline <= node.period_end:
            raise ValidationError(
                {
                    "deadline": _("The deadline must fall within %(period)s (%(start)s to %(end)s).")
                    % {"period": node.period_key, "start": node.period_start, "end": node.period_end}
                }
            )
        changes["deadline"] = [str(node.deadline) if node.deadline else None, str(deadline)]
        node.deadline = deadline
        fields.append("deadline")
    if amount is not None:
        amount = _check_amount(amount, places)
    if amount is not None and amount != node.amount:
        new_amounts = {node.pk: amount}
        if node.parent_id is None:
            plan.total = amount
            plan.save(update_fields=["total"])
        else:
            siblings = list(
                TargetNode.objects.filter(parent_id=node.parent_id)
                .exclude(pk=node.pk)
                .select_related("region")
                .order_by("path")
            )
            delta = amount - node.amount
            if not rebalance:
                parent_amount = TargetNode.objects.values_list("amount", flat=True).get(pk=node.parent_id)
                raise ValidationError(
                    {
                        "amount": _(
                            "The parts must add up to %(total)s: this change would leave %(left)s %(what)s. "
                            "Re-split the parent with manual amounts, or let the other parts absorb the difference."
                        )
                        % {
                            "total": parent_amount,
                            "left": abs(delta),
                            "what": _("over-allocated") if delta > 0 else _("unallocated"),
                        }
                    }
                )
            if not siblings:
                raise ValidationError({"amount": _("There is no other part to absorb the difference.")})
            available = sum((s.amount for s in siblings), Decimal(0))
            if delta > available:
                raise ValidationError(
                    {"amount": _("The other parts only have %(available)s to give.") % {"available": available}}
                )
            for sibling in siblings:
                _check_scope(actor, sibling)
                _check_not_own(actor, sibling)
            parts = allocation.rescale(available - delta, [s.amount for s in siblings], places=places)
            for sibling, part in zip(siblings, parts, strict=True):
                new_amounts[sibling.pk] = _q2(part)
        rescaled = _rescale_subtrees(plan, new_amounts, places, only_changed=True)
        rescaled.pop(node.pk, None)
        _apply_amounts(plan, rescaled)
        changes["amount"] = [str(node.amount), str(amount)]
        if len(rescaled) <= AUDIT_CHILDREN_LIMIT:
            changes["rebalanced"] = [None, {str(k): [str(o), str(n)] for k, (o, n) in rescaled.items()}]
        node.amount = amount
        fields.append("amount")
    if not fields:
        return node
    node.save(update_fields=[*fields, "updated_at"])
    audit(actor=actor, action="target.update", obj=node, changes=changes)
    return node


@transaction.atomic
def node_commit(*, node, amount, actor) -> TargetNode:
    """Bottom-up commitment: the node's owner says what they commit to; nobody commits on their behalf."""
    node = _lock(node, None)
    if node.owner_id != actor.pk:
        raise ValidationError(_("Only the owner of “%(target)s” can commit to it.") % {"target": node.label})
    _check_draft(node.plan)
    amount = _check_amount(amount, node.plan.metric.places)
    old = node.committed_amount
    node.committed_amount = amount
    _bump(node, "committed_amount")
    audit(
        actor=actor,
        action="target.commit",
        obj=node,
        changes={"committed_amount": [str(old) if old is not None else None, str(amount)]},
    )
    return node


# --- adjustments (季度目标动态调整) ------------------------------------------------------


def _effective_changes(plan: TargetPlan, explicit: dict, places: int) -> dict:
    """The full change set of an adjustment: explicit nodes, their ancestors (by the deltas) and
    their rescaled subtrees. {node id: (old, new)}."""
    nodes = {n.pk: n for n in TargetNode.objects.filter(pk__in=list(explicit))}
    deltas = defaultdict(Decimal)
    for pk, new in explicit.items():
        for path in _ancestor_paths(nodes[pk].path):
            deltas[path] += new - nodes[pk].amount
    result = _rescale_subtrees(plan, explicit, places)
    for ancestor in TargetNode.objects.filter(plan=plan, path__in=list(deltas)).values("id", "path", "amount"):
        if deltas[ancestor["path"]]:
            result[ancestor["id"]] = (ancestor["amount"], ancestor["amount"] + deltas[ancestor["path"]])
    return {k: v for k, v in result.items() if v[0] != v[1]}


def _check_adjuster(actor, nodes) -> None:
    _check_manager(actor)
    for node in nodes:
        _check_scope(actor, node)
        _check_not_own(actor, node)


@transaction.atomic
def adjustment_propose(*, plan, kind, reason, changes, actor) -> AdjustmentRequest:
    """Propose new amounts for some nodes of an approved plan: `changes` = [{"node": node or id, "amount": new}].

    Each change moves the node's ancestors by the same difference and rescales its subtree. A
    reallocation keeps the plan total (the differences add up to zero); a total change does not.
    """
    plan = TargetPlan.objects.select_related("metric").get(pk=plan.pk)
    if plan.status != PlanStatus.APPROVED:
        raise ValidationError(_("Only an approved plan is adjusted; change a draft directly."))
    if kind not in AdjustmentKind.values:
        raise ValidationError({"kind": _("Choose a reallocation or a total change.")})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the adjustment.")})
    if not changes:
        raise ValidationError({"changes": _("Change at least one target.")})
    places = plan.metric.places
    wanted = {}
    for change in changes:
        pk = getattr(change["node"], "pk", change["node"])
        wanted[int(pk)] = _check_amount(change.get("amount"), places, field="changes")
    nodes = list(TargetNode.objects.filter(plan=plan, pk__in=list(wanted)).select_related("region", "rep", "owner"))
    if len(nodes) != len(wanted):
        raise ValidationError({"changes": _("Some targets are not part of this plan.")})
    _check_adjuster(actor, nodes)
    paths = sorted(n.path for n in nodes)
    for a, b in zip(paths, paths[1:], strict=False):
        if b.startswith(a):
            raise ValidationError({"changes": _("Change a target or its parts, not both.")})
    total_delta = sum((wanted[n.pk] - n.amount for n in nodes), Decimal(0))
    if not any(wanted[n.pk] != n.amount for n in nodes):
        raise ValidationError({"changes": _("The new amounts are the same as the current ones.")})
    if kind == AdjustmentKind.REALLOCATION and total_delta:
        raise ValidationError(
            {
                "changes": _(
                    "A reallocation keeps the plan total, but these changes add up to %(delta)s. "
                    "Balance them or propose a total change."
                )
                % {"delta": f"{total_delta:+}"}
            }
        )
    if kind == AdjustmentKind.TOTAL_CHANGE and not total_delta:
        raise ValidationError({"kind": _("These changes keep the plan total; propose a reallocation.")})
    adjustment = AdjustmentRequest.objects.create(
        plan=plan,
        kind=kind,
        reason=reason.strip(),
        changes=[{"node": n.pk, "label": n.label, "old": str(n.amount), "new": str(wanted[n.pk])} for n in nodes],
        proposer=actor,
        based_on_version=plan.current_version,
    )
    audit(
        actor=actor,
        action="target_adjustment.propose",
        obj=plan,
        changes={"adjustment": [None, adjustment.pk], "kind": [None, kind], "total_delta": [None, str(total_delta)]},
    )
    return adjustment


def _check_decider(adjustment: AdjustmentRequest, actor, *, approving: bool) -> list[TargetNode]:
    if adjustment.status != AdjustmentStatus.PENDING:
        raise ValidationError(
            _("This adjustment was already %(status)s.") % {"status": adjustment.get_status_display().lower()}
        )
    nodes = list(
        TargetNode.objects.filter(pk__in=[c["node"] for c in adjustment.changes]).select_related(
            "region", "rep", "owner"
        )
    )
    if approving:
        if actor.pk == adjustment.proposer_id:
            raise ValidationError(_("Someone other than the proposer has to approve an adjustment."))
        if adjustment.kind == AdjustmentKind.TOTAL_CHANGE and not _is_top(actor):
            raise ValidationError(_("A change of the plan total needs a director's approval."))
        _check_adjuster(actor, nodes)
    elif actor.pk != adjustment.proposer_id:
        _check_adjuster(actor, nodes)
    return nodes


@transaction.atomic
def adjustment_approve(*, adjustment, actor, note: str = "") -> AdjustmentRequest:
    """Approve: a new version of the plan; the changed nodes' old rows are closed, new ones opened."""
    adjustment = AdjustmentRequest.objects.select_for_update().get(pk=adjustment.pk)
    plan = TargetPlan.objects.select_for_update().select_related("metric").get(pk=adjustment.plan_id)
    _check_decider(adjustment, actor, approving=True)
    if plan.current_version != adjustment.based_on_version:
        raise ConflictError(
            _("The plan moved to version %(version)d since this adjustment was proposed; propose it again.")
            % {"version": plan.current_version}
        )
    explicit = {c["node"]: Decimal(c["new"]) for c in adjustment.changes}
    effective = _effective_changes(plan, explicit, plan.metric.places)
    version = plan.current_version + 1
    _apply_amounts(plan, effective, version=version)
    root_id = TargetNode.objects.filter(plan=plan, parent__isnull=True).values_list("id", flat=True).get()
    old_total = plan.total
    if root_id in effective:
        plan.total = effective[root_id][1]
    plan.current_version = version
    plan.save(update_fields=["total", "current_version"])
    adjustment.status = AdjustmentStatus.APPROVED
    adjustment.approver = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = (note or "").strip()
    adjustment.resulting_version = version
    adjustment.save(update_fields=["status", "approver", "decided_at", "decision_note", "resulting_version"])
    audit(
        actor=actor,
        action="target_adjustment.approve",
        obj=plan,
        changes={
            "adjustment": [None, adjustment.pk],
            "version": [version - 1, version],
            "total": [str(old_total), str(plan.total)],
            "nodes_changed": [None, len(effective)],
        },
    )
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment, actor, note: str) -> AdjustmentRequest:
    """Reject (or, by its proposer, withdraw) a pending adjustment; the plan does not change."""
    adjustment = AdjustmentRequest.objects.select_for_update().get(pk=adjustment.pk)
    _check_decider(adjustment, actor, approving=False)
    if not (note or "").strip():
        raise ValidationError({"note": _("Say why the adjustment is rejected.")})
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.approver = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = note.strip()
    adjustment.save(update_fields=["status", "approver", "decided_at", "decision_note"])
    audit(
        actor=actor,
        action="target_adjustment.reject",
        obj=adjustment.plan,
        changes={"adjustment": [None, adjustment.pk], "status": [AdjustmentStatus.PENDING, AdjustmentStatus.REJECTED]},
    )
    return adjustment


# --- action plans (行动计划) -------------------------------------------------------------


def _check_action_access(actor, node: TargetNode) -> None:
    """The target's owner or rep plans their own actions; managers plan within their scope."""
    if actor.pk in (node.owner_id, node.rep_id):
        return
    if not TargetNode.objects.visible_to(actor).filter(pk=node.pk).exists():
        raise ValidationError(_("“%(target)s” is not one of your targets.") % {"target": node.label})
    _check_manager(actor)


def _check_action_owner(actor, owner) -> None:
    if owner.pk != actor.pk and not visible_users(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot give actions to %(user)s.") % {"user": owner}})


@transaction.atomic
def action_plan_create(*, node, activity: str, owner=None, due_date: date, resources: str = "", actor) -> ActionPlan:
    node = TargetNode.objects.select_related("plan").get(pk=node.pk)
    _check_action_access(actor, node)
    owner = owner or actor
    _check_action_owner(actor, owner)
    if due_date is None or due_date > node.period_end:
        raise ValidationError(
            {
                "due_date": _("The action must be due by the end of the target's period (%(end)s).")
                % {"end": node.period_end}
            }
        )
    action = ActionPlan(
        node=node,
        activity=(activity or "").strip(),
        owner=owner,
        due_date=due_date,
        resources=(resources or "").strip(),
        created_by=actor,
    )
    action.full_clean()
    action.save()
    audit(
        actor=actor,
        action="action_plan.create",
        obj=node,
        changes={"action": [None, action.activity], "owner": [None, str(owner)], "due_date": [None, str(due_date)]},
    )
    return action


ACTION_EDITABLE = ("activity", "owner", "due_date", "resources", "status")


@transaction.atomic
def action_plan_update(*, action_plan, data: dict, actor) -> ActionPlan:
    action = ActionPlan.objects.select_for_update().select_related("node").get(pk=action_plan.pk)
    node = action.node
    if actor.pk != action.owner_id:
        _check_action_access(actor, node)
    data = {k: v for k, v in data.items() if k in ACTION_EDITABLE}
    if "owner" in data and data["owner"].pk != action.owner_id:
        _check_action_owner(actor, data["owner"])
    if "status" in data and data["status"] not in ActionStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if "due_date" in data and (data["due_date"] is None or data["due_date"] > node.period_end):
        raise ValidationError(
            {
                "due_date": _("The action must be due by the end of the target's period (%(end)s).")
                % {"end": node.period_end}
            }
        )
    changes = {}
    for field, new in data.items():
        old = getattr(action, field)
        if old != new:
            changes[field] = [str(old), str(new)]
            setattr(action, field, new)
    if not changes:
        return action
    action.full_clean()
    action.save(update_fields=[*changes, "updated_at"])
    audit(actor=actor, action="action_plan.update", obj=node, changes={"action": [None, action.pk], **changes})
    return action
