"""Django admin cannot move figures past the services: deal amounts, stages, owners and dates, collections and
the meaning of a stage in use are read-only there (or saved through the service), and the page says where they
change instead."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import AuditLog
from pipeline.models import Collection, Opportunity, OpportunityHistory, Stage
from pipeline.services import collection_create, opportunity_move_stage
from salesmgmt.models import OutboxTask
from tests.factories import make_deal


@pytest.fixture
def won(org):
    deal = make_deal(owner=org.rep, amount="10000", close=date(2026, 5, 5), name="Won deal")
    stage = next(s for s in org.stages if s.is_won)
    opportunity_move_stage(opportunity=deal, stage=stage, actor=org.rep, evidence="Signed", closed_on=date(2026, 5, 5))
    collection_create(opportunity=deal, received_on=date(2026, 5, 10), amount=Decimal("8000"), actor=org.rep)
    return Opportunity.objects.get(pk=deal.pk)


def change_url(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_an_admin_post_cannot_change_a_deals_amount_stage_or_owner(org, won, client_for):
    lost = next(s for s in org.stages if s.is_lost)
    history = OpportunityHistory.objects.filter(opportunity=won).count()
    OutboxTask.objects.all().delete()
    response = client_for(org.admin).post(
        change_url(won),
        {
            "name": "Renamed in admin",
            "amount": "1.00",
            "amount_company": "1.00",
            "stage": lost.pk,
            "owner": org.rep_other.pk,
            "closed_on": "2020-01-01",
            "next_step": "",
            "next_step_date": "",
            "star_rating": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    deal = Opportunity.objects.get(pk=won.pk)
    assert (deal.amount, deal.amount_company, deal.stage, deal.owner, deal.closed_on) == (
        Decimal("10000.00"),
        Decimal("10000.00"),
        won.stage,
        org.rep,
        date(2026, 5, 5),
    )
    # What may change went through the service: audited, versioned, no figure moved so no recompute.
    assert (deal.name, deal.version) == ("Renamed in admin", won.version + 1)
    audit = AuditLog.objects.get(action="opportunity.update", object_id=str(deal.pk))
    assert (audit.actor, audit.changes["name"]) == (org.admin, ["Won deal", "Renamed in admin"])
    assert OpportunityHistory.objects.filter(opportunity=won).count() == history
    assert not OutboxTask.objects.exists()


def test_the_deal_admin_page_says_where_to_change_figures(org, won, client_for):
    html = client_for(org.admin).get(change_url(won)).content.decode()
    assert "change on the deal&#x27;s page or through the API" in html or "change on the deal's page" in html
    assert reverse("pipeline:deal_detail", args=[won.pk]) in html
    assert 'name="amount"' not in html and 'name="stage"' not in html and 'name="owner"' not in html


def test_admin_cannot_add_or_delete_deals_or_touch_collections(org, won, client_for):
    client = client_for(org.admin)
    assert client.get(reverse("admin:pipeline_opportunity_add")).status_code == 403
    assert client.post(reverse("admin:pipeline_opportunity_delete", args=[won.pk]), {"post": "yes"}).status_code == 403
    collection = Collection.objects.get()
    assert client.get(reverse("admin:pipeline_collection_add")).status_code == 403
    refused = client.post(change_url(collection), {"amount": "99999", "received_on": "2026-05-10", "_save": "Save"})
    assert refused.status_code == 403
    assert (
        client.post(reverse("admin:pipeline_collection_delete", args=[collection.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Collection.objects.get().amount == Decimal("8000.00")
    view = client.get(change_url(collection)).content.decode()  # view only, with the way to do it
    assert reverse("pipeline:deal_detail", args=[won.pk]) in view


def stage_data(stage, **changes):
    data = {
        "pipeline": stage.pipeline_id,
        "name": stage.name,
        "name_zh": stage.name_zh,
        "order": stage.order,
        "probability": stage.probability,
        "is_won": "on" if stage.is_won else "",
        "is_lost": "on" if stage.is_lost else "",
        "forecast_category": stage.forecast_category,
        "expected_days": stage.expected_days or "",
        "evidence_required": stage.evidence_required,
        "_save": "Save",
    }
    return {k: v for k, v in {**data, **changes}.items() if v != ""}


def test_a_stage_in_use_keeps_its_probability_and_won_flag(org, won, client_for):
    client = client_for(org.admin)
    stage = won.stage
    response = client.post(change_url(stage), stage_data(stage, probability=50, is_won="", name="Won (renamed)"))
    assert response.status_code == 302
    stage = Stage.objects.get(pk=stage.pk)
    assert (stage.probability, stage.is_won, stage.name) == (100, True, "Won (renamed)")
    # In the pipeline's page too: the stages' figure fields are not inputs once the pipeline has deals.
    html = client.get(change_url(org.pipeline)).content.decode()
    assert 'name="stages-0-name"' in html
    assert 'name="stages-0-probability"' not in html and 'name="stages-0-is_won"' not in html


def test_a_stage_without_deals_can_still_be_configured(org, client_for):
    unused = org.stages[0]
    response = client_for(org.admin).post(change_url(unused), stage_data(unused, probability=15))
    assert response.status_code == 302
    assert Stage.objects.get(pk=unused.pk).probability == 15
