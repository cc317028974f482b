"""The review's analytics API: the same figures as the selectors, scoped per role, 400 on bad input, 404 on a
team the user may not see, and the schema as drf-spectacular publishes it."""

from datetime import date
from decimal import Decimal

import pytest

from coaching.drivers import driver_review
from pipeline.analytics import BY_OWNER, win_rates
from tests.coaching.analytics.conftest import Q2, WON


@pytest.fixture(autouse=True)
def _day(time_machine):
    time_machine.move_to(date(2026, 6, 20), tick=False)


def test_funnel_counts_only_the_users_deals(org, sales, api):
    east = len([w for w in WON if w[0] != "rep_other"]) + 1
    for user, expected in ((org.director, len(WON) + 1), (org.manager, east), (org.rep, 4)):
        body = api(user).get("/api/review/funnel/", {"date_from": "2026-01-01", "date_to": "2026-06-30"}).json()
        assert body["deals"] == body["won"] == expected, user
        assert body["stages"][0]["reached"] == expected
        assert body["stages"][-1]["name"] == "Won / payment" and body["win_conversion"] == "100.0"


def test_win_rates_equal_the_selector_and_a_rep_gets_his_own_row(org, sales, api):
    body = api(org.manager).get("/api/review/win-rates/", {"by": "owner", "date_from": "2026-01-01"}).json()
    rows = win_rates(org.manager, date_from=date(2026, 1, 1), date_to=date(2026, 6, 20), by=BY_OWNER)
    assert [(r["key"], r["period"], r["won"], Decimal(r["won_amount"])) for r in body] == [
        (r.key, r.period.key, r.won, r.won_amount) for r in rows
    ]
    assert {r["key"] for r in body} == {org.rep.pk, org.rep_same_team.pk, org.rep_js.pk}
    mine = api(org.rep).get("/api/review/win-rates/", {"by": "region", "period": "range"}).json()
    # His deal closing on 30 June is after today, the default end.
    assert [(r["key"], r["won"], r["period"]) for r in mine] == [(org.rep.pk, 3, "range")]


def test_drivers_rows_sum_exactly(org, approved_plan, api):
    body = api(org.manager).get("/api/review/drivers/", {"period": "FY2026-Q2", "by": "owner"}).json()
    reviews = {r.row.key: r for r in driver_review(org.manager, period_start=Q2[0], period_end=Q2[1], by=BY_OWNER)}
    assert {row["key"] for row in body} == set(reviews) == {org.rep.pk, org.rep_same_team.pk, org.rep_js.pk}
    for row in body:
        now, previous = Decimal(row["now"]["amount"]), Decimal(row["previous"]["amount"])
        assert now == reviews[row["key"]].row.now.amount
        assert sum(Decimal(v) for v in row["change"].values()) == now - previous
        target = row["target"]
        assert sum(Decimal(v) for v in target["contributions"].values()) == Decimal(target["gap"])
        assert Decimal(target["gap"]) == now - Decimal(target["target"])
        assert row["previous_start"] == "2026-01-01" and row["previous_end"] == "2026-03-31"
    (whole,) = api(org.manager).get("/api/review/drivers/", {"period": "FY2026-Q2"}).json()
    assert whole["key"] == 0 and Decimal(whole["now"]["amount"]) == Decimal("6600.55")
    assert whole["now"]["exact"] is True


def test_another_team_is_a_404_and_bad_input_a_400(org, sales, api):
    client = api(org.manager)
    for url in ("/api/review/funnel/", "/api/review/win-rates/", "/api/review/drivers/"):
        assert client.get(url, {"region": org.bj.pk}).status_code == 404, url
        assert client.get(url, {"region": org.sh.pk}).status_code == 200, url
        assert api().get(url).status_code == 401
    bad = client.get("/api/review/funnel/", {"date_from": "2026-05-01", "date_to": "2026-01-01"})
    assert bad.status_code == 400 and bad.json()["errors"]["date_from"]
    assert client.get("/api/review/drivers/", {"period": "soon"}).status_code == 400
    assert client.get("/api/review/drivers/", {"period": "FY2026-W03"}).status_code == 400
    assert client.get("/api/review/win-rates/", {"by": "planet"}).status_code == 400
    assert client.get("/api/review/funnel/", {"pipeline": 999999}).status_code == 404


def test_a_rep_sees_only_himself_in_the_drivers(org, sales, api):
    rows = api(org.rep).get("/api/review/drivers/", {"period": "FY2026-Q2", "by": "owner"}).json()
    assert [r["key"] for r in rows] == [0]
    assert Decimal(rows[0]["now"]["amount"]) == Decimal("3200.55")


def test_schema(schema):
    paths = schema["paths"]
    for path in ("/api/review/funnel/", "/api/review/win-rates/", "/api/review/drivers/"):
        get = paths[path]["get"]
        assert {"200", "400", "401", "403", "404"} <= set(get["responses"]), path
    row = schema["components"]["schemas"]["DriverRow"]["properties"]
    assert {"now", "previous", "change", "main_change", "target"} <= set(row)
    params = {p["name"] for p in paths["/api/review/win-rates/"]["get"]["parameters"]}
    assert params == {"date_from", "date_to", "region", "by", "period"}
