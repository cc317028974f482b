"""Each role sees through the API exactly what its data scope allows: deals (lists and details),
collections and activities."""

from datetime import date
from decimal import Decimal

import pytest

from pipeline.services import activity_log, collection_create, opportunity_move_stage
from tests.conftest import EXPECTED_OWNERS, results


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
