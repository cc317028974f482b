"""Attainment reads: the actual, weighted and open pipeline of target nodes from the facts, set-based.

Facts are matched to a node exactly as history weights match them (`targets.services.weights`): a
deal, collection or new customer counts for its owner and the owner's region (the rep's team), not
the deal's booking region; a fact's segment is "existing" when its customer had a won deal before
the fact's date. Leaves are computed from the facts with one aggregate query per kind of fact
(grouped by the coordinates the leaves vary in and by day), routed to the leaves in memory; inner
nodes are the sums of their leaves. The number of queries never depends on the number of nodes.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from crm.models import CompanySettings, Customer, Region
from pipeline.models import Collection, Opportunity, OpportunityLine
from salesmgmt.lib import attainment as math
from salesmgmt.lib.money import ZERO
from targets.models import AttainmentSnapshot, Metric, MetricSource, MetricUnit, PlanStatus, TargetNode, TargetPlan
from targets.services.members import COORD_FIELDS
from targets.services.weights import _Facts, _lk, _segment_expression, cents

NODE_FIELDS = ("id", "path", "split_dimension", "amount", "period_start", "period_end", *COORD_FIELDS)


@dataclasses.dataclass
class Figures:
    """The stored numbers of one node (what a snapshot keeps)."""

    actual: Decimal = ZERO
    weighted_pipeline: Decimal = ZERO
    open_pipeline: Decimal = ZERO

    def add(self, other: Figures) -> None:
        self.actual += other.actual
        self.weighted_pipeline += other.weighted_pipeline
        self.open_pipeline += other.open_pipeline


@dataclasses.dataclass(frozen=True)
class Derived:
    """The ratios of a snapshot, derived on read with the pure math."""

    attainment: Decimal | None
    gap: Decimal
    time_progress: Decimal
    pace_gap: Decimal | None
    coverage: Decimal | None
    run_rate_forecast: Decimal


def derive(snapshot: AttainmentSnapshot, *, working_days: bool | None = None) -> Derived:
    """Attainment %, gap, time progress, pace gap, coverage and run-rate of a snapshot at its own date.

    `working_days` defaults to the company setting (pass it when deriving many snapshots: one query less each).
    """
    if working_days is None:
        working_days = CompanySettings.load().count_working_days
    node = snapshot.node
    progress = math.time_progress(node.period_start, node.period_end, snapshot.as_of, working_days=working_days)
    rate = math.attainment(snapshot.actual, snapshot.target)
    missing = math.gap(snapshot.actual, snapshot.target)
    return Derived(
        attainment=rate,
        gap=missing,
        time_progress=progress,
        pace_gap=math.pace_gap(rate, progress),
        coverage=math.coverage(snapshot.open_pipeline, missing),
        run_rate_forecast=math.run_rate_forecast(
            snapshot.actual, node.period_start, node.period_end, snapshot.as_of, working_days=working_days
        ),
    )


# --- facts ---------------------------------------------------------------------------------------


def _uses_products(metric: Metric, leaves: list[dict]) -> bool:
    return (
        metric.source in (MetricSource.KEY_PRODUCT_SHARE, MetricSource.GROSS_MARGIN)
        or bool({"product_line", "product"} & set(metric.filters or {}))
        or any(n["product_line_id"] or n["product_id"] for n in leaves)
    )


def _actual_facts(metric: Metric, *, with_products: bool) -> _Facts | None:
    """Where a metric's actuals live (all of them: a recompute is not limited to one user's scope).

    Gross margin is the deal lines' revenue less quantity × the product's unit cost (a line without
    a product costs nothing; a deal without lines has no known margin and is not counted).
    """
    source = metric.source
    if source in (MetricSource.WON_REVENUE, MetricSource.GROSS_MARGIN, MetricSource.KEY_PRODUCT_SHARE):
        if not with_products:
            return _Facts(Opportunity.objects.won(), Sum("amount_company"), "closed_on", "owner", "customer")
        qs = OpportunityLine.objects.filter(opportunity__stage__is_won=True)
        total = Sum("amount_company")
        if source == MetricSource.KEY_PRODUCT_SHARE:
            qs = qs.filter(product_line__is_key=True)
        if source == MetricSource.GROSS_MARGIN:
            money = DecimalField(max_digits=18, decimal_places=2)
            cost = ExpressionWrapper(
                F("quantity") * Coalesce(F("product__unit_cost"), Value(Decimal("0"), output_field=money)),
                output_field=money,
            )
            total = Sum(ExpressionWrapper(F("amount_company") - cost, output_field=money))
        return _Facts(
            qs,
            total,
            "opportunity__closed_on",
            "opportunity__owner",
            "opportunity__customer",
            "product_line",
            "product",
        )
    if with_products:
        return None
    if source == MetricSource.COLLECTIONS:
        return _Facts(
            Collection.objects.all(),
            Sum("amount_company"),
            "received_on",
            "opportunity__owner",
            "opportunity__customer",
        )
    if source == MetricSource.NEW_CUSTOMERS:
        return _Facts(Customer.objects.filter(first_won_on__isnull=False), Count("pk"), "first_won_on", "owner", None)
    return None


def _pipeline_facts(metric: Metric, *, with_products: bool) -> _Facts | None:
    """Open deals (neither won nor lost) by expected close date; counts have no pipeline."""
    if metric.unit == MetricUnit.COUNT or metric.source == MetricSource.NEW_CUSTOMERS:
        return None
    open_q = {"stage__is_won": False, "stage__is_lost": False}
    if with_products:
        qs = OpportunityLine.objects.filter(**{f"opportunity__{k}": v for k, v in open_q.items()})
        if metric.source == MetricSource.KEY_PRODUCT_SHARE:
            qs = qs.filter(product_line__is_key=True)
        return _Facts(
            qs,
            Sum("amount_company"),
            "opportunity__expected_close_date",
            "opportunity__owner",
            "opportunity__customer",
            "product_line",
            "product",
        )
    return _Facts(
        Opportunity.objects.filter(**open_q), Sum("amount_company"), "expected_close_date", "owner", "customer"
    )


def _filtered(qs, facts: _Facts, metric: Metric):
    """The admin-defined filters of a metric, as history weights apply them."""
    filters = metric.filters or {}
    if "tier" in filters:
        qs = qs.filter(**{_lk(facts.customer, "tier"): filters["tier"]})
    if "segment" in filters:
        qs = qs.filter(seg=filters["segment"])
    if "product_line" in filters and facts.product_line:
        qs = qs.filter(**{facts.product_line: filters["product_line"]})
    if "product" in filters and facts.product:
        qs = qs.filter(**{facts.product: filters["product"]})
    if "region" in filters:
        path = Region.objects.filter(pk=filters["region"]).values_list("path", flat=True).first() or "-"
        qs = qs.filter(**{f"{facts.region}__path__startswith": path})
    return qs


def _route(*, facts: _Facts, metric: Metric, leaves: list[dict], until: date | None, extra: tuple = ()):
    """ONE aggregate query of the facts in the leaves' periods, grouped by day and by the coordinates
    the leaves vary in; yields (leaf index, row) for every leaf a row belongs to."""
    if not leaves:
        return
    start = min(n["period_start"] for n in leaves)
    end = max(n["period_end"] for n in leaves)
    if until is not None:
        end = min(end, until)
    if end < start:
        return
    qs = facts.qs.filter(**{f"{facts.date}__range": (start, end)}).annotate(seg=_segment_expression(facts, metric))
    qs = _filtered(qs, facts, metric)
    lookup = {
        "region_id": f"{facts.region}__path",
        "rep_id": facts.rep,
        "product_line_id": facts.product_line,
        "product_id": facts.product,
        "segment": "seg",
    }
    varying = []
    for coord in COORD_FIELDS:
        values = {n[coord] for n in leaves}
        if len(values) > 1:
            varying.append(coord)
            continue
        value = values.pop()
        if not value:
            continue
        if coord == "region_id":
            path = Region.objects.filter(pk=value).values_list("path", flat=True).first() or "-"
            qs = qs.filter(**{f"{facts.region}__path__startswith": path})
        else:
            qs = qs.filter(**{lookup[coord]: value})
    group = {lookup[c] for c in varying} | {facts.date, *extra}
    rows = qs.order_by().values(*group).annotate(value=facts.total)

    index = defaultdict(list)
    for i, node in enumerate(leaves):
        index[tuple(node[c] for c in varying)].append(i)
    for row in rows:
        if not row["value"]:
            continue
        day = row[facts.date]
        candidates = [()]
        for coord in varying:
            if coord == "region_id":
                options = [int(x) for x in (row[lookup[coord]] or "").strip("/").split("/") if x] + [None]
            elif coord == "segment":
                options = [row["seg"], ""]
            else:
                options = [row[lookup[coord]], None]
            candidates = [c + (o,) for c in candidates for o in options]
        for candidate in candidates:
            for i in index.get(candidate, ()):
                if leaves[i]["period_start"] <= day <= leaves[i]["period_end"]:
                    yield i, row


def leaf_figures(plan: TargetPlan, leaves: list[dict], as_of: date) -> list[Figures]:
    """The figures of the given leaves (dicts of `NODE_FIELDS`): facts up to `as_of`, open pipeline now."""
    metric = plan.metric
    result = [Figures() for _ in leaves]
    with_products = _uses_products(metric, leaves)
    facts = _actual_facts(metric, with_products=with_products)
    if facts is not None:
        for i, row in _route(facts=facts, metric=metric, leaves=leaves, until=as_of):
            result[i].actual += cents(row["value"])
    facts = _pipeline_facts(metric, with_products=with_products)
    if facts is not None:
        probability = "opportunity__probability" if facts.rep.startswith("opportunity__") else "probability"
        for i, row in _route(facts=facts, metric=metric, leaves=leaves, until=None, extra=(probability,)):
            amount = cents(row["value"])
            result[i].open_pipeline += amount
            result[i].weighted_pipeline += math.weighted(amount, row[probability] or 0)
    return result


def plan_nodes(plan: TargetPlan) -> list[dict]:
    return list(TargetNode.objects.filter(plan=plan).order_by("path").values(*NODE_FIELDS))


def ancestor_paths(path: str) -> list[str]:
    """The paths of a node's ancestors ("0001.0003." -> ["0001."]), root first."""
    parts = path.split(".")[:-1]
    return [".".join(parts[:k]) + "." for k in range(1, len(parts))]


def roll_up(nodes: list[dict], leaves: dict[int, Figures]) -> dict[int, Figures]:
    """Figures of every node: a leaf's own, an inner node's the sum of its leaves (in memory)."""
    by_path = {n["path"]: n["id"] for n in nodes}
    result = {n["id"]: Figures() for n in nodes}
    path_of = {n["id"]: n["path"] for n in nodes}
    for leaf_id, figures in leaves.items():
        result[leaf_id].add(figures)
        for path in ancestor_paths(path_of[leaf_id]):
            if path in by_path:
                result[by_path[path]].add(figures)
    return result


def compute_actuals(plan: TargetPlan, as_of: date) -> tuple[list[dict], dict[int, Figures]]:
    """Every node of a plan with its figures: leaves from the facts, inner nodes summed (a few queries)."""
    nodes = plan_nodes(plan)
    leaves = [n for n in nodes if not n["split_dimension"]]
    figures = leaf_figures(plan, leaves, as_of)
    return nodes, roll_up(nodes, {n["id"]: f for n, f in zip(leaves, figures, strict=True)})


def leaves_touched(touches: list[tuple[int | None, str, date | None]]) -> list[int]:
    """Leaves of approved plans a fact may count for: (owner id, owner's region path, day) each.

    A leaf matches when the day is in its period, its rep is empty or the owner, and its region is
    empty or one of the owner's region and its ancestors. Product and segment coordinates are not
    narrowed here (recomputing a leaf that turns out unchanged is harmless).
    """
    q = Q()
    for owner_id, region_path, day in touches:
        if day is None:
            continue
        region_ids = [int(x) for x in (region_path or "").strip("/").split("/") if x]
        q |= (
            Q(period_start__lte=day, period_end__gte=day)
            & (Q(rep__isnull=True) | Q(rep_id=owner_id))
            & (Q(region__isnull=True) | Q(region_id__in=region_ids))
        )
    if not q:
        return []
    return list(
        TargetNode.objects.leaves().filter(q, plan__status=PlanStatus.APPROVED).order_by().values_list("id", flat=True)
    )
