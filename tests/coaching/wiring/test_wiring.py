"""The weekly review read as one product: the next meeting on the home pages, the submitted forecast in the
review's headline (kept by a held meeting), commitments and action items where each person looks, one win-rate
rule and one commit / best-case rule, and the links between the parts. Figures are checked against the
numbers typed in here or replayed from the company's `FACTS`, never against the code under test alone."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from coaching import selectors, services
from coaching.review import build_review
from coaching.session_services import NewCommitment, coaching_session_create
from crm.models import CompanySettings
from pipeline.analytics import BY_REGION, win_rates
from salesmgmt.lib import periods as fiscal
from tests.coaching.review.company import DAY, FACTS, FY_START, MONDAY, NOW

pytestmark = pytest.mark.usefixtures("company")


def value(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*data-value="([^"]*)"', html)
    assert found, testid
    return found.group(1)


def section(html: str, testid: str) -> str:
    found = re.search(rf'<section data-testid="{testid}">.*?</section>', html, re.S)
    assert found, testid
    return found.group(0)


def month_of_week():
    return CompanySettings.load().period_of(MONDAY, fiscal.MONTH)


# --- 1. the next review meeting on the manager's and the director's home ---------------------------------


def test_the_managers_home_shows_his_teams_next_planned_meeting_not_another_teams(org, client_for):
    held = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY - timedelta(days=7), title="Last")
    services.meeting_hold(actor=org.manager, meeting=held)
    planned = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY + timedelta(days=7), title="Next")
    services.meeting_create(actor=org.manager_north, team=org.north, week=MONDAY, title="North's")
    html = client_for(org.manager).get("/").content.decode()
    assert f'data-meeting="{planned.pk}"' in html
    assert "Next" in html and "North&#x27;s" not in html and "North's" not in html
    assert 'data-testid="plan-next-meeting"' not in html
    # The selector is scoped: the North manager does not get East's meeting.
    assert selectors.next_meeting(org.manager_north, org.east, DAY) is None
    assert selectors.next_meeting(org.manager, org.east, DAY) == planned


def test_with_only_a_held_meeting_the_home_shows_it_with_a_link_to_plan_the_next(org, client_for):
    held = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY - timedelta(days=7), title="Done")
    services.meeting_hold(actor=org.manager, meeting=held)
    older = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY - timedelta(days=14), title="Old")
    services.meeting_hold(actor=org.manager, meeting=older)
    html = client_for(org.manager).get("/").content.decode()
    assert f'data-meeting="{held.pk}"' in html
    assert 'data-testid="plan-next-meeting"' in html


def test_the_next_meeting_is_the_earliest_planned_one_else_the_latest_held_in_one_query(org, django_assert_num_queries):
    def meeting(weeks, title, held=False):
        created = services.meeting_create(
            actor=org.manager, team=org.east, week=MONDAY + timedelta(days=7 * weeks), title=title
        )
        return services.meeting_hold(actor=org.manager, meeting=created) if held else created

    with django_assert_num_queries(1):
        assert selectors.next_meeting(org.manager, org.east.pk, DAY) is None
    meeting(-3, "Held long ago", held=True)
    latest_held = meeting(-1, "Held last week", held=True)
    meeting(-2, "Planned, never held")  # before this week: not the next one
    with django_assert_num_queries(1):
        assert selectors.next_meeting(org.manager, org.east.pk, DAY) == latest_held
    meeting(3, "In three weeks")
    soonest = meeting(1, "Next week")
    meeting(2, "In two weeks")
    with django_assert_num_queries(1):
        assert selectors.next_meeting(org.manager, org.east, DAY) == soonest
    assert selectors.next_meeting(org.manager_north, org.east.pk, DAY) is None  # not his team's


def test_the_directors_home_shows_the_companys_next_meeting(org, client_for):
    top = org.east.parent
    meeting = services.meeting_create(actor=org.director, team=top, week=MONDAY, title="Company weekly")
    services.meeting_create(actor=org.manager, team=org.east, week=MONDAY, title="East weekly")
    html = client_for(org.director).get("/").content.decode()
    assert f'data-meeting="{meeting.pk}"' in html


def test_no_meeting_shows_the_empty_slot(org, client_for):
    html = client_for(org.manager).get("/").content.decode()
    assert "data-meeting=" not in html
    assert 'data-testid="plan-next-meeting"' in html


# --- 2. the submitted forecast in the review's headline ----------------------------------------------


@pytest.fixture
def forecasts(org):
    """The reps of East submit, then the manager submits East's number with his judgment; the figures are typed
    here (the independent truth)."""
    period = month_of_week()
    services.forecast_submit(actor=org.rep, period=period, commit=Decimal("40000"), best_case=Decimal("90000"))
    services.forecast_submit(actor=org.rep, period=period, commit=Decimal("45000"), best_case=Decimal("95000"))
    services.forecast_submit(actor=org.rep_js, period=period, commit=Decimal("1000.50"), best_case=Decimal("2000.25"))
    services.forecast_submit(actor=org.rep_other, period=period, commit=Decimal("777"), best_case=Decimal("888"))
    team = services.forecast_team_submit(
        actor=org.manager,
        team=org.east,
        period=period,
        commit=Decimal("50000"),
        best_case=Decimal("100000"),
        note="Big deal in Suzhou",
    )
    return team


def test_the_review_headline_shows_the_teams_submitted_forecast_and_the_reps_rollup(org, forecasts, client_for):
    response = client_for(org.manager).get(f"/review/?region={org.east.pk}")
    html = response.content.decode()
    assert Decimal(value(html, "forecast-team-commit")) == Decimal("50000")
    assert Decimal(value(html, "forecast-team-best")) == Decimal("100000")
    # The reps' latest submissions: rep's second one and rep_js's; rep_other (North) is not East's.
    assert Decimal(value(html, "forecast-reps-commit")) == Decimal("45000") + Decimal("1000.50")
    assert Decimal(value(html, "forecast-reps-best")) == Decimal("95000") + Decimal("2000.25")
    # The same as the forecast call's roll-up.
    roll = selectors.rollup(org.manager, org.east, month_of_week(), MONDAY)
    shown = response.context["review"].submitted_forecast
    assert Decimal(shown["team"]["commit"]) == roll.team_latest.commit
    assert Decimal(shown["reps"]["commit"]) == roll.commit
    assert shown["period"] == month_of_week().key


def test_a_week_before_any_submission_shows_none(org, forecasts, client_for):
    html = client_for(org.manager).get(f"/review/?region={org.east.pk}&week={MONDAY - timedelta(days=7)}")
    assert html.context["review"].submitted_forecast is None
    assert 'data-testid="forecast-team-commit"' not in html.content.decode()


def test_a_held_meeting_keeps_the_forecast_submitted_then(org, forecasts, client_for, time_machine):
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY, title="Weekly")
    services.meeting_hold(actor=org.manager, meeting=meeting)
    time_machine.move_to(NOW + timedelta(days=7), tick=False)
    services.forecast_team_submit(
        actor=org.manager,
        team=org.east,
        period=month_of_week(),
        commit=Decimal("60000"),
        best_case=Decimal("110000"),
        note="Raised",
    )
    client = client_for(org.manager)
    kept = client.get(f"/review/meetings/{meeting.pk}/").content.decode()
    assert Decimal(value(kept, "forecast-team-commit")) == Decimal("50000")
    live = client.get(f"/review/?region={org.east.pk}&week={MONDAY + timedelta(days=7)}").content.decode()
    assert Decimal(value(live, "forecast-team-commit")) == Decimal("60000")


# --- 3. commitments and action items ------------------------------------------------------------------


@pytest.fixture
def open_work(org):
    due = DAY + timedelta(days=7)
    mine = coaching_session_create(
        actor=org.manager,
        rep=org.rep,
        date=DAY,
        focus_kind="skill",
        focus="Discovery questions",
        commitments=[NewCommitment("Ask about budget first", due)],
    )
    other = coaching_session_create(
        actor=org.manager,
        rep=org.rep_js,
        date=DAY,
        focus_kind="skill",
        focus="Closing",
        commitments=[NewCommitment("Send the proposal to Wuxi", due)],
    )
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY, title="Weekly")
    my_item = services.action_item_create(
        actor=org.manager, meeting=meeting, what="Call the CFO of Hangzhou", owner=org.rep, due_date=due
    )
    js_item = services.action_item_create(
        actor=org.manager, meeting=meeting, what="Update the Nanjing forecast", owner=org.rep_js, due_date=due
    )
    return {
        "mine": mine.commitments.get(),
        "other": other.commitments.get(),
        "my_item": my_item,
        "js_item": js_item,
    }


def test_the_rep_sees_his_own_commitments_and_action_items_only(org, open_work, client_for):
    html = client_for(org.rep).get("/").content.decode()
    commitments = section(html, "my-commitments")
    assert f'coaching-commitment-{open_work["mine"].pk}"' in commitments
    assert "Ask about budget first" in commitments
    assert f'coaching-commitment-{open_work["other"].pk}"' not in html and "Wuxi" not in html
    items = section(html, "my-action-items")
    assert f'action-item-{open_work["my_item"].pk}"' in items and "Call the CFO" in items
    assert "Nanjing" not in html


def test_the_review_shows_the_teams_open_commitments_and_items_not_to_another_team(org, open_work, client_for):
    html = client_for(org.manager).get(f"/review/?region={org.east.pk}").content.decode()
    commitments = section(html, "review-commitments")
    assert "Ask about budget first" in commitments and "Send the proposal to Wuxi" in commitments
    items = section(html, "review-action-items")
    assert "Call the CFO of Hangzhou" in items and "Update the Nanjing forecast" in items
    north = client_for(org.manager_north).get(f"/review/?region={org.north.pk}").content.decode()
    assert "Wuxi" not in north and "Nanjing" not in north


def test_a_closed_item_leaves_the_rep_home(org, open_work, client_for):
    services.action_item_set_status(
        actor=org.manager, meeting=open_work["my_item"].meeting, item=open_work["my_item"], status="done"
    )
    html = client_for(org.rep).get("/").content.decode()
    assert "Call the CFO" not in html


# --- 4. one win rate, one commit / best case ------------------------------------------------------------


def replay_counts(owners: set[str]) -> tuple[int, int]:
    """Won and lost deals closed from the plan's start to DAY, from the company's plain facts."""
    closed = [f for f in FACTS if f.owner in owners and f.status in ("won", "lost") and FY_START <= f.day <= DAY]
    return sum(f.status == "won" for f in closed), sum(f.status == "lost" for f in closed)


def test_the_reviews_rep_win_rate_is_the_analytics_win_rate(org, api):
    review = build_review(org.manager, region=org.sh, week=MONDAY)
    rows = {r.key: r for r in review.rows}
    by_api = {
        r["key"]: r
        for r in api(org.manager)
        .get(
            "/api/review/win-rates/",
            {"by": "owner", "period": "range", "region": org.sh.pk, "date_from": FY_START, "date_to": DAY},
        )
        .json()
    }
    for persona in ("rep", "rep_same_team"):
        user = getattr(org, persona)
        row = rows[f"rep:{user.pk}"]
        won, lost = replay_counts({persona})
        assert (row.won, row.lost) == (won, lost)
        assert (by_api[user.pk]["won"], by_api[user.pk]["lost"]) == (won, lost)
        assert Decimal(by_api[user.pk]["win_rate"]) == row.win_rate
    assert rows[f"rep:{org.rep.pk}"].win_rate == Decimal("66.7")  # 2 won, 1 lost


def test_the_reviews_region_win_rate_is_the_analytics_win_rate(org):
    top = org.east.parent
    review = build_review(org.director, region=top, week=MONDAY)
    rows = {r.key: r for r in review.rows}
    plan_start = review.primary.period_start
    analytics = {
        r.key: r
        for r in win_rates(
            org.director, date_from=plan_start, date_to=review.as_of, by=BY_REGION, period=None, region=top
        )
    }
    east = rows[f"region:{org.east.pk}"]
    assert (east.won, east.lost) == replay_counts({"rep", "rep_same_team", "rep_js"}) == (4, 3)
    assert (east.won, east.lost, east.win_rate) == (
        analytics[org.east.pk].won,
        analytics[org.east.pk].lost,
        analytics[org.east.pk].win_rate,
    )
    north = rows[f"region:{org.north.pk}"]
    assert (north.won, north.lost) == replay_counts({"rep_other"})


def test_the_gap_waterfall_uses_the_forecast_calls_commit_and_best_case(org):
    review = build_review(org.manager, region=org.east, week=MONDAY)
    plan_start, plan_end = review.primary.period_start, review.primary.period_end
    # Replay: East's open deals expected to close in the plan's period, by forecast category.
    in_period = [f for f in FACTS if f.status == "open" and plan_start <= f.day <= plan_end and f.owner != "rep_other"]
    commit = sum((Decimal(f.amount) for f in in_period if f.category == "commit"), Decimal(0))
    best = sum((Decimal(f.amount) for f in in_period if f.category == "best_case"), Decimal(0))
    assert (
        (review.waterfall.commit, review.waterfall.best_case) == (commit, best) == (Decimal("100000"), Decimal("80000"))
    )
    figures = selectors.deal_figures(
        selectors.team_deals(org.manager, org.east), fiscal.Period(plan_start, plan_end, "year", 0, 0)
    )
    assert review.waterfall.commit == figures.commit - figures.won
    assert review.waterfall.best_case == figures.best_case - figures.commit


# --- 5. links between the parts -----------------------------------------------------------------------


def test_the_review_links_to_funnel_drivers_forecast_and_the_weeks_meeting(org, client_for):
    client = client_for(org.manager)
    html = client.get(f"/review/?region={org.east.pk}").content.decode()
    for testid, path in (
        ("link-funnel", "/review/funnel/"),
        ("link-drivers", "/review/drivers/"),
        ("link-forecast", "/review/forecast/"),
    ):
        link = re.search(rf'<a href="([^"]+)" data-testid="{testid}"', html)
        assert link, testid
        href = link.group(1)
        assert href.startswith(path) and (f"region={org.east.pk}" in href or f"team={org.east.pk}" in href), href
        assert client.get(link.group(1).replace("&amp;", "&")).status_code == 200
    assert 'data-testid="link-meetings"' in html
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=MONDAY, title="Weekly")
    html = client.get(f"/review/?region={org.east.pk}").content.decode()
    assert f'href="/review/meetings/{meeting.pk}/" data-testid="link-meeting"' in html
    page = client.get(f"/review/meetings/{meeting.pk}/").content.decode()
    live = re.search(r'href="([^"]+)" data-testid="meeting-live-review"', page)
    assert live
    response = client.get(live.group(1).replace("&amp;", "&"))
    assert response.context["review"].region_id == org.east.pk and response.context["review"].week == MONDAY


def test_the_review_links_to_the_driver_diagnosis_of_its_region(org, client_for):
    # The main-driver sentence costs seconds company-wide (the drivers of every customer): a link instead.
    html = client_for(org.manager).get(f"/review/?region={org.sh.pk}").content.decode()
    link = re.search(r'<a href="([^"]+)" data-testid="link-main-driver"', html)
    assert link and link.group(1) == f"/review/drivers/?region={org.sh.pk}"


@pytest.mark.parametrize("period", [None, fiscal.QUARTER])
def test_the_fast_counts_fold_teams_as_the_full_win_rates_do(org, period):
    top = org.east.parent
    full = win_rates(org.director, date_from=FY_START, date_to=DAY, by=BY_REGION, period=period, region=top)
    fast = win_rates(
        org.director, date_from=FY_START, date_to=DAY, by=BY_REGION, period=period, region=top, counts_only=True
    )
    assert sorted((r.key, r.period.start, r.won, r.lost, r.win_rate) for r in fast) == sorted(
        (r.key, r.period.start, r.won, r.lost, r.win_rate) for r in full
    )
    assert sum(r.won + r.lost for r in fast) == sum(replay_counts({"rep", "rep_same_team", "rep_js", "rep_other"}))
