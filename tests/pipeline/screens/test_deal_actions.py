"""A rep's deal work: create in a few fields, advance with one action (evidence when required),
mark lost, edit with optimistic locking, record collections and log activities."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import Currency, ExchangeRate
from pipeline.models import Activity, Collection, Opportunity, OpportunityHistory, OpportunityLine, StageEvidence
from tests.factories import CustomerFactory, ProductLineFactory, deal_edit_data, make_deal

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def deal(org):
    return make_deal(owner=org.rep, amount="10000", close=date(2026, 6, 30), name="Big one")


def stage(org, name):
    return next(s for s in org.stages if s.name == name)


def lost_stage(org):
    return next(s for s in org.stages if s.is_lost)


def move(client, deal, target, **data):
    return client.post(
        reverse("pipeline:deal_move", args=[deal.pk]),
        {"stage": target.pk, "version": deal.version, **data},
        **({} if data.pop("plain", False) else HTMX),
    )


# --- landing ----------------------------------------------------------------------------------------


def test_home_is_each_roles_workbench(org, client_for):
    # The home pages themselves are tested in tests/coaching/home/.
    assert client_for(org.rep).get("/").templates[0].name == "coaching/home/rep.html"
    assert client_for(org.manager).get("/").templates[0].name == "coaching/home/manager.html"
    assert client_for(org.director).get("/").templates[0].name == "coaching/home/manager.html"


# --- advance ---------------------------------------------------------------------------------------


def test_the_list_offers_advance_to_the_next_stage_and_mark_lost(org, deal, client_for):
    response = client_for(org.rep).get(reverse("pipeline:mine"), {"view": "list"})
    html = response.content.decode()
    assert f'data-testid="advance-{deal.pk}"' in html
    assert "Advance to Solution presented" in html
    assert f'data-testid="lost-{deal.pk}"' in html
    assert 'data-testid="new-deal"' in html


def test_advance_asks_for_the_required_evidence_in_a_dialog(org, deal, client_for):
    client = client_for(org.rep)
    target = stage(org, "Solution presented")
    dialog = client.get(reverse("pipeline:deal_move", args=[deal.pk]), {"stage": target.pk, "ctx": "row"}, **HTMX)
    assert dialog.templates[0].name == "pipeline/_move_dialog.html"
    assert "Decision maker met" in dialog.content.decode()

    refused = move(client, deal, target, ctx="row")
    assert refused["HX-Retarget"] == "#dialog-slot"
    assert "requires evidence" in refused.content.decode()
    deal.refresh_from_db()
    assert deal.stage == org.stages[0]
    assert not StageEvidence.objects.exists()
    assert OpportunityHistory.objects.filter(opportunity=deal, field="stage").count() == 1


def test_advance_with_evidence_moves_records_history_and_returns_the_updated_row(org, deal, client_for):
    client = client_for(org.rep)
    target = stage(org, "Solution presented")
    response = move(client, deal, target, ctx="row", evidence="Met the CIO")
    assert response.status_code == 200
    assert response.templates[0].name == "pipeline/_deal_rows.html"
    assert f'id="deal-{deal.pk}"' in response.content.decode()
    assert "Advance to Negotiation" in response.content.decode()
    assert "dealChanged" in response["HX-Trigger"]

    deal.refresh_from_db()
    assert (deal.stage, deal.probability, deal.version) == (target, 30, 2)
    entry = OpportunityHistory.objects.get(opportunity=deal, field="stage", new_stage=target)
    assert (entry.old_stage, entry.changed_by) == (org.stages[0], org.rep)
    assert StageEvidence.objects.get(opportunity=deal).text == "Met the CIO"

    detail = client.get(reverse("pipeline:deal_detail", args=[deal.pk]))
    timeline = [(e.field, e.old_display, e.new_display, e.changed_by) for e in detail.context["history"]]
    assert ("stage", "Needs confirmed", "Solution presented", org.rep) in timeline
    assert "Met the CIO" in detail.content.decode()


def test_advance_without_required_evidence_is_one_click(org, deal, client_for):
    target = stage(org, "Solution presented")
    target.evidence_required = ""
    target.save()
    client = client_for(org.rep)
    html = client.get(reverse("pipeline:mine"), {"view": "list"}).content.decode()
    # No dialog: the button posts the move straight away.
    assert f'name="stage" value="{target.pk}"' in html
    response = move(client, deal, target, ctx="card")
    assert response.templates[0].name == "pipeline/_deal_card.html"
    deal.refresh_from_db()
    assert deal.stage == target


def test_advance_from_the_kanban_updates_column_counts(org, deal, client_for):
    client = client_for(org.rep)
    make_deal(owner=org.rep, amount="500", name="Small one")
    columns = client.get(reverse("pipeline:mine"), {"view": "kanban"}).context["columns"]
    assert (columns[0].count, columns[0].total) == (2, Decimal("10500.00"))
    move(client, deal, stage(org, "Solution presented"), ctx="card", evidence="Met the CIO")
    columns = client.get(reverse("pipeline:mine"), {"view": "kanban"}).context["columns"]
    assert (columns[0].count, columns[0].total) == (1, Decimal("500.00"))
    assert (columns[1].count, columns[1].total, columns[1].weighted) == (1, Decimal("10000.00"), Decimal("3000.00"))
    assert [d.pk for d in columns[1].deals] == [deal.pk]


def test_plain_post_without_htmx_redirects_to_the_deal(org, deal, client_for):
    response = move(client_for(org.rep), deal, stage(org, "Solution presented"), evidence="Met", plain=True)
    assert response.status_code == 302
    assert response["Location"] == reverse("pipeline:deal_detail", args=[deal.pk])


def test_mark_lost_asks_for_the_reason(org, deal, client_for):
    client = client_for(org.rep)
    refused = move(client, deal, lost_stage(org), ctx="row")
    assert "Say why the deal was lost" in refused.content.decode()
    deal.refresh_from_db()
    assert not deal.stage.is_lost

    move(client, deal, lost_stage(org), ctx="row", lost_reason="Budget cut")
    deal.refresh_from_db()
    assert deal.stage.is_lost
    assert (deal.lost_reason, deal.closed_on) == ("Budget cut", date(2026, 5, 15))


def test_a_stale_advance_is_refused_and_changes_nothing(org, deal, client_for):
    client = client_for(org.rep)
    stale_version = deal.version
    move(client, deal, stage(org, "Solution presented"), ctx="row", evidence="first")
    deal.refresh_from_db()
    response = client.post(
        reverse("pipeline:deal_move", args=[deal.pk]),
        {"stage": stage(org, "Negotiation").pk, "version": stale_version, "evidence": "second", "ctx": "row"},
        **HTMX,
    )
    assert "Someone else changed this deal" in response.content.decode()
    after = Opportunity.objects.get(pk=deal.pk)
    assert (after.stage, after.version) == (deal.stage, deal.version)


def test_a_stage_of_another_pipeline_is_404(org, deal, client_for):
    from pipeline.models import Pipeline, Stage

    other = Pipeline.objects.create(name="Other")
    foreign = Stage.objects.create(pipeline=other, name="X", order=1, probability=50)
    response = client_for(org.rep).post(reverse("pipeline:deal_move", args=[deal.pk]), {"stage": foreign.pk})
    assert response.status_code == 404


# --- create ----------------------------------------------------------------------------------------


def test_create_a_deal_in_a_few_fields(org, client_for):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    line = ProductLineFactory()
    client = client_for(org.rep)
    form = client.get(reverse("pipeline:deal_create"), {"customer": customer.pk}).context["form"]
    assert form["customer"].value() == str(customer.pk)
    assert form["currency"].value() == "CNY"
    response = client.post(
        reverse("pipeline:deal_create"),
        {
            "name": "Fresh deal",
            "customer": customer.pk,
            "amount": "1,234.50",
            "currency": "CNY",
            "expected_close_date": "2026-07-31",
            "product_line": line.pk,
        },
    )
    deal = Opportunity.objects.get(name="Fresh deal")
    assert response["Location"] == reverse("pipeline:deal_detail", args=[deal.pk])
    assert (deal.owner, deal.amount, deal.amount_company, deal.stage) == (
        org.rep,
        Decimal("1234.50"),
        Decimal("1234.50"),
        org.stages[0],
    )
    assert OpportunityLine.objects.get(opportunity=deal).product_line == line


def test_a_foreign_currency_deal_is_converted_for_totals(org, client_for):
    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7.00"))
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    client_for(org.rep).post(
        reverse("pipeline:deal_create"),
        {
            "name": "Dollar",
            "customer": customer.pk,
            "amount": "100",
            "currency": "USD",
            "expected_close_date": "2026-07-31",
        },
    )
    assert Opportunity.objects.get(name="Dollar").amount_company == Decimal("700.00")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": ""}, "name"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"expected_close_date": "31/31/2026"}, "expected_close_date"),
        ({"customer": ""}, "customer"),
        ({"currency": "XXX"}, "currency"),
    ],
)
def test_bad_create_input_shows_the_error_and_writes_nothing(org, client_for, data, field):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    good = {
        "name": "Deal",
        "customer": customer.pk,
        "amount": "100",
        "currency": "CNY",
        "expected_close_date": "2026-07-31",
    }
    response = client_for(org.rep).post(reverse("pipeline:deal_create"), {**good, **data})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert not Opportunity.objects.exists()


def test_a_missing_exchange_rate_is_a_form_error_not_a_500(org, client_for):
    Currency.objects.create(code="EUR", name="Euro")
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    response = client_for(org.rep).post(
        reverse("pipeline:deal_create"),
        {
            "name": "Euro",
            "customer": customer.pk,
            "amount": "100",
            "currency": "EUR",
            "expected_close_date": "2026-07-31",
        },
    )
    assert "No exchange rate for EUR" in response.content.decode()
    assert not Opportunity.objects.exists()


# --- edit with optimistic locking ------------------------------------------------------------------


def test_edit_saves_and_keeps_history(org, deal, client_for):
    response = client_for(org.rep).post(
        reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, amount="12000", next_step="Demo")
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.amount, deal.next_step, deal.version) == (Decimal("12000.00"), "Demo", 2)
    assert OpportunityHistory.objects.filter(opportunity=deal, field="amount", new_value="12000.00").exists()


def test_the_edit_panel_loads_its_form_when_opened(org, deal, client_for):
    """The deal page carries no edit form, only the panel that fetches it (htmx) from the edit URL; that URL
    answers htmx with the form alone, and a plain browser with the deal page, the panel open."""
    client = client_for(org.rep)
    edit_url = reverse("pipeline:deal_edit", args=[deal.pk])
    page = client.get(reverse("pipeline:deal_detail", args=[deal.pk])).content.decode()
    assert 'data-testid="edit-form"' not in page and 'name="amount"' not in page
    loader = re.search(r'<div hx-get="([^"]+)" hx-trigger="([^"]+)"[^>]*data-testid="edit-loading"', page)
    assert loader is not None and loader.group(1) == edit_url and "from:closest details" in loader.group(2)

    fragment = client.get(edit_url, headers={"HX-Request": "true", "HX-Target": "edit-body"})
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in html and "HX-Request" in fragment["Vary"]
    assert 'data-testid="edit-form"' in html and f'name="version" value="{deal.version}"' in html
    assert f'action="{edit_url}"' in html and 'name="csrfmiddlewaretoken"' in html

    full = client.get(edit_url).content.decode()
    assert '<details id="edit" class="panel" data-testid="edit-panel" open>' in full
    assert 'data-testid="edit-form"' in full and 'data-testid="deal-facts"' in full
    # What the panel loaded saves like the form always did.
    response = client.post(edit_url, deal_edit_data(deal, amount="12500"))
    assert response.status_code == 302
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("12500.00")


def test_a_stale_edit_shows_the_conflict_keeps_what_was_typed_and_changes_nothing(org, deal, client_for):
    client = client_for(org.rep)
    stale = deal_edit_data(deal, amount="99999", next_step="My careful notes")
    # Someone else saves first.
    client_for(org.manager).post(reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, amount="20000"))
    deal.refresh_from_db()
    assert (deal.amount, deal.version) == (Decimal("20000.00"), 2)

    response = client.post(reverse("pipeline:deal_edit", args=[deal.pk]), stale)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="conflict"' in html
    assert "Someone else changed this deal" in html
    assert "My careful notes" in html and "99999" in html
    form = response.context["edit_form"]
    assert form["next_step"].value() == "My careful notes"
    assert form["version"].value() == 2  # saving again is a deliberate overwrite
    assert [c[0] for c in response.context["conflict"]] == ["Amount", "Next step"]
    after = Opportunity.objects.get(pk=deal.pk)
    assert (after.amount, after.next_step, after.version) == (Decimal("20000.00"), "", 2)

    again = client.post(reverse("pipeline:deal_edit", args=[deal.pk]), {**stale, "version": 2})
    assert again.status_code == 302
    assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("99999.00")


def test_bad_edit_input_is_a_form_error_and_writes_nothing(org, deal, client_for):
    client = client_for(org.rep)
    response = client.post(reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, amount="abc"))
    assert "amount" in response.context["edit_form"].errors
    response = client.post(reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, probability=55))
    assert "probability_reason" in response.context["edit_form"].errors
    after = Opportunity.objects.get(pk=deal.pk)
    assert (after.amount, after.probability, after.version) == (Decimal("10000.00"), 10, 1)


def test_edit_cannot_hand_the_deal_to_someone_outside_the_scope(org, deal, client_for):
    response = client_for(org.rep).post(
        reverse("pipeline:deal_edit", args=[deal.pk]), deal_edit_data(deal, owner=org.rep_other.pk)
    )
    assert "owner" in response.context["edit_form"].errors
    assert Opportunity.objects.get(pk=deal.pk).owner == org.rep


# --- collections and activities --------------------------------------------------------------------


def test_collections_on_won_deals_only(org, deal, client_for):
    client = client_for(org.rep)
    url = reverse("pipeline:deal_collection_add", args=[deal.pk])
    refused = client.post(url, {"received_on": "2026-05-15", "amount": "100"})
    assert "only be recorded against won deals" in refused.content.decode()
    assert not Collection.objects.exists()

    won = make_deal(owner=org.rep, stage=next(s for s in org.stages if s.is_won), amount="1000")
    url = reverse("pipeline:deal_collection_add", args=[won.pk])
    assert client.post(url, {"received_on": "2026-05-15", "amount": "600", "note": "first"}).status_code == 302
    too_much = client.post(url, {"received_on": "2026-05-16", "amount": "500"})
    assert "amount" in too_much.context["collection_form"].errors
    assert list(Collection.objects.values_list("amount", flat=True)) == [Decimal("600.00")]
    detail = client.get(reverse("pipeline:deal_detail", args=[won.pk]))
    assert (detail.context["collected"], detail.context["outstanding"]) == (Decimal("600.00"), Decimal("400.00"))


def test_log_an_activity_from_the_deal(org, deal, client_for):
    client = client_for(org.rep)
    url = reverse("pipeline:deal_activity_add", args=[deal.pk])
    response = client.post(url, {"kind": "call", "date": "2026-05-14", "notes": "Called the buyer"})
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert (activity.opportunity, activity.customer, activity.owner, activity.kind) == (
        deal,
        deal.customer,
        org.rep,
        "call",
    )
    assert "Called the buyer" in client.get(reverse("pipeline:deal_detail", args=[deal.pk])).content.decode()

    bad = client.post(url, {"kind": "party", "date": "2026-05-14"})
    assert "kind" in bad.context["activity_form"].errors
    assert Activity.objects.count() == 1


def test_log_an_activity_from_the_customer_page(org, deal, client_for):
    client = client_for(org.rep)
    customer = deal.customer
    page = client.get(reverse("crm:customer_detail", args=[customer.pk])).content.decode()
    assert f"{reverse('pipeline:activity_new')}?customer={customer.pk}" in page
    form = client.get(reverse("pipeline:activity_new"), {"customer": customer.pk}, **HTMX)
    assert form.templates[0].name == "pipeline/_activity_form.html"
    response = client.post(
        reverse("pipeline:activity_new"), {"customer": customer.pk, "kind": "visit", "date": "2026-05-15"}
    )
    assert response["Location"].startswith(reverse("crm:customer_detail", args=[customer.pk]))
    activity = Activity.objects.get()
    assert (activity.customer, activity.opportunity, activity.kind) == (customer, None, "visit")

    bad = client.post(reverse("pipeline:activity_new"), {"customer": customer.pk, "kind": "visit", "date": "soon"})
    assert "date" in bad.context["form"].errors
    assert Activity.objects.count() == 1


def test_nav_offers_import_to_managers_only(org, client_for):
    import_url = reverse("pipeline:import_start")
    assert f'href="{import_url}"' in client_for(org.manager).get(reverse("pipeline:team")).content.decode()
    assert f'href="{import_url}"' not in client_for(org.rep).get(reverse("pipeline:mine")).content.decode()
