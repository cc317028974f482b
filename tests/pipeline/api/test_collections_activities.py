"""Collections (回款) against won deals and activities, created through the services."""

from decimal import Decimal

import pytest

from pipeline.models import Activity, Collection
from pipeline.services import opportunity_move_stage


@pytest.fixture
def won(org, deals):
    deal = deals["rep"]
    opportunity_move_stage(opportunity=deal, stage=org.stages[4], evidence="PO-1", actor=org.rep)
    deal.refresh_from_db()
    return deal


def collect(client, deal, amount):
    return client.post(
        "/api/collections/",
        {"opportunity": deal.pk, "received_on": "2026-06-15", "amount": amount, "note": "wire"},
        format="json",
    )


def test_collection_against_a_won_deal(org, api, won):
    response = collect(api(org.rep), won, "400.00")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["amount_company"], body["currency"]) == ("400.00", "400.00", "CNY")
    assert body["created_by"] == org.rep.pk
    assert Collection.objects.get().amount_company == Decimal("400.00")


def test_collection_cannot_exceed_the_deal(org, api, won):
    client = api(org.rep)
    assert collect(client, won, "900").status_code == 201
    response = collect(client, won, "200")
    assert response.status_code == 400
    (message,) = response.json()["errors"]["amount"]
    assert message.startswith("Collections would exceed the deal amount (900")
    assert message.endswith("already collected of 1000.00).")
    assert Collection.objects.count() == 1


def test_collection_against_an_open_deal_is_refused(org, api, deals):
    response = collect(api(org.rep), deals["rep"], "10")
    assert response.status_code == 400
    assert response.json()["detail"] == "Payments can only be recorded against won deals."
    assert not Collection.objects.exists()


def test_activity_is_logged_for_the_requesting_rep(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).post(
        "/api/activities/",
        {
            "customer": deal.customer_id,
            "opportunity": deal.pk,
            "kind": "meeting",
            "date": "2026-06-12",
            "notes": "Demo",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    activity = Activity.objects.get()
    assert (activity.owner, activity.opportunity, activity.kind) == (org.rep, deal, "meeting")


def test_activity_for_a_deal_of_another_customer_is_refused(org, api, deals):
    client = api(org.manager)
    response = client.post(
        "/api/activities/",
        {"customer": deals["rep"].customer_id, "opportunity": deals["rep_js"].pk, "kind": "call", "date": "2026-06-12"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"opportunity": ["The deal belongs to another customer."]}
    assert not Activity.objects.exists()
