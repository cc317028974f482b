"""PostgreSQL: a whole plan's figures in ONE statement (`INSERT … SELECT`), the facts never leaving the database.

The figures are exactly those of `targets.attainment.compute_actuals` (the portable reference, used on
SQLite and by incremental recomputes; a test holds the two equal):

- the facts (the same querysets, filters and segment rule) are aggregated by owner, owner's region path,
  product line, product, segment, day (and probability for the pipeline);
- leaves are joined to them per *signature* — which coordinates a leaf sets, and at which depth of the
  region tree its region sits — so every join is on equalities (a hash join), the period a range filter;
- weighted pipeline is rounded per leaf and probability (half up), as the reference does;
- roll-ups: every leaf's figures are added to each prefix of its path (its ancestors and itself);
- every node of the plan is computed (zero when nothing counts) and compared with the figures it has so far
  (its latest row): only the nodes whose figures or target changed get a snapshot, upserted on (node, as_of),
  and their latest rows, in the same statement. A nightly rebuild thus writes what moved, not every node.
"""

from __future__ import annotations

from datetime import date

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, Max, Min, Q
from django.db.models.functions import Length

from targets.attainment import _path_ids, actual_facts, pipeline_facts, uses_products
from targets.models import AttainmentSnapshot, LatestAttainment, TargetNode, TargetPlan
from targets.services.rules import PATH_STEP
from targets.services.weights import _Facts, facts_in


def _flag(q: Q):
    return ExpressionWrapper(q, output_field=BooleanField())


def _signatures(plan: TargetPlan) -> dict[tuple, list[int]]:
    """(region depth or 0, rep?, product line?, product?, segment?) -> the region ids of those leaves."""
    rows = (
        TargetNode.objects.leaves()
        .filter(plan=plan)
        .order_by()
        .values_list(
            "region_id",
            "region__path",
            _flag(Q(rep__isnull=False)),
            _flag(Q(product_line__isnull=False)),
            _flag(Q(product__isnull=False)),
            _flag(~Q(segment="")),
        )
        .distinct()
    )
    signatures: dict[tuple, list[int]] = {}
    for region_id, path, rep, line, product, segment in rows:
        if region_id is not None and path is None:
            continue  # a region that no longer exists: nothing counts for it (as in the reference)
        depth = len(_path_ids(path)) if region_id else 0
        ids = signatures.setdefault((depth, rep, line, product, segment), [])
        if region_id:
            ids.append(region_id)
    return signatures


def _facts_sql(facts: _Facts, metric, start: date, end: date, *, probability: bool) -> tuple[str, list]:
    """The aggregate of the facts by every coordinate and day, columns aliased f_*."""
    columns = {
        "f_rep": F(facts.rep),
        "f_path": F(f"{facts.region}__path"),
        "f_seg": F("seg"),
        "f_day": F(facts.date),
    }
    if facts.product_line:
        columns["f_pl"] = F(facts.product_line)
        columns["f_prod"] = F(facts.product)
    if probability:
        columns["f_prob"] = F("opportunity__probability" if facts.rep.startswith("opportunity__") else "probability")
    qs = facts_in(facts, metric, start, end).annotate(**columns).order_by().values(*columns).annotate(value=facts.total)
    sql, params = qs.query.sql_with_params()
    return sql, list(params)


def _branch(source: str, signature: tuple, region_ids: list[int], plan_id: int, *, probability: bool):
    """The (leaf path, value[, probability]) pairs of the leaves of one signature: a join on equalities."""
    depth, rep, line, product, segment = signature
    on = ["l.period_start = f.p_start", "l.period_end = f.p_end"]  # the day mapped to the period by `days`
    where = ["l.plan_id = %s", "l.split_dimension = ''"]
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
        # "/1/5/9/": the id at depth d is the (d + 1)-th part.
        on.append(f"l.region_id = NULLIF(split_part(f.f_path, '/', {depth + 1}), '')::bigint")
        where.append("l.region_id = ANY(%s)")
        params.append(region_ids)
    else:
        where.append("l.region_id IS NULL")
    select = "l.path, f.value" + (", COALESCE(f.f_prob, 0) AS prob" if probability else "")
    table = TargetNode._meta.db_table
    sql = f"SELECT {select} FROM {table} l JOIN {source} f ON {' AND '.join(on)} WHERE {' AND '.join(where)}"
    return sql, params


def plan_snapshots_upsert(plan: TargetPlan, as_of: date, now) -> int:
    """Recompute every node of `plan` for `as_of`; returns how many snapshots were written (changed nodes)."""
    metric = plan.metric
    signatures = _signatures(plan)
    span = (
        TargetNode.objects.leaves()
        .filter(plan=plan)
        .aggregate(start=Min("period_start"), end=Max("period_end"), length=Max(Length("path")))
    )
    start, end, levels = span["start"], span["end"], (span["length"] or 0) // PATH_STEP
    with_products = uses_products(metric, any(s[2] or s[3] for s in signatures))

    # Every day of every leaf period, with that period: facts join leaves on equalities, not on a range.
    ctes = [
        "days AS MATERIALIZED (SELECT d::date AS day, p.period_start, p.period_end FROM "
        f"(SELECT DISTINCT period_start, period_end FROM {TargetNode._meta.db_table} "
        "WHERE plan_id = %s AND split_dimension = '') p "
        "CROSS JOIN LATERAL generate_series(p.period_start, p.period_end, interval '1 day') d)"
    ]
    params, hits, hit_params = [plan.pk], [], []
    for name, facts, until, probability in (
        ("fa", actual_facts(metric, with_products=with_products), as_of, False),
        ("fp", pipeline_facts(metric, with_products=with_products), None, True),
    ):
        if facts is None or start is None:
            continue
        last = min(end, until) if until else end
        if last < start:
            continue
        sql, more = _facts_sql(facts, metric, start, last, probability=probability)
        ctes.append(f"{name} AS ({sql})")
        ctes.append(
            f"{name}d AS MATERIALIZED (SELECT f.*, d.period_start AS p_start, d.period_end AS p_end "
            f"FROM {name} f JOIN days d ON d.day = f.f_day)"
        )
        params += more
        branches = [_branch(f"{name}d", sig, ids, plan.pk, probability=probability) for sig, ids in signatures.items()]
        if not branches:
            continue
        union = " UNION ALL ".join(b[0] for b in branches)
        hit_params += [p for b in branches for p in b[1]]
        if probability:
            hits.append(
                "SELECT y.path, 0::numeric AS actual, ROUND(SUM(y.value) * y.prob / 100.0, 2) AS weighted, "
                f"SUM(y.value) AS open FROM ({union}) y GROUP BY y.path, y.prob"
            )
        else:
            hits.append(
                "SELECT x.path, SUM(x.value)::numeric AS actual, 0::numeric AS weighted, 0::numeric AS open "
                f"FROM ({union}) x GROUP BY x.path"
            )
    if not hits:
        hits.append("SELECT NULL::varchar AS path, 0::numeric AS actual, 0::numeric AS weighted, 0::numeric AS open")
    ctes.append(f"hits AS ({' UNION ALL '.join(hits)})")
    params += hit_params
    figures = "path, actual, weighted, open"
    ctes.append(
        "leaf AS MATERIALIZED (SELECT path, SUM(actual) AS actual, SUM(weighted) AS weighted, SUM(open) AS open "
        "FROM hits WHERE path IS NOT NULL GROUP BY path)"
    )
    # The roll-up, one level at a time from the deepest: a level sums its children, which are the leaves
    # one level below and the level below's sums (each row is summed once, not once per ancestor).
    for level in range(levels - 1, 0, -1):
        children = f"SELECT {figures} FROM leaf WHERE length(path) = {(level + 1) * PATH_STEP}"
        if level < levels - 1:
            children += f" UNION ALL SELECT {figures} FROM level{level + 1}"
        ctes.append(
            f"level{level} AS MATERIALIZED (SELECT substr(path, 1, {level * PATH_STEP}) AS path, "
            "SUM(actual) AS actual, SUM(weighted) AS weighted, SUM(open) AS open "
            f"FROM ({children}) c GROUP BY 1)"
        )
    ctes.append(
        "up AS ("
        + " UNION ALL ".join(
            [f"SELECT {figures} FROM leaf"] + [f"SELECT {figures} FROM level{k}" for k in range(1, levels)]
        )
        + ")"
    )
    snapshot, latest = AttainmentSnapshot._meta.db_table, LatestAttainment._meta.db_table
    node_table = TargetNode._meta.db_table
    ctes.append(
        "fig AS MATERIALIZED (SELECT n.id AS node_id, n.amount AS target, COALESCE(up.actual, 0) AS actual, "
        "COALESCE(up.weighted, 0) AS weighted, COALESCE(up.open, 0) AS open "
        f"FROM {node_table} n LEFT JOIN up ON up.path = n.path WHERE n.plan_id = %s)"
    )
    params.append(plan.pk)
    # The figures each node has on `as_of` so far: its latest row (a hash join) or, when a later day has
    # been written already (a backfill), its newest snapshot on or before `as_of`.
    if LatestAttainment.objects.filter(node__plan=plan, as_of__gt=as_of).exists():
        before = (
            f"LEFT JOIN LATERAL (SELECT s.node_id, s.actual, s.target, s.weighted_pipeline, s.open_pipeline "
            f"FROM {snapshot} s WHERE s.node_id = f.node_id AND s.as_of <= %s ORDER BY s.as_of DESC LIMIT 1) p ON TRUE"
        )
        params.append(as_of)
    else:
        before = f"LEFT JOIN {latest} p ON p.node_id = f.node_id"
    ctes.append(
        f"changed AS MATERIALIZED (SELECT f.* FROM fig f {before} WHERE p.node_id IS NULL OR p.actual <> f.actual "
        "OR p.target <> f.target OR p.weighted_pipeline <> f.weighted OR p.open_pipeline <> f.open)"
    )
    ctes.append(
        f"written AS (INSERT INTO {snapshot} "
        "(node_id, as_of, actual, target, weighted_pipeline, open_pipeline, computed_at) "
        "SELECT node_id, %s, actual, target, weighted, open, %s FROM changed "
        "ON CONFLICT (node_id, as_of) DO UPDATE SET actual = EXCLUDED.actual, target = EXCLUDED.target, "
        "weighted_pipeline = EXCLUDED.weighted_pipeline, open_pipeline = EXCLUDED.open_pipeline, "
        "computed_at = EXCLUDED.computed_at RETURNING 1)"
    )
    ctes.append(
        f"moved AS (INSERT INTO {latest} AS l (node_id, as_of, actual, target, weighted_pipeline, open_pipeline) "
        "SELECT node_id, %s, actual, target, weighted, open FROM changed "
        "ON CONFLICT (node_id) DO UPDATE SET as_of = EXCLUDED.as_of, actual = EXCLUDED.actual, "
        "target = EXCLUDED.target, weighted_pipeline = EXCLUDED.weighted_pipeline, "
        "open_pipeline = EXCLUDED.open_pipeline WHERE l.as_of <= EXCLUDED.as_of)"
    )
    params += [as_of, now, as_of]
    sql = f"WITH {', '.join(ctes)} SELECT count(*) FROM written"
    with connection.cursor() as cursor:
        if not connection.in_atomic_block:
            raise RuntimeError("plan_snapshots_upsert runs inside a transaction (the caller holds the plan's lock)")
        # Enough memory to hash the facts and the roll-up instead of sorting on disk (this transaction only).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # JIT compiling a statement this wide costs more than it saves where LLVM is installed.
        cursor.execute("SET LOCAL jit = off")
        # The planner guesses one row for the join of aggregated facts to leaves on computed keys and then
        # sorts both sides for a merge join; hash joins are 10-20 % faster at every size measured.
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
