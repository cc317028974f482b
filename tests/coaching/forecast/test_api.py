"""The forecast call's API (/api/review/forecasts/): scoped lists, submitting (rep and team), the prefill, the
roll-up and the accuracy, bad input as a JSON 400, and the schema."""

from decimal import Decimal

import pytest

from coaching.models import ForecastLevel, ForecastSubmission
from tests.coaching.call_data import expected
from tests.conftest import ids

pytestmark = pytest.mark.django_db
URL = "/api/review/forecasts/"


def test_a_rep_submits_and_lists_only_his_own(org, call_deals, api):
    response = api(org.rep).post(
        URL, {"period": "FY2026-M06", "commit": "3000.10", "best_case": "3700.55"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["level"], body["week"], body["deals_commit"]) == ("rep", "2026-06-08", "3000.10")
    api(org.rep_other).post(URL, {"period": "FY2026-M06", "commit": "1", "best_case": "1"}, format="json")
    mine = ForecastSubmission.objects.get(owner=org.rep)
    assert ids(api(org.rep).get(URL)) == {mine.pk}
    assert ids(api(org.manager).get(URL)) == {mine.pk}
    assert len(ids(api(org.director).get(URL))) == 2
    other = ForecastSubmission.objects.get(owner=org.rep_other)
    assert api(org.manager).get(f"{URL}{other.pk}/").status_code == 404


def test_prefill_rollup_and_accuracy(org, call_deals, api):
    response = api(org.rep).get(f"{URL}prefill/?period=FY2026-M06")
    assert response.status_code == 200
    assert {k: Decimal(v) for k, v in response.json()["figures"].items()} == expected("rep")
    api(org.rep).post(URL, {"period": "FY2026-M06", "commit": "3000", "best_case": "3700"}, format="json")
    response = api(org.manager).get(f"{URL}rollup/?period=FY2026-M06&team={org.east.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert Decimal(body["commit"]) == Decimal("3000")
    flagged = {row["rep_name"] for row in body["reps"] if not row["submitted_this_week"]}
    assert flagged == {str(org.rep_same_team), str(org.rep_js)}
    # Another team's roll-up is refused; a rep runs no team.
    assert api(org.manager).get(f"{URL}rollup/?team={org.north.pk}").status_code == 400
    assert api(org.rep).get(f"{URL}rollup/").status_code == 400
    response = api(org.manager).get(f"{URL}accuracy/?period=FY2026-M06&team={org.east.pk}")
    assert response.status_code == 200 and response.json()["team"]["name"] == "East"


def test_team_forecast_and_bad_input(org, call_deals, api):
    client = api(org.manager)
    for data in (
        {"level": "team", "period": "FY2026-M06", "commit": "10", "best_case": "20"},  # no team
        {"level": "team", "period": "FY2026-M06", "commit": "10", "best_case": "20", "team": org.east.pk},  # no note
        {"period": "FY2026-M06", "commit": "10", "best_case": "5"},
        {"period": "2026-06", "commit": "10", "best_case": "20"},
        {"level": "team", "period": "FY2026-M06", "commit": "1", "best_case": "2", "team": org.north.pk, "note": "x"},
    ):
        response = client.post(URL, data, format="json")
        assert response.status_code == 400, (data, response.content)
        assert response.json()["detail"]
    assert not ForecastSubmission.objects.exists()
    data = {"level": "team", "period": "FY2026-M06", "commit": "10", "best_case": "20", "team": org.east.pk}
    response = client.post(URL, {**data, "note": "judgment"}, format="json")
    assert response.status_code == 201
    assert response.json()["adjustment"] == "10.00" and response.json()["level"] == ForecastLevel.TEAM


def test_the_schema_describes_the_endpoints(schema):
    paths = schema["paths"]
    for path in ("", "{id}/", "prefill/", "rollup/", "accuracy/"):
        assert f"/api/review/forecasts/{path}" in paths
    assert set(paths["/api/review/forecasts/"]) >= {"get", "post"}
    created = paths["/api/review/forecasts/"]["post"]["responses"]
    assert {"201", "400", "401", "403"} <= set(created)
    fields = schema["components"]["schemas"]["ForecastSubmission"]["properties"]
    assert {"commit", "best_case", "week", "deals_commit", "rollup_commit", "adjustment"} <= set(fields)
    rollup = schema["components"]["schemas"]["Rollup"]["properties"]
    assert {"reps", "teams", "commit", "best_case", "deals", "team_latest"} <= set(rollup)
