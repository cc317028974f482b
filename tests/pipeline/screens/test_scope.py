"""Data scopes on every screen: lists, details, actions and exports show only what the user may see."""

import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from crm.models import Contact, CustomerRating
from pipeline.models import Activity, Collection, Opportunity, OpportunityHistory
from tests.conftest import csv_ids, xlsx_ids
from tests.factories import CustomerFactory, make_deal


@pytest.fixture
def deals(org):
    return {
        "rep": make_deal(owner=org.rep, name="Rep deal"),
        "rep_same_team": make_deal(owner=org.rep_same_team, name="Teammate deal"),
        "rep_js": make_deal(owner=org.rep_js, name="Jiangsu deal"),
        "rep_other": make_deal(owner=org.rep_other, name="Beijing deal"),
    }


def ids(*deals):
    return {d.pk for d in deals}


def listed_ids(response, key="deals"):
    context = response.context
    if key == "page":
        return {d.pk for d in context["page"].object_list}
    return {d.pk for d in context[key]}


def test_my_pipeline_lists_only_own_deals(org, deals, client_for):
    response = client_for(org.rep).get(reverse("pipeline:mine"), {"view": "list"})
    assert listed_ids(response) == ids(deals["rep"])
    assert b"Teammate deal" not in response.content


def test_manager_my_pipeline_is_his_own_not_the_team(org, deals, client_for):
    own = make_deal(owner=org.manager, customer=CustomerFactory(owner=org.manager, region=org.sh), name="Mgr deal")
    response = client_for(org.manager).get(reverse("pipeline:mine"), {"view": "list"})
    assert listed_ids(response) == {own.pk}


def test_kanban_cards_are_only_own_deals(org, deals, client_for):
    response = client_for(org.rep).get(reverse("pipeline:mine"), {"view": "kanban"})
    cards = {d.pk for column in response.context["columns"] for d in column.deals}
    assert cards == ids(deals["rep"])
    assert [c.stage.pk for c in response.context["columns"]] == [s.pk for s in org.stages]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("rep", {"rep"}),
        ("manager", {"rep", "rep_same_team", "rep_js"}),
        ("director", {"rep", "rep_same_team", "rep_js", "rep_other"}),
    ],
)
def test_team_pipeline_list_and_exports_follow_the_scope(org, deals, client_for, who, expected):
    client = client_for(getattr(org, who))
    want = {deals[k].pk for k in expected}
    response = client.get(reverse("pipeline:team"))
    assert listed_ids(response, "page") == want
    assert response.context["totals"]["count"] == len(want)
    assert csv_ids(client.get(reverse("pipeline:team_export_csv"))) == want
    xlsx = client.get(reverse("pipeline:team_export_xlsx"))
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert xlsx_ids(xlsx) == want


def test_team_filter_choices_offer_only_the_scope(org, deals, client_for):
    form = client_for(org.manager).get(reverse("pipeline:team")).context["form"]
    assert {r.code for r in form.fields["region"].queryset} == {"EAST", "SH", "JS"}
    assert {u.username for u in form.fields["owner"].queryset} == {"manager", "rep", "rep_sh2", "rep_js"}


def test_filtering_on_a_rep_outside_the_scope_shows_an_error_and_leaks_nothing(org, deals, client_for):
    response = client_for(org.manager).get(reverse("pipeline:team"), {"owner": org.rep_other.pk})
    assert "owner" in response.context["form"].errors
    assert deals["rep_other"].pk not in listed_ids(response, "page")
    export = client_for(org.manager).get(reverse("pipeline:team_export_csv"), {"owner": org.rep_other.pk})
    assert deals["rep_other"].pk not in csv_ids(export)


def test_rep_gets_404_on_another_reps_deal_everywhere(org, deals, client_for):
    client = client_for(org.rep)
    other = deals["rep_same_team"]
    before = Opportunity.objects.get(pk=other.pk)
    assert client.get(reverse("pipeline:deal_detail", args=[other.pk])).status_code == 404
    assert client.post(reverse("pipeline:deal_edit", args=[other.pk]), {"version": other.version}).status_code == 404
    edit_form = reverse("pipeline:deal_edit", args=[other.pk])
    assert client.get(edit_form).status_code == 404
    assert client.get(edit_form, headers={"HX-Request": "true", "HX-Target": "edit-body"}).status_code == 404
    move_url = reverse("pipeline:deal_move", args=[other.pk])
    assert client.get(move_url, {"stage": org.stages[1].pk}).status_code == 404
    response = client.post(move_url, {"stage": org.stages[1].pk, "evidence": "x", "version": other.version})
    assert response.status_code == 404
    activity = {"kind": "visit", "date": "2026-05-15", "notes": "sneaky"}
    assert client.post(reverse("pipeline:deal_activity_add", args=[other.pk]), activity).status_code == 404
    assert client.post(reverse("pipeline:activity_new"), {**activity, "customer": other.customer_id}).status_code == 404
    assert client.get(reverse("pipeline:activity_new"), {"customer": other.customer_id}).status_code == 404
    collection = {"received_on": "2026-05-15", "amount": "10"}
    assert client.post(reverse("pipeline:deal_collection_add", args=[other.pk]), collection).status_code == 404

    after = Opportunity.objects.get(pk=other.pk)
    assert (after.stage_id, after.version, after.name) == (before.stage_id, before.version, before.name)
    assert not Activity.objects.exists()
    assert not Collection.objects.exists()
    assert OpportunityHistory.objects.filter(opportunity=other).count() == 1  # only its creation


def test_rep_cannot_collect_on_another_reps_won_deal(org, client_for):
    won = next(s for s in org.stages if s.is_won)
    other = make_deal(owner=org.rep_same_team, stage=won, close=date(2026, 5, 1))
    response = client_for(org.rep).post(
        reverse("pipeline:deal_collection_add", args=[other.pk]), {"received_on": "2026-05-10", "amount": "10"}
    )
    assert response.status_code == 404
    assert not Collection.objects.exists()


def test_manager_sees_his_reps_deal_but_not_another_areas(org, deals, client_for):
    client = client_for(org.manager)
    assert client.get(reverse("pipeline:deal_detail", args=[deals["rep_js"].pk])).status_code == 200
    assert client.get(reverse("pipeline:deal_detail", args=[deals["rep_other"].pk])).status_code == 404


def test_customer_pages_and_export_follow_the_scope(org, deals, client_for):
    client = client_for(org.rep)
    mine, others = deals["rep"].customer, deals["rep_same_team"].customer
    response = client.get(reverse("crm:customer_list"))
    assert {c.pk for c in response.context["page"].object_list} == {mine.pk}
    assert csv_ids(client.get(reverse("crm:customer_export_csv"))) == {mine.pk}
    assert xlsx_ids(client.get(reverse("crm:customer_export_xlsx"))) == {mine.pk}
    assert client.get(reverse("crm:customer_detail", args=[others.pk])).status_code == 404
    assert client.post(reverse("crm:contact_add", args=[others.pk]), {"name": "Spy"}).status_code == 404
    rate = {"stars": 5, "reasons": "x"}
    assert client.post(reverse("crm:customer_rate", args=[others.pk]), rate).status_code == 404
    assert not Contact.objects.exists()
    assert not CustomerRating.objects.exists()

    manager = client_for(org.manager)
    assert csv_ids(manager.get(reverse("crm:customer_export_csv"))) == {
        deals[k].customer_id for k in ("rep", "rep_same_team", "rep_js")
    }


def test_customer_page_hides_deals_of_other_reps_on_a_visible_customer(org, client_for):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    own = make_deal(owner=org.rep, customer=customer, name="Own on shared account")
    theirs = make_deal(owner=org.rep_same_team, customer=customer, name="Teammate on shared account")
    response = client_for(org.rep).get(reverse("crm:customer_detail", args=[customer.pk]))
    assert {d.pk for d in response.context["deals"]} == {own.pk}
    assert theirs.name.encode() not in response.content
    manager_view = client_for(org.manager).get(reverse("crm:customer_detail", args=[customer.pk]))
    assert {d.pk for d in manager_view.context["deals"]} == {own.pk, theirs.pk}


def test_deal_create_offers_only_visible_customers_and_refuses_others(org, deals, client_for):
    client = client_for(org.rep)
    form = client.get(reverse("pipeline:deal_create")).context["form"]
    assert set(form.fields["customer"].queryset) == {deals["rep"].customer}
    response = client.post(
        reverse("pipeline:deal_create"),
        {
            "name": "Sneaky",
            "customer": deals["rep_other"].customer_id,
            "amount": "100",
            "currency": "CNY",
            "expected_close_date": "2026-07-01",
        },
    )
    assert "customer" in response.context["form"].errors
    assert not Opportunity.objects.filter(name="Sneaky").exists()


def test_exports_are_amounts_as_numbers_and_text_cannot_be_a_formula(org, client_for):
    customer = CustomerFactory(owner=org.rep, region=org.sh, name="=HYPERLINK(1)")
    deal = make_deal(owner=org.rep, customer=customer, amount="1234.50", name="+cmd")
    client = client_for(org.rep)
    text = client.get(reverse("pipeline:team_export_csv")).content.decode("utf-8-sig")
    assert "'+cmd" in text and "'=HYPERLINK(1)" in text and "1234.50" in text
    sheet = load_workbook(io.BytesIO(client.get(reverse("pipeline:team_export_xlsx")).content)).active
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == deal.pk)
    assert row[1] == "'+cmd"
    assert Decimal(str(row[header.index("Amount")])) == Decimal("1234.50")
