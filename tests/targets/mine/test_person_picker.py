""" "Whose targets" is a search field (crm.forms.SearchSelect) with two fixed choices, "Mine" and "All my
people", above the people of the manager's scope: the page lists none of them, and a name typed without
JavaScript works as a pick does."""

import re

from django.urls import reverse
from django.utils.html import escape

from crm.models import Role
from tests.factories import UserFactory

URL = reverse("targets:mine")


def shown(response) -> set[int]:
    return {node.pk for node in response.context["nodes"]}


def test_whose_targets_by_pick_by_typed_name_or_by_fixed_choice(org, tree, client_for):
    client = client_for(org.manager)
    east_reps = {tree["reps"][r].pk for r in (org.rep, org.rep_same_team, org.rep_js)}
    # As the picker posts them: the id and the name shown, or only what was typed.
    assert shown(client.get(URL, {"person": org.rep_js.pk, "person_text": str(org.rep_js)})) == {
        tree["reps"][org.rep_js].pk
    }
    assert shown(client.get(URL, {"person": "", "person_text": "rep_sh2"})) == {tree["reps"][org.rep_same_team].pk}
    assert shown(client.get(URL, {"person": "team", "person_text": "All my people"})) == east_reps
    assert shown(client.get(URL, {"person": "", "person_text": "all my people"})) == east_reps
    assert shown(client.get(URL, {"person": "", "person_text": "Mine"})) == {tree["east"].pk}
    # Someone of North typed in: said so, and his own targets shown.
    response = client.get(URL, {"person": "", "person_text": "rep_other"})
    assert response.context["form"].errors["person"] and shown(response) == {tree["east"].pk}


def test_the_filter_shows_the_choice_by_name_and_lists_nobody(org, tree, client_for):
    client = client_for(org.manager)
    html = client.get(URL, {"person": "team"}).content.decode()
    assert 'name="person_text" value="All my people"' in html
    assert re.search(r'role="option"[^>]*data-value="team"', html)  # the fixed choices are in the page
    html = client.get(URL, {"person": org.rep_js.pk}).content.decode()
    assert f'name="person_text" value="{escape(org.rep_js)}"' in html
    before = client.get(URL).content.decode().count("<option")
    UserFactory.create_batch(100, role=Role.REP, region=org.sh)
    assert client.get(URL).content.decode().count("<option") == before
