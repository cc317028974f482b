"""Attainment reads: the actual, weighted and open pipeline of target nodes from the facts, set-based.

Facts are matched to a node exactly as history weights match them (`targets.planning.weights`): a
deal, its lines and collections count for its owner and the team it is credited to (业绩归属: the owner's
team as it stood on the close date, `Opportunity.region`), a new customer for its owner's team, never the
customer's own region; a fact's segment is "existing" when its customer had a won deal before
the fact's date. Leaves are computed from the facts with one aggregate query per kind of fact
(grouped by the coordinates the leaves vary in and by day), routed to the leaves in memory; inner
nodes are the sums of their leaves. The number of queries never depends on the number of nodes.
"""

from __future__ import annotations

import dataclasses
import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import CompanySettings, Customer, Region
from pipeline.models import Collection, Opportunity, OpportunityLine
from salesmgmt.lib import attainment as math
from salesmgmt.lib.money import ZERO
from targets.models import (
    PROCESS_SOURCES,
    AttainmentSnapshot,
    Metric,
    MetricSource,
    MetricUnit,
    PlanStatus,
    TargetNode,
    TargetPlan,
)
from targets.planning.members import COORD_FIELDS
from targets.planning.rules import PATH_STEP, ancestor_paths
from targets.planning.weights import Facts, cents, coordinate_lookups, facts_in, narrow_to_shared, process_facts

if TYPE_CHECKING:
    from targets.attainment.selectors import GridSnapshot

NODE_FIELDS = ("id", "path", "split_dimension", "amount", "period_start", "period_end", "unassigned", *COORD_FIELDS)


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

    def minus(self, other: Figures) -> Figures:
        """The change from `other` to these figures."""
        return Figures(
            self.actual - other.actual,
            self.weighted_pipeline - other.weighted_pipeline,
            self.open_pipeline - other.open_pipeline,
        )


@dataclasses.dataclass(frozen=True)
class Derived:
    """The ratios of a snapshot, derived on read with the pure math."""

    attainment: Decimal | None
    gap: Decimal
    time_progress: Decimal
    pace_gap: Decimal | None
    coverage: Decimal | None
    run_rate_forecast: Decimal


def derive(
    snapshot: AttainmentSnapshot | GridSnapshot, *, on: date | None = None, working_days: bool | None = None
) -> Derived:
    """Attainment %, gap, time progress, pace gap, coverage and run-rate of a snapshot's figures on day `on`.

    `on` defaults to the snapshot's own date; a node's newest snapshot holds until its figures change, so
    "now" is read with `on` = today (`reading_day`). `working_days` defaults to the company setting (pass it
    when deriving many snapshots: one query less each).
    """
    if working_days is None:
        working_days = CompanySettings.load().count_working_days
    node = snapshot.node
    on = on or snapshot.as_of
    progress = math.time_progress(node.period_start, node.period_end, on, working_days=working_days)
    rate = math.attainment(snapshot.actual, snapshot.target)
    missing = math.gap(snapshot.actual, snapshot.target)
    return Derived(
        attainment=rate,
        gap=missing,
        time_progress=progress,
        pace_gap=math.pace_gap(rate, progress),
        coverage=math.coverage(snapshot.open_pipeline, missing),
        run_rate_forecast=math.run_rate_forecast(
            snapshot.actual, node.period_start, node.period_end, on, working_days=working_days
        ),
    )


def reading_day(as_of: date, today: date | None = None) -> date:
    """The day a node's newest snapshot (written on `as_of`) is read for: today, as the figures hold until
    they change (never before the snapshot's own day)."""
    return max(as_of, today or timezone.localdate())


# --- facts ---------------------------------------------------------------------------------------


def uses_products(metric: Metric, product_leaves: bool) -> bool:
    """Whether facts are read per deal line: the metric needs it, or some leaves have a product coordinate."""
    return (
        metric.source in (MetricSource.KEY_PRODUCT_SHARE, MetricSource.GROSS_MARGIN)
        or bool({"product_line", "product"} & set(metric.filters or {}))
        or product_leaves
    )


def actual_facts(metric: Metric, *, with_products: bool) -> Facts | None:
    """Where a metric's actuals live (all of them: a recompute is not limited to one user's scope).

    Gross margin is the deal lines' revenue less quantity × the product's unit cost (a line without
    a product costs nothing; a deal without lines has no known margin and is not counted).
    """
    source = metric.source
    if source in (MetricSource.WON_REVENUE, MetricSource.GROSS_MARGIN, MetricSource.KEY_PRODUCT_SHARE):
        if not with_products:
            won = Q(stage__is_won=True)
            return Facts(
                Opportunity.objects.filter(won), Sum("amount_company"), "closed_on", "owner", "customer", where=won
            )
        won = Q(opportunity__stage__is_won=True)
        if source == MetricSource.KEY_PRODUCT_SHARE:
            won &= Q(product_line__is_key=True)
        qs = OpportunityLine.objects.filter(won)
        total = Sum("amount_company")
        if source == MetricSource.GROSS_MARGIN:
            money = DecimalField(max_digits=18, decimal_places=2)
            cost = ExpressionWrapper(
                F("quantity") * Coalesce(F("product__unit_cost"), Value(Decimal("0"), output_field=money)),
                output_field=money,
            )
            total = Sum(ExpressionWrapper(F("amount_company") - cost, output_field=money))
        return Facts(
            qs,
            total,
            "opportunity__closed_on",
            "opportunity__owner",
            "opportunity__customer",
            "product_line",
            "product",
            where=won,
        )
    if with_products:
        return None
    if source == MetricSource.COLLECTIONS:
        return Facts(
            Collection.objects.all(),
            Sum("amount_company"),
            "received_on",
            "opportunity__owner",
            "opportunity__customer",
        )
    if source == MetricSource.NEW_CUSTOMERS:
        return Facts(Customer.objects.filter(first_won_on__isnull=False), Count("pk"), "first_won_on", "owner", None)
    if source in PROCESS_SOURCES:
        return process_facts(source)
    return None


def pipeline_facts(metric: Metric, *, with_products: bool) -> Facts | None:
    """Open deals (neither won nor lost) by expected close date; counts have no pipeline."""
    if metric.unit == MetricUnit.COUNT or metric.source in (MetricSource.NEW_CUSTOMERS, *PROCESS_SOURCES):
        return None
    if with_products:
        open_ = Q(opportunity__stage__is_won=False, opportunity__stage__is_lost=False)
        if metric.source == MetricSource.KEY_PRODUCT_SHARE:
            open_ &= Q(product_line__is_key=True)
        return Facts(
            OpportunityLine.objects.filter(open_),
            Sum("amount_company"),
            "opportunity__expected_close_date",
            "opportunity__owner",
            "opportunity__customer",
            "product_line",
            "product",
            where=open_,
        )
    open_ = Q(stage__is_won=False, stage__is_lost=False)
    return Facts(
        Opportunity.objects.filter(open_),
        Sum("amount_company"),
        "expected_close_date",
        "owner",
        "customer",
        where=open_,
    )


def path_ids(path: str | None) -> tuple[int, ...]:
    """The region ids of a materialised path ("/1/4/9/" -> (1, 4, 9)), root first."""
    return tuple(int(x) for x in (path or "").strip("/").split("/") if x)


class Router:
    """Finds the leaves a fact row counts for, without trying every combination of coordinates.

    Leaves are grouped by which varying coordinates they set (and, for a region, at which depth of the
    tree it sits: a fact's owner region path has exactly one id at that depth). Within a group, a dict
    keyed by those coordinates' values gives the leaves of every period, searched by date.
    """

    def __init__(self, leaves: list[dict], varying: list[str], depths: dict[int, int] | None = None):
        """`depths`: region id -> depth (1 = the root region); read from the regions when not given."""
        if depths is None and "region_id" in varying:
            ids = {n["region_id"] for n in leaves if n["region_id"]}
            depths = {pk: len(path_ids(p)) for pk, p in Region.objects.filter(pk__in=ids).values_list("pk", "path")}
        depths = depths or {}
        groups: dict[tuple, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
        for i, leaf in enumerate(leaves):
            signature_parts: list[tuple[str, int]] = []
            key_parts: list[object] = []
            for coord in varying:
                value = leaf[coord]
                if not value:
                    continue
                if coord == "region_id":
                    if value not in depths:
                        break  # a region that no longer exists: nothing counts for it
                    signature_parts.append((coord, depths[value]))
                else:
                    signature_parts.append((coord, 0))
                key_parts.append(value)
            else:
                groups[tuple(signature_parts)][tuple(key_parts)].append((leaf["period_start"], leaf["period_end"], i))
        # (coordinate, region depth or 0) of each set coordinate -> their values -> (starts, leaves, disjoint?)
        self.groups: list[tuple[tuple[tuple[str, int], ...], dict[tuple, tuple[list[date], list, bool]]]] = []
        for signature, index in groups.items():
            periods: dict[tuple, tuple[list[date], list, bool]] = {}
            for key, entries in index.items():
                entries.sort()
                disjoint = all(a[1] < b[0] for a, b in itertools.pairwise(entries))
                periods[key] = ([e[0] for e in entries], entries, disjoint)
            self.groups.append((signature, periods))

    def match(self, values: dict, day: date) -> Iterator[int]:
        """Indexes of the leaves a fact with these coordinate values (region: its path ids) on `day` counts for."""
        for signature, periods in self.groups:
            key = []
            for coord, depth in signature:
                if depth:
                    ids = values["region_id"]
                    if len(ids) < depth:
                        break
                    key.append(ids[depth - 1])
                else:
                    key.append(values[coord])
            else:
                found = periods.get(tuple(key))
                if found is None:
                    continue
                starts, entries, disjoint = found
                if disjoint:
                    at = bisect_right(starts, day) - 1
                    if at >= 0 and day <= entries[at][1]:
                        yield entries[at][2]
                else:
                    for start, end, i in entries:
                        if start <= day <= end:
                            yield i


# Distinct reps (or regions) the leaves vary over, up to which their facts are filtered to those reps (regions).
NARROW_VARYING = 1000


def _narrow_varying(qs: QuerySet, facts: Facts, leaves: list[dict], varying: list[str]) -> QuerySet:
    """The facts of the leaves' own reps and teams only, when the leaves vary over a few of them (an incremental
    recompute of several deals' leaves): the router matches no other fact to them. Without it such a query
    reads and groups the whole company's facts of the period. A leaf without a rep (region) takes any fact:
    then nothing is filtered on it; so neither is a whole plan's thousands of reps (a rebuild reads them all)."""
    lookup = coordinate_lookups(facts)
    if "rep_id" in varying:
        reps = {n["rep_id"] for n in leaves}
        if all(reps) and len(reps) <= NARROW_VARYING:
            qs = qs.filter(**{f"{lookup['rep_id']}__in": sorted(reps)})
    if "region_id" in varying:
        regions = {n["region_id"] for n in leaves}
        if all(regions) and len(regions) <= NARROW_VARYING:
            # A team's facts are those of its subtree (as `narrow_to_shared` filters a shared region); a region
            # that no longer exists has none.
            within = Q()
            for path in sorted(set(Region.objects.filter(pk__in=regions).values_list("path", flat=True))):
                within |= Q(**{f"{lookup['region_id']}__startswith": path})
            qs = qs.filter(within) if within else qs.none()
    return qs


def _route(
    *, facts: Facts, metric: Metric, leaves: list[dict], until: date | None, extra: tuple = ()
) -> Iterator[tuple[int, dict[str, Any]]]:
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
    qs, varying = narrow_to_shared(
        facts_in(facts, metric, start, end),
        facts,
        leaves,
        # A region that no longer exists matches no path ("-"): nothing counts for it.
        lambda region_id: Region.objects.filter(pk=region_id).values_list("path", flat=True).first() or "-",
    )
    qs = _narrow_varying(qs, facts, leaves, varying)
    lookup = coordinate_lookups(facts)
    group = {lookup[c] for c in varying} | {facts.date, *extra}
    rows = qs.order_by().values(*group).annotate(value=facts.total)

    router = Router(leaves, varying)
    region_ids: dict[str, tuple[int, ...]] = {}  # path -> ids, parsed once per region
    for row in rows:
        if not row["value"]:
            continue
        values: dict[str, object] = {}
        for coord in varying:
            raw = row[lookup[coord]]
            if coord == "region_id":
                ids = region_ids.get(raw)
                if ids is None:
                    ids = region_ids[raw] = path_ids(raw)
                raw = ids
            values[coord] = raw
        for i in router.match(values, row[facts.date]):
            yield i, row


def leaf_figures(plan: TargetPlan, leaves: list[dict], as_of: date) -> list[Figures]:
    """The figures of the given leaves (dicts of `NODE_FIELDS`): facts up to `as_of`, open pipeline now. A team's
    unassigned target counts no facts (`TargetNode.unassigned`): zero."""
    counting = [i for i, n in enumerate(leaves) if not n.get("unassigned")]
    if len(counting) < len(leaves):
        result = [Figures() for _ in leaves]
        for i, figures in zip(counting, _leaf_figures(plan, [leaves[i] for i in counting], as_of), strict=True):
            result[i] = figures
        return result
    return _leaf_figures(plan, leaves, as_of)


def _leaf_figures(plan: TargetPlan, leaves: list[dict], as_of: date) -> list[Figures]:
    metric = plan.metric
    result = [Figures() for _ in leaves]
    with_products = uses_products(metric, any(n["product_line_id"] or n["product_id"] for n in leaves))
    facts = actual_facts(metric, with_products=with_products)
    if facts is not None:
        for i, row in _route(facts=facts, metric=metric, leaves=leaves, until=as_of):
            result[i].actual += cents(row["value"])
    facts = pipeline_facts(metric, with_products=with_products)
    if facts is not None:
        probability = facts.probability
        # Weighted: Σ amount × % per leaf, rounded once (the pipeline board's rule; the same however the
        # facts were grouped).
        raw: defaultdict[int, Decimal] = defaultdict(Decimal)
        for i, row in _route(facts=facts, metric=metric, leaves=leaves, until=None, extra=(probability,)):
            amount = cents(row["value"])
            result[i].open_pipeline += amount
            raw[i] += amount * (row[probability] or 0)
        for i, amount_times_percent in raw.items():
            result[i].weighted_pipeline = math.weighted_total(amount_times_percent)
    return result


def plan_nodes(plan: TargetPlan) -> list[dict]:
    return list(TargetNode.objects.filter(plan=plan).order_by("path").values(*NODE_FIELDS))


def roll_up(nodes: list[dict], leaves: dict[int, Figures]) -> dict[int, Figures]:
    """Figures of every node: a leaf's own, an inner node's the sum of its leaves (in memory).

    One pass from the deepest level up, each node adding its total to its parent's.
    """
    result = {n["id"]: Figures() for n in nodes}
    for leaf_id, figures in leaves.items():
        if leaf_id in result:
            result[leaf_id].add(figures)
    id_of = {n["path"]: n["id"] for n in nodes}
    for node in sorted(nodes, key=lambda n: len(n["path"]), reverse=True):
        parent = id_of.get(node["path"][:-PATH_STEP]) if len(node["path"]) > PATH_STEP else None
        if parent is not None:
            result[parent].add(result[node["id"]])
    return result


def compute_actuals(plan: TargetPlan, as_of: date) -> tuple[list[dict], dict[int, Figures]]:
    """Every node of a plan with its figures: leaves from the facts, inner nodes summed (a few queries)."""
    nodes = plan_nodes(plan)
    leaves = [n for n in nodes if not n["split_dimension"]]
    figures = leaf_figures(plan, leaves, as_of)
    return nodes, roll_up(nodes, {n["id"]: f for n, f in zip(leaves, figures, strict=True)})


def leaves_touched(touches: Iterable[tuple]) -> list[int]:
    """Leaves of approved plans a fact may count for: (owner id, credited team's region path, day) each, and
    optionally the sources of the metrics whose facts it is (a set; None or left out: any metric's).

    A leaf matches when the day is in its period, its rep is empty or the owner, its region is empty or one of
    the credited team and its ancestors, and its plan's metric is of one of the sources. Product and segment
    coordinates are not narrowed here (recomputing a leaf that turns out unchanged is harmless).

    One query, whatever the number of touches (a drain of many deals' changes has hundreds): the leaves of the
    touches' owners, regions and days span, then each matched exactly against the touches in memory.
    """
    by_owner: defaultdict[int | None, list[tuple[frozenset[int], date, frozenset[str] | None]]] = defaultdict(list)
    for owner_id, region_path, day, *rest in set(touches):
        if day is None:
            continue
        ids = frozenset(int(x) for x in (region_path or "").strip("/").split("/") if x)
        by_owner[owner_id].append((ids, day, rest[0] if rest else None))
    if not by_owner:
        return []
    days = [day for found in by_owner.values() for _regions, day, _sources in found]
    regions = set().union(*(ids for found in by_owner.values() for ids, _day, _sources in found))
    candidates = (
        TargetNode.objects.leaves()
        .filter(plan__status=PlanStatus.APPROVED, period_start__lte=max(days), period_end__gte=min(days))
        .filter(Q(rep__isnull=True) | Q(rep_id__in=[o for o in by_owner if o is not None]))
        .filter(Q(region__isnull=True) | Q(region_id__in=sorted(regions)))
        .order_by("id")
        .values_list("id", "rep_id", "region_id", "period_start", "period_end", "plan__metric__source")
    )
    everyone = [touch for found in by_owner.values() for touch in found]
    return [
        pk
        for pk, rep_id, region_id, start, end, source in candidates
        if any(
            start <= day <= end and (region_id is None or region_id in ids) and (sources is None or source in sources)
            for ids, day, sources in (everyone if rep_id is None else by_owner.get(rep_id, ()))
        )
    ]


def with_ancestors(node_ids: Iterable[int] | None) -> list[int]:
    """The given nodes and all their ancestors, by path (two queries whatever the plan's size, and one
    condition per plan whatever the number of nodes)."""
    nodes = list(TargetNode.objects.filter(pk__in=list(node_ids or ())).values_list("plan_id", "path"))
    if not nodes:
        return []
    paths: defaultdict[int, set[str]] = defaultdict(set)
    for plan_id, path in nodes:
        paths[plan_id].update([path, *ancestor_paths(path)])
    q = Q()
    for plan_id, wanted in sorted(paths.items()):
        q |= Q(plan_id=plan_id, path__in=sorted(wanted))
    return sorted(TargetNode.objects.filter(q).values_list("id", flat=True))
