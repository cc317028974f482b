"""GET /api/review/flow/: the flow's figures and deals for what the caller may see."""

from decimal import Decimal

import pytest

URL = "/api/review/flow/"
OWNERS = {
    "rep": {"rep"},
    "rep_js": {"rep_js"},
    "manager": {"rep", "rep_sh2", "rep_js"},
    "manager_north": {"rep_other"},
    "director": {"rep", "rep_sh2", "rep_js", "rep_other"},
}


def boxes(body):
    return {b["key"]: b for b in body["boxes"]}


@pytest.mark.parametrize("who", sorted(OWNERS))
def test_each_role_gets_only_its_deals_and_figures(org, api, week, who):
    response = api(getattr(org, who)).get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    owners = OWNERS[who]
    n = len(owners)
    by_key = boxes(body)
    assert [b["key"] for b in body["boxes"]] == [
        "start", "new", "moved_in", "increased", "decreased", "won", "lost", "pushed_out", "moved_out",
        "category_in", "category_out", "end",
    ]  # fmt: skip
    assert (Decimal(by_key["start"]["total"]), Decimal(by_key["end"]["total"])) == (Decimal(350 * n), Decimal(450 * n))
    for key, kind in (("new", "new"), ("won", "won"), ("pushed_out", "slip")):
        assert {d["deal"] for d in by_key[key]["deals"]} == {week[o, kind].pk for o in owners}, key
        assert by_key[key]["count"] == n
    assert body["date_from"] == "2026-05-03" and body["period_end"] == "2026-06-30"
    assert body["currency"] == "CNY"


def test_the_flow_balances_in_the_answer(org, api, week):
    body = api(org.director).get(URL).json()
    total = sum(
        Decimal(b["total"]) * b["sign"] for b in body["boxes"] if b["key"] not in ("end", "category_in", "category_out")
    )
    assert total == Decimal(boxes(body)["end"]["total"])


def test_a_deal_shows_what_changed(org, api, week):
    body = api(org.rep).get(URL).json()
    (won,) = boxes(body)["won"]["deals"]
    assert won["close_date"] == {"old": "2026-06-01", "new": "2026-05-06"}
    assert won["amount"] == {"old": "100.00", "new": "100.00"}
    assert won["forecast_category"] == {"old": "pipeline", "new": "closed"}
    assert (won["entry"], won["exit"], won["editable"]) == (None, "won", True)
    (new,) = boxes(body)["new"]["deals"]
    assert new["amount"]["old"] is None and new["stage"]["old"] is None


def test_a_team_narrows_and_another_teams_is_a_404(org, api, week):
    body = api(org.manager).get(URL, {"region": org.js.pk}).json()
    assert Decimal(boxes(body)["end"]["total"]) == Decimal(450)
    assert body["region"] == org.js.pk
    response = api(org.manager).get(URL, {"region": org.bj.pk})
    assert response.status_code == 404
    assert api(org.rep).get(URL, {"region": org.js.pk}).status_code == 404


@pytest.mark.parametrize(
    "params, field",
    [
        ({"date_from": "2026-05-09", "date_to": "2026-05-01"}, "date_to"),
        ({"period_start": "2026-06-30", "period_end": "2026-04-01"}, "period_end"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"deals_per_box": "1000"}, "deals_per_box"),
        ({"region": "east"}, "region"),
    ],
)
def test_bad_input_is_a_400_with_the_field(org, api, week, params, field):
    response = api(org.rep).get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_deals_per_box_limits_the_lists_not_the_figures(org, api, week):
    body = api(org.director).get(URL, {"deals_per_box": 1}).json()
    assert len(boxes(body)["new"]["deals"]) == 1 and boxes(body)["new"]["count"] == 4


def test_anonymous_is_refused(db, api):
    assert api().get(URL).status_code in (401, 403)


def test_the_schema_describes_it(schema):
    operation = schema["paths"]["/api/review/flow/"]["get"]
    assert operation["operationId"] == "review_flow"
    assert {p["name"] for p in operation["parameters"]} >= {
        "date_from",
        "date_to",
        "period_start",
        "period_end",
        "region",
    }
    assert set(operation["responses"]) >= {"200", "400", "404"}
    box = schema["components"]["schemas"]["FlowBox"]
    assert set(box["properties"]) == {"key", "label", "sign", "total", "count", "by_category", "deals"}
