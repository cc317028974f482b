"""PostgreSQL writes a whole plan's snapshots in one SQL statement; it must equal the portable reference
(`compute_actuals`, the Python router) to the cent, for every metric source and every shape of plan."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from pipeline.services import collection_create, opportunity_move_stage
from targets.attainment.reference import compute_actuals
from targets.attainment.services import attainment_recompute
from targets.attainment.sql import has_later_day
from targets.models import AttainmentSnapshot, LatestAttainment
from targets.services import plan_create, target_split, target_split_leaves
from tests.factories import CustomerFactory, make_deal
from tests.targets.attainment.test_recompute import build_plan, snapshots, won_stage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's; SQLite uses the reference"
)
AS_OF = date(2027, 9, 15)

SHAPES = [
    ("won_revenue", ("region", "rep", "month", "segment")),
    ("won_revenue", ("product_line", "region", "quarter")),
    ("won_revenue", ("region",)),
    ("gross_margin", ("product_line", "rep")),
    ("key_product_share", ("region", "product")),
    ("collections", ("region", "rep", "month")),
    ("new_customers", ("region", "quarter")),
]


@pytest.fixture
def many_facts(org, catalogue):
    """Deals of every rep over the year with lines, cents, several probabilities, segments and payments."""
    won = won_stage(org)
    stages = [s for s in org.stages if not s.is_won and not s.is_lost]
    reps = [org.rep, org.rep_same_team, org.rep_js, org.rep_other]
    products = [catalogue["rack"], catalogue["blade"], catalogue["erp"]]
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        for i in range(36):
            rep = reps[i % len(reps)]
            customer = CustomerFactory(owner=rep, region=rep.region) if i % 3 else None
            day = date(2027, 1 + i % 12, 1 + (7 * i) % 27)
            product = products[i % 3]
            lines = [
                {
                    "product": product,
                    "quantity": Decimal(1 + i % 2),
                    "amount": Decimal(f"{100 + 37 * i}.{i % 100:02d}"),
                },
                {"product_line": catalogue["software"], "amount": Decimal(f"{55 + i}.05")},
            ]
            if day <= AS_OF and i % 4 != 3:
                deal = make_deal(owner=rep, customer=customer, amount="0", stage=won, close=day, lines=lines)
                if i % 5 == 0:
                    collection_create(opportunity=deal, received_on=day, amount=Decimal("33.33"), actor=rep)
            else:
                deal = make_deal(owner=rep, customer=customer, amount="0", close=day, lines=lines)
                stage = stages[i % len(stages)]
                if stage != deal.stage and not stage.evidence_required:
                    opportunity_move_stage(opportunity=deal, stage=stage, actor=rep)


def _figures(nodes, reference) -> dict:
    """The reference's (actual, weighted pipeline, open pipeline) of every node."""
    triples = {pk: (f.actual, f.weighted_pipeline, f.open_pipeline) for pk, f in reference.items()}
    return {n["id"]: triples[n["id"]] for n in nodes}


@pytest.mark.parametrize(("metric", "dimensions"), SHAPES)
def test_the_sql_path_equals_the_reference(org, metrics, many_facts, metric, dimensions):
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        plan = build_plan(org, metrics[metric], dimensions=dimensions)
        written = attainment_recompute(plan=plan, as_of=AS_OF)
        nodes, reference = compute_actuals(plan, AS_OF)
    assert written == len(nodes) == plan.nodes.count()
    stored = {
        s.node_id: (s.actual, s.weighted_pipeline, s.open_pipeline, s.target)
        for s in AttainmentSnapshot.objects.filter(node__plan=plan, as_of=AS_OF)
    }
    figures = _figures(nodes, reference)
    assert stored == {n["id"]: (*figures[n["id"]], n["amount"]) for n in nodes}
    root = plan.nodes.get(depth=0).pk
    assert stored[root][0] != 0  # the data exercises the metric at all
    if metric in ("won_revenue", "key_product_share"):
        assert stored[root][2] > 0 and stored[root][1] > 0  # and the pipeline


def test_a_ragged_plan_equals_the_reference(org, metrics, many_facts):
    """Leaves at several depths and of overlapping periods (months under one region, quarters under another,
    a region left whole): the day calendar maps a day to each period holding it and the level-by-level
    roll-up adds every leaf once at each of its ancestors."""
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        plan = plan_create(
            metric=metrics["won_revenue"], period_key="FY2027", total="1200000", owner=org.director, actor=org.director
        )
        root = plan.nodes.get()
        target_split(node=root, dimension="region", method="equal", actor=org.director)
        regions = list(root.children.order_by("path"))
        assert len(regions) >= 2
        target_split(node=regions[0], dimension="rep", method="equal", actor=org.director)
        target_split_leaves(node=regions[0], dimension="month", method="equal", actor=org.director)
        target_split(node=regions[1], dimension="quarter", method="equal", actor=org.director)
        attainment_recompute(plan=plan, as_of=AS_OF)
        nodes, reference = compute_actuals(plan, AS_OF)
    leaves = plan.nodes.leaves()
    assert len({len(p) for p in leaves.values_list("path", flat=True)}) >= 2  # ragged indeed
    assert {"month", "quarter"} <= set(leaves.values_list("period_kind", flat=True))
    stored = {
        s.node_id: (s.actual, s.weighted_pipeline, s.open_pipeline)
        for s in AttainmentSnapshot.objects.filter(node__plan=plan, as_of=AS_OF)
    }
    assert stored == _figures(nodes, reference)
    assert stored[root.pk][0] != 0 and stored[root.pk][2] != 0


def test_days_between_leaf_periods_count_nowhere(org, metrics, many_facts):
    """Leaf periods that do not tile the year (each month leaf cut to its first ten days): the binary search
    in the period starts must not give a day after a period's end to that period."""
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep", "month"))
        attainment_recompute(plan=plan, as_of=AS_OF)
        whole_year = LatestAttainment.objects.get(node__plan=plan, node__depth=0).actual
        months = plan.nodes.leaves()
        for leaf in months:
            months.filter(pk=leaf.pk).update(period_end=leaf.period_start + timedelta(days=9))
        attainment_recompute(plan=plan, as_of=AS_OF + timedelta(days=1))
        nodes, reference = compute_actuals(plan, AS_OF + timedelta(days=1))
    latest = {r.node_id: (r.actual, r.weighted_pipeline, r.open_pipeline) for r in LatestAttainment.objects.all()}
    assert latest == _figures(nodes, reference)
    root = plan.nodes.get(depth=0).pk
    assert 0 < latest[root][0] < whole_year  # some deals closed in the gaps, some in the periods


def _newest(plan, day):
    """Each node's newest snapshot on or before `day` (computed apart from the engine), as a tuple."""
    return {
        pk: (s.as_of, s.actual, s.weighted_pipeline, s.open_pipeline, s.target)
        for pk, s in snapshots(plan, day).items()
    }


def _reference(plan, day):
    nodes, reference = compute_actuals(plan, day)
    return {n["id"]: (reference[n["id"]].actual, reference[n["id"]].weighted_pipeline) for n in nodes}


def test_the_statement_writes_only_what_changed_and_keeps_the_latest_rows(org, metrics, many_facts):
    """A rebuild on a later day writes a snapshot (and a latest row) only for the nodes whose figures moved; a
    backfill of an earlier day compares with that day's figures and never overwrites a newer latest row."""
    later, earlier = AS_OF + timedelta(days=1), AS_OF - timedelta(days=3)
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep", "month"))
        assert attainment_recompute(plan=plan, as_of=AS_OF) == plan.nodes.count()
        before = _reference(plan, AS_OF)
        make_deal(owner=org.rep_js, amount="123.45", stage=won_stage(org), close=AS_OF - timedelta(days=5))
        after = _reference(plan, later)
    moved = {pk for pk in after if after[pk] != before[pk]}
    assert len(moved) == 4  # the September leaf, the rep, the region, the root

    assert attainment_recompute(plan=plan, as_of=later) == len(moved)
    assert set(AttainmentSnapshot.objects.filter(as_of=later).values_list("node_id", flat=True)) == moved
    newest = _newest(plan, later)
    assert {pk: row[1:3] for pk, row in newest.items()} == after
    latest = {
        r.node_id: (r.as_of, r.actual, r.weighted_pipeline, r.open_pipeline, r.target)
        for r in LatestAttainment.objects.filter(node__plan=plan)
    }
    assert latest == newest
    assert attainment_recompute(plan=plan, as_of=later) == 0  # once more: nothing to write

    # A backfill three days earlier: no snapshot is that old, so every node gets one, with that day's figures.
    assert attainment_recompute(plan=plan, as_of=earlier) == plan.nodes.count()
    assert {pk: row[1:3] for pk, row in _newest(plan, earlier).items()} == _reference(plan, earlier)
    assert {r.node_id: r.as_of for r in LatestAttainment.objects.filter(node__plan=plan)} == {
        pk: row[0] for pk, row in newest.items()
    }


def test_the_recompute_puts_the_planner_settings_back(org, metrics, many_facts):
    """The recompute steers the planner (no nested loops, joins in written order) for its own queries only:
    whatever runs after it in the same transaction is planned as usual."""
    names = ("enable_nestloop", "join_collapse_limit", "work_mem", "jit")
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        before = cursor.fetchone()
        with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
            plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep", "month"))
            assert attainment_recompute(plan=plan, as_of=AS_OF) == plan.nodes.count()
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        assert cursor.fetchone() == before
    assert before[0] == "on"


def test_a_later_day_is_found_for_its_plan_only(org, metrics, many_facts):
    """`has_later_day` (whether a recompute is a backfill) answers for the plan asked about: a later day of
    another plan's node does not count, one of its own does, on the as_of index."""
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep"))
        other = build_plan(org, metrics["gross_margin"], dimensions=("region",))
        attainment_recompute(plan=plan, as_of=AS_OF)
        attainment_recompute(plan=other, as_of=AS_OF + timedelta(days=2))
    assert not has_later_day(plan, AS_OF)
    assert has_later_day(other, AS_OF + timedelta(days=1))
    assert not has_later_day(other, AS_OF + timedelta(days=2))
    LatestAttainment.objects.filter(node=plan.nodes.leaves().first()).update(as_of=AS_OF + timedelta(days=7))
    assert has_later_day(plan, AS_OF + timedelta(days=6))
    assert not has_later_day(plan, AS_OF + timedelta(days=7))
