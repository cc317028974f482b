"""The weights of a split: equal, last year's history (one aggregate query), headcount, customers, days, given."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Aggregate, Case, CharField, Count, Exists, F, OuterRef, Q, QuerySet, Sum, Value, When
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.models import Customer, Region, Role, Segment, User
from crm.scopes import scope_q, visible_users
from pipeline.models import Activity, Collection, Opportunity, OpportunityHistory, OpportunityLine
from salesmgmt.lib import periods
from salesmgmt.lib.money import CENT, quantize, to_decimal
from targets.models import (
    PROCESS_SOURCES,
    TIME_DIMENSIONS,
    Dimension,
    Metric,
    MetricSource,
    SplitMethod,
    TargetNode,
    TargetPlan,
    WeightBasis,
)
from targets.planning.members import COORD_FIELDS, Member, member_period


@dataclasses.dataclass(frozen=True)
class Facts:
    """Where a metric's facts live: the queryset and the lookups of its date, amount and coordinates."""

    qs: QuerySet
    total: Aggregate
    date: str
    rep: str
    customer: str | None
    product_line: str | None = None
    product: str | None = None
    # The queryset's own filter, set where it excludes the other kind's facts (won vs open deals): the
    # attainment statement then reads both kinds in one scan of their table.
    where: Q | None = None

    @property
    def region(self) -> str:
        """The lookup of the team a fact counts for (业绩归属): a deal's credited team (`Opportunity.region`, the
        owner's team as it stood on the close date: `pipeline.services.credited_team`) for deals, their lines and
        collections; the owner's team for a new customer."""
        if self.qs.model in (Customer, Activity):  # the owner's team (a customer's or activity's own rep)
            return f"{self.rep}__region"
        return self.rep.removesuffix("owner") + "region"

    @property
    def probability(self) -> str:
        """The deal's probability (deal lines carry their deal's)."""
        return "opportunity__probability" if self.rep.startswith("opportunity__") else "probability"


def cents(value: object) -> Decimal:
    """A fact total as an exact Decimal (SQLite returns sums of decimals through floats)."""
    return quantize(to_decimal(value))


def _lk(prefix: str | None, rest: str) -> str:
    return f"{prefix}__{rest}" if prefix else rest


def _facts(metric: Metric, *, with_products: bool, actor: User) -> Facts | None:
    """The fact rows of a metric's source, or None when the source cannot be broken down that way.

    A fact counts for the team it is credited to (`Facts.region`: a deal's owner's team on its close date),
    never the customer's region, as attainment counts it.

    Gross margin uses signed revenue as its history (deals carry no cost); key-product revenue
    counts the deal lines of key product lines.
    """
    source = metric.source
    with_products = with_products or source == MetricSource.KEY_PRODUCT_SHARE
    with_products = with_products or bool({"product_line", "product"} & set(metric.filters))
    if source in (MetricSource.WON_REVENUE, MetricSource.GROSS_MARGIN, MetricSource.KEY_PRODUCT_SHARE):
        if with_products:
            qs = OpportunityLine.objects.filter(
                scope_q(actor, owner="opportunity__owner", region="opportunity__region", team_only=True),
                opportunity__stage__is_won=True,
            )
            if source == MetricSource.KEY_PRODUCT_SHARE:
                qs = qs.filter(product_line__is_key=True)
            return Facts(
                qs,
                Sum("amount_company"),
                "opportunity__closed_on",
                "opportunity__owner",
                "opportunity__customer",
                "product_line",
                "product",
            )
        return Facts(
            Opportunity.objects.visible_to(actor).won(),
            Sum("amount_company"),
            "closed_on",
            "owner",
            "customer",
        )
    if with_products:
        return None
    if source == MetricSource.COLLECTIONS:
        return Facts(
            Collection.objects.visible_to(actor),
            Sum("amount_company"),
            "received_on",
            "opportunity__owner",
            "opportunity__customer",
        )
    if source == MetricSource.NEW_CUSTOMERS:
        return Facts(
            Customer.objects.visible_to(actor).filter(first_won_on__isnull=False),
            Count("pk"),
            "first_won_on",
            "owner",
            None,
        )
    if source in PROCESS_SOURCES:
        facts = process_facts(source)
        if facts is None:
            return None
        return dataclasses.replace(facts, qs=facts.qs.filter(scope_q(actor, owner=facts.rep, region=facts.region)))
    return None


def process_facts(source: str) -> Facts | None:
    """The facts of a process measure (过程量), each counted once (`Count("pk")`), all of them:

    - activities: visits, calls and meetings by their day, for the rep who did them and his team;
    - deals created: by their creation day (local), for the owner and the deal's credited team;
    - stage reached: the first time a deal entered a stage (its stage history), by that day, for the deal's owner
      and credited team; a deal moving back and forth counts once per stage;
    - customers covered: customers by the day they were added, for their owner and his team.
    The metric's filters narrow them (`metric_filtered`: kind, stage, stage order, tier, region).
    """
    if source == MetricSource.ACTIVITIES:
        return Facts(Activity.objects.all(), Count("pk"), "date", "owner", "customer")
    if source == MetricSource.DEALS_CREATED:
        return Facts(Opportunity.objects.all(), Count("pk"), "created_at__date", "owner", "customer")
    if source == MetricSource.STAGE_REACHED:
        earlier = OpportunityHistory.objects.filter(
            Q(changed_at__lt=OuterRef("changed_at")) | Q(changed_at=OuterRef("changed_at"), pk__lt=OuterRef("pk")),
            opportunity=OuterRef("opportunity"),
            new_stage=OuterRef("new_stage"),
        )
        first = OpportunityHistory.objects.filter(new_stage__isnull=False).exclude(Exists(earlier))
        return Facts(first, Count("pk"), "changed_at__date", "opportunity__owner", "opportunity__customer")
    if source == MetricSource.CUSTOMERS_COVERED:
        return Facts(Customer.objects.all(), Count("pk"), "created_at__date", "owner", None)
    return None


def metric_filtered(qs: QuerySet, facts: Facts, metric: Metric) -> QuerySet:
    """The admin-defined filters of a metric (tier, segment, product line, product, region subtree) on its
    facts; `qs` is annotated with `seg`. History weights and attainment read facts through this one place."""
    filters = metric.filters or {}
    if "tier" in filters:
        qs = qs.filter(**{_lk(facts.customer, "tier"): filters["tier"]})
    if "segment" in filters:
        qs = qs.filter(seg=filters["segment"])
    if "product_line" in filters and facts.product_line:
        qs = qs.filter(**{facts.product_line: filters["product_line"]})
    if "product" in filters and facts.product:
        qs = qs.filter(**{facts.product: filters["product"]})
    if "kind" in filters and facts.qs.model is Activity:
        qs = qs.filter(kind=filters["kind"])
    if "stage" in filters and facts.qs.model is OpportunityHistory:
        qs = qs.filter(new_stage_id=filters["stage"])
    if "stage_order" in filters and facts.qs.model is OpportunityHistory:
        qs = qs.filter(new_stage__order=filters["stage_order"])
    if "region" in filters:
        path = Region.objects.filter(pk=filters["region"]).values_list("path", flat=True).first() or "-"
        qs = qs.filter(**{f"{facts.region}__path__startswith": path})
    return qs


def facts_in(facts: Facts, metric: Metric, start: date, end: date) -> QuerySet:
    """The facts of a metric dated from `start` to `end`, with their segment (`seg`) and the metric's filters."""
    qs = facts.qs.filter(**{f"{facts.date}__range": (start, end)}).annotate(seg=segment_expression(facts, metric))
    return metric_filtered(qs, facts, metric)


def coordinate_lookups(facts: Facts) -> dict[str, str]:
    """A target node's coordinate -> the lookup of the same thing on the facts (the credited team's region path).
    Facts without products have no product lookups ("": never asked, nodes with products read other facts)."""
    return {
        "region_id": f"{facts.region}__path",
        "rep_id": facts.rep,
        "product_line_id": facts.product_line or "",
        "product_id": facts.product or "",
        "segment": "seg",
    }


def narrow_to_shared(
    qs: QuerySet, facts: Facts, coordinates: list[dict[str, Any]], region_path: Callable[[int], str]
) -> tuple[QuerySet, list[str]]:
    """Coordinates shared by every node (`coordinates`: each node's {coordinate: value}) filter the facts; those
    that vary are returned, for the caller to group by. `region_path(region id)` gives a shared region's path."""
    lookup = coordinate_lookups(facts)
    varying = []
    for coord in COORD_FIELDS:
        values = {c[coord] for c in coordinates}
        if len(values) > 1:
            varying.append(coord)
            continue
        value = values.pop()
        if not value:
            continue
        if coord == "region_id":
            qs = qs.filter(**{f"{facts.region}__path__startswith": region_path(value)})
        else:
            qs = qs.filter(**{lookup[coord]: value})
    return qs, varying


def segment_expression(facts: Facts, metric: Metric) -> Value | Case:
    if metric.source in (MetricSource.NEW_CUSTOMERS, MetricSource.CUSTOMERS_COVERED):
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


def _bucket(date_field: str, ranges: Iterable[tuple[date, date]]) -> Case:
    return Case(
        *[When(**{f"{date_field}__range": r}, then=Value(f"{r[0]}/{r[1]}")) for r in sorted(ranges)],
        default=None,
        output_field=CharField(),
    )


def _history_weights(
    *,
    metric: Metric,
    nodes: Sequence[TargetNode | _Cell],
    members: list[list[Member]],
    dimension: str,
    regions: Mapping[int, tuple[str, int | None]],
    start_month: int,
    actor: User,
) -> list[list[Decimal]]:
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
    # Nodes of the same period share their members' list: their ranges are computed once.
    ranges_of: dict[int, list[tuple[date, date]]] = {}
    if is_time:
        for ms in members:
            if id(ms) not in ranges_of:
                ranges_of[id(ms)] = [
                    _last_year(p.kind, p.start, p.end, p.key, start_month) for p in map(member_period, ms)
                ]
    child_ranges = [ranges_of[id(ms)] for ms in members] if is_time else []
    qs = facts_in(facts, metric, min(r[0] for r in cell_ranges), max(r[1] for r in cell_ranges))

    coordinates = [{c: getattr(n, c) for c in COORD_FIELDS} for n in nodes]
    qs, varying = narrow_to_shared(qs, facts, coordinates, lambda region_id: regions[region_id][0])
    lookup = coordinate_lookups(facts)
    group = {lookup[c] for c in varying}
    dim_lookup: dict[str, str] = {
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
    def cell_key(node: TargetNode | _Cell, idx: int) -> tuple[object, ...]:
        key = tuple(getattr(node, c) for c in varying)
        if cells_vary_in_time:
            key += (f"{cell_ranges[idx][0]}/{cell_ranges[idx][1]}",)
        return key

    index: defaultdict[tuple[object, ...], list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        index[cell_key(node, i)].append(i)
    member_index = [{m.key: j for j, m in enumerate(ms)} for ms in members]
    child_index: list[dict[str, int]] = []
    if is_time:
        index_of = {id(rs): {f"{r[0]}/{r[1]}": j for j, r in enumerate(rs)} for rs in child_ranges}
        child_index = [index_of[id(rs)] for rs in child_ranges]
    region_lookup = lookup["region_id"]
    for row in rows:
        value = row["value"]
        if not value:
            continue
        value = cents(value)
        path_ids = [int(x) for x in (row.get(region_lookup) or "").strip("/").split("/") if x]
        candidates: list[tuple[object, ...]] = [()]
        for coord in varying:
            options: list[object]
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
                    weights[i][j] += value
    return weights


# --- the walk up: where a leaf's own history is too thin ------------------------------------------

# A leaf's own curve (last year over the parts of its split) carries its seasonality only when it is dense:
# at least this share of the parts had something last year (9 of 12 months, 3 of 4 quarters, both segments).
# A thinner curve (a rep with deals in 2 months of 12) gives way to the curve of what contains the leaf: its
# team without the rep, then each region above, then the whole company; the first dense one is followed (the
# company's when none is). The parts the followed curve still leaves empty take the share the next curve up
# gives them, so a part gets nothing only where the company had nothing either.
HISTORY_DENSE_SHARE = Fraction(3, 4)

# Splits whose parts stay the same for what contains a leaf (periods, segments, products). Not reps or
# regions: the region above has no other curve over a region's own reps or sub-regions.
CURVE_DIMENSIONS = (*TIME_DIMENSIONS, Dimension.SEGMENT, Dimension.PRODUCT_LINE, Dimension.PRODUCT)

# Where a part's weight came from (`source` of a split preview's part).
SOURCE_OWN = "own"
SOURCE_REGION = "region"
SOURCE_COMPANY = "company"
SOURCE_EQUAL = "equal"
SOURCE_NONE = "none"
SOURCES = (SOURCE_OWN, SOURCE_REGION, SOURCE_COMPANY, SOURCE_EQUAL, SOURCE_NONE)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the weight of a part came from: its kind (`SOURCES`) and the label a manager reads."""

    kind: str
    label: str


@dataclasses.dataclass(frozen=True)
class _Cell:
    """The coordinates of a level above a node (what `_history_weights` reads for a node)."""

    region_id: int | None
    product_line_id: int | None
    product_id: int | None
    rep_id: int | None
    segment: str
    period_kind: str
    period_key: str
    period_start: date
    period_end: date


def is_dense(curve: Sequence[Decimal]) -> bool:
    """Whether a curve had something in enough of its parts to be followed (`HISTORY_DENSE_SHARE`)."""
    return bool(curve) and Fraction(sum(1 for w in curve if w), len(curve)) >= HISTORY_DENSE_SHARE


def _walk_up(node: TargetNode, paths: dict[int, str]) -> list[tuple[_Cell, str, int | None]]:
    """The levels whose curve a node may follow, nearest first: (coordinates, source kind, region id).

    The rep is dropped first (the team), then the region climbs to the top, then the company without a
    region; a product or segment coordinate is dropped last (the company's whole curve)."""
    coords = {c: getattr(node, c) for c in COORD_FIELDS}
    period = {f: getattr(node, f) for f in ("period_kind", "period_key", "period_start", "period_end")}
    levels: list[tuple[_Cell, str, int | None]] = []

    def climb(kind: str, region: int | None, **changes: object) -> None:
        coords.update(changes)
        levels.append((_Cell(**coords, **period), kind, region))

    region = coords["region_id"]
    ancestors = [int(x) for x in paths.get(region, "").strip("/").split("/") if x][::-1] if region else []
    if coords["rep_id"]:
        climb(SOURCE_REGION if region else SOURCE_COMPANY, region, rep_id=None)
    for up in ancestors[1:]:
        # The top region (the company's own) is the company's curve.
        climb(SOURCE_COMPANY if up == ancestors[-1] else SOURCE_REGION, up, region_id=up)
    if region:
        climb(SOURCE_COMPANY, None, region_id=None)
    if coords["product_line_id"] or coords["product_id"] or coords["segment"]:
        climb(SOURCE_COMPANY, None, product_line_id=None, product_id=None, segment="")
    return levels


def follow_curves(
    levels: list[tuple[list[Decimal], str, int | None]],
) -> tuple[list[Decimal], list[tuple[str, int | None]], int]:
    """One node's weights from its curves (own first, then the levels above), each part's (kind, region),
    and the level followed. See `HISTORY_DENSE_SHARE`."""
    n = len(levels[0][0])
    base = next((k for k, (curve, _kind, _region) in enumerate(levels) if is_dense(curve)), len(levels) - 1)
    followed = levels[base][0]
    if not any(followed):
        return [Decimal(1)] * n, [(SOURCE_EQUAL, None)] * n, base
    weights = list(followed)
    sources = [levels[base][1:] if w else (SOURCE_NONE, None) for w in followed]
    total = sum(followed)
    for j in range(n):
        if followed[j]:
            continue
        for curve, kind, region in levels[base + 1 :]:
            if not curve[j]:
                continue
            # The upper curve, scaled to the followed one over the parts both cover.
            over = sum((curve[i] for i in range(n) if followed[i]), Decimal(0))
            if over <= 0:
                break
            weights[j] = max(quantize(curve[j] * total / over), CENT)
            sources[j] = (kind, region)
            break
    return weights, sources, base


# Per node: its weights, the source of each, the level it followed and how many parts its own curve covers.
Curves = tuple[list[list[Decimal]], list[list["Source"]], list[int], list[int]]


def _history_curves(
    *,
    metric: Metric,
    nodes: list[TargetNode],
    members: list[list[Member]],
    dimension: str,
    regions: dict[int, tuple[str, int]],
    start_month: int,
    actor: User,
) -> Curves:
    """Each node's history weights, walking up where its own are thin (see `HISTORY_DENSE_SHARE`), with
    the source of every part, the level each node followed (0: its own) and how many parts its own curve
    covers. Still ONE aggregate query:
    the levels above are read in the same query as the nodes."""
    paths = {pk: value[0] for pk, value in regions.items()}
    missing = {n.region_id for n in nodes if n.region_id and n.region_id not in paths}
    if missing and dimension in CURVE_DIMENSIONS:
        paths.update(Region.objects.filter(pk__in=missing).values_list("id", "path"))
    cells: list[TargetNode | _Cell] = list(nodes)
    cell_members = list(members)
    chains: list[list[tuple[int, str, int | None]]] = []
    seen: dict[tuple[_Cell, tuple[str, ...]], int] = {}
    # Leaves alike but for their rep walk up alike: each walk is built once.
    walks: dict[tuple[object, ...], list[tuple[int, str, int | None]]] = {}
    for node, ms in zip(nodes, members, strict=True):
        if dimension not in CURVE_DIMENSIONS:
            chains.append([])
            continue
        alike = (
            *(getattr(node, f) for f in ("region_id", "product_line_id", "product_id", "segment", "period_key")),
            node.period_start,
            node.period_end,
            bool(node.rep_id),
            id(ms),
        )
        if alike not in walks:
            chain = []
            for cell, kind, region in _walk_up(node, paths):
                key = (cell, tuple(m.key for m in ms))
                if key not in seen:
                    seen[key] = len(cells)
                    cells.append(cell)
                    cell_members.append(ms)
                chain.append((seen[key], kind, region))
            walks[alike] = chain
        chains.append(walks[alike])
    curves = _history_weights(
        metric=metric,
        nodes=cells,
        members=cell_members,
        dimension=dimension,
        regions={**regions, **{pk: (path, None) for pk, path in paths.items() if pk not in regions}},
        start_month=start_month,
        actor=actor,
    )
    weights: list[list[Decimal]] = []
    kinds: list[list[tuple[str, int | None]]] = []
    bases: list[int] = []
    covered = [sum(1 for w in curves[i] if w) for i in range(len(nodes))]
    for i, chain in enumerate(chains):
        ws, ks, base = follow_curves([(curves[i], SOURCE_OWN, None), *[(curves[c], k, r) for c, k, r in chain]])
        weights.append(ws)
        kinds.append(ks)
        bases.append(base)
    names = _region_names({r for ks in kinds for _k, r in ks if r})
    labels = {
        SOURCE_OWN: _("own history"),
        SOURCE_COMPANY: _("company curve"),
        SOURCE_EQUAL: _("equal (no history)"),
        SOURCE_NONE: _("nothing last year"),
    }
    made: dict[tuple[str, int | None], Source] = {}

    def source(kind: str, region: int | None) -> Source:
        if (kind, region) not in made:
            label = (
                _("curve of %(region)s") % {"region": names.get(region, "?") if region is not None else "?"}
                if kind == SOURCE_REGION
                else labels[kind]
            )
            made[kind, region] = Source(kind, label)
        return made[kind, region]

    sources = [[source(k, r) for k, r in ks] for ks in kinds]
    return weights, sources, bases, covered


def _region_names(ids: set[int]) -> dict[int, str]:
    return dict(Region.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}


def _count_by_region_or_rep(
    qs: QuerySet,
    *,
    region_lookup: str,
    rep_lookup: str,
    dimension: str,
    nodes: list[TargetNode],
    members: list[list[Member]],
) -> list[list[Decimal]]:
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
        by_rep = {str(r[rep_lookup]): r["n"] for r in qs.order_by().values(rep_lookup).annotate(n=Count("pk"))}
        for i, ms in enumerate(members):
            for j, m in enumerate(ms):
                weights[i][j] = Decimal(by_rep.get(m.key, 0))
    return weights


def weights_batch(**kwargs: Any) -> tuple[list[list[Decimal]], list[str]]:
    """The weights of each node's parts and the warnings a manager should read: `weights_with_sources`
    (same keyword arguments) without the sources."""
    result, _sources, warnings = weights_with_sources(**kwargs)
    return result, warnings


def weights_with_sources(
    *,
    plan: TargetPlan,
    nodes: list[TargetNode],
    members: list[list[Member]],
    dimension: str,
    method: str,
    basis: str | None,
    weights: dict | None,
    tiers: Iterable[str] | None,
    regions: dict[int, tuple[str, int]],
    start_month: int,
    actor: User,
) -> tuple[list[list[Decimal]], list[list[Source]] | None, list[str]]:
    """`weights_batch` with, for a split by history, the source of every part's weight (else None)."""
    if method == SplitMethod.HISTORY:
        return _history_batch(
            metric=plan.metric,
            nodes=nodes,
            members=members,
            dimension=dimension,
            regions=regions,
            start_month=start_month,
            actor=actor,
        )
    result, warnings = _other_weights(
        nodes=nodes,
        members=members,
        dimension=dimension,
        method=method,
        basis=basis,
        weights=weights,
        tiers=tiers,
        actor=actor,
    )
    return result, None, warnings


def _history_batch(
    *,
    metric: Metric,
    nodes: list[TargetNode],
    members: list[list[Member]],
    dimension: str,
    regions: dict[int, tuple[str, int]],
    start_month: int,
    actor: User,
) -> tuple[list[list[Decimal]], list[list[Source]], list[str]]:
    result, sources, bases, covered = _history_curves(
        metric=metric,
        nodes=nodes,
        members=members,
        dimension=dimension,
        regions=regions,
        start_month=start_month,
        actor=actor,
    )
    warnings: list[str] = []
    empty = [i for i, ss in enumerate(sources) if ss and ss[0].kind == SOURCE_EQUAL]
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
    walked = [i for i, base in enumerate(bases) if base and i not in set(empty)]
    if walked:
        if len(nodes) == 1:
            kinds = Counter(s.label for s in sources[0] if s.kind in (SOURCE_REGION, SOURCE_COMPANY))
            warnings.append(
                _(
                    "“%(target)s” had history in only %(covered)d of its %(parts)d parts last year; "
                    "it follows the %(source)s."
                )
                % {
                    "target": nodes[0].label,
                    "covered": covered[0],
                    "parts": len(result[0]),
                    "source": kinds.most_common(1)[0][0],
                }
            )
        else:
            warnings.append(
                ngettext(
                    "%(count)d target had too little history of its own; it follows its team's or the company's curve.",
                    "%(count)d targets had too little history of their own; they follow their team's or the "
                    "company's curve.",
                    len(walked),
                )
                % {"count": len(walked)}
            )
    filled = sum(
        1 for i, ss in enumerate(sources) if not bases[i] for s in ss if s.kind in (SOURCE_REGION, SOURCE_COMPANY)
    )
    if filled:
        warnings.append(
            ngettext(
                "%(count)d part had nothing of its own last year and takes its share from the curve above.",
                "%(count)d parts had nothing of their own last year and take their share from the curve above.",
                filled,
            )
            % {"count": filled}
        )
    zero = sum(1 for ss in sources for s in ss if s.kind == SOURCE_NONE)
    if zero:
        warnings.append(
            ngettext(
                "%(count)d part had nothing last year and gets no target.",
                "%(count)d parts had nothing last year and get no target.",
                zero,
            )
            % {"count": zero}
        )
    return result, sources, warnings


def _other_weights(
    *,
    nodes: list[TargetNode],
    members: list[list[Member]],
    dimension: str,
    method: str,
    basis: str | None,
    weights: dict | None,
    tiers: Iterable[str] | None,
    actor: User,
) -> tuple[list[list[Decimal]], list[str]]:
    """The weights of the methods other than history."""
    warnings: list[str] = []
    if method == SplitMethod.EQUAL:
        return [[Decimal(1)] * len(ms) for ms in members], warnings
    if method != SplitMethod.WEIGHTS:
        raise ValidationError({"method": _("Unknown split method “%(method)s”.") % {"method": method}})
    basis = basis or WeightBasis.MANUAL
    if basis in (WeightBasis.MANUAL, WeightBasis.MARKET_POTENTIAL):
        if not weights:
            raise ValidationError({"weights": _("Give a weight for each part.")})
        given: dict[str, Decimal] = {}
        for key, value in weights.items():
            key = str(getattr(key, "pk", key))  # a member's key: its pk, segment or period key
            try:
                given[key] = to_decimal(value, field="weight")
            except ValueError:
                raise ValidationError({"weights": _("The weight %(value)s is not a number.") % {"value": value}})
            if given[key] < 0:
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
        return [[Decimal(member_period(m).days) for m in ms] for ms in members], warnings
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
