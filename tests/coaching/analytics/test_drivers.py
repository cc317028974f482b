"""The driver diagnosis per team and rep: the identity, the exact split of the change and of the gap to target,
targets read from the plan in force, and the scope of each role."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

from coaching.drivers import driver_review, target_gap
from pipeline.analytics import ALL, BY_OWNER, BY_REGION, drivers
from salesmgmt.lib.drivers import Drivers
from targets.models import TargetNode
from tests.coaching.analytics.conftest import Q1, Q2, WON


def replay(owners, period):
    """Facts from WON (+ the cross-rep deal) in plain Python: covered, active, deals, amount."""
    rows = [w for w in WON if w[0] in owners and period[0] <= w[3] <= period[1]]
    extra = [("rep_js", ("rep", 3), "100", date(2026, 4, 2))]
    extra = [e for e in extra if e[0] in owners and period[0] <= e[3] <= period[1]]
    active = {(w[0], w[1]) for w in rows} | {e[1] for e in extra}
    owned = {(who, i) for who in owners for i in range(4)}
    return Drivers(
        covered=len(owned | active),
        active=len(active),
        deals=len(rows) + len(extra),
        amount=sum((Decimal(w[2]) for w in rows + extra), Decimal(0)),
    )


def test_the_scope_facts_equal_a_replay_and_multiply_to_the_won_amount(org, sales):
    east = {"rep", "rep_same_team", "rep_js"}
    (row,) = drivers(org.manager, period_start=Q2[0], period_end=Q2[1], region=org.east)
    assert row.key == ALL
    assert row.now == replay(east, Q2)
    assert row.previous == replay(east, Q1)
    assert row.now.product == Fraction(row.now.amount) == Fraction("6600.55")
    assert sum(row.change) == row.now.amount - row.previous.amount


def test_per_rep_facts_and_the_change_split_exactly(org, sales):
    rows = {r.key: r for r in drivers(org.manager, period_start=Q2[0], period_end=Q2[1], by=BY_OWNER)}
    assert set(rows) == {org.rep.pk, org.rep_same_team.pk, org.rep_js.pk}
    for who in ("rep", "rep_same_team", "rep_js"):
        row = rows[getattr(org, who).pk]
        assert row.now == replay({who}, Q2), who
        assert row.previous == replay({who}, Q1), who
        assert row.now.exact and sum(row.change) == row.now.amount - row.previous.amount


def test_per_team_under_a_region_rolls_up_its_children(org, sales):
    rows = {
        r.label: r for r in drivers(org.director, period_start=Q2[0], period_end=Q2[1], by=BY_REGION, region=org.east)
    }
    assert set(rows) == {"Shanghai", "Jiangsu"}
    assert rows["Shanghai"].now.amount == Decimal("6500.55") and rows["Jiangsu"].now.amount == Decimal("100")


def test_a_rep_sees_only_himself(org, sales):
    rows = drivers(org.rep, period_start=Q2[0], period_end=Q2[1], by=BY_OWNER)
    assert [r.key for r in rows] == [org.rep.pk]
    (whole,) = drivers(org.rep, period_start=Q2[0], period_end=Q2[1])
    assert whole.now == replay({"rep"}, Q2)


def test_gap_to_target_splits_exactly_and_names_a_driver(org, approved_plan):
    (review,) = driver_review(org.manager, period_start=Q2[0], period_end=Q2[1], region=org.east)
    leaves = TargetNode.objects.filter(
        plan=approved_plan, split_dimension="", period_start=Q2[0], region__in=[org.east, org.sh, org.js]
    )
    expected = sum((n.amount for n in leaves), Decimal(0))
    assert expected > 0
    gap = review.target
    assert gap is not None and gap.target == expected
    assert gap.gap == review.row.now.amount - expected
    assert sum(gap.contributions) == gap.gap
    assert gap.main in {"covered", "active_rate", "deals_per_active", "deal_size"}
    # Every target driver grew by the same factor from last quarter's.
    ratios = [
        t / Decimal(p.numerator) * p.denominator for t, p in zip(gap.factors, review.row.previous.factors, strict=True)
    ]
    assert max(ratios) - min(ratios) < Decimal("1e-20")


def test_rep_targets_are_the_rep_quarter_cells(org, approved_plan):
    reviews = {r.row.key: r for r in driver_review(org.manager, period_start=Q2[0], period_end=Q2[1], by=BY_OWNER)}
    for rep in (org.rep, org.rep_same_team, org.rep_js):
        cell = TargetNode.objects.get(plan=approved_plan, split_dimension="", rep=rep, period_start=Q2[0])
        assert reviews[rep.pk].target.target == cell.amount
        assert sum(reviews[rep.pk].target.contributions) == reviews[rep.pk].row.now.amount - cell.amount
    # A rep reads his own target only.
    (mine,) = driver_review(org.rep, period_start=Q2[0], period_end=Q2[1])
    cell = TargetNode.objects.get(plan=approved_plan, split_dimension="", rep=org.rep, period_start=Q2[0])
    assert mine.target.target == cell.amount


def test_target_gap_when_nothing_was_sold_before():
    now = Drivers(covered=10, active=2, deals=3, amount=Decimal("900"))
    before = Drivers(covered=10, active=0, deals=0, amount=Decimal("0"))
    gap = target_gap(now, before, Decimal("1000"))
    assert sum(gap.contributions) == Decimal("-100") and gap.main is not None
    assert target_gap(before, before, Decimal("1000")).contributions is None


def test_team_targets_add_the_leaves_of_each_subtree(org, approved_plan, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        reviews = {
            r.row.label: r
            for r in driver_review(org.director, period_start=Q2[0], period_end=Q2[1], by=BY_REGION, region=org.hq)
        }
    assert set(reviews) == {"East", "North"}
    for name, team in (("East", org.east), ("North", org.north)):
        leaves = TargetNode.objects.filter(plan=approved_plan, split_dimension="", period_start=Q2[0])
        expected = sum((n.amount for n in leaves if n.region.path.startswith(team.path)), Decimal(0))
        assert expected > 0
        assert reviews[name].target.target == expected, name
        assert sum(reviews[name].target.contributions) == reviews[name].row.now.amount - expected
    # The two teams' figures add up to the company's.
    (whole,) = driver_review(org.director, period_start=Q2[0], period_end=Q2[1], region=org.hq)
    assert whole.row.now.amount == sum(r.row.now.amount for r in reviews.values())


def test_a_rep_asking_for_his_team_still_gets_his_own_target(org, approved_plan):
    (mine,) = driver_review(org.rep, period_start=Q2[0], period_end=Q2[1], region=org.sh)
    cell = TargetNode.objects.get(plan=approved_plan, split_dimension="", rep=org.rep, period_start=Q2[0])
    assert mine.target.target == cell.amount
    assert mine.row.now.amount == Decimal("3200.55")
