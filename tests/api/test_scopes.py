"""Each role sees through the API exactly what its data scope allows: lists and details."""

from datetime import date
from decimal import Decimal

import pytest

from pipeline.services import activity_log, collection_create, opportunity_move_stage
from tests.api.conftest import ids, results

EXPECTED_OWNERS = {
    "rep": {"rep"},
    "manager": {"rep", "rep_sh2", "rep_js"},
    "director": {"rep", "rep_sh2", "rep_js", "rep_other"},
}


@pytest.mark.parametrize("role", sorted(EXPECTED_OWNERS))
def test_opportunity_list_follows_the_scope(org, deals, api, role):
    rows = results(api(getattr(org, role)).get("/api/opportunities/"))
    assert {row["owner"] for row in rows} == {deals[name].owner_id for name in EXPECTED_OWNERS[role]}
    assert len(rows) == len(EXPECTED_OWNERS[role])


@pytest.mark.parametrize("role", sorted(EXPECTED_OWNERS))
def test_opportunity_detail_is_404_outside_the_scope(org, deals, api, role):
    client = api(getattr(org, role))
    for name, deal in deals.items():
        response = client.get(f"/api/opportunities/{deal.pk}/")
        if name in EXPECTED_OWNERS[role]:
            assert response.status_code == 200
            assert response.json()["name"] == deal.name
        else:
            assert response.status_code == 404
            assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.parametrize("role", sorted(EXPECTED_OWNERS))
def test_customer_list_and_detail_follow_the_scope(org, deals, api, role):
    client = api(getattr(org, role))
    expected = {deals[name].customer_id for name in EXPECTED_OWNERS[role]}
    assert ids(client.get("/api/customers/")) == expected
    hidden = {deal.customer_id for deal in deals.values()} - expected
    for pk in hidden:
        assert client.get(f"/api/customers/{pk}/").status_code == 404


@pytest.mark.parametrize("role", sorted(EXPECTED_OWNERS))
def test_collections_and_activities_follow_the_scope(org, deals, api, role):
    won = org.stages[4]
    for deal in deals.values():
        opportunity_move_stage(opportunity=deal, stage=won, evidence="signed", actor=deal.owner)
        deal.refresh_from_db()
        collection_create(opportunity=deal, received_on=date(2026, 6, 15), amount=Decimal("100"), actor=deal.owner)
        activity_log(customer=deal.customer, kind="visit", date=date(2026, 6, 10), actor=deal.owner)
    client = api(getattr(org, role))
    expected = {deals[name].pk for name in EXPECTED_OWNERS[role]}
    assert {row["opportunity"] for row in results(client.get("/api/collections/"))} == expected
    expected_customers = {deals[name].customer_id for name in EXPECTED_OWNERS[role]}
    assert {row["customer"] for row in results(client.get("/api/activities/"))} == expected_customers


def test_users_and_regions_follow_the_scope(org, api):
    rep_users = {row["username"] for row in results(api(org.rep).get("/api/users/"))}
    assert rep_users == {"rep"}
    manager_users = {row["username"] for row in results(api(org.manager).get("/api/users/"))}
    assert manager_users == {"manager", "rep", "rep_sh2", "rep_js"}
    assert api(org.rep).get(f"/api/users/{org.rep_other.pk}/").status_code == 404

    assert {row["code"] for row in results(api(org.rep).get("/api/regions/"))} == {"SH"}
    assert {row["code"] for row in results(api(org.manager).get("/api/regions/"))} == {"EAST", "SH", "JS"}
    assert {row["code"] for row in results(api(org.director).get("/api/regions/"))} == {
        "HQ",
        "EAST",
        "NORTH",
        "SH",
        "JS",
        "BJ",
    }
    assert api(org.rep).get(f"/api/regions/{org.bj.pk}/").status_code == 404


def test_me_is_the_signed_in_user(org, api):
    body = api(org.manager).get("/api/users/me/").json()
    assert body["username"] == "manager"
    assert body["role"] == "manager"
    assert body["effective_scope"] == "department_tree"
    assert body["region_name"] == "East"
