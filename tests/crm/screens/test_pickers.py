"""The search pickers of people and customers (crm.forms.SearchSelect and its endpoints): they list at most a
short page of matches, only from the user's scope; a form renders the chosen one alone, takes an exact name
typed without JavaScript, and still refuses an id outside the scope."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from crm.models import Customer, Role, User
from crm.selectors import PICK_LIMIT
from tests.factories import CustomerFactory, UserFactory

PEOPLE = reverse("crm:pick_people")
CUSTOMERS = reverse("crm:pick_customers")


def picked(response) -> list[int]:
    """The ids the endpoint offers, in order."""
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'role="option"[^>]*data-value="(\d+)"', response.content.decode())]


def usernames(response) -> set[str]:
    return set(User.objects.filter(pk__in=picked(response)).values_list("username", flat=True))


# --- the people endpoint ------------------------------------------------------------------------------


def test_a_manager_finds_only_the_people_of_his_regions(org, client_for):
    client = client_for(org.manager)
    # "a" is in the usernames of manager_north (North) and admin (no region): neither is his to pick.
    found = usernames(client.get(PEOPLE, {"q": "a"}))
    assert "manager" in found and found <= {"manager", "rep", "rep_sh2", "rep_js"}
    assert usernames(client.get(PEOPLE, {"q": "rep"})) == {"rep", "rep_sh2", "rep_js"}
    assert usernames(client.get(PEOPLE, {"q": "north"})) == set()
    assert "Nobody you may choose matches." in client.get(PEOPLE, {"q": "rep_other"}).content.decode()
    # Every word must match somewhere: name, username or employee code.
    assert usernames(client.get(PEOPLE, {"q": "rep js"})) == {"rep_js"}


def test_a_rep_whose_scope_is_himself_finds_only_himself(org, client_for):
    client = client_for(org.rep)
    assert usernames(client.get(PEOPLE, {"q": ""})) == {"rep"}
    assert usernames(client.get(PEOPLE, {"q": "rep"})) == {"rep"}
    assert usernames(client.get(PEOPLE, {"q": "manager"})) == set()


def test_the_director_finds_the_whole_company(org, client_for):
    assert usernames(client_for(org.director).get(PEOPLE, {"q": "rep"})) == {"rep", "rep_sh2", "rep_js", "rep_other"}


def test_roles_and_region_narrow_the_list_as_the_field_does(org, client_for):
    client = client_for(org.director)
    managers = client.get(PEOPLE, {"q": "", "role": [Role.MANAGER, "nonsense"]})
    assert usernames(managers) == {"manager", "manager_north"}
    # A region's subtree, and the asking user (who may always pick himself).
    assert usernames(client.get(PEOPLE, {"within": org.sh.pk})) == {"rep", "rep_sh2", "director"}
    # Narrowing never widens: a manager asking for North's subtree still gets nobody of North.
    assert usernames(client_for(org.manager).get(PEOPLE, {"within": org.north.pk})) == {"manager"}


def test_the_list_is_short_and_says_when_more_match(org, client_for):
    for i in range(PICK_LIMIT + 5):
        UserFactory(username=f"sh_rep_{i:02d}", role=Role.REP, region=org.sh, first_name=f"Zhang{i:02d}")
    response = client_for(org.manager).get(PEOPLE, {"q": "zhang"})
    assert len(picked(response)) == PICK_LIMIT
    assert "More match: type more of the name." in response.content.decode()
    assert len(picked(client_for(org.manager).get(PEOPLE, {"q": "zhang0"}))) == 10


def test_the_endpoints_need_a_login(client):
    for url in (PEOPLE, CUSTOMERS):
        assert client.get(url, {"q": "a"}).status_code == 302


# --- the customer endpoint ----------------------------------------------------------------------------


@pytest.fixture
def customers(org):
    return {
        "acme": CustomerFactory(owner=org.rep, region=org.sh, name="Acme Steel", external_id="ERP-1"),
        "acme_js": CustomerFactory(owner=org.rep_js, region=org.js, name="Acme Jiangsu"),
        "acme_north": CustomerFactory(owner=org.rep_other, region=org.bj, name="Acme North"),
    }


def test_customers_are_searched_within_the_scope(org, customers, client_for):
    ids = {c.pk: name for name, c in customers.items()}

    def found(user, q):
        return {ids[pk] for pk in picked(client_for(user).get(CUSTOMERS, {"q": q}))}

    assert found(org.rep, "acme") == {"acme"}
    assert found(org.manager, "acme") == {"acme", "acme_js"}
    assert found(org.director, "acme") == {"acme", "acme_js", "acme_north"}
    assert found(org.manager, "steel acme") == {"acme"}
    assert found(org.manager, "erp-1") == {"acme"}  # an exact external id
    assert found(org.manager, "north") == set()
    assert "No customer you may see matches." in client_for(org.rep).get(CUSTOMERS, {"q": "jiangsu"}).content.decode()


# --- a form with a picker ------------------------------------------------------------------------------


def options(html: str) -> int:
    return html.count("<option")


def test_the_customer_form_renders_only_the_chosen_owner_whatever_the_company_size(org, client_for):
    url = reverse("crm:customer_create")
    client = client_for(org.director)
    small = client.get(url).content.decode()
    UserFactory.create_batch(300, role=Role.REP, region=org.sh)
    big = client.get(url).content.decode()
    assert options(big) == options(small) <= 15  # regions and tiers, no person
    # The owner defaults to the user: his name is in the search field, his id in the hidden input.
    assert f'name="owner" value="{org.director.pk}"' in big
    assert f'name="owner_text" value="{escape(org.director)}"' in big


def new_customer(org, **owner):
    return {"name": "Kite Labs", "region": org.sh.pk, "tier": "C", **owner}


def test_an_owner_typed_without_picking_is_taken_by_exact_username(org, client_for):
    client = client_for(org.manager)
    url = reverse("crm:customer_create")
    # What a browser without JavaScript posts: the chosen id is stale, the text is what was typed.
    response = client.post(url, new_customer(org, owner=org.manager.pk, owner_text="REP_JS"))
    assert response.status_code == 302
    assert Customer.objects.get(name="Kite Labs").owner == org.rep_js


def test_a_typed_name_that_is_nobody_or_several_is_a_clear_error(org, client_for):
    client = client_for(org.manager)
    url = reverse("crm:customer_create")
    response = client.post(url, new_customer(org, owner="", owner_text="rep_other"))  # North: not his to pick
    assert response.status_code == 200
    assert "Nothing you may choose is called “rep_other”" in " ".join(response.context["form"].errors["owner"])
    UserFactory(username="twin1", first_name="Li", last_name="Na", role=Role.REP, region=org.sh)
    UserFactory(username="twin2", first_name="Li", last_name="Na", role=Role.REP, region=org.js)
    response = client.post(url, new_customer(org, owner="", owner_text="li na"))
    assert "Several are called “li na”: pick one from the list." in response.context["form"].errors["owner"]
    assert not Customer.objects.filter(name="Kite Labs").exists()
    # The page shows the text as typed, for the user to correct.
    assert 'name="owner_text" value="li na"' in response.content.decode()


def test_an_id_outside_the_scope_is_refused_with_or_without_its_text(org, client_for):
    client = client_for(org.manager)
    url = reverse("crm:customer_create")
    for data in ({"owner": org.rep_other.pk}, {"owner": org.rep_other.pk, "owner_text": str(org.rep_other)}):
        response = client.post(url, new_customer(org, **data))
        assert response.status_code == 200
        assert response.context["form"].errors["owner"] == [
            "Select a valid choice. That choice is not one of the available choices."
        ]
    assert not Customer.objects.filter(name="Kite Labs").exists()


def test_the_owner_filter_shows_the_chosen_name_and_never_an_outsiders(org, client_for):
    client = client_for(org.manager)
    url = reverse("crm:customer_list")
    html = client.get(url, {"owner": org.rep_js.pk}).content.decode()
    assert f'name="owner_text" value="{escape(org.rep_js)}"' in html
    response = client.get(url, {"owner": org.rep_other.pk})
    assert response.context["form"].errors["owner"]
    assert f'value="{escape(org.rep_other)}"' not in response.content.decode()
    # Emptied by the user: all owners again, whatever id came with it.
    response = client.get(url, {"owner": org.rep_js.pk, "owner_text": ""})
    assert response.context["form"].is_valid() and response.context["form"].cleaned_data["owner"] is None
