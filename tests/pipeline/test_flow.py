"""The pipeline flow (pipeline.flow): one test per box, the category moves, scope per role, and the query count.

Period: Q2 2026. Window: 2026-05-04 .. 2026-05-10. Deals are made before the window (20 April) and changed in
it (6 May) through the real services, the clock moved by time-machine.
"""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from pipeline import flow as F
from pipeline.models import ForecastCategory
from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal

BEFORE = "2026-04-20 10:00 +0800"
DURING = "2026-05-06 10:00 +0800"
AFTER = "2026-05-20 10:00 +0800"
Q2 = {"period_start": date(2026, 4, 1), "period_end": date(2026, 6, 30)}
WINDOW = {"date_from": date(2026, 5, 4), "date_to": date(2026, 5, 10)}


def flow(user, **kwargs):
    return F.pipeline_flow(user, **Q2, **WINDOW, **kwargs)


def at(moment):
    return time_machine.travel(moment, tick=False)


def stage(org, *, won=False, lost=False):
    return next(s for s in org.stages if s.is_won == won and s.is_lost == lost and (won or lost))


def totals(result):
    """{box: (total, count)} of the boxes that hold something."""
    return {k: (b.total, b.count) for k, b in result.boxes.items() if b.count}


def ids(result, box):
    return {d.deal_id for d in result.boxes[box].deals}


def assert_balanced(result):
    assert result.computed_end() == result.end.total
    for category in result.categories:
        assert result.computed_end(category) == result.end.by_category.get(category, Decimal(0)), category


def test_an_untouched_deal_is_in_the_start_and_the_end(org):
    with at(BEFORE):
        make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1))
        make_deal(owner=org.rep, amount="500", close=date(2026, 7, 1))  # next quarter: not in the period
    result = flow(org.rep)
    assert totals(result) == {"start": (Decimal("1000.00"), 1), "end": (Decimal("1000.00"), 1)}
    assert result.start.by_category == {ForecastCategory.PIPELINE: Decimal("1000.00")}


def test_new_deal(org):
    with at(DURING):
        deal = make_deal(owner=org.rep, amount="700", close=date(2026, 6, 1))
    result = flow(org.rep)
    assert totals(result) == {"new": (Decimal("700.00"), 1), "end": (Decimal("700.00"), 1)}
    change = result.boxes["new"].deals[0]
    assert (change.deal_id, change.value, change.stage[0]) == (deal.pk, (None, Decimal("700.00")), None)
    assert_balanced(result)


def test_moved_in_is_a_close_date_pulled_into_the_period_then_its_amount_change(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="1000", close=date(2026, 8, 1))
    with at(DURING):
        opportunity_update(
            opportunity=deal,
            data={"expected_close_date": date(2026, 6, 15), "amount": Decimal("1200")},
            actor=org.rep,
        )
    result = flow(org.rep)
    assert totals(result) == {
        "moved_in": (Decimal("1000.00"), 1),
        "increased": (Decimal("200.00"), 1),
        "end": (Decimal("1200.00"), 1),
    }
    change = result.boxes["moved_in"].deals[0]
    assert change.close_date == (date(2026, 8, 1), date(2026, 6, 15))
    assert ids(result, "increased") == {deal.pk}


def test_amount_increased_and_decreased(org):
    with at(BEFORE):
        up = make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1))
        down = make_deal(owner=org.rep, amount="800", close=date(2026, 6, 1))
    with at(DURING):
        opportunity_update(opportunity=up, data={"amount": Decimal("1500.50")}, actor=org.rep)
        opportunity_update(opportunity=down, data={"amount": Decimal("300")}, actor=org.rep)
    result = flow(org.rep)
    assert totals(result) == {
        "start": (Decimal("1800.00"), 2),
        "increased": (Decimal("500.50"), 1),
        "decreased": (Decimal("500.00"), 1),
        "end": (Decimal("1800.50"), 2),
    }
    assert result.boxes["decreased"].deals[0].value == (Decimal("800.00"), Decimal("300.00"))
    assert_balanced(result)


def test_won_counts_the_amount_change_first_then_the_win_at_the_amount_won(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1))
    with at(DURING):
        deal = opportunity_update(opportunity=deal, data={"amount": Decimal("1100")}, actor=org.rep)
        opportunity_move_stage(
            opportunity=deal, stage=stage(org, won=True), evidence="Signed", closed_on=date(2026, 5, 6), actor=org.rep
        )
    result = flow(org.rep)
    assert totals(result) == {
        "start": (Decimal("1000.00"), 1),
        "increased": (Decimal("100.00"), 1),
        "won": (Decimal("1100.00"), 1),
    }
    change = result.boxes["won"].deals[0]
    assert change.close_date == (date(2026, 6, 1), date(2026, 5, 6))
    assert change.category == (ForecastCategory.PIPELINE, ForecastCategory.CLOSED)
    # charged to the category the deal was in at the start
    assert result.boxes["won"].by_category == {ForecastCategory.PIPELINE: Decimal("1100.00")}
    assert_balanced(result)


def test_lost(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="900", close=date(2026, 6, 1))
    with at(DURING):
        opportunity_move_stage(
            opportunity=deal,
            stage=stage(org, lost=True),
            lost_reason="Budget cut",
            closed_on=date(2026, 5, 6),
            actor=org.rep,
        )
    result = flow(org.rep)
    assert totals(result) == {"start": (Decimal("900.00"), 1), "lost": (Decimal("900.00"), 1)}
    assert result.boxes["lost"].deals[0].stage == (org.stages[0].display_name, stage(org, lost=True).display_name)


def test_pushed_out(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="600", close=date(2026, 6, 20))
    with at(DURING):
        opportunity_update(opportunity=deal, data={"expected_close_date": date(2026, 7, 10)}, actor=org.rep)
    result = flow(org.rep)
    assert totals(result) == {"start": (Decimal("600.00"), 1), "pushed_out": (Decimal("600.00"), 1)}
    assert result.boxes["pushed_out"].deals[0].close_date == (date(2026, 6, 20), date(2026, 7, 10))


def test_moved_to_another_owner_leaves_the_team_but_not_the_company(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="400", close=date(2026, 6, 1))
    with at(DURING):
        opportunity_update(opportunity=deal, data={"owner": org.rep_other}, actor=org.director)
    east = flow(org.manager)
    assert totals(east) == {"start": (Decimal("400.00"), 1), "moved_out": (Decimal("400.00"), 1)}
    change = east.boxes["moved_out"].deals[0]
    assert change.owner == (str(org.rep), str(org.rep_other))
    assert not change.editable  # the manager no longer sees the deal: no edit
    north = flow(org.manager_north)
    assert totals(north) == {"moved_in": (Decimal("400.00"), 1), "end": (Decimal("400.00"), 1)}
    company = flow(org.director)
    assert totals(company) == {"start": (Decimal("400.00"), 1), "end": (Decimal("400.00"), 1)}
    # the rep who had it: out; the rep who has it: in
    assert totals(flow(org.rep))["moved_out"] == (Decimal("400.00"), 1)
    assert totals(flow(org.rep_other))["moved_in"] == (Decimal("400.00"), 1)


def test_category_moves_net_to_zero(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1))
    with at(DURING):
        opportunity_update(
            opportunity=deal,
            data={"forecast_category": ForecastCategory.COMMIT, "amount": Decimal("900")},
            actor=org.rep,
        )
    result = flow(org.rep)
    pipeline, commit = ForecastCategory.PIPELINE, ForecastCategory.COMMIT
    assert result.boxes["category_out"].by_category == {pipeline: Decimal("900.00")}
    assert result.boxes["category_in"].by_category == {commit: Decimal("900.00")}
    assert result.boxes["decreased"].by_category == {pipeline: Decimal("100.00")}
    assert (result.start.by_category, result.end.by_category) == (
        {pipeline: Decimal("1000.00")},
        {commit: Decimal("900.00")},
    )
    assert result.categories == [commit, pipeline]
    assert_balanced(result)


def test_a_stage_move_keeps_the_category_it_sets_in_the_history(org):
    """Negotiation sets best case: the deal was in 'pipeline' at the start, in 'best case' at the end."""
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1), stage=org.stages[1])
    with at(DURING):
        opportunity_move_stage(opportunity=deal, stage=org.stages[2], evidence="Proposal accepted", actor=org.rep)
    result = flow(org.rep)
    assert result.start.by_category == {ForecastCategory.PIPELINE: Decimal("1000.00")}
    assert result.end.by_category == {ForecastCategory.BEST_CASE: Decimal("1000.00")}
    assert_balanced(result)


def test_created_and_won_in_the_window_is_new_then_won(org):
    with at(DURING):
        deal = make_deal(owner=org.rep, amount="300", close=date(2026, 6, 1))
        opportunity_move_stage(
            opportunity=deal, stage=stage(org, won=True), evidence="Signed", closed_on=date(2026, 5, 7), actor=org.rep
        )
    result = flow(org.rep)
    assert totals(result) == {"new": (Decimal("300.00"), 1), "won": (Decimal("300.00"), 1)}
    assert_balanced(result)


def test_a_deal_of_next_quarter_won_early_is_pulled_in_then_won(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="2000", close=date(2026, 8, 1))
    with at(DURING):
        opportunity_move_stage(
            opportunity=deal, stage=stage(org, won=True), evidence="Signed", closed_on=date(2026, 5, 6), actor=org.rep
        )
    result = flow(org.rep)
    assert totals(result) == {"moved_in": (Decimal("2000.00"), 1), "won": (Decimal("2000.00"), 1)}


def test_changes_after_the_window_do_not_count(org):
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 1))
    with at(AFTER):
        opportunity_update(opportunity=deal, data={"amount": Decimal("5000")}, actor=org.rep)
    result = flow(org.rep)
    assert totals(result) == {"start": (Decimal("1000.00"), 1), "end": (Decimal("1000.00"), 1)}


def test_foreign_currency_is_valued_at_the_rate_of_its_close_date_at_each_instant(org):
    from crm.models import Currency, ExchangeRate

    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7.0"))
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 6, 1), rate=Decimal("7.2"))
    with at(BEFORE):
        deal = make_deal(owner=org.rep, amount="100.01", currency=usd, close=date(2026, 5, 20))
    with at(DURING):
        opportunity_update(opportunity=deal, data={"expected_close_date": date(2026, 6, 10)}, actor=org.rep)
    result = flow(org.rep)
    assert totals(result) == {
        "start": (Decimal("700.07"), 1),  # 100.01 × 7.0
        "increased": (Decimal("20.00"), 1),
        "end": (Decimal("720.07"), 1),  # 100.01 × 7.2 = 720.072
    }


# --- scope -------------------------------------------------------------------------------------


@pytest.fixture
def every_team(org):
    """One deal per rep moving through every kind of box."""
    deals = {}
    with at(BEFORE):
        for user in (org.rep, org.rep_same_team, org.rep_js, org.rep_other):
            deals[user.username, "won"] = make_deal(owner=user, amount="100", close=date(2026, 6, 1))
            deals[user.username, "slip"] = make_deal(owner=user, amount="200", close=date(2026, 6, 1))
            deals[user.username, "stay"] = make_deal(owner=user, amount="50", close=date(2026, 6, 1))
    with at(DURING):
        for user in (org.rep, org.rep_same_team, org.rep_js, org.rep_other):
            deals[user.username, "new"] = make_deal(owner=user, amount="400", close=date(2026, 6, 1))
            opportunity_move_stage(
                opportunity=deals[user.username, "won"],
                stage=stage(org, won=True),
                evidence="Signed",
                closed_on=date(2026, 5, 6),
                actor=user,
            )
            opportunity_update(
                opportunity=deals[user.username, "slip"], data={"expected_close_date": date(2026, 9, 1)}, actor=user
            )
    return deals


@pytest.mark.parametrize(
    "who, owners",
    [
        ("rep", {"rep"}),
        ("manager", {"rep", "rep_sh2", "rep_js"}),
        ("manager_north", {"rep_other"}),
        ("director", {"rep", "rep_sh2", "rep_js", "rep_other"}),
    ],
)
def test_each_role_sees_only_its_deals_in_every_box(org, every_team, who, owners):
    result = flow(getattr(org, who))
    expected = {
        key: {every_team[o, kind].pk for o in owners}
        for key, kind in (("new", "new"), ("won", "won"), ("pushed_out", "slip"))
    }
    for box, deal_ids in expected.items():
        assert ids(result, box) == deal_ids, box
    n = len(owners)
    assert totals(result) == {
        "start": (Decimal(350 * n), 3 * n),
        "new": (Decimal(400 * n), n),
        "won": (Decimal(100 * n), n),
        "pushed_out": (Decimal(200 * n), n),
        "end": (Decimal(450 * n), 2 * n),
    }
    for box in ("start", "end"):
        listed = F.flow_deals(getattr(org, who), box=box, **Q2, **WINDOW)
        assert {d.deal_id for d in listed} == {
            every_team[o, k].pk
            for o in owners
            for k in (("won", "slip", "stay") if box == "start" else ("stay", "new"))
        }


def test_a_region_narrows_the_flow(org, every_team):
    result = flow(org.director, region=org.js)
    assert ids(result, "new") == {every_team["rep_js", "new"].pk}
    assert result.end.total == Decimal(450)


def test_drill_down_lists_a_box_by_category_page_by_page(org, every_team):
    listed = F.flow_deals(org.director, box="new", **Q2, **WINDOW, category=ForecastCategory.PIPELINE, limit=3)
    assert len(listed) == 3
    rest = F.flow_deals(org.director, box="new", **Q2, **WINDOW, category=ForecastCategory.PIPELINE, limit=3, offset=3)
    assert len(rest) == 1 and not {d.deal_id for d in rest} & {d.deal_id for d in listed}
    assert F.flow_deals(org.director, box="new", **Q2, **WINDOW, category=ForecastCategory.COMMIT) == []


def test_query_count_does_not_grow_with_the_deals(org, django_assert_num_queries):
    def changes(n):
        with at(BEFORE):
            deals = [make_deal(owner=org.rep, amount="100", close=date(2026, 6, 1)) for _ in range(n)]
        with at(DURING):
            for deal in deals:
                opportunity_update(opportunity=deal, data={"amount": Decimal("150")}, actor=org.rep)
                make_deal(owner=org.rep_js, amount="10", close=date(2026, 6, 1))

    changes(2)
    with django_assert_num_queries(9):  # stages, scope, currency, reassigned, untouched, flow, box deals, names x2
        assert flow(org.manager).boxes["increased"].count == 2
    changes(10)
    with django_assert_num_queries(9):
        assert flow(org.manager).boxes["increased"].count == 12
