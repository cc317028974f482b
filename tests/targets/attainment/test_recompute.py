"""Attainment snapshots: leaves from the facts, roll-ups, incremental recompute through the outbox, time progress."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import CompanySettings
from pipeline.services import collection_create, opportunity_move_stage
from targets.attainment.reference import derive
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot
from targets.services import plan_approve, plan_create, plan_submit, target_split, target_split_leaves
from tests.factories import make_deal


def won_stage(org):
    return next(s for s in org.stages if s.is_won)


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


def build_plan(org, metric, period_key="FY2027", *, dimensions=("region", "rep", "month")):
    plan = plan_create(metric=metric, period_key=period_key, total="1200000", owner=org.director, actor=org.director)
    root = plan.nodes.get()
    target_split(node=root, dimension=dimensions[0], method="equal", actor=org.director)
    for dimension in dimensions[1:]:
        target_split_leaves(node=root, dimension=dimension, method="equal", actor=org.director)
    return plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)


def snapshots(plan, as_of):
    """The plan's figures on `as_of`: each node's newest snapshot on or before that day (a snapshot holds
    until the node's figures change)."""
    rows = {}
    for s in AttainmentSnapshot.objects.filter(node__plan=plan, as_of__lte=as_of).order_by("as_of"):
        rows[s.node_id] = s
    return rows


def node(plan, *, rep=None, region=None, month=None):
    qs = plan.nodes.all()
    if rep is not None:
        qs = qs.filter(rep=rep)
    if region is not None:
        qs = qs.filter(region=region, rep__isnull=True, period_kind="year")
    if month is not None:
        qs = qs.filter(period_kind="month", period_start__month=month)
    elif rep is not None:
        qs = qs.filter(period_kind="year")
    return qs.get()


@pytest.fixture
def facts(org):
    """FY2027 won deals: rep 300 (March) and 50 (May), rep_js 100 (March), rep_other 600 (March);
    an open deal of rep expected in March, a lost one, and a won one of the year before."""
    won = won_stage(org)
    make_deal(owner=org.rep, amount="300", stage=won, close=date(2027, 3, 2))
    make_deal(owner=org.rep, amount="50", stage=won, close=date(2027, 5, 2))
    make_deal(owner=org.rep_js, amount="100", stage=won, close=date(2027, 3, 3))
    make_deal(owner=org.rep_other, amount="600", stage=won, close=date(2027, 3, 4))
    make_deal(owner=org.rep, amount="2000", close=date(2027, 3, 20))  # open, first stage (10 %)
    make_deal(owner=org.rep, amount="999", stage=won, close=date(2026, 12, 31))
    lost = next(s for s in org.stages if s.is_lost)
    lost_deal = make_deal(owner=org.rep, amount="777", close=date(2027, 3, 5))
    opportunity_move_stage(
        opportunity=lost_deal, stage=lost, actor=org.rep, lost_reason="Price", closed_on=date(2027, 3, 5)
    )


def test_full_recompute_counts_facts_per_leaf_and_rolls_up(org, metrics, facts, frozen):
    plan = build_plan(org, metrics["won_revenue"])
    # Facts after the as_of day (the rep's May deal) do not count yet.
    attainment_recompute(plan=plan, as_of=date(2027, 3, 31))
    snaps = snapshots(plan, date(2027, 3, 31))
    assert snaps[node(plan, rep=org.rep, month=3).pk].actual == Decimal("300")
    assert snaps[node(plan, rep=org.rep, month=5).pk].actual == Decimal("0")
    assert snaps[node(plan, rep=org.rep).pk].actual == Decimal("300")
    assert snaps[node(plan, rep=org.rep_js, month=3).pk].actual == Decimal("100")
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("400")
    assert snaps[node(plan, region=org.north).pk].actual == Decimal("600")
    root = plan.nodes.get(depth=0)
    assert snaps[root.pk].actual == Decimal("1000")
    assert snaps[root.pk].target == Decimal("1200000")
    # Pipeline: the open March deal of rep, at the first stage's probability.
    march = snaps[node(plan, rep=org.rep, month=3).pk]
    probability = org.stages[0].probability
    assert march.open_pipeline == Decimal("2000")
    assert march.weighted_pipeline == Decimal(2000 * probability) / 100
    assert snaps[root.pk].open_pipeline == Decimal("2000")

    # All approved plans, another day: a second snapshot only for the nodes whose figures moved (the May
    # deal: its month, the rep, East and the root); the others' March figures hold.
    written = attainment_recompute(as_of=date(2027, 5, 31))
    assert snapshots(plan, date(2027, 5, 31))[node(plan, rep=org.rep).pk].actual == Decimal("350")
    may_rows = set(
        AttainmentSnapshot.objects.filter(node__plan=plan, as_of=date(2027, 5, 31)).values_list("node_id", flat=True)
    )
    moved = {node(plan, rep=org.rep, month=5).pk, node(plan, rep=org.rep).pk, node(plan, region=org.east).pk, root.pk}
    assert may_rows == moved and written == len(moved)
    assert AttainmentSnapshot.objects.filter(node__plan=plan).count() == plan.nodes.count() + len(moved)
    assert snapshots(plan, date(2027, 5, 31))[node(plan, rep=org.rep_js).pk].actual == Decimal("100")
    # A day in between reads the March figures; a backfill of it writes nothing new and leaves May's alone.
    assert attainment_recompute(plan=plan, as_of=date(2027, 4, 15)) == 0
    assert snapshots(plan, date(2027, 5, 31))[root.pk].actual == Decimal("1050")


def test_weighted_pipeline_is_rounded_once_per_leaf_not_per_deal_or_probability(org, metrics, frozen):
    # Two open March deals of 0.05 at 10 % and 30 %: 0.005 + 0.015 = 0.02, rounded once. Rounded per deal (or
    # per probability) it would be 0.01 + 0.02 = 0.03. The pipeline board rounds the same way.
    for probability in (10, 30):
        make_deal(
            owner=org.rep,
            amount="0.05",
            close=date(2027, 3, 20),
            probability=probability,
            probability_reason="Test",
        )
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan, as_of=date(2027, 3, 15))
    snaps = snapshots(plan, date(2027, 3, 15))
    march = snaps[node(plan, rep=org.rep, month=3).pk]
    assert (march.open_pipeline, march.weighted_pipeline) == (Decimal("0.10"), Decimal("0.02"))
    assert snaps[plan.nodes.get(depth=0).pk].weighted_pipeline == Decimal("0.02")


def test_a_deal_counts_for_its_owners_team_not_its_booking_region(org, metrics, frozen):
    # The rep of Shanghai books a deal for a Beijing customer: it counts for East.
    from tests.factories import CustomerFactory

    customer = CustomerFactory(owner=org.rep, region=org.bj)
    make_deal(owner=org.rep, customer=customer, amount="500", stage=won_stage(org), close=date(2027, 2, 1))
    plan = build_plan(org, metrics["won_revenue"], dimensions=("region",))
    attainment_recompute(plan=plan, as_of=date(2027, 3, 15))
    snaps = snapshots(plan, date(2027, 3, 15))
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("500")
    assert snaps[node(plan, region=org.north).pk].actual == Decimal("0")


def test_recompute_twice_equals_once(org, metrics, facts, frozen):
    plan = build_plan(org, metrics["won_revenue"])
    first = attainment_recompute(plan=plan)
    rows = sorted(AttainmentSnapshot.objects.values_list("node_id", "as_of", "actual", "open_pipeline"))
    second = attainment_recompute(plan=plan)
    assert first == plan.nodes.count() == len(rows)
    assert second == 0  # nothing changed: nothing written
    assert sorted(AttainmentSnapshot.objects.values_list("node_id", "as_of", "actual", "open_pipeline")) == rows


def test_winning_a_deal_updates_exactly_its_leaf_and_ancestors_through_the_outbox(
    org, metrics, facts, frozen, django_capture_on_commit_callbacks
):
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan)  # today's snapshots of every node (the nightly reconcile)
    today = date(2027, 3, 15)
    before = {k: (s.actual, s.computed_at) for k, s in snapshots(plan, today).items()}
    deal = make_deal(owner=org.rep_js, amount="250", close=date(2027, 3, 10))

    frozen.shift(timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_move_stage(
            opportunity=deal, stage=won_stage(org), actor=org.rep_js, evidence="Signed contract", closed_on=today
        )
    after = {k: (s.actual, s.computed_at) for k, s in snapshots(plan, today).items()}
    touched = {k for k in after if after[k][1] != before[k][1]}
    root = plan.nodes.get(depth=0)
    expected = {
        node(plan, rep=org.rep_js, month=3).pk,
        node(plan, rep=org.rep_js).pk,
        node(plan, region=org.east).pk,
        root.pk,
    }
    assert touched == expected
    for pk in expected:
        assert after[pk][0] == before[pk][0] + Decimal("250")
    assert after[root.pk][0] == Decimal("1250")
    assert {k: v for k, v in after.items() if k not in expected} == {
        k: v for k, v in before.items() if k not in expected
    }
    # Incremental equals a full rebuild.
    attainment_recompute(plan=plan)
    assert {k: s.actual for k, s in snapshots(plan, today).items()} == {k: v[0] for k, v in after.items()}


def test_a_collection_updates_a_collections_plan_through_the_outbox(
    org, metrics, frozen, django_capture_on_commit_callbacks
):
    deal = make_deal(owner=org.rep_other, amount="1000", stage=won_stage(org), close=date(2027, 1, 5))
    plan = build_plan(org, metrics["collections"], dimensions=("region", "rep"))
    attainment_recompute(plan=plan)
    with django_capture_on_commit_callbacks(execute=True):
        collection_create(opportunity=deal, received_on=date(2027, 3, 1), amount=Decimal("400"), actor=org.rep_other)
    snaps = snapshots(plan, date(2027, 3, 15))
    assert snaps[node(plan, rep=org.rep_other).pk].actual == Decimal("400")
    assert snaps[node(plan, region=org.north).pk].actual == Decimal("400")
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("0")
    assert snaps[plan.nodes.get(depth=0).pk].actual == Decimal("400")


def test_new_customers_count_first_wins_in_the_period(org, metrics, facts, frozen):
    plan = build_plan(org, metrics["new_customers"], dimensions=("region",))
    attainment_recompute(plan=plan, as_of=date(2027, 12, 31))
    snaps = snapshots(plan, date(2027, 12, 31))
    # East: rep's March and May customers, rep_js's March one; the 2026 customer is not new this year.
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("3")
    assert snaps[node(plan, region=org.north).pk].actual == Decimal("1")
    assert snaps[node(plan, region=org.east).pk].open_pipeline == Decimal("0")


def weekdays(m1, d1, m2, d2) -> Decimal:
    """Mon-Fri days of 2027 from m1/d1 to m2/d2 included, counted by hand (not with numpy)."""
    start, end = date(2027, m1, d1), date(2027, m2, d2)
    return Decimal(sum(1 for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5))


def frac(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


@pytest.mark.parametrize(
    ("day", "working_days", "year_progress", "march_progress"),
    [
        ("2027-03-15", False, Decimal("0.2027"), Decimal("0.4839")),  # 74/365, 15/31
        (
            "2027-03-15",
            True,
            weekdays(1, 1, 3, 15) / weekdays(1, 1, 12, 31),
            weekdays(3, 1, 3, 15) / weekdays(3, 1, 3, 31),
        ),
        ("2027-12-31", False, Decimal("1"), Decimal("1")),
    ],
)
def test_time_progress_and_pace_at_fixed_dates(org, metrics, facts, day, working_days, year_progress, march_progress):
    company = CompanySettings.load()
    company.count_working_days = working_days
    company.save(update_fields=["count_working_days"])
    with time_machine.travel(f"{day} 12:00 +0800", tick=False):
        plan = build_plan(org, metrics["won_revenue"])
        attainment_recompute(plan=plan)
        snaps = snapshots(plan, date.fromisoformat(day))
    root = snaps[plan.nodes.get(depth=0).pk]
    march = snaps[node(plan, rep=org.rep, month=3).pk]
    year = derive(root)  # the company's setting decides calendar or working days
    assert year.time_progress == frac(year_progress)
    assert derive(march, working_days=working_days).time_progress == frac(march_progress)
    assert year.attainment == (root.actual / root.target).quantize(Decimal("0.0001"))
    assert year.pace_gap == year.attainment - frac(year_progress)
    assert year.gap == root.target - root.actual


def test_query_count_of_a_full_recompute_does_not_grow_with_the_nodes(
    org, metrics, facts, frozen, django_assert_max_num_queries
):
    small = build_plan(org, metrics["won_revenue"], "FY2027", dimensions=("region",))
    large = build_plan(org, metrics["won_revenue"], "FY2028", dimensions=("region", "rep", "month"))
    assert large.nodes.count() > 10 * small.nodes.count() // 2
    counts = []
    for plan in (small, large):
        with CaptureQueriesContext(connection) as ctx:
            attainment_recompute(plan=plan, as_of=date(2028, 12, 31))
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(counts[1]):
        attainment_recompute(plan=large, as_of=date(2028, 12, 31))


def test_handing_a_won_deal_to_another_rep_moves_it_between_their_targets(
    org, metrics, frozen, django_capture_on_commit_callbacks
):
    from pipeline.services import opportunity_update

    deal = make_deal(owner=org.rep, amount="300", stage=won_stage(org), close=date(2027, 3, 2))
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan)
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_update(opportunity=deal, data={"owner": org.rep_other}, actor=org.director)
    snaps = snapshots(plan, date(2027, 3, 15))
    assert snaps[node(plan, rep=org.rep, month=3).pk].actual == Decimal("0")
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("0")
    assert snaps[node(plan, rep=org.rep_other, month=3).pk].actual == Decimal("300")
    assert snaps[node(plan, region=org.north).pk].actual == Decimal("300")
    assert snaps[plan.nodes.get(depth=0).pk].actual == Decimal("300")


def test_gross_margin_is_line_revenue_less_product_cost_per_product_line(org, metrics, catalogue, frozen):
    rack, erp = catalogue["rack"], catalogue["erp"]  # unit cost 600 each
    won = won_stage(org)
    make_deal(
        owner=org.rep,
        amount="0",
        stage=won,
        close=date(2027, 2, 1),
        lines=[
            {"product": rack, "quantity": Decimal("2"), "amount": Decimal("2000.50")},  # margin 800.50
            {"product_line": catalogue["software"], "amount": Decimal("300")},  # no product: no cost
        ],
    )
    make_deal(owner=org.rep_other, amount="5000", stage=won, close=date(2027, 2, 2))  # no lines: no known margin
    make_deal(
        owner=org.rep_other, amount="0", stage=won, close=date(2027, 2, 3), lines=[{"product": erp, "amount": "700"}]
    )
    plan = build_plan(org, metrics["gross_margin"], dimensions=("product_line", "region"))
    attainment_recompute(plan=plan)
    snaps = snapshots(plan, date(2027, 3, 15))
    cells = {(n.product_line_id, n.region_id): snaps[n.pk].actual for n in plan.nodes.filter(depth=2)}
    servers, software = catalogue["servers"].pk, catalogue["software"].pk
    assert cells[(servers, org.east.pk)] == Decimal("800.50")
    assert cells[(software, org.east.pk)] == Decimal("300")
    assert cells[(software, org.north.pk)] == Decimal("100")
    assert cells[(servers, org.north.pk)] == Decimal("0")
    assert snaps[plan.nodes.get(depth=0).pk].actual == Decimal("1200.50")


def test_approving_a_plan_computes_its_snapshots_through_the_outbox(
    org, metrics, facts, frozen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        plan = build_plan(org, metrics["won_revenue"], dimensions=("region",))
    snaps = snapshots(plan, date(2027, 3, 15))
    assert len(snaps) == plan.nodes.count() == 3
    assert snaps[node(plan, region=org.east).pk].actual == Decimal("400")
