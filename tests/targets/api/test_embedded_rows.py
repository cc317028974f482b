"""Rows of another model embedded in a response go through that model's own door: an adjustment's
change rows, a version diff's and a split's targets show only the targets the caller may see."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from targets.services import adjustment_propose
from tests.targets.api.conftest import fresh


@pytest.fixture
def cross_area(approved, tree, org):
    """The director moves 50,000 from a Shanghai rep (East) to North: rows of both areas in one adjustment."""
    return adjustment_propose(
        plan=approved,
        kind="reallocation",
        reason="Key account moved north",
        changes=[
            {"node": fresh(tree["rep"]), "amount": Decimal("100000")},
            {"node": fresh(tree["north"]), "amount": Decimal("650000")},
        ],
        actor=org.director,
    )


def changed(body) -> set[int]:
    return {row["node"] for row in body["changes"]}


def test_an_adjustment_shows_each_manager_only_the_rows_of_his_area(api, org, tree, cross_area):
    url = f"/api/target-adjustments/{cross_area.pk}/"
    east = api(org.manager).get(url)
    assert east.status_code == 200
    assert changed(east.json()) == {tree["rep"].pk}
    assert [(c["old"], c["new"]) for c in east.json()["changes"]] == [("150000.00", "100000.00")]
    assert changed(api(org.manager_north).get(url).json()) == {tree["north"].pk}
    assert changed(api(org.director).get(url).json()) == {tree["rep"].pk, tree["north"].pk}


def test_the_adjustment_list_filters_the_rows_of_every_adjustment(api, org, tree, cross_area):
    listed = api(org.manager).get("/api/target-adjustments/").json()["results"]
    assert [(a["id"], changed(a)) for a in listed] == [(cross_area.pk, {tree["rep"].pk})]
    listed = api(org.manager_north).get("/api/target-adjustments/").json()["results"]
    assert [(a["id"], changed(a)) for a in listed] == [(cross_area.pk, {tree["north"].pk})]


def test_the_api_shows_the_same_rows_as_the_adjustment_page(api, client, org, tree, cross_area):
    client.force_login(org.manager)
    page = client.get(f"/targets/adjustments/{cross_area.pk}/")
    assert page.status_code == 200
    body = api(org.manager).get(f"/api/target-adjustments/{cross_area.pk}/").json()
    shown = [row["node"] for row in page.context["rows"]]
    assert shown == [row["node"] for row in body["changes"]] == [tree["rep"].pk]


def test_the_rows_of_a_page_of_adjustments_are_checked_in_one_query(api, org, approved, tree):
    def list_queries() -> int:
        client = api(org.manager)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/target-adjustments/").status_code == 200
        return len(queries)

    def propose(node, amount):
        adjustment_propose(
            plan=approved,
            kind="total_change",
            reason="More",
            changes=[{"node": fresh(node), "amount": Decimal(amount)}],
            actor=org.director,
        )

    propose(tree["rep"], "160000")
    one = list_queries()
    propose(tree["rep_sh2"], "170000")
    propose(tree["north"], "700000")
    assert list_queries() == one


def test_a_split_result_lists_only_the_parts_the_caller_may_see(api, org, plan, tree):
    """The manager splits Jiangsu by rep: the parts owned by reps are his to see, and the response says so."""
    js = fresh(tree["js"])
    response = api(org.manager).post(
        f"/api/target-nodes/{js.pk}/split/",
        {"dimension": "rep", "method": "equal", "version": js.version},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert {c["parent"] for c in response.json()["children"]} == {js.pk}
    assert len(response.json()["children"]) == js.children.count()
