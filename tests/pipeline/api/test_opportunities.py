"""Deals through the API: creation defaults, probability overrides, stage moves with evidence,
optimistic locking (409) and history. Every write goes through the pipeline services."""

from decimal import Decimal

import pytest

from crm.models import AuditLog
from pipeline.models import Opportunity, OpportunityHistory, StageEvidence
from tests.factories import CustomerFactory, ProductFactory


@pytest.fixture
def customer(org):
    return CustomerFactory(owner=org.rep, region=org.sh)


def create(client, **body):
    return client.post("/api/opportunities/", body, format="json")


def test_create_defaults_owner_stage_and_probability_from_the_stage(org, api, customer):
    second = org.stages[1]  # Solution presented, 30 %
    response = create(
        api(org.rep),
        name="ERP rollout",
        customer=customer.pk,
        stage=second.pk,
        amount="1234.50",
        expected_close_date="2026-09-30",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == org.rep.pk
    assert body["region"] == org.sh.pk
    assert body["probability"] == 30
    assert body["forecast_category"] == "pipeline"
    assert body["status"] == "open"
    # Money is a decimal string; the company amount and the weighted amount are computed.
    assert body["amount"] == "1234.50"
    assert body["amount_company"] == "1234.50"
    assert body["weighted_amount"] == "370.35"
    assert body["version"] == 1
    deal = Opportunity.objects.get(pk=body["id"])
    assert (deal.stage, deal.probability, deal.amount_company) == (second, 30, Decimal("1234.50"))
    assert AuditLog.objects.filter(action="opportunity.create", object_id=str(deal.pk), actor=org.rep).exists()


def test_create_without_stage_starts_at_the_first_stage(org, api, customer):
    body = create(api(org.rep), name="Quick", customer=customer.pk).json()
    assert body["stage"] == org.stages[0].pk
    assert body["probability"] == 10
    assert body["amount"] == "0.00"


def test_probability_override_needs_a_reason(org, api, customer):
    client = api(org.rep)
    response = create(client, name="Hopeful", customer=customer.pk, probability=45)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"]["probability_reason"] == ["Give a reason when the probability differs from the stage's."]
    assert body["detail"] == "Give a reason when the probability differs from the stage's."
    assert not Opportunity.objects.filter(name="Hopeful").exists()

    response = create(client, name="Hopeful", customer=customer.pk, probability=45, probability_reason="CFO sponsor")
    assert response.status_code == 201
    assert response.json()["probability"] == 45


def test_read_only_fields_cannot_be_set(org, api, customer):
    body = create(
        api(org.rep), name="Sneaky", customer=customer.pk, amount="100", amount_company="999999", version=50
    ).json()
    assert body["amount_company"] == "100.00"
    assert body["version"] == 1


def test_lines_set_the_amount(org, api, customer):
    product = ProductFactory()
    response = create(
        api(org.rep),
        name="Bundle",
        customer=customer.pk,
        lines=[
            {"product": product.pk, "quantity": "2", "amount": "300.00"},
            {"product_line": product.line_id, "amount": "200.25"},
        ],
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount"] == "500.25"
    assert sorted(line["amount"] for line in body["lines"]) == ["200.25", "300.00"]
    assert {line["product_line"] for line in body["lines"]} == {product.line_id}


def test_bad_shapes_are_400_with_every_field_named(org, api, customer):
    response = create(api(org.rep), customer=customer.pk, amount="12.345", lines=[{"amount": "x"}])
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"name", "amount", "lines.0.amount"}


def test_move_stage_without_required_evidence_is_refused(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).post(
        f"/api/opportunities/{deal.pk}/move-stage/", {"stage": org.stages[1].pk, "version": deal.version}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Entering “Solution presented” requires evidence: Decision maker met"
    assert body["errors"] == {"evidence": [body["detail"]]}
    deal.refresh_from_db()
    assert (deal.stage, deal.version) == (org.stages[0], 1)


def test_move_stage_with_evidence_moves_and_keeps_history(org, api, deals):
    deal = deals["rep"]
    client = api(org.rep)
    response = client.post(
        f"/api/opportunities/{deal.pk}/move-stage/",
        {"stage": org.stages[1].pk, "evidence": "Met the CIO on 6/12", "version": deal.version},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["stage"], body["probability"], body["version"]) == (org.stages[1].pk, 30, 2)
    assert StageEvidence.objects.get(opportunity=deal).text == "Met the CIO on 6/12"

    history = client.get(f"/api/opportunities/{deal.pk}/history/").json()
    stage_moves = [(h["old_stage"], h["new_stage"]) for h in history if h["field"] == "stage"]
    assert stage_moves == [(None, org.stages[0].pk), (org.stages[0].pk, org.stages[1].pk)]
    assert history[-1]["changed_by"] == org.rep.pk
    assert {h["field"] for h in history} == {"stage", "probability"}


def test_move_to_won_closes_the_deal_today(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).post(
        f"/api/opportunities/{deal.pk}/move-stage/",
        {"stage": org.stages[4].pk, "evidence": "Contract PO-17", "version": deal.version},
        format="json",
    )
    body = response.json()
    assert (body["status"], body["closed_on"], body["probability"]) == ("won", "2026-06-15", 100)


def test_move_to_lost_needs_a_reason(org, api, deals):
    deal = deals["rep"]
    url = f"/api/opportunities/{deal.pk}/move-stage/"
    client = api(org.rep)
    response = client.post(url, {"stage": org.stages[5].pk, "version": deal.version}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"lost_reason": ["Say why the deal was lost."]}
    deal.refresh_from_db()
    assert deal.version == 1  # the version claim was rolled back with the refused move

    response = client.post(
        url, {"stage": org.stages[5].pk, "lost_reason": "Price", "version": deal.version}, format="json"
    )
    assert response.json()["status"] == "lost"
    assert response.json()["lost_reason"] == "Price"


def test_stale_version_is_a_409_and_changes_nothing(org, api, deals):
    deal = deals["rep"]
    client = api(org.rep)
    url = f"/api/opportunities/{deal.pk}/"
    first = client.patch(url, {"amount": "1500.00", "version": 1}, format="json")
    assert first.status_code == 200
    assert first.json()["version"] == 2

    stale = client.patch(url, {"amount": "9999.00", "version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json() == {
        "detail": "Someone else changed this deal since you opened it. Reload and try again.",
        "code": "conflict",
    }
    stale_move = client.post(
        f"{url}move-stage/", {"stage": org.stages[5].pk, "lost_reason": "x", "version": 1}, format="json"
    )
    assert stale_move.status_code == 409
    deal.refresh_from_db()
    assert (deal.amount, deal.version, deal.stage) == (Decimal("1500.00"), 2, org.stages[0])


def test_patch_needs_the_version(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).patch(f"/api/opportunities/{deal.pk}/", {"amount": "5"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["version"]
    deal.refresh_from_db()
    assert deal.amount == Decimal("1000")


def test_patch_changes_fields_and_records_history(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).patch(
        f"/api/opportunities/{deal.pk}/",
        {"amount": "2500.00", "expected_close_date": "2026-07-31", "next_step": "Demo", "version": 1},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["amount"], body["amount_company"], body["weighted_amount"]) == ("2500.00", "2500.00", "250.00")
    assert body["next_step"] == "Demo"
    changes = dict(
        OpportunityHistory.objects.filter(opportunity=deal).exclude(field="stage").values_list("field", "new_value")
    )
    assert changes == {"amount": "2500.00", "expected_close_date": "2026-07-31"}


def test_patch_probability_override_without_reason_is_refused(org, api, deals):
    deal = deals["rep"]
    response = api(org.rep).patch(f"/api/opportunities/{deal.pk}/", {"probability": 70, "version": 1}, format="json")
    assert response.status_code == 400
    assert "probability_reason" in response.json()["errors"]
    deal.refresh_from_db()
    assert (deal.probability, deal.version) == (10, 1)


def test_manager_can_move_a_deal_in_his_area(org, api, deals):
    deal = deals["rep_js"]
    response = api(org.manager).post(
        f"/api/opportunities/{deal.pk}/move-stage/",
        {"stage": org.stages[1].pk, "evidence": "Met the GM", "version": deal.version},
        format="json",
    )
    assert response.status_code == 200
    assert OpportunityHistory.objects.filter(opportunity=deal, field="stage").last().changed_by == org.manager


def test_one_deals_routes_take_no_list_filters_and_keep_the_scope(org, api, deals):
    """A deal's own routes are found by id in the user's scope; the list's filters (documented on the list
    only) neither hide it nor are checked, and they never open another's deal."""
    deal, other = deals["rep"], deals["rep_js"]
    client = api(org.rep)
    elsewhere = org.stages[3].pk  # the deal is at the first stage: the list filtered so does not hold it
    assert client.get(f"/api/opportunities/?stage={elsewhere}").json()["count"] == 0
    assert client.get("/api/opportunities/?stage=x").status_code == 400  # the list checks its filters
    response = client.get(f"/api/opportunities/{deal.pk}/?stage={elsewhere}&owner=x")
    assert response.status_code == 200 and response.json()["id"] == deal.pk
    moved = client.post(
        f"/api/opportunities/{deal.pk}/move-stage/?stage={elsewhere}",
        {"stage": org.stages[1].pk, "evidence": "Met the CIO", "version": deal.version},
        format="json",
    )
    assert moved.status_code == 200 and moved.json()["stage"] == org.stages[1].pk
    assert client.get(f"/api/opportunities/{other.pk}/?owner={org.rep_js.pk}").status_code == 404
