"""A deal's row edited in place (pipeline:deal_inline): save, conflict, bad input, access."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import AuditLog
from pipeline.models import Opportunity, OpportunityHistory
from pipeline.services import opportunity_update
from tests.factories import make_deal


@pytest.fixture
def deal(org):
    return make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 30))


def url(deal, **query):
    base = reverse("pipeline:deal_inline", args=[deal.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def post_data(deal, **changes):
    data = {
        "version": deal.version,
        "next_step": deal.next_step,
        "next_step_date": "",
        "expected_close_date": deal.expected_close_date.isoformat(),
        "amount": str(deal.amount),
        "forecast_category": deal.forecast_category,
    }
    return {**data, **changes}


def test_get_gives_the_edit_row_spanning_the_table(org, client_for, deal):
    response = client_for(org.rep).get(url(deal, cols=5))
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="deal-inline-{deal.pk}"' in body and 'colspan="5"' in body
    assert 'name="version" value="1"' in body and 'name="amount"' in body


def test_save_goes_through_the_service_and_answers_the_display_row(org, client_for, deal):
    response = client_for(org.manager).post(
        url(deal),
        post_data(
            deal,
            next_step="Send the revised quote",
            next_step_date="2026-06-02",
            expected_close_date="2026-06-20",
            amount="1,250.50",
            forecast_category="commit",
        ),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-testid="deal-inline-show-{deal.pk}"' in body and "Saved." in body
    saved = Opportunity.objects.get(pk=deal.pk)
    assert (saved.next_step, saved.next_step_date, saved.expected_close_date) == (
        "Send the revised quote",
        date(2026, 6, 2),
        date(2026, 6, 20),
    )
    assert (saved.amount, saved.amount_company, saved.forecast_category, saved.version) == (
        Decimal("1250.50"),
        Decimal("1250.50"),
        "commit",
        2,
    )
    changed = set(
        OpportunityHistory.objects.filter(opportunity=deal).exclude(field="stage").values_list("field", flat=True)
    )
    assert changed == {"amount", "expected_close_date", "forecast_category"}
    assert AuditLog.objects.get(action="opportunity.update", object_id=str(deal.pk)).actor == org.manager


def test_a_stale_version_is_a_conflict_in_the_row(org, client_for, deal):
    opportunity_update(opportunity=deal, data={"amount": Decimal("1100")}, actor=org.manager, expected_version=1)
    response = client_for(org.rep).post(url(deal), post_data(deal, amount="900", version=1))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Someone else changed this deal" in body
    assert 'data-testid="inline-conflict"' in body and "1100" in body
    assert 'name="version" value="2"' in body  # saving again is a deliberate overwrite
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("1100")
    again = client_for(org.rep).post(url(deal), post_data(deal, amount="900", version=2))
    assert "Saved." in again.content.decode()
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("900")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"amount": "lots"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"expected_close_date": ""}, "expected_close_date"),
        ({"expected_close_date": "2026-13-45"}, "expected_close_date"),
        ({"forecast_category": "maybe"}, "forecast_category"),
        ({"version": ""}, "version"),
    ],
)
def test_bad_input_is_an_error_in_the_row_and_changes_nothing(org, client_for, deal, changes, field):
    response = client_for(org.rep).post(url(deal), post_data(deal, next_step="Call", **changes))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-testid="deal-inline-edit-{deal.pk}"' in body
    if field != "version":
        assert f'data-testid="inline-error-{field}"' in body
    after = Opportunity.objects.get(pk=deal.pk)
    assert (after.next_step, after.version) == ("", 1)


def test_a_refused_change_is_a_message_in_the_row(org, client_for, deal):
    """The service's own rules answer in the row: here, an amount below what was collected."""
    from pipeline.services import collection_create, opportunity_move_stage

    won = next(s for s in org.stages if s.is_won)
    deal = opportunity_move_stage(opportunity=deal, stage=won, actor=org.rep, evidence="Signed")
    collection_create(opportunity=deal, received_on=deal.closed_on, amount=Decimal("800"), actor=org.rep)
    response = client_for(org.rep).post(url(deal), post_data(deal, amount="500"))
    body = response.content.decode()
    assert response.status_code == 200 and "already been collected" in body
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("1000")


@pytest.mark.parametrize("who", ["rep_other", "manager_north", "rep_same_team"])
def test_another_teams_or_colleagues_deal_is_a_404(org, client_for, deal, who):
    client = client_for(getattr(org, who))
    assert client.get(url(deal)).status_code == 404
    assert client.post(url(deal), post_data(deal, amount="1")).status_code == 404
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("1000")


def test_anonymous_is_sent_to_log_in(client, deal):
    assert client.post(url(deal), post_data(deal)).status_code == 302
