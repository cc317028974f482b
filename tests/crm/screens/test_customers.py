"""Customer screens: list with search and filters, create, detail with deals, contacts,
5-star rating history and the existing / new (存量/增量) badge."""

from datetime import date

import pytest
from django.urls import reverse

from crm.models import Contact, Customer, CustomerRating, Tier
from pipeline.services import opportunity_move_stage
from tests.conftest import csv_ids
from tests.factories import CustomerFactory, make_deal


@pytest.fixture
def customers(org):
    return {
        "acme": CustomerFactory(owner=org.rep, region=org.sh, name="Acme Steel", tier=Tier.KEY, industry="Steel"),
        "bolt": CustomerFactory(owner=org.rep_same_team, region=org.sh, name="Bolt Retail", tier=Tier.B),
        "cask": CustomerFactory(owner=org.rep_js, region=org.js, name="Cask Logistics", tier=Tier.C),
        "dune": CustomerFactory(owner=org.rep_other, region=org.bj, name="Dune Foods", tier=Tier.A),
    }


def listed(response):
    return {c.name for c in response.context["page"].object_list}


def test_search_and_filters(org, customers, client_for):
    client = client_for(org.manager)
    url = reverse("crm:customer_list")
    assert listed(client.get(url)) == {"Acme Steel", "Bolt Retail", "Cask Logistics"}
    assert listed(client.get(url, {"q": "steel"})) == {"Acme Steel"}
    assert listed(client.get(url, {"region": org.js.pk})) == {"Cask Logistics"}
    assert listed(client.get(url, {"region": org.east.pk})) == {"Acme Steel", "Bolt Retail", "Cask Logistics"}
    assert listed(client.get(url, {"owner": org.rep_same_team.pk})) == {"Bolt Retail"}
    assert listed(client.get(url, {"tier": "KA"})) == {"Acme Steel"}
    # A region outside the scope is not offered and not applied.
    response = client.get(url, {"region": org.bj.pk})
    assert "region" in response.context["form"].errors
    assert "Dune Foods" not in listed(response)


def test_existing_and_new_segment_filter_and_badge(org, customers, client_for):
    won_stage = next(s for s in org.stages if s.is_won)
    deal = make_deal(owner=org.rep, customer=customers["acme"])
    opportunity_move_stage(
        opportunity=deal, stage=won_stage, actor=org.rep, evidence="signed", closed_on=date(2026, 3, 1)
    )
    client = client_for(org.manager)
    url = reverse("crm:customer_list")
    assert listed(client.get(url, {"segment": "existing"})) == {"Acme Steel"}
    assert listed(client.get(url, {"segment": "new"})) == {"Bolt Retail", "Cask Logistics"}
    html = client.get(url).content.decode()
    assert html.count('data-segment="existing"') == 1
    assert html.count('data-segment="new"') == 2
    detail = client.get(reverse("crm:customer_detail", args=[customers["acme"].pk])).content.decode()
    assert 'data-segment="existing"' in detail


def test_htmx_search_returns_only_the_results(org, customers, client_for):
    response = client_for(org.manager).get(
        reverse("crm:customer_list"), {"q": "bolt"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-results"
    )
    assert response.templates[0].name == "crm/_customer_results.html"
    assert listed(response) == {"Bolt Retail"}


def test_create_customer_in_scope(org, client_for):
    client = client_for(org.rep)
    form = client.get(reverse("crm:customer_create")).context["form"]
    assert {r.code for r in form.fields["region"].queryset} == {"SH"}
    assert list(form.fields["owner"].queryset) == [org.rep]
    response = client.post(
        reverse("crm:customer_create"),
        {"name": "New Co", "region": org.sh.pk, "owner": org.rep.pk, "tier": "A", "industry": "Retail"},
    )
    customer = Customer.objects.get(name="New Co")
    assert response["Location"] == reverse("crm:customer_detail", args=[customer.pk])
    assert (customer.owner, customer.region, customer.tier) == (org.rep, org.sh, "A")


def test_create_customer_rejects_bad_input_and_writes_nothing(org, client_for):
    client = client_for(org.rep)
    for data, field in [
        ({"name": "", "region": org.sh.pk, "owner": org.rep.pk, "tier": "A"}, "name"),
        ({"name": "X", "region": org.bj.pk, "owner": org.rep.pk, "tier": "A"}, "region"),
        ({"name": "X", "region": org.sh.pk, "owner": org.rep_other.pk, "tier": "A"}, "owner"),
        ({"name": "X", "region": org.sh.pk, "owner": org.rep.pk, "tier": "Z"}, "tier"),
    ]:
        response = client.post(reverse("crm:customer_create"), data)
        assert field in response.context["form"].errors, field
    assert not Customer.objects.exists()


def test_detail_shows_deals_contacts_and_add_contact(org, customers, client_for):
    acme = customers["acme"]
    deal = make_deal(owner=org.rep, customer=acme, name="Acme rollout")
    client = client_for(org.rep)
    detail = client.get(reverse("crm:customer_detail", args=[acme.pk]))
    assert [d.pk for d in detail.context["deals"]] == [deal.pk]
    assert 'data-testid="new-deal"' in detail.content.decode()

    url = reverse("crm:contact_add", args=[acme.pk])
    added = client.post(url, {"name": "Li Wei", "title": "CIO", "is_decision_maker": "on", "email": "li@example.com"})
    assert added.status_code == 302
    contact = Contact.objects.get()
    assert (contact.customer, contact.is_decision_maker) == (acme, True)
    bad = client.post(url, {"name": "", "email": "not-an-email"})
    assert set(bad.context["contact_form"].errors) == {"name", "email"}
    assert Contact.objects.count() == 1
    assert "Li Wei" in client.get(reverse("crm:customer_detail", args=[acme.pk])).content.decode()


def test_star_rating_latest_and_history(org, customers, client_for, time_machine):
    acme = customers["acme"]
    client = client_for(org.rep)
    url = reverse("crm:customer_rate", args=[acme.pk])
    assert client.post(url, {"stars": 3, "reasons": "Budget unclear"}).status_code == 302
    time_machine.shift(3600)
    assert client.post(url, {"stars": 5, "reasons": "Budget confirmed, CIO sponsor"}).status_code == 302

    detail = client.get(reverse("crm:customer_detail", args=[acme.pk]))
    assert detail.context["latest_rating"].stars == 5
    assert [r.stars for r in detail.context["ratings"]] == [5, 3]
    assert 'data-stars="5"' in detail.content.decode()
    listing = client.get(reverse("crm:customer_list"))
    assert {c.name: c.latest_stars for c in listing.context["page"].object_list}["Acme Steel"] == 5

    for bad in ({"stars": 6, "reasons": "x"}, {"stars": 4, "reasons": "  "}, {"reasons": "no stars"}):
        response = client.post(url, bad)
        assert response.context["rating_form"].errors
    assert CustomerRating.objects.count() == 2


def test_export_customers_respects_the_filters(org, customers, client_for):
    client = client_for(org.manager)
    assert csv_ids(client.get(reverse("crm:customer_export_csv"), {"region": org.sh.pk})) == {
        customers["acme"].pk,
        customers["bolt"].pk,
    }
