"""Incremental recompute: open-deal changes move the pipeline figures, only touched nodes are written,
incremental equals a full rebuild, and the fact router matches leaves exactly like a brute-force check."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.services import opportunity_move_stage, opportunity_update
from targets.attainment.reference import Router
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot, LatestAttainment
from targets.tasks import recompute_for_deal
from tests.factories import make_deal
from tests.targets.attainment.test_recompute import build_plan, node, snapshots, won_stage

TODAY = date(2027, 3, 15)


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


FIGURES = ("actual", "weighted_pipeline", "open_pipeline")


def figures(plan, as_of=TODAY):
    return {k: tuple(getattr(s, f) for f in FIGURES) for k, s in snapshots(plan, as_of).items()}


def test_open_deal_changes_move_the_pipeline_and_winning_moves_it_to_actual(
    org, metrics, frozen, django_capture_on_commit_callbacks
):
    plan = build_plan(org, metrics["won_revenue"])
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 20))  # open, first stage
    attainment_recompute(plan=plan)
    march, may = node(plan, rep=org.rep, month=3).pk, node(plan, rep=org.rep, month=5).pk
    east, root = node(plan, region=org.east).pk, plan.nodes.get(depth=0).pk
    p = Decimal(org.stages[0].probability)
    assert figures(plan)[march] == (Decimal("0"), 1000 * p / 100, Decimal("1000"))

    # A bigger amount: the March leaf and its ancestors follow.
    with django_capture_on_commit_callbacks(execute=True):
        deal = opportunity_update(opportunity=deal, data={"amount": Decimal("3000")}, actor=org.rep)
    after = figures(plan)
    for pk in (march, east, root):
        assert after[pk] == (Decimal("0"), 3000 * p / 100, Decimal("3000"))

    # Expected in May now: March loses it, May gains it.
    with django_capture_on_commit_callbacks(execute=True):
        deal = opportunity_update(opportunity=deal, data={"expected_close_date": date(2027, 5, 10)}, actor=org.rep)
    after = figures(plan)
    assert after[march] == (Decimal("0"), Decimal("0"), Decimal("0"))
    assert after[may] == (Decimal("0"), 3000 * p / 100, Decimal("3000"))
    assert after[root][2] == Decimal("3000")

    # Won today: out of May's pipeline, into March's actual.
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_move_stage(
            opportunity=deal, stage=won_stage(org), actor=org.rep, evidence="Signed contract", closed_on=TODAY
        )
    after = figures(plan)
    assert after[may] == (Decimal("0"), Decimal("0"), Decimal("0"))
    assert after[march] == (Decimal("3000"), Decimal("0"), Decimal("0"))
    assert after[root] == (Decimal("3000"), Decimal("0"), Decimal("0"))

    # Everything the incremental steps wrote equals a rebuild from the facts.
    attainment_recompute(plan=plan)
    assert figures(plan) == after


def test_incremental_writes_only_the_changed_leaves_and_ancestors_in_flat_queries(org, metrics, frozen):
    small = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep"))
    large = build_plan(org, metrics["won_revenue"], "FY2027-Q1", dimensions=("region", "rep", "month", "segment"))
    assert large.nodes.count() > 5 * small.nodes.count()
    attainment_recompute()
    counts, written = [], []
    for amount in ("250", "40"):
        deal = make_deal(owner=org.rep_js, amount=amount, stage=won_stage(org), close=date(2027, 3, 10))
        with CaptureQueriesContext(connection) as ctx:
            written.append(recompute_for_deal(deal.pk))
        counts.append(len(ctx.captured_queries))
    # Each call touches both plans and writes the same nodes: the same queries, whatever the plans' sizes.
    assert counts[0] == counts[1]
    # rep_js's nodes: small plan rep leaf + East + root (3); large: the March leaf of the deal's segment,
    # its month node, the rep, East and root (5; the other segment's leaf is recomputed but unchanged).
    assert written == [3 + 5, 3 + 5]
    # Delivered twice: nothing changed, nothing written.
    assert recompute_for_deal(deal.pk) == 0
    assert AttainmentSnapshot.objects.filter(node__plan=large, as_of=TODAY).count() == large.nodes.count()
    snaps = snapshots(large, TODAY)
    assert snaps[large.nodes.get(depth=0).pk].actual == Decimal("290")


def test_after_yesterdays_rebuild_an_incremental_recompute_writes_today_only_what_changed(org, metrics, frozen):
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan, as_of=TODAY - timedelta(days=1))  # yesterday's rebuild only
    deal = make_deal(owner=org.rep, amount="70", stage=won_stage(org), close=date(2027, 3, 14))
    assert recompute_for_deal(deal.pk) == 4
    today = set(AttainmentSnapshot.objects.filter(node__plan=plan, as_of=TODAY).values_list("node_id", flat=True))
    root = plan.nodes.get(depth=0).pk
    assert today == {
        node(plan, rep=org.rep, month=3).pk,
        node(plan, rep=org.rep).pk,
        node(plan, region=org.east).pk,
        root,
    }
    snaps = snapshots(plan, TODAY)
    assert len(snaps) == plan.nodes.count()
    assert snaps[plan.nodes.get(depth=0).pk].actual == Decimal("70")
    assert snaps[node(plan, rep=org.rep_other).pk].actual == Decimal("0")
    # Today's figures equal a rebuild from the facts (which then writes nothing).
    before = figures(plan)
    assert attainment_recompute(plan=plan) == 0
    assert figures(plan) == before


def test_a_node_without_any_snapshot_makes_the_incremental_recompute_rebuild_the_plan(org, metrics, frozen):
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan)
    root = plan.nodes.get(depth=0)
    AttainmentSnapshot.objects.filter(node=root).delete()  # as for a node added since the last rebuild
    LatestAttainment.objects.filter(node=root).delete()
    deal = make_deal(owner=org.rep, amount="70", stage=won_stage(org), close=date(2027, 3, 14))
    recompute_for_deal(deal.pk)
    snaps = snapshots(plan, TODAY)
    assert len(snaps) == plan.nodes.count()
    assert snaps[plan.nodes.get(depth=0).pk].actual == Decimal("70")


# --- the router, against brute force -------------------------------------------------------------

# A small region tree: 1 is the root; 2, 3 under it; 4, 5 under 2; 6 under 4.
PATHS = {1: (1,), 2: (1, 2), 3: (1, 3), 4: (1, 2, 4), 5: (1, 2, 5), 6: (1, 2, 4, 6)}
MONTHS = [(date(2027, m, 1), date(2027, m + 1, 1) - timedelta(days=1)) for m in range(1, 12)]
PERIODS = [*MONTHS, (date(2027, 1, 1), date(2027, 3, 31)), (date(2027, 1, 4), date(2027, 1, 10))]

leaf_strategy = st.fixed_dictionaries(
    {
        "region_id": st.sampled_from([None, *PATHS]),
        "rep_id": st.sampled_from([None, 10, 11, 12]),
        "segment": st.sampled_from(["", "existing", "new"]),
        "product_line_id": st.sampled_from([None, 20, 21]),
        "period": st.sampled_from(PERIODS),
    }
)
fact_strategy = st.fixed_dictionaries(
    {
        "region": st.sampled_from([(), *PATHS.values()]),
        "rep_id": st.sampled_from([10, 11, 12]),
        "segment": st.sampled_from(["existing", "new"]),
        "product_line_id": st.sampled_from([None, 20, 21]),
        "day": st.dates(date(2026, 12, 25), date(2027, 12, 5)),
    }
)


def brute_force(leaves, fact):
    return sorted(
        i
        for i, leaf in enumerate(leaves)
        if leaf["period_start"] <= fact["day"] <= leaf["period_end"]
        and (leaf["region_id"] is None or leaf["region_id"] in fact["region"])
        and (leaf["rep_id"] is None or leaf["rep_id"] == fact["rep_id"])
        and (not leaf["segment"] or leaf["segment"] == fact["segment"])
        and (leaf["product_line_id"] is None or leaf["product_line_id"] == fact["product_line_id"])
    )


@settings(max_examples=300, deadline=None)
@given(raw_leaves=st.lists(leaf_strategy, min_size=1, max_size=25), facts=st.lists(fact_strategy, max_size=25))
def test_the_router_finds_exactly_the_leaves_brute_force_finds(raw_leaves, facts):
    leaves = [
        {
            **{k: v for k, v in leaf.items() if k != "period"},
            "period_start": leaf["period"][0],
            "period_end": leaf["period"][1],
        }
        for leaf in raw_leaves
    ]
    varying = ["region_id", "product_line_id", "rep_id", "segment"]
    router = Router(leaves, varying, depths={pk: len(path) for pk, path in PATHS.items()})
    for fact in facts:
        values = {
            "region_id": fact["region"],
            "rep_id": fact["rep_id"],
            "segment": fact["segment"],
            "product_line_id": fact["product_line_id"],
        }
        assert sorted(router.match(values, fact["day"])) == brute_force(leaves, fact)


@pytest.mark.parametrize("deleted_region", [True, False])
def test_a_leaf_of_an_unknown_region_matches_nothing(deleted_region):
    leaves = [
        {
            "region_id": 99 if deleted_region else 2,
            "rep_id": None,
            "segment": "",
            "product_line_id": None,
            "period_start": date(2027, 1, 1),
            "period_end": date(2027, 12, 31),
        },
    ]
    router = Router(leaves, ["region_id"], depths={2: 2})
    found = list(router.match({"region_id": (1, 2, 4)}, date(2027, 6, 1)))
    assert found == ([] if deleted_region else [0])


def test_a_first_win_moves_the_customers_other_deals_to_existing_and_incremental_equals_full(
    org, metrics, frozen, django_capture_on_commit_callbacks
):
    from tests.factories import CustomerFactory

    plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep", "month", "segment"))
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    first = make_deal(owner=org.rep, customer=customer, amount="500", close=date(2027, 3, 20))
    make_deal(owner=org.rep_same_team, customer=customer, amount="800", close=date(2027, 5, 10))  # open, "new"
    attainment_recompute(plan=plan)
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_move_stage(
            opportunity=first, stage=won_stage(org), actor=org.rep, evidence="Signed contract", closed_on=TODAY
        )
    incremental = figures(plan)
    may = plan.nodes.filter(rep=org.rep_same_team, period_start__month=5, split_dimension="")
    existing, new = may.get(segment="existing").pk, may.get(segment="new").pk
    assert incremental[existing][2] == Decimal("800") and incremental[new][2] == Decimal("0")
    attainment_recompute(plan=plan)
    assert figures(plan) == incremental
