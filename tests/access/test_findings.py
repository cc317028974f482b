"""Regression tests for what the access matrix found (issue 16), each on the persona company of tests/conftest.py."""

from datetime import date

import pytest
from django.urls import reverse

from pipeline.models import Activity
from tests.factories import CustomerFactory, make_deal

pytestmark = pytest.mark.django_db


@pytest.fixture
def cross_region(org):
    """The Beijing rep sells to a customer of the Shanghai rep: his deal counts for Beijing, his call is on it."""
    customer = CustomerFactory(name="Shared Co", owner=org.rep, region=org.sh)
    deal = make_deal(owner=org.rep_other, customer=customer, name="Beijing deal at Shared Co")
    call = Activity.objects.create(
        customer=customer,
        opportunity=deal,
        owner=org.rep_other,
        kind="call",
        date=date(2026, 6, 1),
        notes="Beijing call",
    )
    visit = Activity.objects.create(
        customer=customer, owner=org.rep_other, kind="visit", date=date(2026, 6, 2), notes="Beijing visit, no deal"
    )
    return customer, deal, call, visit


def test_an_activity_on_a_deal_is_seen_where_the_deal_is(org, cross_region):
    """Found by the matrix: the East manager saw, on his rep's customer page and in /api/activities/, the Beijing
    rep's call on a Beijing deal, the deal's name included, because an activity's scope went by its customer's
    region alone. An activity on a deal now follows the deal (the team it counts for), as its collections do."""
    _customer, _deal, call, visit = cross_region
    assert call not in Activity.objects.visible_to(org.manager)
    assert call in Activity.objects.visible_to(org.rep_other)  # his own
    assert call in Activity.objects.visible_to(org.manager_north)  # the deal's team
    assert call in Activity.objects.visible_to(org.director)
    # An activity on no deal is still the customer's region's to see (and its owner's).
    assert visit in Activity.objects.visible_to(org.manager)
    assert visit in Activity.objects.visible_to(org.rep_other)
    assert visit not in Activity.objects.visible_to(org.rep)  # a rep sees his own only


def test_a_deals_own_activities_follow_the_same_rule_for_everyone(org, cross_region):
    """The deal page lists a deal's activities through `on_deal_visible_to`, which skips the customer's arm of the
    rule: for every user it gives exactly what `visible_to` gives on that deal (another's call on a deal he sees
    too, none when he sees neither the deal nor the call)."""
    customer, deal, call, _visit = cross_region
    mine = Activity.objects.create(
        customer=customer, opportunity=deal, owner=org.rep, kind="visit", date=date(2026, 6, 3)
    )
    users = [org.rep, org.rep_other, org.rep_same_team, org.manager, org.manager_north, org.director, org.admin]
    for user in users:
        expected = set(Activity.objects.visible_to(user).filter(opportunity=deal))
        assert set(Activity.objects.on_deal_visible_to(deal, user)) == expected, user
    assert set(Activity.objects.on_deal_visible_to(deal, org.manager)) == set()
    assert set(Activity.objects.on_deal_visible_to(deal, org.rep)) == {mine}  # his own, on a deal he does not see
    assert set(Activity.objects.on_deal_visible_to(deal, org.manager_north)) == {call, mine}


def test_the_customer_page_and_the_api_embed_no_deal_of_another_team(org, cross_region, client_for, api):
    customer, deal, call, _visit = cross_region
    page = client_for(org.manager).get(reverse("crm:customer_detail", args=[customer.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Beijing visit, no deal" in text  # the page does list the customer's activities
    assert deal.name not in text and "Beijing call" not in text
    rows = api(org.manager).get("/api/activities/").json()["results"]
    assert call.pk not in {row["id"] for row in rows}
    director_page = client_for(org.director).get(reverse("crm:customer_detail", args=[customer.pk])).content.decode()
    assert deal.name in director_page and "Beijing call" in director_page
