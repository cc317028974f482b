"""Deal services: probability defaults, stage history, evidence, optimistic locking, currency, 存量/增量."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm.models import AuditLog, Currency, ExchangeRate
from pipeline.models import Collection, Opportunity, OpportunityHistory, Pipeline, StageEvidence
from pipeline.services import (
    ConflictError,
    collection_create,
    next_stage,
    opportunity_create,
    opportunity_move_stage,
    opportunity_update,
)
from tests.factories import CustomerFactory, make_deal


def stage(org, name):
    return next(s for s in org.stages if s.name == name)


def test_probability_and_forecast_default_from_stage(org):
    deal = make_deal(owner=org.rep)
    first = org.stages[0]
    assert (deal.stage, deal.probability, deal.forecast_category) == (first, first.probability, first.forecast_category)
    history = list(deal.history.values_list("field", "old_value", "new_value"))
    assert history == [("stage", "", first.name)]


def test_a_deal_in_a_pipeline_without_stages_is_a_clear_error(org):
    empty = Pipeline.objects.create(name="Not set up yet")
    with pytest.raises(ValidationError) as err:
        opportunity_create(name="First deal", customer=None, owner=org.rep, pipeline=empty, actor=org.rep)
    assert err.value.message_dict == {"stage": ["The pipeline has no stages."]}
    assert not Opportunity.objects.filter(name="First deal").exists()


def test_probability_override_needs_reason(org):
    with pytest.raises(ValidationError) as err:
        make_deal(owner=org.rep, probability=55)
    assert "probability_reason" in err.value.message_dict
    deal = make_deal(owner=org.rep, probability=55, probability_reason="Champion signed off")
    assert deal.probability == 55


def test_move_stage_requires_evidence_and_keeps_history(org):
    deal = make_deal(owner=org.rep)
    target = next_stage(deal)
    assert target.evidence_required
    with pytest.raises(ValidationError) as err:
        opportunity_move_stage(opportunity=deal, stage=target, actor=org.rep)
    assert "evidence" in err.value.message_dict
    assert Opportunity.objects.get(pk=deal.pk).stage_id == org.stages[0].pk  # nothing half-applied

    moved = opportunity_move_stage(opportunity=deal, stage=target, actor=org.rep, evidence="Met the CIO")
    assert moved.probability == target.probability
    stage_rows = OpportunityHistory.objects.filter(opportunity=deal, field="stage").order_by("id")
    last = stage_rows.last()
    assert (last.old_stage, last.new_stage, last.changed_by) == (org.stages[0], target, org.rep)
    assert OpportunityHistory.objects.filter(opportunity=deal, field="probability").get().new_value == str(
        target.probability
    )
    assert StageEvidence.objects.get(opportunity=deal).text == "Met the CIO"
    assert AuditLog.objects.filter(action="opportunity.move_stage", object_id=str(deal.pk)).exists()


def test_lost_needs_reason(org):
    deal = make_deal(owner=org.rep)
    lost = next(s for s in org.stages if s.is_lost)
    with pytest.raises(ValidationError):
        opportunity_move_stage(opportunity=deal, stage=lost, actor=org.rep)
    deal = opportunity_move_stage(
        opportunity=deal, stage=lost, actor=org.rep, lost_reason="Budget cut", closed_on=date(2026, 5, 1)
    )
    assert (deal.lost_reason, deal.closed_on, deal.probability) == ("Budget cut", date(2026, 5, 1), 0)


def test_every_tracked_change_is_in_history(org):
    deal = make_deal(owner=org.manager, amount="1000")
    deal = opportunity_update(
        opportunity=deal,
        data={"amount": Decimal("2500"), "expected_close_date": date(2026, 9, 30), "owner": org.rep},
        actor=org.manager,
    )
    rows = {r.field: (r.old_value, r.new_value) for r in deal.history.exclude(field="stage")}
    assert rows["amount"] == ("1000.00", "2500")
    assert rows["expected_close_date"] == ("2026-06-30", "2026-09-30")
    assert rows["owner"] == (str(org.manager.pk), str(org.rep.pk))


def test_rep_cannot_hand_deal_to_someone_outside_scope(org):
    deal = make_deal(owner=org.rep)
    with pytest.raises(ValidationError):
        opportunity_update(opportunity=deal, data={"owner": org.rep_other}, actor=org.rep)
    assert Opportunity.objects.get(pk=deal.pk).owner == org.rep


def test_concurrent_edit_is_a_conflict(org):
    deal = make_deal(owner=org.rep)
    loaded_version = deal.version
    opportunity_update(opportunity=deal, data={"next_step": "Call"}, actor=org.rep, expected_version=loaded_version)
    with pytest.raises(ConflictError):
        opportunity_update(
            opportunity=deal, data={"next_step": "Visit"}, actor=org.rep, expected_version=loaded_version
        )
    assert Opportunity.objects.get(pk=deal.pk).next_step == "Call"


def test_foreign_currency_is_converted_with_dated_rate(org):
    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7.0"))
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 7, 1), rate=Decimal("7.2"))
    june = make_deal(owner=org.rep, amount="100", currency=usd, close=date(2026, 6, 30))
    july = make_deal(owner=org.rep, amount="100", currency=usd, close=date(2026, 7, 1))
    assert (june.amount_company, july.amount_company) == (Decimal("700.00"), Decimal("720.00"))


def test_missing_rate_is_a_clear_error(org):
    eur = Currency.objects.create(code="EUR", name="Euro")
    with pytest.raises(ValidationError, match="No exchange rate for EUR"):
        make_deal(owner=org.rep, currency=eur)
    assert not Opportunity.objects.exists()


def test_first_won_deal_makes_customer_existing(org):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    won = next(s for s in org.stages if s.is_won)
    deal = make_deal(owner=org.rep, customer=customer)
    customer.refresh_from_db()
    assert customer.first_won_on is None
    opportunity_move_stage(opportunity=deal, stage=won, actor=org.rep, evidence="Signed", closed_on=date(2026, 3, 5))
    customer.refresh_from_db()
    assert customer.first_won_on == date(2026, 3, 5)
    assert customer.is_existing_on(date(2026, 4, 1)) and not customer.is_existing_on(date(2026, 3, 1))


def test_collections_only_on_won_deals_and_never_above_amount(org):
    deal = make_deal(owner=org.rep, amount="1000")
    with pytest.raises(ValidationError):
        collection_create(opportunity=deal, received_on=date(2026, 7, 1), amount=Decimal("10"), actor=org.rep)
    won = next(s for s in org.stages if s.is_won)
    deal = opportunity_move_stage(opportunity=deal, stage=won, actor=org.rep, evidence="Signed")
    collection_create(opportunity=deal, received_on=date(2026, 7, 1), amount=Decimal("600"), actor=org.rep)
    with pytest.raises(ValidationError):
        collection_create(opportunity=deal, received_on=date(2026, 7, 2), amount=Decimal("500"), actor=org.rep)
    assert list(Collection.objects.values_list("amount", flat=True)) == [Decimal("600.00")]
