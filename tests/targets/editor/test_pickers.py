"""The owner pickers of the plan screens are search fields (crm.forms.SearchSelect) that list what their form
accepts: a new plan's owner among managers, a target's owner among the people of its region."""

import re
from html import unescape

from django.urls import reverse

from targets.models import TargetPlan
from targets.services import target_split
from tests.targets.conftest import by_region


def picker_url(html: str, name: str) -> str:
    field = re.search(rf'<input type="search" name="{name}_text"[^>]*>', html, re.S)[0]
    return unescape(re.search(r'hx-get="([^"]*)"', field)[1])


def test_a_new_plans_owner_is_searched_among_managers(org, metrics, client_for):
    client = client_for(org.director)
    url = picker_url(client.get(reverse("targets:plan_list")).content.decode(), "owner")
    assert url.startswith(reverse("crm:pick_people")) and "role=manager" in url and "role=rep" not in url
    found = client.get(url + "&q=").content.decode()
    assert f'data-value="{org.manager.pk}"' in found and f'data-value="{org.rep.pk}"' not in found
    # A rep typed in is not a manager: refused; the manager's username is taken.
    data = {"metric": metrics["won_revenue"].pk, "period_key": "FY2027", "total": "600000", "region": org.east.pk}
    response = client.post(reverse("targets:plan_create"), {**data, "owner": "", "owner_text": "rep_js"})
    assert "Nothing you may choose is called “rep_js”" in response.content.decode()
    response = client.post(reverse("targets:plan_create"), {**data, "owner": "", "owner_text": "manager"})
    assert response.status_code == 302 and TargetPlan.objects.get().owner == org.manager


def test_a_targets_owner_is_searched_in_its_region(org, plan, client_for):
    root = plan.nodes.get(parent__isnull=True)
    north = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)[
        org.north.pk
    ]
    client = client_for(org.director)
    html = client.get(reverse("targets:node_edit", args=[plan.pk, north.pk])).content.decode()
    url = picker_url(html, "owner")
    assert f"within={org.north.pk}" in url
    found = client.get(url + "&q=rep").content.decode()
    assert f'data-value="{org.rep_other.pk}"' in found and f'data-value="{org.rep.pk}"' not in found
    form = re.search(rf'data-testid="edit-form-{north.pk}".*?</form>', html, re.S)[0]
    assert "<option" not in form  # owner, deadline and amount: no list of people
