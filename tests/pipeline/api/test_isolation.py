"""A rep cannot read or change another rep's deal or customer by any route, and nothing leaks:
a foreign id answers exactly like an id that does not exist."""

from datetime import date
from decimal import Decimal

import pytest

from crm.models import AuditLog, Contact, CustomerRating
from pipeline.models import Activity, Collection, Opportunity, OpportunityHistory, StageEvidence
from pipeline.services import opportunity_move_stage
from tests.factories import CustomerFactory, make_deal

MISSING_ID = 999_999


@pytest.fixture
def foreign(org, deals):
    """rep_other's deal, already won so a collection would otherwise be accepted."""
    deal = deals["rep_other"]
    opportunity_move_stage(opportunity=deal, stage=org.stages[4], evidence="signed", actor=org.rep_other)
    deal.refresh_from_db()
    return deal


def snapshot(deal):
    deal = Opportunity.objects.get(pk=deal.pk)
    return (
        deal.name,
        deal.amount,
        deal.stage_id,
        deal.version,
        deal.owner_id,
        OpportunityHistory.objects.filter(opportunity=deal).count(),
        StageEvidence.objects.filter(opportunity=deal).count(),
        Collection.objects.filter(opportunity=deal).count(),
        Activity.objects.count(),
        AuditLog.objects.count(),
    )


def assert_not_found(response):
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


def test_rep_cannot_read_patch_move_or_see_history_of_another_reps_deal(org, api, foreign):
    client = api(org.rep)
    before = snapshot(foreign)
    url = f"/api/opportunities/{foreign.pk}/"

    assert_not_found(client.get(url))
    assert_not_found(client.patch(url, {"name": "mine now", "version": foreign.version}, format="json"))
    assert_not_found(
        client.post(
            f"{url}move-stage/",
            {"stage": org.stages[5].pk, "lost_reason": "sabotage", "version": foreign.version},
            format="json",
        )
    )
    assert_not_found(client.get(f"{url}history/"))
    assert snapshot(foreign) == before


@pytest.mark.parametrize("method", ["put", "delete"])
def test_put_and_delete_are_not_routes_at_all(org, api, deals, method):
    """Deals are never deleted or replaced wholesale through the API, not even by their owner or an admin."""
    for user, deal in [(org.rep, deals["rep"]), (org.rep, deals["rep_other"]), (org.admin, deals["rep_other"])]:
        before = snapshot(deal)
        response = getattr(api(user), method)(f"/api/opportunities/{deal.pk}/", {"name": "x"}, format="json")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
        assert snapshot(deal) == before


def test_rep_cannot_add_a_collection_to_another_reps_deal(org, api, foreign):
    client = api(org.rep)
    before = snapshot(foreign)
    body = {"received_on": "2026-06-15", "amount": "100.00"}

    response = client.post("/api/collections/", {**body, "opportunity": foreign.pk}, format="json")
    missing = client.post("/api/collections/", {**body, "opportunity": MISSING_ID}, format="json")

    assert response.status_code == 400
    assert "opportunity" in response.json()["errors"]
    # The same answer as for an id that does not exist, so the deal's existence does not leak.
    assert response.json()["errors"]["opportunity"] == [
        m.replace(str(MISSING_ID), str(foreign.pk)) for m in missing.json()["errors"]["opportunity"]
    ]
    assert snapshot(foreign) == before


def test_rep_cannot_log_an_activity_on_another_reps_customer_or_deal(org, api, deals, foreign):
    client = api(org.rep)
    before = snapshot(foreign)

    on_customer = client.post(
        "/api/activities/", {"customer": foreign.customer_id, "kind": "visit", "date": "2026-06-10"}, format="json"
    )
    assert on_customer.status_code == 400
    assert "customer" in on_customer.json()["errors"]

    on_deal = client.post(
        "/api/activities/",
        {"customer": deals["rep"].customer_id, "opportunity": foreign.pk, "kind": "call", "date": "2026-06-10"},
        format="json",
    )
    assert on_deal.status_code == 400
    assert "opportunity" in on_deal.json()["errors"]

    for_someone_else = client.post(
        "/api/activities/",
        {"customer": deals["rep"].customer_id, "owner": org.rep_other.pk, "kind": "call", "date": "2026-06-10"},
        format="json",
    )
    assert for_someone_else.status_code == 400
    assert "owner" in for_someone_else.json()["errors"]
    assert snapshot(foreign) == before


def test_rep_cannot_create_a_deal_on_another_reps_customer_or_for_another_rep(org, api, deals):
    client = api(org.rep)
    count = Opportunity.objects.count()

    response = client.post(
        "/api/opportunities/", {"name": "Poach", "customer": deals["rep_other"].customer_id}, format="json"
    )
    assert response.status_code == 400
    assert "customer" in response.json()["errors"]

    response = client.post(
        "/api/opportunities/",
        {"name": "Gift", "customer": deals["rep"].customer_id, "owner": org.rep_same_team.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "owner" in response.json()["errors"]
    assert Opportunity.objects.count() == count


def test_rep_cannot_hand_his_deal_to_a_customer_he_cannot_see(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).patch(
        f"/api/opportunities/{deal.pk}/",
        {"customer": deals["rep_other"].customer_id, "version": deal.version},
        format="json",
    )
    assert response.status_code == 400
    assert "customer" in response.json()["errors"]
    deal.refresh_from_db()
    assert deal.customer_id != deals["rep_other"].customer_id


def test_rep_cannot_read_or_change_another_reps_customer(org, api, deals):
    customer = deals["rep_other"].customer
    client = api(org.rep)
    url = f"/api/customers/{customer.pk}/"

    assert_not_found(client.get(url))
    assert_not_found(client.patch(url, {"name": "Renamed"}, format="json"))
    assert_not_found(client.put(url, {"name": "Renamed", "region": org.sh.pk, "tier": "A"}, format="json"))
    assert_not_found(client.post(f"{url}contacts/", {"name": "Spy"}, format="json"))
    assert_not_found(client.post(f"{url}rate/", {"stars": 1, "reasons": "spite"}, format="json"))
    assert client.delete(url).status_code == 405

    customer.refresh_from_db()
    assert customer.name != "Renamed"
    assert not Contact.objects.filter(customer=customer).exists()
    assert not CustomerRating.objects.filter(customer=customer).exists()


def test_manager_cannot_reach_another_areas_deal(org, api, foreign):
    before = snapshot(foreign)
    client = api(org.manager)
    assert_not_found(client.get(f"/api/opportunities/{foreign.pk}/"))
    assert_not_found(
        client.patch(f"/api/opportunities/{foreign.pk}/", {"amount": "1", "version": foreign.version}, format="json")
    )
    response = client.post(
        "/api/collections/",
        {"opportunity": foreign.pk, "received_on": "2026-06-15", "amount": str(Decimal("1"))},
        format="json",
    )
    assert response.status_code == 400
    assert snapshot(foreign) == before
    assert foreign.closed_on == date(2026, 6, 15)


def test_browsable_api_forms_offer_only_visible_customers(org, api, deals):
    make_deal(owner=org.rep_other, customer=CustomerFactory(owner=org.rep_other, name="Secret Foundry"))
    make_deal(owner=org.rep, customer=CustomerFactory(owner=org.rep, name="Open Bakery"))
    response = api(org.rep).get("/api/opportunities/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Open Bakery" in html
    assert "Secret Foundry" not in html
