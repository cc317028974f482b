"""The deal forms and the team pipeline pick people and customers with search fields (crm.forms.SearchSelect):
the page holds the chosen names only, whatever the size of the company, and the scope still decides."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from crm.models import Role
from pipeline.models import Opportunity
from tests.factories import CustomerFactory, UserFactory, deal_edit_data, make_deal


@pytest.fixture
def deal(org):
    return make_deal(owner=org.rep, amount="10000", name="Big one")


def grow(org, n):
    """n more reps and n more customers in Shanghai: what a director's <select>s used to list."""
    for user in UserFactory.create_batch(n, role=Role.REP, region=org.sh):
        CustomerFactory(owner=user, region=org.sh)


def measure(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), len(ctx.captured_queries)


@pytest.mark.parametrize("screen", ["pipeline:deal_detail", "pipeline:deal_create", "pipeline:team"])
def test_the_pickers_render_the_chosen_one_only_however_many_people_and_customers(org, deal, client_for, screen):
    url = reverse(screen, args=[deal.pk]) if screen == "pipeline:deal_detail" else reverse(screen)
    client = client_for(org.director)
    client.get(url)  # warm the per-process caches (company settings, content types)
    small, small_queries = measure(client, url)
    grow(org, 300)
    big, big_queries = measure(client, url)
    # Currencies, stages, regions, forecast categories: no person and no customer is an <option>.
    assert big.count("<option") == small.count("<option") <= 40
    assert big_queries == small_queries
    assert len(big) < len(small) + 500


def test_the_deal_form_shows_the_current_owner_and_customer_by_name(org, deal, client_for):
    html = client_for(org.manager).get(reverse("pipeline:deal_edit", args=[deal.pk])).content.decode()
    assert f'name="owner" value="{org.rep.pk}"' in html
    assert f'name="owner_text" value="{escape(org.rep)}"' in html
    assert f'name="customer" value="{deal.customer_id}"' in html
    assert f'name="customer_text" value="{escape(deal.customer.name)}"' in html


def test_a_new_deal_for_a_customer_from_the_link_shows_its_name_but_not_an_outsiders(org, client_for):
    mine = CustomerFactory(owner=org.rep, region=org.sh, name="Acme Shanghai")
    other = CustomerFactory(owner=org.rep_other, region=org.bj, name="Beijing Secret")
    client = client_for(org.rep)
    html = client.get(reverse("pipeline:deal_create"), {"customer": mine.pk}).content.decode()
    assert 'name="customer_text" value="Acme Shanghai"' in html
    html = client.get(reverse("pipeline:deal_create"), {"customer": other.pk}).content.decode()
    assert "Beijing Secret" not in html


def test_an_owner_outside_the_scope_is_refused_with_a_message(org, deal, client_for):
    client = client_for(org.manager)
    url = reverse("pipeline:deal_edit", args=[deal.pk])
    for extra in ({}, {"owner_text": str(org.rep_other)}):  # a plain id, or as the picker posts it
        response = client.post(url, deal_edit_data(deal, owner=org.rep_other.pk, **extra))
        assert response.context["edit_form"].errors["owner"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]
    assert Opportunity.objects.get(pk=deal.pk).owner == org.rep
    # A rep (scope: himself) cannot hand the deal to his teammate either.
    response = client_for(org.rep).post(url, deal_edit_data(deal, owner=org.rep_same_team.pk))
    assert "owner" in response.context["edit_form"].errors


def test_the_picker_posts_a_new_owner(org, deal, client_for):
    client = client_for(org.manager)
    url = reverse("pipeline:deal_edit", args=[deal.pk])
    data = deal_edit_data(deal, owner=org.rep_js.pk, owner_text=str(org.rep_js), customer_text=deal.customer.name)
    assert client.post(url, data).status_code == 302
    assert Opportunity.objects.get(pk=deal.pk).owner == org.rep_js


def test_a_customer_typed_without_javascript_is_taken_by_its_exact_name(org, client_for):
    CustomerFactory(owner=org.rep, region=org.sh, name="Acme Shanghai")
    CustomerFactory(owner=org.rep_other, region=org.bj, name="Acme Beijing")  # North: not the rep's
    client = client_for(org.rep)
    url = reverse("pipeline:deal_create")
    data = {"name": "Servers", "amount": "5000", "currency": "CNY", "expected_close_date": "2026-12-15"}
    response = client.post(url, {**data, "customer": "", "customer_text": "acme beijing"})
    assert response.status_code == 200
    assert response.context["form"].errors["customer"] == [
        "Nothing you may choose is called “acme beijing”: type part of the name and pick from the list."
    ]
    response = client.post(url, {**data, "customer": "", "customer_text": " acme shanghai "})
    assert response.status_code == 302
    deal = Opportunity.objects.get(name="Servers")
    assert (deal.customer.name, deal.amount) == ("Acme Shanghai", Decimal("5000"))


def test_the_team_pipeline_filters_by_a_picked_or_typed_rep(org, client_for):
    make_deal(owner=org.rep, amount="1000")
    make_deal(owner=org.rep_js, amount="5000")
    client = client_for(org.manager)
    url = reverse("pipeline:team")

    def count(params):
        response = client.get(url, params)
        return response.context["totals"]["count"], response.context["form"].errors

    assert count({}) == (2, {})
    assert count({"owner": org.rep_js.pk, "owner_text": str(org.rep_js)}) == (1, {})
    assert count({"owner": "", "owner_text": "rep_js"}) == (1, {})  # typed, Enter, no pick
    total, errors = count({"owner": "", "owner_text": "rep_other"})
    assert total == 2 and "owner" in errors  # not his to pick: said, and left out
