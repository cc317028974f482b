"""Customers through the API: create/update via the services, contacts, 5-star ratings."""

import pytest

from crm.models import AuditLog, Contact, Customer, CustomerRating


def test_rep_creates_a_customer_he_owns(org, api):
    response = api(org.rep).post(
        "/api/customers/", {"name": "  Acme Ltd ", "region": org.sh.pk, "tier": "A"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["owner"], body["region_name"], body["segment"]) == (
        "Acme Ltd",
        org.rep.pk,
        "Shanghai",
        "new",
    )
    assert body["contacts"] == [] and body["stars"] is None
    assert AuditLog.objects.filter(action="customer.create", object_id=str(body["id"])).exists()


def test_customer_outside_the_scope_cannot_be_created(org, api):
    client = api(org.rep)
    response = client.post("/api/customers/", {"name": "Far away", "region": org.bj.pk}, format="json")
    assert response.status_code == 400
    assert "region" in response.json()["errors"]
    response = client.post(
        "/api/customers/", {"name": "For a friend", "region": org.sh.pk, "owner": org.rep_same_team.pk}, format="json"
    )
    assert response.status_code == 400
    assert "owner" in response.json()["errors"]
    assert not Customer.objects.exists()


def test_manager_reassigns_a_customer_within_his_area(org, api, deals):
    customer = deals["rep"].customer
    response = api(org.manager).patch(
        f"/api/customers/{customer.pk}/", {"owner": org.rep_js.pk, "region": org.js.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert (customer.owner, customer.region) == (org.rep_js, org.js)
    change = AuditLog.objects.get(action="customer.update", object_id=str(customer.pk))
    assert set(change.changes) == {"owner", "region"}


def test_put_replaces_the_editable_fields(org, api, deals):
    customer = deals["rep"].customer
    response = api(org.rep).put(
        f"/api/customers/{customer.pk}/",
        {"name": "Renamed", "region": org.sh.pk, "tier": "KA", "industry": "Steel"},
        format="json",
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.name, customer.tier, customer.industry, customer.owner) == ("Renamed", "KA", "Steel", org.rep)


@pytest.mark.parametrize("user", ["rep", "admin"])
def test_customers_are_not_deleted_through_the_api(org, api, deals, user):
    customer = deals["rep"].customer
    response = api(getattr(org, user)).delete(f"/api/customers/{customer.pk}/")
    assert response.status_code == 405
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_contacts_are_added_and_listed_with_the_customer(org, api, deals):
    customer = deals["rep"].customer
    client = api(org.rep)
    response = client.post(
        f"/api/customers/{customer.pk}/contacts/",
        {"name": "Li Wei", "title": "CIO", "email": "li@example.com", "is_decision_maker": True},
        format="json",
    )
    assert response.status_code == 201
    assert Contact.objects.get(customer=customer).name == "Li Wei"
    bad = client.post(f"/api/customers/{customer.pk}/contacts/", {"name": "X", "email": "nope"}, format="json")
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["email"]

    contacts = client.get(f"/api/customers/{customer.pk}/").json()["contacts"]
    assert [(c["name"], c["is_decision_maker"]) for c in contacts] == [("Li Wei", True)]


def test_rating_needs_reasons_and_the_latest_is_shown(org, api, deals):
    customer = deals["rep"].customer
    client = api(org.manager)
    url = f"/api/customers/{customer.pk}/rate/"

    blank = client.post(url, {"stars": 4, "reasons": "  "}, format="json")
    assert blank.status_code == 400
    assert blank.json()["errors"] == {"reasons": ["Give the reasons for the rating."]}
    assert client.post(url, {"stars": 6, "reasons": "great"}, format="json").status_code == 400
    assert not CustomerRating.objects.exists()

    assert client.post(url, {"stars": 3, "reasons": "Budget approved"}, format="json").status_code == 201
    response = client.post(url, {"stars": 5, "reasons": "Strategic account"}, format="json")
    assert response.status_code == 201
    assert response.json()["rated_by"] == org.manager.pk
    assert client.get(f"/api/customers/{customer.pk}/").json()["stars"] == 5
