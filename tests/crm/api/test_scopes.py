"""Each role sees through the API exactly what its data scope allows: customers, users and regions."""

import pytest

from tests.conftest import EXPECTED_OWNERS, ids, results


@pytest.mark.parametrize("role", sorted(EXPECTED_OWNERS))
def test_customer_list_and_detail_follow_the_scope(org, deals, api, role):
    client = api(getattr(org, role))
    expected = {deals[name].customer_id for name in EXPECTED_OWNERS[role]}
    assert ids(client.get("/api/customers/")) == expected
    hidden = {deal.customer_id for deal in deals.values()} - expected
    for pk in hidden:
        assert client.get(f"/api/customers/{pk}/").status_code == 404


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
