"""The forecast call: the prefill against a plain-Python sum of the fixture deals, the dated snapshots, the
team roll-up, the manager's adjustment, the director's view of the regions, accuracy replayed independently,
bad input, and who sees what."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from coaching import selectors, services
from coaching.models import ForecastLevel, ForecastSubmission
from salesmgmt.lib import periods
from tests.coaching.call_data import CALL_DAY, SHANGHAI, expected
from tests.conftest import chart_figures
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

JUNE = periods.month(2026, 6)


def submit(user, commit, best_case, period=JUNE):
    return services.forecast_submit(actor=user, period=period, commit=Decimal(commit), best_case=Decimal(best_case))


@pytest.mark.parametrize("who", ["rep", "rep_same_team", "rep_js", "rep_other"])
def test_prefill_equals_an_independent_sum_of_the_deals(org, call_deals, who):
    figures = selectors.prefill(getattr(org, who), JUNE)
    assert {"won": figures.won, "commit": figures.commit, "best_case": figures.best_case} == expected(who)


def test_the_fixture_is_not_trivial():
    # The specs exercise every branch: a won deal, an open commit and best case in June, and deals left out.
    assert expected("rep") == {
        "won": Decimal("1000.10"),
        "commit": Decimal("3000.10"),
        "best_case": Decimal("3700.55"),
    }


def test_the_page_prefills_the_rep_form_from_his_deals(org, call_deals, client_for):
    response = client_for(org.rep).get("/review/forecast/")
    assert response.status_code == 200
    form = response.context["rep_form"]
    assert (form.initial["commit"], form.initial["best_case"]) == (Decimal("3000.10"), Decimal("3700.55"))
    assert response.context["period"].key == "FY2026-M06"


def test_the_rep_submits_through_the_page_and_each_submission_is_a_new_row(org, call_deals, client_for):
    client = client_for(org.rep)
    for commit in ("2900", "3100"):
        response = client.post(
            "/review/forecast/submit/", {"period": "FY2026-M06", "commit": commit, "best_case": "4000", "note": ""}
        )
        assert response.status_code == 302
    rows = list(ForecastSubmission.objects.filter(owner=org.rep).order_by("id"))
    assert [r.commit for r in rows] == [Decimal("2900"), Decimal("3100")]
    # The deal-based figures at the moment of submission ride along.
    assert {(r.won, r.deals_commit, r.deals_best_case) for r in rows} == {
        (Decimal("1000.10"), Decimal("3000.10"), Decimal("3700.55"))
    }
    assert {r.week for r in rows} == {date(2026, 6, 8)}


def test_submissions_are_dated_snapshots_and_the_week_takes_its_latest(org, call_deals, time_machine):
    first = submit(org.rep, "1000", "2000")
    second = submit(org.rep, "1500", "2500")
    time_machine.move_to(CALL_DAY + timedelta(days=7), tick=False)
    third = submit(org.rep, "1800", "2600")
    first.refresh_from_db()
    assert (first.commit, first.week) == (Decimal("1000"), date(2026, 6, 8))  # never overwritten
    assert third.week == date(2026, 6, 15)
    week1 = selectors.rollup(org.manager, org.east, JUNE, date(2026, 6, 8))
    week2 = selectors.rollup(org.manager, org.east, JUNE, date(2026, 6, 15))
    row1 = next(r for r in week1.reps if r.rep == org.rep)
    row2 = next(r for r in week2.reps if r.rep == org.rep)
    assert row1.latest == second and row2.latest == third
    assert ForecastSubmission.objects.filter(owner=org.rep).count() == 3


def test_rollup_sums_the_reps_latest_and_flags_who_has_not_submitted(org, call_deals, time_machine):
    time_machine.move_to(CALL_DAY - timedelta(days=7), tick=False)
    submit(org.rep_same_team, "1000", "1200")  # last week only: stale this week
    time_machine.move_to(CALL_DAY, tick=False)
    submit(org.rep, "3000", "3700")
    submit(org.rep_js, "0", "400")
    submit(org.rep_other, "5000", "5000")  # another area: not East's
    roll = selectors.rollup(org.manager, org.east, JUNE, date(2026, 6, 8))
    assert sorted(r.rep.username for r in roll.reps) == ["rep", "rep_js", "rep_sh2"]
    assert [r.rep.username for r in roll.missing] == ["rep_sh2"]
    # The roll-up adds each rep's latest, last week's included.
    assert (roll.commit, roll.best_case) == (Decimal("4000"), Decimal("5300"))
    for who in ("rep", "rep_same_team", "rep_js"):
        row = next(r for r in roll.reps if r.rep == getattr(org, who))
        assert {"won": row.deals.won, "commit": row.deals.commit, "best_case": row.deals.best_case} == expected(who)
    team = [expected(w) for w in ("rep", "rep_same_team", "rep_js")]
    assert roll.deals.commit == sum((e["commit"] for e in team), Decimal(0))


def test_rollup_reads_a_fixed_number_of_queries(
    org, call_deals, django_assert_num_queries, django_assert_max_num_queries
):
    def count():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            selectors.rollup(org.manager, org.east, JUNE, date(2026, 6, 8))
        return len(ctx.captured_queries)

    before = count()
    for i in range(6):
        rep = UserFactory(username=f"extra{i}", role="rep", region=org.sh)
        submit(rep, "10", "20")
    assert count() == before


def test_the_manager_adjusts_with_a_note_and_submits_upward(org, call_deals, client_for):
    submit(org.rep, "3000", "3700")
    client = client_for(org.manager)
    data = {"period": "FY2026-M06", "team": org.east.pk, "commit": "3500", "best_case": "4200", "note": ""}
    response = client.post("/review/forecast/team/", data)
    assert response.status_code == 400
    assert "note" in response.context["team_form"].errors
    assert not ForecastSubmission.objects.filter(level=ForecastLevel.TEAM).exists()

    response = client.post("/review/forecast/team/", {**data, "note": "Deal X will land"})
    assert response.status_code == 302
    team = ForecastSubmission.objects.get(level=ForecastLevel.TEAM)
    assert (team.region, team.owner, team.rollup_commit, team.adjustment) == (
        org.east,
        org.manager,
        Decimal("3000"),
        Decimal("500"),
    )
    # The roll-up as is needs no note.
    services.forecast_team_submit(
        actor=org.manager, team=org.east, period=JUNE, commit=Decimal("3000"), best_case=Decimal("3700")
    )
    assert ForecastSubmission.objects.filter(level=ForecastLevel.TEAM).count() == 2


def test_a_director_sees_the_regions_submissions(org, call_deals, client_for):
    services.forecast_team_submit(
        actor=org.manager, team=org.east, period=JUNE, commit=Decimal("4000"), best_case=Decimal("5000"), note="x"
    )
    response = client_for(org.director).get(f"/review/forecast/?team={org.hq.pk}")
    assert response.status_code == 200
    roll = response.context["rollup"]
    by_region = {row.region: row for row in roll.teams}
    assert set(by_region) == {org.east, org.north}
    assert by_region[org.east].latest.commit == Decimal("4000") and by_region[org.north].latest is None
    assert roll.teams_commit == Decimal("4000")
    assert b'data-testid="region-submissions"' in response.content


def test_bad_amounts_are_form_errors_and_write_nothing(org, call_deals, client_for):
    client = client_for(org.rep)
    for data in (
        {"period": "FY2026-M06", "commit": "500", "best_case": "100"},  # best case below commit
        {"period": "FY2026-M06", "commit": "-1", "best_case": "100"},
        {"period": "FY2026-M06", "commit": "abc", "best_case": "100"},
        {"period": "FY2026", "commit": "1", "best_case": "2"},  # a year is not a forecast period
        {"period": "FY2026-M05", "commit": "1", "best_case": "2"},  # May is over
    ):
        response = client.post("/review/forecast/submit/", data)
        assert response.status_code == 400, data
        assert response.context["rep_form"].errors
    assert not ForecastSubmission.objects.exists()


def test_who_sees_which_forecasts(org, call_deals, client_for):
    mine = submit(org.rep, "1", "2")
    colleague = submit(org.rep_js, "1", "2")
    other = submit(org.rep_other, "1", "2")
    north = services.forecast_team_submit(
        actor=org.manager_north, team=org.north, period=JUNE, commit=Decimal("1"), best_case=Decimal("2"), note="n"
    )
    assert set(selectors.forecasts_visible_to(org.rep)) == {mine}
    assert set(selectors.forecasts_visible_to(org.manager)) == {mine, colleague}
    assert set(selectors.forecasts_visible_to(org.director)) == {mine, colleague, other, north}
    # Another team's roll-up is not a page for them.
    assert client_for(org.manager).get(f"/review/forecast/?team={org.north.pk}").status_code == 404
    assert client_for(org.rep).get(f"/review/forecast/?team={org.east.pk}").status_code == 404
    # A sub-team is his to see.
    response = client_for(org.manager).get(f"/review/forecast/?team={org.sh.pk}")
    assert response.status_code == 200 and response.context["rollup"].team == org.sh
    response = client_for(org.rep).get("/review/forecast/")
    assert "rollup" not in response.context
    # A manager does not submit for a team he does not run.
    with pytest.raises(ValidationError) as error:
        services.forecast_team_submit(
            actor=org.manager, team=org.north, period=JUNE, commit=Decimal("1"), best_case=Decimal("2"), note="n"
        )
    assert "team" in error.value.message_dict


# --- accuracy --------------------------------------------------------------------------------------

# (day of submission, persona, commit, best case): several in a week, weeks without any.
HISTORY = [
    (datetime(2026, 6, 2, 9, tzinfo=SHANGHAI), "rep", "2000", "3000"),
    (datetime(2026, 6, 3, 9, tzinfo=SHANGHAI), "rep", "2500", "3000"),  # the week of 06-01 takes this one
    (datetime(2026, 6, 10, 9, tzinfo=SHANGHAI), "rep", "2800", "3500"),
    (datetime(2026, 6, 24, 9, tzinfo=SHANGHAI), "rep", "1200", "1500"),
    (datetime(2026, 6, 3, 9, tzinfo=SHANGHAI), "rep_same_team", "300", "400"),
    (datetime(2026, 6, 17, 9, tzinfo=SHANGHAI), "rep_same_team", "250", "250"),
]
TEAM_HISTORY = [
    (datetime(2026, 6, 4, 9, tzinfo=SHANGHAI), "3000", "3500"),
    (datetime(2026, 6, 18, 9, tzinfo=SHANGHAI), "1400", "1600"),
]


def replay_accuracy(history, actual):
    """Per (who, Monday): the latest submission's commit and commit ÷ actual %, by a plain loop."""
    latest = {}
    for when, who, commit, _best in sorted(history, key=lambda h: h[0]):
        latest[(who, (when.date() - timedelta(days=when.weekday())))] = Decimal(commit)
    result = {}
    for (who, week), commit in latest.items():
        ratio = None if not actual[who] else (commit * 100 / actual[who]).quantize(Decimal("0.1"), "ROUND_HALF_UP")
        result[(who, week)] = (commit, ratio)
    return result


def test_accuracy_by_week_is_computed_as_an_independent_replay(org, call_deals, time_machine, client_for):
    for when, who, commit, best in HISTORY:
        time_machine.move_to(when, tick=False)
        submit(getattr(org, who), commit, best)
    for when, commit, best in TEAM_HISTORY:
        time_machine.move_to(when, tick=False)
        services.forecast_team_submit(
            actor=org.manager, team=org.east, period=JUNE, commit=Decimal(commit), best_case=Decimal(best), note="j"
        )
    time_machine.move_to(datetime(2026, 7, 3, 9, tzinfo=SHANGHAI), tick=False)

    actual = {w: expected(w)["won"] for w in ("rep", "rep_same_team", "rep_js")}
    acc = selectors.accuracy(org.manager, JUNE, team=org.east)
    assert acc.weeks == [date(2026, 6, 1), date(2026, 6, 8), date(2026, 6, 15), date(2026, 6, 22), date(2026, 6, 29)]
    replay = replay_accuracy(HISTORY, actual)
    names = {"rep": org.rep, "rep_same_team": org.rep_same_team, "rep_js": org.rep_js}
    for who, user in names.items():
        row = next(r for r in acc.reps if r.key == f"rep:{user.pk}")
        assert row.actual == actual[who]
        for cell in row.cells:
            want = replay.get((who, cell.week))
            assert (cell.commit, cell.commit_pct) == (want if want else (None, None)), (who, cell.week)
    team_actual = sum(actual.values(), Decimal(0))
    team_replay = replay_accuracy([(w, "team", c, b) for w, c, b in TEAM_HISTORY], {"team": team_actual})
    assert acc.team.actual == team_actual
    assert [(c.commit, c.commit_pct) for c in acc.team.cells] == [
        team_replay.get(("team", w), (None, None)) for w in acc.weeks
    ]

    response = client_for(org.manager).get("/review/forecast/?period=FY2026-M06")
    assert response.status_code == 200
    assert b'data-testid="accuracy-table"' in response.content
    (figure,) = chart_figures(response.content.decode())  # the chart's div
    assert len(figure["data"]) == 3  # commit, best case, actual
    # The rep sees his own accuracy only.
    response = client_for(org.rep).get("/review/forecast/?period=FY2026-M06")
    assert [r.key for r in response.context["accuracy"].reps] == [f"rep:{org.rep.pk}"]
