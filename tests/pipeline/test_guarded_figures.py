"""Figures that must not be corrupted: a deal's amount never drops below what was collected (回款), and a deal
won in a closed period changes its figures only with a reason, kept in its history. Through the deal page's
edit form and the API, which share the one service."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from crm.models import AuditLog, ClosedPeriodKind
from pipeline.models import Collection, Opportunity, OpportunityHistory
from pipeline.services import (
    collection_create,
    opportunity_in_closed_period,
    opportunity_move_stage,
    opportunity_update,
)
from tests.factories import ProductLineFactory, deal_edit_data, make_deal

TODAY = datetime(2026, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # the open period starts 2026-05-01


@pytest.fixture(autouse=True)
def _frozen_day(time_machine):
    time_machine.move_to(TODAY, tick=False)


def won_deal(org, *, closed_on, amount="10000"):
    deal = make_deal(owner=org.rep, amount=amount, close=closed_on, name=f"Won {closed_on}")
    won = next(s for s in org.stages if s.is_won)
    opportunity_move_stage(opportunity=deal, stage=won, actor=org.rep, evidence="Signed", closed_on=closed_on)
    return Opportunity.objects.get(pk=deal.pk)


@pytest.fixture
def collected(org):
    """A deal won this month with 8,000.00 of its 10,000.00 collected."""
    deal = won_deal(org, closed_on=date(2026, 5, 5))
    collection_create(opportunity=deal, received_on=date(2026, 5, 10), amount=Decimal("8000"), actor=org.rep)
    return Opportunity.objects.get(pk=deal.pk)


@pytest.fixture
def reported(org):
    """A deal won in March: its figures were reported (the period is closed)."""
    return won_deal(org, closed_on=date(2026, 3, 5))


def post_edit(client, deal, **changes):
    return client.post(reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, **changes))


def patch(client, deal, **body):
    return client.patch(f"/api/opportunities/{deal.pk}/", {"version": deal.version, **body}, format="json")


def amount_rows(deal):
    return OpportunityHistory.objects.filter(opportunity=deal, field="amount")


# --- the amount never drops below the collections ----------------------------------------------------


def test_the_edit_form_refuses_an_amount_below_what_was_collected(org, collected, client_for):
    response = post_edit(client_for(org.rep), collected, amount="1949.50")
    assert response.status_code == 200
    (message,) = response.context["edit_form"].errors["amount"]
    assert message == (
        "8000.00 CNY has already been collected on this deal: its amount cannot be less (it would be 1949.50 CNY)."
    )
    deal = Opportunity.objects.get(pk=collected.pk)
    assert (deal.amount, deal.amount_company, deal.version) == (Decimal("10000.00"), Decimal("10000.00"), 2)
    assert not amount_rows(deal).exists()
    assert not AuditLog.objects.filter(action="opportunity.update").exists()
    # The page never shows a negative outstanding amount.
    assert (
        "outstanding 2,000.00 CNY"
        in client_for(org.rep).get(reverse("pipeline:deal_detail", args=[deal.pk])).content.decode()
    )


def test_the_api_refuses_an_amount_below_what_was_collected(org, api, collected):
    response = patch(api(org.rep), collected, amount="7999.99")
    assert response.status_code == 400, response.content
    (message,) = response.json()["errors"]["amount"]
    assert message.startswith("8000.00 CNY has already been collected on this deal")
    assert Opportunity.objects.get(pk=collected.pk).amount == Decimal("10000.00")


def test_the_api_refuses_lines_adding_up_to_less_than_what_was_collected(org, api, collected):
    line = ProductLineFactory()
    response = patch(api(org.rep), collected, lines=[{"product_line": line.pk, "amount": "5000"}])
    assert response.status_code == 400, response.content
    assert "already been collected" in response.json()["errors"]["amount"][0]
    deal = Opportunity.objects.get(pk=collected.pk)
    assert (deal.amount, deal.lines.count()) == (Decimal("10000.00"), 0)


def test_a_currency_change_is_checked_in_the_company_currency(org, api, collected):
    from crm.models import Currency, ExchangeRate

    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7"))
    # 10,000 USD is 70,000 CNY: fine; 1,000 USD is 7,000 CNY: below the 8,000 CNY collected.
    assert patch(api(org.rep), collected, currency="USD", amount="1000").status_code == 400
    response = patch(api(org.rep), collected, currency="USD")
    assert response.status_code == 200, response.content
    assert response.json()["amount_company"] == "70000.00"


def test_the_amount_may_come_down_to_exactly_what_was_collected(org, api, collected):
    response = patch(api(org.rep), collected, amount="8000")
    assert response.status_code == 200, response.content
    assert Opportunity.objects.get(pk=collected.pk).amount == Decimal("8000.00")


def test_put_is_not_a_way_around_the_service(org, api, collected):
    body = {"version": collected.version, "name": collected.name, "amount": "1"}
    response = api(org.rep).put(f"/api/opportunities/{collected.pk}/", body, format="json")
    assert response.status_code == 405
    assert Opportunity.objects.get(pk=collected.pk).amount == Decimal("10000.00")


def test_a_collection_is_checked_against_the_deal_as_saved_not_as_the_caller_read_it(org, collected):
    stale = Opportunity.objects.get(pk=collected.pk)  # read at 10,000.00
    opportunity_update(opportunity=collected, data={"amount": Decimal("9000")}, actor=org.rep)
    with pytest.raises(Exception, match="Collections would exceed the deal amount"):
        collection_create(opportunity=stale, received_on=date(2026, 5, 12), amount=Decimal("1500"), actor=org.rep)
    assert Collection.objects.filter(opportunity=collected).count() == 1


# --- a deal won in a closed period changes its figures only with a reason ---------------------------------


def test_closed_period_is_before_the_start_of_the_current_fiscal_month_or_the_configured_period(org):
    april = won_deal(org, closed_on=date(2026, 4, 30))
    may = won_deal(org, closed_on=date(2026, 5, 1))
    assert (opportunity_in_closed_period(april), opportunity_in_closed_period(may)) == (True, False)
    org.company.closed_period = ClosedPeriodKind.QUARTER  # Q2 (April - June) is still open
    org.company.save()
    assert opportunity_in_closed_period(april) is False
    org.company.fiscal_year_start_month = 6  # the fiscal quarter is now March - May: April is open
    org.company.save()
    assert opportunity_in_closed_period(won_deal(org, closed_on=date(2026, 3, 1))) is False
    assert opportunity_in_closed_period(won_deal(org, closed_on=date(2026, 2, 28))) is True
    open_deal = make_deal(owner=org.rep, close=date(2025, 1, 1))
    assert opportunity_in_closed_period(open_deal) is False  # only won deals count as reported


def test_the_edit_form_asks_for_a_reason_and_refuses_a_figure_change_without_one(org, reported, client_for):
    client = client_for(org.rep)
    page = client.get(
        reverse("pipeline:deal_edit", args=[reported.pk]), headers={"HX-Request": "true", "HX-Target": "edit-body"}
    )
    assert "reason" in page.context["edit_form"].fields
    assert 'name="reason"' in page.content.decode()
    response = post_edit(client, reported, amount="11230000")
    assert response.status_code == 200
    (message,) = response.context["edit_form"].errors["reason"]
    assert message == (
        "This deal was won on 2026-03-05, in a closed period: its figures were reported already. "
        "Give a reason for changing them."
    )
    deal = Opportunity.objects.get(pk=reported.pk)
    assert (deal.amount, deal.version) == (Decimal("10000.00"), reported.version)
    assert not amount_rows(deal).exists()


def test_with_a_reason_the_change_is_saved_and_the_reason_shown_in_the_deals_history(org, reported, client_for):
    client = client_for(org.manager)
    response = post_edit(client, reported, amount="12000", reason="Contract addendum signed in April")
    assert response.status_code == 302, response.context and response.context["edit_form"].errors
    deal = Opportunity.objects.get(pk=reported.pk)
    assert deal.amount_company == Decimal("12000.00")
    (row,) = amount_rows(deal)
    assert (row.old_value, row.new_value, row.reason, row.changed_by) == (
        "10000.00",
        "12000.00",
        "Contract addendum signed in April",
        org.manager,
    )
    audit = AuditLog.objects.get(action="opportunity.update", object_id=str(deal.pk))
    assert audit.changes["reason"] == [None, "Contract addendum signed in April"]
    html = client.get(reverse("pipeline:deal_detail", args=[deal.pk])).content.decode()
    assert "(Contract addendum signed in April)" in html


def test_a_change_that_moves_no_figure_needs_no_reason(org, reported, client_for):
    response = post_edit(client_for(org.rep), reported, next_step="Upsell call")
    assert response.status_code == 302
    assert Opportunity.objects.get(pk=reported.pk).next_step == "Upsell call"


def test_a_deal_won_in_the_open_period_needs_no_reason(org, api, collected):
    assert patch(api(org.rep), collected, amount="12000").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "11230000"},
        {"owner": "rep_js"},
        {"expected_close_date": "2026-05-02"},
        {"lines": "one"},
    ],
    ids=["amount", "owner", "close date", "lines"],
)
def test_the_api_refuses_a_figure_change_without_a_reason(org, api, reported, body):
    body = dict(body)
    if body.get("owner"):
        body["owner"] = org.rep_js.pk
    if body.get("lines"):
        body["lines"] = [{"product_line": ProductLineFactory().pk, "amount": "10000"}]
    response = patch(api(org.manager), reported, **body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["reason"][0].startswith("This deal was won on 2026-03-05, in a closed period")
    deal = Opportunity.objects.get(pk=reported.pk)
    assert (deal.amount, deal.owner, deal.version, deal.lines.count()) == (
        Decimal("10000.00"),
        org.rep,
        reported.version,
        0,
    )

    ok = patch(api(org.manager), reported, **body, reason="Booked to the wrong rep")
    assert ok.status_code == 200, ok.content
    history = api(org.manager).get(f"/api/opportunities/{reported.pk}/history/").json()
    late = [row for row in history if row["reason"] == "Booked to the wrong rep"]
    assert late and {row["field"] for row in late} <= {"amount", "owner", "expected_close_date", "lines"}


def test_moving_a_deal_won_in_a_closed_period_out_of_won_needs_a_reason(org, api, reported):
    lost = next(s for s in org.stages if s.is_lost)
    body = {"stage": lost.pk, "lost_reason": "Customer withdrew", "version": reported.version}
    client = api(org.manager)
    refused = client.post(f"/api/opportunities/{reported.pk}/move-stage/", body, format="json")
    assert refused.status_code == 400, refused.content
    assert "reason" in refused.json()["errors"]
    assert Opportunity.objects.get(pk=reported.pk).stage.is_won

    moved = client.post(
        f"/api/opportunities/{reported.pk}/move-stage/", {**body, "reason": "Contract cancelled"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    rows = {r.field: r for r in OpportunityHistory.objects.filter(opportunity=reported, reason="Contract cancelled")}
    assert set(rows) >= {"stage", "closed_on"}
    assert (rows["closed_on"].old_value, rows["closed_on"].new_value) == ("2026-03-05", "2026-05-15")


def test_the_move_dialog_asks_for_the_reason(org, reported, client_for):
    client = client_for(org.manager)
    lost = next(s for s in org.stages if s.is_lost)
    url = reverse("pipeline:deal_move", args=[reported.pk])
    dialog = client.get(url, {"stage": lost.pk})
    assert "reason" in dialog.context["form"].fields
    refused = client.post(url, {"stage": lost.pk, "version": reported.version, "lost_reason": "Withdrew"})
    assert "reason" in refused.context["form"].errors
    moved = client.post(
        url, {"stage": lost.pk, "version": reported.version, "lost_reason": "Withdrew", "reason": "Cancelled"}
    )
    assert moved.status_code == 302
    assert Opportunity.objects.get(pk=reported.pk).stage == lost
