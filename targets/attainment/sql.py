"""PostgreSQL: a whole plan's figures in ONE query, the facts never leaving the database; then only what
changed is written.

The figures are exactly those of `targets.attainment.reference.compute_actuals` (the portable reference, used on
SQLite and by incremental recomputes; a test holds the two equal):

- the facts (the same querysets, filters and segment rule), one row each with the owner, the credited team's region
  path, product line, product, segment, day and (open deals) probability; won and open deals are read in one
  scan of their table where their filters allow (`Facts.where`);
- each fact's day is mapped to the leaf period holding it (a binary search in the sorted period starts; a
  calendar of every day when periods overlap), and leaves are joined to the facts per *signature* — which
  coordinates a leaf sets, and at which depth of the region tree its region sits — so every join is on
  equalities (a hash join), the facts streaming through in the order the query is written;
- sums in cents; weighted pipeline is Σ amount × % per leaf, rounded once (half up), as the reference does;
- roll-ups one level at a time: a node sums the leaves and the nodes one level below it;
- every node of the plan is computed (zero when nothing counts) and compared with the figures it has so far
  (its latest row). The nodes whose figures or target changed go to a temporary table (a query that creates a
  table may run on several cores; one that writes to tables may not), and from there get a snapshot, upserted
  on (node, as_of), and their latest rows. A nightly rebuild thus writes what moved, not every node.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import sqlparse
from django.contrib.postgres.aggregates import BitOr
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import (
    Aggregate,
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    DateField,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import BaseExpression, Combinable
from django.db.models.functions import Cast, Coalesce, Length

from crm.models import Region
from targets.attainment.reference import actual_facts, path_ids, pipeline_facts, uses_products
from targets.models import AttainmentSnapshot, LatestAttainment, Metric, TargetNode, TargetPlan
from targets.planning.rules import PATH_STEP
from targets.planning.weights import Facts, facts_in, metric_filtered, segment_expression


def _flag(q: Q) -> ExpressionWrapper:
    return ExpressionWrapper(q, output_field=BooleanField())


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What the statement is built for: the plan's leaf signatures, distinct leaf periods and leaf depths."""

    signatures: frozenset[tuple]  # (region depth or 0, rep?, product line?, product?, segment?)
    periods: tuple[tuple[date, date], ...]  # sorted
    depths: frozenset[int]  # the levels leaves sit at (1 = the root)

    @property
    def disjoint(self) -> bool:
        """Whether no two leaf periods overlap: a day then lies in at most one of them."""
        return all(a[1] < b[0] for a, b in zip(self.periods, self.periods[1:], strict=False))

    @property
    def levels(self) -> int:
        return max(self.depths, default=0)

    @property
    def starts(self) -> list[date]:
        return [p[0] for p in self.periods]

    @property
    def ends(self) -> list[date]:
        return [p[1] for p in self.periods]


def _shape(plan: TargetPlan) -> _Shape:
    """The plan's leaf signatures, periods and depths: three queries, a few rows.

    The leaves are read twice, grouped by few keys (region and which coordinates are set; period), so that
    PostgreSQL groups them on every core and returns thousands of rows, not one per region and period (at
    tier L a single grouping of its 1,200,000 leaves by all of them took 0.7 s on one core, 0.3 s this way).
    Their depths come along as a bit mask (bit d: a leaf at depth d)."""
    leaves = TargetNode.objects.leaves().filter(plan=plan).order_by()
    one, depth = Cast(Value(1), BigIntegerField()), Length("path") / PATH_STEP  # a plan is < 63 levels deep
    depth_bit = BitOr(one.bitleftshift(depth), output_field=BigIntegerField())  # type: ignore[arg-type]  # an expression; the stubs say int
    kinds = list(
        leaves.values_list(
            "region_id",
            _flag(Q(rep__isnull=False)),
            _flag(Q(product_line__isnull=False)),
            _flag(Q(product__isnull=False)),
            _flag(~Q(segment="")),
        ).annotate(depth_bits=depth_bit)
    )
    periods = set(leaves.values_list("period_start", "period_end").distinct())
    paths = dict(Region.objects.filter(pk__in={r[0] for r in kinds if r[0]}).values_list("pk", "path"))
    signatures: set[tuple] = set()
    bits = 0
    for region_id, rep, line, product, segment, depth_bits in kinds:
        bits |= depth_bits
        if region_id and region_id not in paths:
            continue  # a region that no longer exists: nothing counts for it (as in the reference)
        signatures.add((len(path_ids(paths[region_id])) if region_id else 0, rep, line, product, segment))
    depths = frozenset(d for d in range(bits.bit_length()) if bits >> d & 1)
    return _Shape(frozenset(signatures), tuple(sorted(periods)), depths)


def _row_value(total: Aggregate) -> BaseExpression | None:
    """What an aggregate total adds up per fact row (Sum(x): x; Count: 1), or None to aggregate as is."""
    if isinstance(total, Sum) and not total.filter:
        return total.get_source_expressions()[0]
    if isinstance(total, Count) and not total.distinct and not total.filter:  # type: ignore[attr-defined]  # not in django-stubs
        return Value(1, output_field=IntegerField())
    return None


def _coordinates(facts: Facts) -> dict[str, Combinable]:
    """The columns (aliased f_*) of a fact's owner, credited team's region path, segment and product coordinates."""
    columns: dict[str, Combinable] = {"f_rep": F(facts.rep), "f_path": F(f"{facts.region}__path"), "f_seg": F("seg")}
    if facts.product_line and facts.product:  # deal lines have both
        columns["f_pl"] = F(facts.product_line)
        columns["f_prod"] = F(facts.product)
    return columns


def _facts_sql(facts: Facts, metric: Metric, start: date, end: date, *, open_: bool) -> tuple[str, list]:
    """One kind of facts with their coordinates, day, kind (`f_open`: open pipeline or not), probability
    (0 for actuals) and value, one row per fact where the total allows it."""
    columns = _coordinates(facts) | {
        "f_day": F(facts.date),
        "f_open": Value(open_, output_field=BooleanField()),
        "f_prob": Coalesce(F(facts.probability), 0, output_field=IntegerField()) if open_ else Value(0),
    }
    qs = facts_in(facts, metric, start, end).annotate(**columns).order_by()
    value = _row_value(facts.total)
    if value is None:
        qs = qs.values(*columns).annotate(value=facts.total)
    else:  # one row per fact: grouping by day first saves nothing (most days hold one fact per owner)
        qs = qs.annotate(value=value).values(*columns, "value")
    sql, params = qs.query.sql_with_params()
    return sql, list(params)


def _branch(source: str, signature: tuple, plan_id: int) -> tuple[str, list]:
    """The (leaf path, value in cents, open?, probability) of the facts counting for the leaves of one
    signature: a join on equalities."""
    depth, rep, line, product, segment = signature
    on = ["l.period_start = f.p_start", "l.period_end = f.p_end"]  # the day's period(s): `_periods_sql`
    where = ["l.plan_id = %s", "l.split_dimension = ''", "NOT l.unassigned"]  # a team's unassigned: zero
    params: list = [plan_id]
    for wanted, column, fact in (
        (rep, "rep_id", "f_rep"),
        (line, "product_line_id", "f_pl"),
        (product, "product_id", "f_prod"),
    ):
        if wanted:
            on.append(f"l.{column} = f.{fact}")
            where.append(f"l.{column} IS NOT NULL")
        else:
            where.append(f"l.{column} IS NULL")
    if segment:
        on.append("l.segment = f.f_seg")
        where.append("l.segment <> ''")
    else:
        where.append("l.segment = ''")
    if depth:
        # "/1/5/9/": the id at depth d is the (d + 1)-th part. A region's id sits at its own depth in every
        # path, so a leaf of a region at another depth never matches here: no need to list this depth's regions.
        on.append(f"l.region_id = NULLIF(split_part(f.f_path, '/', {depth + 1}), '')::bigint")
    else:
        where.append("l.region_id IS NULL")
    select = "l.id, l.parent_id, (f.value * 100)::bigint AS value, f.f_open, f.f_prob AS prob"
    table = TargetNode._meta.db_table
    sql = f"SELECT {select} FROM {source} f JOIN {table} l ON {' AND '.join(on)} WHERE {' AND '.join(where)}"
    return sql, params


# Each leaf's figures from the rows of all its facts, in cents (bigint sums are several times cheaper than
# numeric ones; the figures leave in money): weighted pipeline is Σ value × % per leaf, rounded once (half
# up), as the reference does.
LEAF = (
    "leaf AS MATERIALIZED (SELECT y.id, y.parent_id, "
    "COALESCE(SUM(y.value) FILTER (WHERE NOT y.f_open), 0)::bigint AS actual, "
    "COALESCE(ROUND(SUM(y.value * y.prob) FILTER (WHERE y.f_open) / 100.0), 0)::bigint AS weighted, "
    "COALESCE(SUM(y.value) FILTER (WHERE y.f_open), 0)::bigint AS open FROM ({rows}) y GROUP BY y.id, y.parent_id)"
)
SUMS = "SUM(c.actual)::bigint AS actual, SUM(c.weighted)::bigint AS weighted, SUM(c.open)::bigint AS open"


def _roll_up(shape: _Shape) -> tuple[list[str], list[str]]:
    """The CTEs of the roll-up, keyed by node ids (integers hash and compare several times faster than the
    paths' text), and the names of those holding every node's figures (`leaf` and one a level).

    From `node` (the plan's nodes, read once): `lp`, each inner node's sum of its leaf children, with the
    node's parent and level. Then one level at a time from the deepest: a level's node sums its leaf children
    (its `lp` row) and its inner children one level below (their sums grouped by parent, each row summed once,
    not once per ancestor); its parent comes from `upper_node` (a hash join with the few rows of the level)."""
    levels = shape.levels
    if levels <= 1:
        return [], ["leaf"]
    one_depth = len(shape.depths) == 1
    ctes = [
        "lp AS MATERIALIZED (SELECT t.id, t.parent_id, t.level, g.actual, g.weighted, g.open FROM "
        f"(SELECT c.parent_id AS id, {SUMS} FROM leaf c GROUP BY c.parent_id) g JOIN node t ON t.id = g.id)",
    ]
    if levels > 2:
        # The inner nodes a level's join looks up: those above the deepest inner level, which holds most of
        # them (a plan's months or segments, ten times its reps): each level then reads a few, not all.
        ctes.append(
            f"upper_node AS MATERIALIZED (SELECT id, parent_id FROM node WHERE level < {levels - 1} AND is_inner)"
        )
    figures = "id, parent_id, actual, weighted, open"
    names: dict[int, str] = {}  # level -> the CTE of its nodes' figures
    for level in range(levels - 1, 0, -1):
        parts = []
        if level + 1 in shape.depths:  # the leaf children's sums (all of them, when the leaves share one depth)
            parts.append(f"SELECT {figures} FROM lp" + ("" if one_depth else f" WHERE level = {level}"))
        if level < levels - 1:
            parts.append(
                f"SELECT g.id, t.parent_id, g.actual, g.weighted, g.open FROM (SELECT c.parent_id AS id, {SUMS} "
                f"FROM {names[level + 1]} c GROUP BY c.parent_id) g JOIN upper_node t ON t.id = g.id"
            )
        if parts == [f"SELECT {figures} FROM lp"]:
            names[level] = "lp"  # the parents of all the leaves: `lp` itself, no copy
            continue
        if len(parts) == 1:
            body = parts[0]
        else:  # a node with both leaf and inner children: one row
            body = f"SELECT c.id, c.parent_id, {SUMS} FROM ({' UNION ALL '.join(parts)}) c GROUP BY c.id, c.parent_id"
        names[level] = f"level{level}"
        ctes.append(f"{names[level]} AS MATERIALIZED ({body})")
    return ctes, ["leaf", *names.values()]


def _combined_sql(fa: Facts, fp: Facts, metric: Metric, start: date, last: date, end: date) -> tuple[str, list] | None:
    """Won and open deals (or deal lines) in ONE scan of their table, told apart by `f_open`: when both kinds
    are rows of the same table under exclusive filters (`Facts.where`) with the same coordinates. Columns as
    `_facts_sql`'s, the day being the close date of won rows and the expected close date of open ones."""
    va, vp = _row_value(fa.total), _row_value(fp.total)
    lookups = ("rep", "customer", "product_line", "product")
    if fa.where is None or fp.where is None or va is None or vp is None or fa.qs.model is not fp.qs.model:
        return None
    if any(getattr(fa, k) != getattr(fp, k) for k in lookups):
        return None
    won = fa.where & Q(**{f"{fa.date}__range": (start, last)})
    open_ = fp.where & Q(**{f"{fp.date}__range": (start, end)})
    qs = fa.qs.model.objects.filter(won | open_).annotate(
        f_day=Case(When(won, then=F(fa.date)), default=F(fp.date), output_field=DateField())
    )
    by_day = dataclasses.replace(fa, date="f_day")
    qs = metric_filtered(qs.annotate(seg=segment_expression(by_day, metric)), by_day, metric)
    columns = _coordinates(fa)
    columns["f_open"] = Case(When(won, then=Value(False)), default=Value(True), output_field=BooleanField())
    columns["f_prob"] = Case(
        When(won, then=Value(0)), default=Coalesce(F(fp.probability), 0), output_field=IntegerField()
    )
    money = DecimalField(max_digits=18, decimal_places=2)
    columns["value"] = Case(When(won, then=va), default=vp, output_field=money)
    qs = qs.annotate(**columns).order_by().values(*columns, "f_day")
    sql, params = qs.query.sql_with_params()
    return sql, list(params)


def _fact_sources(
    metric: Metric, with_products: bool, start: date | None, end: date | None, as_of: date
) -> list[tuple[str, str, list]]:
    """(CTE name, SQL, params) of the facts to read: won and open deals in one scan where they can
    be, else the actual facts (up to `as_of`) and the pipeline (the leaves' whole span) apart."""
    if start is None or end is None:  # no leaf: both None
        return []
    fa = actual_facts(metric, with_products=with_products)
    fp = pipeline_facts(metric, with_products=with_products)
    last = min(end, as_of)
    if fa is not None and fp is not None and last >= start:
        combined = _combined_sql(fa, fp, metric, start, last, end)
        if combined is not None:
            return [("ff", *combined)]
    sources = []
    if fa is not None and last >= start:
        sources.append(("fa", *_facts_sql(fa, metric, start, last, open_=False)))
    if fp is not None:
        sources.append(("fp", *_facts_sql(fp, metric, start, end, open_=True)))
    return sources


def _periods_sql(name: str, shape: _Shape) -> tuple[str, list]:
    """The facts of CTE `name` with the leaf period(s) holding their day (`p_start`, `p_end`), so that facts join
    leaves on equalities. Disjoint periods (the usual plan): the one period found by a binary search in the
    sorted starts, no join. Overlapping periods: a join to the calendar of every leaf period's days."""
    if not shape.disjoint:
        periods = "d.period_start AS p_start, d.period_end AS p_end"
        return f"SELECT f.*, {periods} FROM {name} f JOIN days d ON d.day = f.f_day", []
    at = "width_bucket(f.f_day, %s::date[])"  # how many starts are <= the day: the index of its period
    sql = (
        f"SELECT * FROM (SELECT f.*, (%s::date[])[{at}] AS p_start, (%s::date[])[{at}] AS p_end FROM {name} f) f "
        "WHERE f.f_day <= f.p_end"  # not in a gap after the period
    )
    return sql, [shape.starts, shape.starts, shape.ends, shape.starts]


CHANGED = "attainment_changed"  # the temporary table of a recompute's changed nodes


# Planner settings for the recompute's queries. Enough memory to hash the facts and the roll-up instead of
# sorting or spilling them to disk in batches (at tier L, 1,200,000 leaves, the leaves' sums take ~160 MB: with
# 64 MB they spilled in 5 batches); no JIT (compiling a statement this wide costs more than it saves where LLVM
# is installed).
# The planner guesses one row for the join of facts to leaves on computed keys, and from there sorts both
# sides for merge joins, or probes the leaves' index once per fact. The plan that is right at every size is
# the one the query is written as: the facts stream, in the order written, through hash joins with their
# dimensions and the leaves, into hash aggregates.
PLANNER = {
    "work_mem": "256MB",
    "jit": "off",
    "enable_mergejoin": "off",
    "enable_nestloop": "off",
    "enable_sort": "off",
    "join_collapse_limit": "1",
    "from_collapse_limit": "1",
}


@contextlib.contextmanager
def _planner_settings() -> Iterator[None]:
    """`PLANNER` for the queries inside, then back to what they were (the transaction goes on)."""
    names = list(PLANNER)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        before = dict(zip(names, cursor.fetchone(), strict=True))
        _set_local(cursor, PLANNER)
    yield
    with connection.cursor() as cursor:
        _set_local(cursor, before)


def _set_local(cursor: CursorWrapper, settings: dict[str, str]) -> None:
    """SET LOCAL the settings, in one query."""
    cursor.execute(
        "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(settings)), [x for kv in settings.items() for x in kv]
    )


def plan_snapshots_upsert(plan: TargetPlan, as_of: date, now: datetime) -> int:
    """Recompute every node of `plan` for `as_of`; returns how many snapshots were written (changed nodes)."""
    if not connection.in_atomic_block:
        raise RuntimeError("plan_snapshots_upsert runs inside a transaction (the caller holds the plan's lock)")
    backfill = has_later_day(plan, as_of)
    with _planner_settings():
        return _upsert(plan, as_of, now, backfill=backfill)


def has_later_day(plan: TargetPlan, as_of: date) -> bool:
    """Whether a node of `plan` has figures of a day after `as_of` (a recompute of `as_of` is then a backfill).

    Walks the latest rows' `as_of` index from `as_of` on and looks each row's node up: normally there are none,
    a nightly rebuild being of the newest day. Asked as "the first such row by day": without the order, the
    planner took the rows in node order and filtered every one of them (0.7 s at tier L, its statistics
    saying a sixth of the rows were of a later day)."""
    later = LatestAttainment.objects.filter(node__plan=plan, as_of__gt=as_of).order_by("as_of")
    return later.values_list("as_of", flat=True).first() is not None


def compute_statement(plan: TargetPlan, as_of: date, *, backfill: bool = False) -> tuple[str, list]:
    """The one statement that computes every node of `plan` on `as_of` and keeps those whose figures
    changed, in the temporary table `CHANGED`; with its parameters. `render_statement` shows it as text."""
    metric = plan.metric
    shape = _shape(plan)
    start, end = min(shape.starts, default=None), max(shape.ends, default=None)
    with_products = uses_products(metric, any(s[2] or s[3] for s in shape.signatures))

    ctes: list[str] = []
    params: list[Any] = []
    rows: list[str] = []
    row_params: list[Any] = []
    if not shape.disjoint:
        # Every day of every leaf period, with that period (a day of two overlapping periods: two rows).
        ctes.append(
            "days AS MATERIALIZED (SELECT d::date AS day, p.period_start, p.period_end "
            "FROM unnest(%s::date[], %s::date[]) p (period_start, period_end) "
            "CROSS JOIN LATERAL generate_series(p.period_start, p.period_end, interval '1 day') d)"
        )
        params += [shape.starts, shape.ends]
    for name, sql, more in _fact_sources(metric, with_products, start, end, as_of):
        dated, dated_params = _periods_sql(name, shape)
        # Not MATERIALIZED: read once, the facts stream through the joins; read by several signatures,
        # PostgreSQL keeps them once.
        ctes += [f"{name} AS ({sql})", f"{name}d AS ({dated})"]
        params += more + dated_params
        for signature in sorted(shape.signatures):
            branch, branch_params = _branch(f"{name}d", signature, plan.pk)
            rows.append(branch)
            row_params += branch_params
    if not rows:  # nothing can count (no leaf, or no fact source): every node's figures are zero
        rows.append(
            "SELECT NULL::bigint AS id, NULL::bigint AS parent_id, 0::bigint AS value, false AS f_open, 0 AS prob "
            "WHERE false"
        )
    ctes.append(LEAF.format(rows=" UNION ALL ".join(rows)))
    params += row_params
    node_table = TargetNode._meta.db_table
    # The plan's nodes, read once for the roll-up and the comparison (its columns only: a tenth of the rows').
    ctes.append(
        f"node AS MATERIALIZED (SELECT id, parent_id, amount, length(path) / {PATH_STEP} AS level, "
        f"split_dimension <> '' AS is_inner FROM {node_table} WHERE plan_id = %s)"
    )
    params.append(plan.pk)
    roll_up, named = _roll_up(shape)
    ctes += roll_up
    figures = "id, actual, weighted, open"
    ctes.append("up AS (" + " UNION ALL ".join(f"SELECT {figures} FROM {name}" for name in named) + ")")
    snapshot, latest = AttainmentSnapshot._meta.db_table, LatestAttainment._meta.db_table
    # The figures each node has on `as_of` so far: its latest row (a hash join) or, in a backfill, its newest
    # snapshot on or before `as_of`.
    if backfill:
        before = (
            f"LEFT JOIN LATERAL (SELECT s.node_id, s.actual, s.target, s.weighted_pipeline, s.open_pipeline "
            f"FROM {snapshot} s WHERE s.node_id = n.id AND s.as_of <= %s ORDER BY s.as_of DESC LIMIT 1) p ON TRUE"
        )
        params.append(as_of)
    else:
        before = f"LEFT JOIN {latest} p ON p.node_id = n.id"
    # Every node's figures (zero where nothing counts), kept only where they differ from those.
    ctes.append(
        "changed AS (SELECT n.id AS node_id, n.amount AS target, "
        "COALESCE(up.actual, 0) / 100.0 AS actual, COALESCE(up.weighted, 0) / 100.0 AS weighted, "
        "COALESCE(up.open, 0) / 100.0 AS open "
        f"FROM node n LEFT JOIN up ON up.id = n.id {before} WHERE ("
        "p.node_id IS NULL OR p.target <> n.amount OR p.actual * 100 <> COALESCE(up.actual, 0) "
        "OR p.weighted_pipeline * 100 <> COALESCE(up.weighted, 0) OR p.open_pipeline * 100 <> COALESCE(up.open, 0)))"
    )
    # Computed into a temporary table, not written by the same statement: a statement that writes never
    # runs in parallel, one that creates a table from a query may (PostgreSQL's parallel query).
    compute = f"CREATE TEMPORARY TABLE {CHANGED} ON COMMIT DROP AS WITH {', '.join(ctes)} SELECT * FROM changed"
    return compute, params


def render_statement(plan: TargetPlan, as_of: date, *, backfill: bool = False) -> str:
    """`compute_statement` as a reader sees it: the parameters in place (as the driver sends them) and one
    clause a line. Nothing runs but the few reads that shape the statement."""
    sql, params = compute_statement(plan, as_of, backfill=backfill)
    text = connection.ops.compose_sql(sql, params)  # type: ignore[attr-defined]  # PostgreSQL's operations
    return sqlparse.format(text, reindent=True).strip() + "\n"


def _upsert(plan: TargetPlan, as_of: date, now: datetime, *, backfill: bool) -> int:
    compute, params = compute_statement(plan, as_of, backfill=backfill)
    snapshot, latest = AttainmentSnapshot._meta.db_table, LatestAttainment._meta.db_table
    write_snapshots = (
        f"INSERT INTO {snapshot} (node_id, as_of, actual, target, weighted_pipeline, open_pipeline, computed_at) "
        f"SELECT node_id, %s, actual, target, weighted, open, %s FROM {CHANGED} "
        "ON CONFLICT (node_id, as_of) DO UPDATE SET actual = EXCLUDED.actual, target = EXCLUDED.target, "
        "weighted_pipeline = EXCLUDED.weighted_pipeline, open_pipeline = EXCLUDED.open_pipeline, "
        "computed_at = EXCLUDED.computed_at"
    )
    write_latest = (
        f"INSERT INTO {latest} AS l (node_id, as_of, actual, target, weighted_pipeline, open_pipeline) "
        f"SELECT node_id, %s, actual, target, weighted, open FROM {CHANGED} "
        "ON CONFLICT (node_id) DO UPDATE SET as_of = EXCLUDED.as_of, actual = EXCLUDED.actual, "
        "target = EXCLUDED.target, weighted_pipeline = EXCLUDED.weighted_pipeline, "
        "open_pipeline = EXCLUDED.open_pipeline WHERE l.as_of <= EXCLUDED.as_of"
    )
    with connection.cursor() as cursor:
        cursor.execute(compute, params)
        cursor.execute(write_snapshots, [as_of, now])
        written = cursor.rowcount
        cursor.execute(write_latest, [as_of])
        cursor.execute(f"DROP TABLE {CHANGED}")  # a nightly run recomputes the next plan in the same transaction
        return written
