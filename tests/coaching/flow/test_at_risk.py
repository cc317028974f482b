"""At-risk deals (pipeline.flow.at_risk_deals and /review/at-risk/): each reason, and who sees what."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from pipeline import flow as F
from pipeline.models import ActivityKind
from pipeline.services import activity_log, opportunity_move_stage
from tests.factories import make_deal

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 5, 10)
NOW = datetime(2026, 5, 10, 15, 0, tzinfo=TZ)


def at(day, hour=10):
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=TZ), tick=False)


def log_activity(deal, day):
    with at(day):
        activity_log(customer=deal.customer, kind=ActivityKind.CALL, date=day, opportunity=deal, actor=deal.owner)


@pytest.fixture
def risky(org):
    """Deals made to show one reason each (and one fine deal), every deal with a fresh activity unless idle."""
    deals = {}
    with at(TODAY - timedelta(days=30)):  # 'Needs confirmed' expects 14 days
        deals["stuck"] = make_deal(owner=org.rep, amount="100", close=date(2026, 6, 30), name="Stuck")
    with at(TODAY - timedelta(days=5)):
        deals["fine"] = make_deal(owner=org.rep, amount="100", close=date(2026, 6, 30), name="Fine")
        deals["overdue"] = make_deal(owner=org.rep, amount="100", close=date(2026, 5, 9), name="Overdue")
        deals["big_back"] = make_deal(
            owner=org.rep, amount="250000", close=date(2026, 6, 30), stage=org.stages[2], name="Big back"
        )
        deals["small_back"] = make_deal(
            owner=org.rep, amount="1000", close=date(2026, 6, 30), stage=org.stages[2], name="Small back"
        )
    with at(TODAY - timedelta(days=25)):
        deals["idle"] = make_deal(owner=org.rep, amount="100", close=date(2026, 6, 30), name="Idle")
        deals["other_team"] = make_deal(owner=org.rep_other, amount="100", close=date(2026, 5, 1), name="Other")
        deals["js"] = make_deal(owner=org.rep_js, amount="100", close=date(2026, 5, 1), name="JS overdue")
    with at(TODAY - timedelta(days=10)):  # in its stage for 10 days: not stuck, only idle
        deals["idle"] = opportunity_move_stage(
            opportunity=deals["idle"], stage=org.stages[1], actor=org.rep, evidence="x"
        )
    with at(TODAY - timedelta(days=2)):
        for key in ("big_back", "small_back"):
            deals[key] = opportunity_move_stage(
                opportunity=deals[key], stage=org.stages[1], actor=org.rep, evidence="x"
            )
    for key, deal in deals.items():
        if key != "idle":
            log_activity(deal, TODAY - timedelta(days=1))
    log_activity(deals["idle"], TODAY - timedelta(days=22))  # older than the 21 idle days
    with time_machine.travel(NOW, tick=False):
        yield deals


def reasons(user, **kwargs):
    return {d.name: F.risk_reasons(d) for d in F.at_risk_deals(user, today=TODAY, **kwargs)}


def test_each_reason(org, risky):
    assert reasons(org.rep) == {
        "Stuck": [F.STUCK],
        "Overdue": [F.OVERDUE],
        "Big back": [F.MOVED_BACK],
        "Idle": [F.IDLE],
    }


def test_an_activity_within_the_days_keeps_a_deal_off_the_idle_list(org, risky):
    assert "Idle" not in reasons(org.rep, idle_days=30)
    log_activity(risky["idle"], TODAY)
    assert "Idle" not in reasons(org.rep)


def test_a_big_deal_moved_back_long_ago_is_no_longer_at_risk(org, risky):
    assert "Big back" not in reasons(org.rep, moved_back_days=1)
    assert reasons(org.rep, big_deal_amount=Decimal("500"))["Small back"] == [F.MOVED_BACK]


def test_closed_deals_are_never_at_risk(org, risky):
    won = next(s for s in org.stages if s.is_won)
    opportunity_move_stage(opportunity=risky["overdue"], stage=won, actor=org.rep, evidence="Signed")
    assert "Overdue" not in reasons(org.rep)


@pytest.mark.parametrize(
    "who, expected",
    [
        ("rep", {"Stuck", "Overdue", "Big back", "Idle"}),
        ("manager", {"Stuck", "Overdue", "Big back", "Idle", "JS overdue"}),
        ("manager_north", {"Other"}),
        ("rep_js", {"JS overdue"}),
        ("director", {"Stuck", "Overdue", "Big back", "Idle", "JS overdue", "Other"}),
    ],
)
def test_each_role_sees_only_its_deals(org, risky, who, expected, client_for):
    assert set(reasons(getattr(org, who))) == expected
    response = client_for(getattr(org, who)).get(reverse("coaching:at_risk"))
    assert {deal.name for deal, _reasons in response.context["rows"]} == expected


def test_a_region_narrows_the_list(org, risky):
    assert set(reasons(org.director, region=org.js)) == {"JS overdue"}


def test_the_page_shows_reasons_counts_and_an_inline_edit(org, risky, client_for):
    response = client_for(org.rep).get(reverse("coaching:at_risk"))
    body = response.content.decode()
    assert response.context["total"] == 4
    assert {str(label): n for label, n in response.context["counts"]} == {
        "Stuck beyond the stage's expected days": 1,
        "Close date passed": 1,
        "No activity": 1,
        "Big deal moved back a stage": 1,
    }
    assert "Big deal moved back a stage" in body
    assert f'data-testid="inline-edit-{risky["stuck"].pk}"' in body
    assert reverse("pipeline:deal_inline", args=[risky["stuck"].pk]) in body


def test_a_team_outside_the_scope_is_a_form_error(org, risky, client_for):
    response = client_for(org.manager).get(reverse("coaching:at_risk"), {"region": org.bj.pk, "idle_days": "0"})
    body = response.content.decode()
    assert 'data-testid="error-region"' in body and 'data-testid="error-idle_days"' in body
    assert "Other" not in {deal.name for deal, _r in response.context["rows"]}
