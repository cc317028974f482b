"""REST attainment: a target and its parts, the trend of one target, within the data scope."""

from datetime import date
from decimal import Decimal

from django.utils import timezone

from crm.models import CompanySettings
from targets.attainment.reference import derive

URL = "/api/attainment/"
HISTORY = "/api/attainment/history/"


def test_a_node_and_its_visible_parts_with_derived_figures(org, tree, snapshots, api):
    east = tree["east"]
    response = api(org.manager).get(URL, {"node": east.pk})
    assert response.status_code == 200
    rows = {row["node"]: row for row in response.json()}
    reps = tree["reps"]
    assert set(rows) == {east.pk, reps[org.rep].pk, reps[org.rep_same_team].pk, reps[org.rep_js].pk}
    assert rows[east.pk]["parent"] == tree["root"].pk
    # The newest snapshot (14 May) holds until the figures change: read today, time progress is today's.
    today = timezone.localdate()
    assert today > date(2027, 5, 14)
    expected = derive(snapshots["rep"], on=today, working_days=CompanySettings.load().count_working_days)
    mine = rows[reps[org.rep].pk]["figures"]
    assert mine["as_of"] == today.isoformat()
    assert mine["changed_on"] == "2027-05-14"
    assert Decimal(mine["actual"]) == Decimal("90000")
    assert Decimal(mine["attainment"]) == expected.attainment
    assert Decimal(mine["time_progress"]) == expected.time_progress
    assert Decimal(mine["pace_gap"]) == expected.pace_gap
    assert mine["pace"] == "good"
    assert rows[reps[org.rep_js].pk]["figures"]["pace"] == "bad"


def test_a_node_without_snapshot_has_null_figures(org, tree, approved, api):
    rows = api(org.rep).get(URL, {"node": tree["reps"][org.rep].pk}).json()
    assert rows == [
        {
            "node": tree["reps"][org.rep].pk,
            "label": tree["reps"][org.rep].label,
            "parent": tree["east"].pk,
            "figures": None,
            # The targets are known without figures: the one in force and the original (version 1).
            "target_in_force": "200000.00",
            "original_target": "200000.00",
            "attainment_in_force_pct": None,
            "original_attainment_pct": None,
        }
    ]


def test_a_rep_never_gets_a_colleagues_attainment(org, tree, snapshots, api):
    client = api(org.rep)
    colleague = tree["reps"][org.rep_same_team]
    for url in (URL, HISTORY):
        response = client.get(url, {"node": colleague.pk})
        assert response.status_code == 404
        assert "90000" not in response.content.decode() and "60000" not in response.content.decode()
    # A manager outside the area neither.
    assert api(org.manager_north).get(URL, {"node": tree["east"].pk}).status_code == 404


def test_bad_input_is_a_400_with_the_field(org, tree, api):
    for params in ({}, {"node": "x"}):
        response = api(org.manager).get(URL, params)
        assert response.status_code == 400
        assert "node" in response.json()["errors"]


def test_history_is_oldest_first(org, tree, snapshots, api):
    rows = api(org.rep).get(HISTORY, {"node": tree["reps"][org.rep].pk}).json()
    assert [r["as_of"] for r in rows] == ["2027-04-30", "2027-05-14"]
    assert [Decimal(r["actual"]) for r in rows] == [Decimal("10000"), Decimal("90000")]
    assert Decimal(rows[0]["time_progress"]) < Decimal(rows[1]["time_progress"])


def test_queries_do_not_grow_with_the_parts(org, tree, snapshots, api, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        rows = api(org.director).get(URL, {"node": tree["root"].pk}).json()
    assert len(rows) == 3
    with django_assert_max_num_queries(8):
        rows = api(org.manager).get(URL, {"node": tree["east"].pk}).json()
    assert len(rows) == 4
    assert date.fromisoformat(rows[1]["figures"]["changed_on"]) == date(2027, 5, 14)


BY = "/api/attainment/by-dimension/"


def test_by_rep_is_ranked_and_scoped(org, plan, snapshots, api):
    rows = api(org.manager).get(BY, {"plan": plan.pk, "dimension": "rep"}).json()
    assert [r["key"] for r in rows] == [str(org.rep.pk), str(org.rep_same_team.pk), str(org.rep_js.pk)]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert Decimal(rows[0]["attainment"]) == Decimal("0.45") and rows[0]["pace"] == "good"
    mine = api(org.rep).get(BY, {"plan": plan.pk, "dimension": "rep"}).json()
    assert [r["key"] for r in mine] == [str(org.rep.pk)]


def test_by_region_sums_the_topmost_region_targets(org, plan, tree, snapshots, api):
    rows = api(org.director).get(BY, {"plan": plan.pk, "dimension": "region"}).json()
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == {str(org.east.pk), str(org.north.pk)}
    assert Decimal(by_key[str(org.east.pk)]["actual"]) == Decimal("170000")
    assert by_key[str(org.north.pk)]["attainment"] is None  # no snapshot yet
    assert rows[0]["key"] == str(org.east.pk)
    manager = api(org.manager).get(BY, {"plan": plan.pk, "dimension": "region"}).json()
    assert [r["key"] for r in manager] == [str(org.east.pk)]


def test_by_month_in_time_order(org, plan, tree, api):
    from targets.services import target_split
    from tests.targets.attainment_ui.conftest import snap

    node = tree["reps"][org.rep]
    node.refresh_from_db()
    months = target_split(node=node, dimension="month", method="equal", actor=org.manager).children
    months = sorted(months, key=lambda m: m.period_start)
    snap(months[1], "5000")
    rows = api(org.manager).get(BY, {"plan": plan.pk, "dimension": "month"}).json()
    assert [r["key"] for r in rows] == [m.period_key for m in months]
    assert Decimal(rows[1]["actual"]) == Decimal("5000") and rows[0]["attainment"] is None


def test_by_dimension_bad_input_and_scope(org, plan, tree, api, metrics):
    response = api(org.manager).get(BY, {"plan": plan.pk, "dimension": "colour"})
    assert response.status_code == 400 and "dimension" in response.json()["errors"]
    assert api(org.manager).get(BY, {"dimension": "rep"}).status_code == 400
    assert api(org.manager).get(BY, {"plan": 999999, "dimension": "rep"}).status_code == 404
