"""A deal has a close day (`closed_on`) exactly while its stage is won or lost: `Opportunity.objects.open()` says
"closed_on IS NULL" beside "the stage is open", in the words of the open-deal index's predicate, so every way a
deal is written keeps the two in step. (The PostgreSQL suite checks `bench.bigco`'s deals in
tests/bench/test_bigco.py, the import tests the imported deals; `tests/pipeline/test_query_plans.py` that the
lists use the index.)"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Q

from pipeline.models import Opportunity
from pipeline.selectors import STATUS_OPEN, STATUS_RECENT, filter_status
from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal


def assert_close_day_exactly_on_closed_deals():
    closed_stage = Q(stage__is_won=True) | Q(stage__is_lost=True)
    assert not Opportunity.objects.filter(closed_stage, closed_on__isnull=True).exists()
    assert not Opportunity.objects.exclude(closed_stage).filter(closed_on__isnull=False).exists()


def stage_open_ids():
    return set(Opportunity.objects.filter(stage__is_won=False, stage__is_lost=False).values_list("pk", flat=True))


def test_a_deal_created_in_any_stage_has_a_close_day_only_when_won_or_lost(org):
    deals = [make_deal(owner=org.rep, stage=stage) for stage in org.stages]
    assert_close_day_exactly_on_closed_deals()
    assert set(Opportunity.objects.open().values_list("pk", flat=True)) == stage_open_ids()
    assert {d.pk for d in deals if not d.stage.is_closed} == stage_open_ids()


def test_an_open_deal_cannot_be_created_with_a_close_day(org):
    with pytest.raises(ValidationError) as error:
        make_deal(owner=org.rep, stage=org.stages[0], closed_on=date(2026, 5, 1))
    assert "closed_on" in error.value.message_dict
    assert not Opportunity.objects.exists()


def test_moves_set_the_close_day_on_closing_and_clear_it_on_reopening(org):
    won = next(s for s in org.stages if s.is_won)
    lost = next(s for s in org.stages if s.is_lost)
    deal = make_deal(owner=org.rep)
    for stage in (org.stages[1], won, org.stages[2], lost, org.stages[0]):
        deal = opportunity_move_stage(opportunity=deal, stage=stage, actor=org.rep, evidence="e", lost_reason="r")
        assert (deal.closed_on is None) == (not stage.is_closed), stage
        assert_close_day_exactly_on_closed_deals()
        assert Opportunity.objects.open().filter(pk=deal.pk).exists() == (not stage.is_closed)


def test_an_edit_never_sets_the_close_day(org):
    deal = make_deal(owner=org.rep)
    deal = opportunity_update(
        opportunity=deal, data={"closed_on": date(2026, 5, 1), "amount": Decimal("5")}, actor=org.rep
    )
    assert deal.closed_on is None
    assert_close_day_exactly_on_closed_deals()


def test_the_lists_open_and_recent_deals_are_those_in_open_stages(org):
    won = next(s for s in org.stages if s.is_won)
    open_deal, won_deal = make_deal(owner=org.rep), make_deal(owner=org.rep)
    opportunity_move_stage(opportunity=won_deal, stage=won, actor=org.rep, evidence="e")
    qs = Opportunity.objects.all()
    assert list(filter_status(qs, STATUS_OPEN)) == [open_deal]
    assert set(filter_status(qs, STATUS_RECENT)) == {open_deal, won_deal}
