"""Attainment at the size of a big company (the Performance issue): full recompute, beside a raw SQL
GROUP BY and a plain pandas script over the same facts, and the incremental recompute after a win.

The company comes from `bench.bigco` (5,000 reps in 6 levels of regions, 600,000 deals over 3 years,
3,000,000 stage changes, a 120,000-leaf plan for the current fiscal year). In one run:

a. the engine's first build of the plan (`attainment_recompute(plan=...)`: reads the facts, computes
   every node and writes a snapshot and a latest row for each: nothing was there before);
b. ONE hand-written SQL statement computing the same numbers for every node (leaves by a GROUP BY
   of the facts joined to the leaves, inner nodes by a second GROUP BY over the leaves' ancestor
   paths, in the same statement), all rows fetched; run with JIT off and the engine's work_mem, as
   someone tuning it by hand would;
c. a plain pandas script (read_csv + merge + groupby) over a CSV export of the facts and the plan's
   nodes (the export is timed apart and not counted);
d. all three must agree to the cent for every node, or the run stops;
e. 100 open deals of the current year (100 different reps) are marked won through
   `opportunity_move_stage` (outbox dispatch held back), and `targets.tasks.recompute_for_deal` alone
   is timed for each; then every snapshot must equal a fresh full computation (the raw SQL again):
   a row of its own, MISSED when any node differs.

f. the nightly reconcile of the next day (`attainment_recompute(plan=..., as_of=tomorrow)`): every node
   recomputed from the facts and compared with its latest figures; only nodes that moved are written.

Goals: the full recompute (f, the one that runs every night) <= 1.5 x the raw SQL and faster than pandas;
incremental p95 <= 200 ms. The three compared timings (f, b, c) are each the median of `RUNS` runs.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from bench import Timing, held_dispatch, repeated, timed

SCALE = 1.0
INCREMENTAL_DEALS = 100
RUNS = 3  # the compared timings (engine, raw SQL, pandas) are medians of this many runs
SQL_RATIO = 1.5
INCREMENTAL_P95 = 0.2  # seconds
PATH_STEP = 5  # a target node's path grows by "0001." per level

# --- the raw SQL -----------------------------------------------------------------------------------

# Leaves of this plan's shape (each has a rep, a segment and a period; region = the rep's team): the
# facts join the leaves on owner = rep and segment, with the day inside the leaf's period and the
# owner's team inside the leaf's region. Inner nodes: every leaf row is repeated for each prefix of
# its path (its ancestors and itself) and summed per node.
SQL = """
WITH fact AS (
    SELECT o.owner_id,
           ur.path AS owner_path,
           s.is_won,
           d.day,
           CASE WHEN c.first_won_on < d.day THEN 'existing' ELSE 'new' END AS segment,
           o.amount_company AS amount,
           round(o.amount_company * o.probability / 100, 2) AS weighted
    FROM pipeline_opportunity o
    JOIN pipeline_stage s ON s.id = o.stage_id
    JOIN crm_user u ON u.id = o.owner_id
    LEFT JOIN crm_region ur ON ur.id = u.region_id
    LEFT JOIN crm_customer c ON c.id = o.customer_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.is_won THEN o.closed_on ELSE o.expected_close_date END AS day
    ) d
    WHERE (s.is_won AND o.closed_on BETWEEN %(start)s AND %(as_of)s)
       OR (NOT s.is_won AND NOT s.is_lost AND o.expected_close_date BETWEEN %(start)s AND %(end)s)
),
leaf AS (
    SELECT n.id, n.path, n.depth, n.rep_id, n.segment, n.period_start, n.period_end, r.path AS region_path
    FROM targets_targetnode n
    LEFT JOIN crm_region r ON r.id = n.region_id
    WHERE n.plan_id = %(plan)s AND n.split_dimension = ''
),
leaf_figures AS (
    SELECT l.path, l.depth,
           coalesce(sum(f.amount) FILTER (WHERE f.is_won), 0) AS actual,
           coalesce(sum(f.weighted) FILTER (WHERE NOT f.is_won), 0) AS weighted_pipeline,
           coalesce(sum(f.amount) FILTER (WHERE NOT f.is_won), 0) AS open_pipeline
    FROM leaf l
    LEFT JOIN fact f
      ON f.owner_id = l.rep_id
     AND f.segment = l.segment
     AND f.day BETWEEN l.period_start AND l.period_end
     AND f.owner_path LIKE l.region_path || '%%'
    GROUP BY l.path, l.depth
)
SELECT n.id, sum(lf.actual), sum(lf.weighted_pipeline), sum(lf.open_pipeline)
FROM leaf_figures lf
JOIN generate_series(1, 64) AS k ON k <= lf.depth + 1  -- not LATERAL: a row estimate the planner can use
JOIN targets_targetnode n ON n.plan_id = %(plan)s AND n.path = left(lf.path, 5 * k)
GROUP BY n.id
"""

FACTS_CSV = """
COPY (
    SELECT o.owner_id, ur.path AS owner_path, s.is_won, s.is_lost, o.closed_on, o.expected_close_date,
           o.amount_company, o.probability, c.first_won_on
    FROM pipeline_opportunity o
    JOIN pipeline_stage s ON s.id = o.stage_id
    JOIN crm_user u ON u.id = o.owner_id
    LEFT JOIN crm_region ur ON ur.id = u.region_id
    LEFT JOIN crm_customer c ON c.id = o.customer_id
    WHERE s.is_won OR NOT s.is_lost
) TO STDOUT WITH (FORMAT csv, HEADER)
"""

NODES_CSV = """
COPY (
    SELECT n.id, n.path, n.split_dimension, n.rep_id, n.segment, n.period_start, n.period_end,
           r.path AS region_path
    FROM targets_targetnode n LEFT JOIN crm_region r ON r.id = n.region_id
    WHERE n.plan_id = {plan}
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def run() -> list[Timing]:
    from bench import bigco
    from targets.attainment.services import attainment_recompute

    timings: list[Timing] = []
    started = time.perf_counter()
    company = bigco.generate(SCALE)
    counts = company.counts
    timings.append(
        Timing(
            name=(
                f"bigco: {counts['reps']:,} reps, {counts['opportunities']:,} deals, "
                f"{counts['stage changes']:,} stage changes, {counts['target leaves']:,} leaves"
            ),
            seconds=time.perf_counter() - started,
            note="generated with COPY; no goal",
        )
    )
    plan, today = company.plan, company.today
    nodes, leaves = counts["target nodes"], counts["target leaves"]

    with timed(f"attainment: first build of the plan, {nodes:,} nodes ({leaves:,} leaves)") as first:
        written = attainment_recompute(plan=plan, as_of=today)
    engine = snapshot_cents(plan)
    assert written == nodes == len(engine), (written, nodes, len(engine))

    raw, (*_, sql) = repeated(
        "attainment: raw SQL, one statement (GROUP BY leaves + ancestors)", RUNS, lambda: sql_cents(plan, today)
    )
    with tempfile.TemporaryDirectory() as tmp:
        with timed("attainment: CSV export for pandas (COPY TO, not counted)") as export:
            facts_csv, nodes_csv = export_csv(plan, Path(tmp))
        frame, (*_, (pandas, read)) = repeated(
            "attainment: pandas read_csv + merge/groupby",
            RUNS,
            lambda: pandas_cents(facts_csv, nodes_csv, plan.period_start, plan.period_end, today),
        )

    # d. an honest benchmark checks its answer: every node, to the cent.
    for name, figures in (("raw SQL", sql), ("pandas", pandas)):
        diff = mismatches(engine, figures)
        assert not diff, f"engine and {name} disagree on {len(diff)} nodes, e.g. {diff[:3]}"
    root = engine[plan.nodes.get(parent=None).pk]
    first.note = (
        f"every node written ({written:,} snapshots + latest rows); {first.seconds / raw.seconds:.2f}x raw SQL, "
        f"{first.seconds / frame.seconds:.2f}x pandas; once per plan (on approval), in the background"
    )
    raw.note = (
        f"{len(sql):,} rows fetched (JIT off, work_mem 64MB); = engine = pandas on every node "
        f"(root actual {root[0] / 100:,.2f}); {_runs(raw)}"
    )
    frame.note = f"{len(pandas):,} nodes; read_csv {read:.2f} s of the last run; {_runs(frame)}"
    export.note = "not counted"
    timings += [first, raw, export, frame]
    timings += incremental(company, plan, today)

    # f. the nightly reconcile the next day: every node recomputed from the facts, compared with its latest
    # figures; only what moved is written (nothing, when the incremental recomputes were exact).
    # RUNS times, each a full rebuild (the same work; what the first wrote is not written again).
    full, (rewritten, *_) = repeated(
        f"attainment: nightly full rebuild from the facts, {nodes:,} nodes",
        RUNS,
        lambda: attainment_recompute(plan=plan, as_of=today + timedelta(days=1)),
    )
    full.goal = min(SQL_RATIO * raw.seconds, frame.seconds)
    vs_sql, vs_pandas = full.seconds / raw.seconds, full.seconds / frame.seconds
    full.note = (
        f"{rewritten:,} snapshots written (nodes that moved); {vs_sql:.2f}x raw SQL (goal <= {SQL_RATIO}x: "
        f"{'ok' if vs_sql <= SQL_RATIO else 'MISSED'}), {vs_pandas:.2f}x pandas (goal < 1x: "
        f"{'ok' if vs_pandas < 1 else 'MISSED'}); {_runs(full)}"
    )
    timings.append(full)
    return timings


# --- the three computations, in cents --------------------------------------------------------------


def _runs(timing: Timing) -> str:
    return f"median of {len(timing.extra['runs'])} runs: " + ", ".join(f"{x:.2f}" for x in timing.extra["runs"]) + " s"


def _cents(value) -> int:
    return int((Decimal(value) * 100).to_integral_value())


def snapshot_cents(plan) -> dict[int, tuple[int, int, int]]:
    """The engine's figures now: each node's latest row (the figures of its newest snapshot)."""
    from targets.models import LatestAttainment

    rows = LatestAttainment.objects.filter(node__plan=plan).values_list(
        "node_id", "actual", "weighted_pipeline", "open_pipeline"
    )
    return {node: (_cents(a), _cents(w), _cents(o)) for node, a, w, o in rows}


def sql_cents(plan, as_of) -> dict[int, tuple[int, int, int]]:
    """The raw SQL, tuned as a person writing it would: JIT off (compiling this statement takes 3-6 s
    here, more than running it) and the work_mem the engine gives itself (64 MB: no sort spills to disk)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(SQL, {"plan": plan.pk, "start": plan.period_start, "end": plan.period_end, "as_of": as_of})
        return {node: (_cents(a), _cents(w), _cents(o)) for node, a, w, o in cursor.fetchall()}


def export_csv(plan, folder: Path) -> tuple[Path, Path]:
    from django.db import connection

    paths = folder / "facts.csv", folder / "nodes.csv"
    with connection.cursor() as cursor:
        for statement, path in zip((FACTS_CSV, NODES_CSV.format(plan=int(plan.pk))), paths, strict=True):
            with path.open("wb") as out, cursor.copy(statement) as copy:
                for block in copy:
                    out.write(block)
    return paths


def pandas_cents(facts_csv, nodes_csv, start, end, as_of) -> tuple[dict[int, tuple[int, int, int]], float]:
    """The plain pandas script: what an analyst would write against the CSV export (and its read_csv time)."""
    started = time.perf_counter()
    facts = pd.read_csv(
        facts_csv,
        parse_dates=["closed_on", "expected_close_date", "first_won_on"],
        true_values=["t"],
        false_values=["f"],
    )
    nodes = pd.read_csv(
        nodes_csv,
        parse_dates=["period_start", "period_end"],
        keep_default_na=False,
        na_values={"rep_id": [""], "region_path": [""]},
    )
    read = time.perf_counter() - started

    start, end, as_of = pd.Timestamp(start), pd.Timestamp(end), pd.Timestamp(as_of)
    facts["day"] = facts["closed_on"].where(facts["is_won"], facts["expected_close_date"])
    facts = facts[
        (facts["is_won"] & facts["day"].between(start, as_of))
        | (~facts["is_won"] & ~facts["is_lost"] & facts["day"].between(start, end))
    ].copy()
    facts["segment"] = np.where(facts["first_won_on"] < facts["day"], "existing", "new")
    cents = (facts["amount_company"] * 100).round().astype("int64")
    facts["actual"] = cents.where(facts["is_won"], 0)
    facts["open_pipeline"] = cents.where(~facts["is_won"], 0)
    facts["weighted_pipeline"] = ((cents * facts["probability"] + 50) // 100).where(~facts["is_won"], 0)

    leaves = nodes[nodes["split_dimension"] == ""]
    pairs = facts.merge(leaves, left_on=["owner_id", "segment"], right_on=["rep_id", "segment"])
    pairs = pairs[pairs["day"].between(pairs["period_start"], pairs["period_end"])]
    # The owner's team inside the leaf's region: decided once per distinct (team, region) pair.
    regions = pairs[["owner_path", "region_path"]].drop_duplicates()
    regions["inside"] = [o.startswith(r) for o, r in zip(regions["owner_path"], regions["region_path"], strict=True)]
    inside = pairs.merge(regions, on=["owner_path", "region_path"], how="left")["inside"].to_numpy()
    columns = ["actual", "weighted_pipeline", "open_pipeline"]
    per_leaf = pairs[inside].groupby("path")[columns].sum()
    per_leaf = per_leaf.reindex(leaves["path"], fill_value=0)

    # Inner nodes: each leaf's figures added to every prefix of its path ("0001." per level).
    depth = per_leaf.index.str.len().max() // PATH_STEP
    prefixes = [per_leaf.set_axis(per_leaf.index.str[: PATH_STEP * k]) for k in range(1, depth + 1)]
    stacked = pd.concat(prefixes)
    stacked = stacked[stacked.index.isin(nodes["path"])]
    totals = stacked.groupby(level=0).sum()
    totals = totals.join(nodes.set_index("path")["id"])
    ids, *figures = (totals[c].to_numpy().tolist() for c in ["id", *columns])
    result = dict(zip(ids, zip(*figures, strict=True), strict=True))
    return result, read


def mismatches(expected: dict, actual: dict) -> list:
    keys = expected.keys() | actual.keys()
    return sorted((k, expected.get(k), actual.get(k)) for k in keys if expected.get(k) != actual.get(k))


# --- e. incremental ------------------------------------------------------------------------------


def incremental(company, plan, today) -> list[Timing]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pipeline.models import Opportunity, Stage
    from pipeline.services import opportunity_move_stage
    from salesmgmt.models import OutboxTask
    from targets.tasks import recompute_for_deal

    won = Stage.objects.get(pk=company.won_stage_id)
    candidates = list(
        Opportunity.objects.filter(
            stage_id__in=company.open_stage_ids, expected_close_date__range=(today, plan.period_end)
        )
        .order_by("id")
        .values_list("id", "owner_id")
    )
    first_of_owner = {}
    for deal_id, owner_id in candidates:
        first_of_owner.setdefault(owner_id, deal_id)
    chosen = random.Random(7).sample(sorted(first_of_owner.values()), min(INCREMENTAL_DEALS, len(first_of_owner)))

    seconds, queries, touched_owners = [], [], set()
    with held_dispatch():
        deals = Opportunity.objects.select_related("owner").in_bulk(chosen)
        for deal in (deals[pk] for pk in chosen):
            OutboxTask.objects.filter(name="targets.recompute_for_deal").delete()
            opportunity_move_stage(opportunity=deal, stage=won, actor=deal.owner, closed_on=today)
            touched_owners.add(deal.owner_id)
            # The task exactly as the change enqueued it (with where the deal counted before).
            args = OutboxTask.objects.get(name="targets.recompute_for_deal").args
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                recompute_for_deal(*args)
                seconds.append(time.perf_counter() - started)
            queries.append(len(captured))

    # incremental == full: every snapshot against a fresh full computation (the raw SQL).
    started = time.perf_counter()
    fresh = sql_cents(plan, today)
    stored = snapshot_cents(plan)
    diff = mismatches(fresh, stored)
    check = Timing(
        name=f"attainment: incremental == full after the {len(seconds)} wins (every node)",
        seconds=time.perf_counter() - started,
        note=f"all {len(stored):,} snapshots equal a fresh full computation",
    )
    if diff:
        actual = sum(1 for _node, full, inc in diff if (full or (None,))[0] != (inc or (None,))[0])
        check.goal = 0.0  # flag it in the table
        check.note = (
            f"NOT EQUAL on {len(diff):,} nodes ({actual:,} in the actual, {len(diff) - actual:,} in the pipeline only)"
        )
        print(f"incremental != full on {len(diff):,} nodes, e.g. (node, full, incremental): {diff[:3]}", flush=True)
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    timing = Timing(
        name=f"attainment: incremental after a deal is won (p95 of {len(seconds)} deals)",
        seconds=p95,
        queries=int(statistics.median(queries)),
        goal=INCREMENTAL_P95,
        note=(
            f"recompute_for_deal alone: p50 {statistics.median(seconds) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms; {len(touched_owners)} reps; median queries"
        ),
    )
    return [timing, check]
