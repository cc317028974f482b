"""`targets.access`: the one door through which the plan editor, the Excel round trip and "my targets" get
a plan or a target. A target a user does not see is the same 404 on all three screens as a target that
does not exist, and the one he sees opens on all three."""

import pytest
import time_machine
from django.http import Http404
from django.urls import reverse

from targets import access
from targets.services import target_split
from tests.targets.conftest import by_region


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel("2026-11-20 09:00 +0800", tick=False):
        yield


@pytest.fixture
def areas(plan, org):
    """The company-wide plan split by region: East (the East manager's area) and North."""
    split = target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director)
    return by_region(split.children)


def screens(plan, node_pk) -> dict[str, str]:
    """One URL per screen family that opens a target of `plan`."""
    return {
        "editor": reverse("targets:node_edit", args=[plan.pk, node_pk]),
        "editor grid": reverse("targets:plan_grid", args=[plan.pk]) + f"?node={node_pk}",
        "excel": reverse("targets:plan_export", args=[plan.pk]) + f"?view=tree&node={node_pk}",
        "mine": reverse("targets:node_attainment", args=[node_pk]),
    }


def statuses(client, plan, node_pk) -> dict[str, int]:
    return {name: client.get(url).status_code for name, url in screens(plan, node_pk).items()}


def test_the_three_screens_agree_on_a_target_the_user_cannot_see(plan, areas, org, client_for):
    manager = client_for(org.manager)
    east, north = areas[org.east.pk], areas[org.north.pk]
    assert statuses(manager, plan, east.pk) == dict.fromkeys(screens(plan, east.pk), 200)
    assert statuses(manager, plan, north.pk) == dict.fromkeys(screens(plan, north.pk), 404)
    # Not seeing a target looks exactly like its not existing.
    assert statuses(manager, plan, north.pk + 1000) == dict.fromkeys(screens(plan, north.pk), 404)
    # The director sees North: the 404 above is the manager's scope, not the URL.
    assert statuses(client_for(org.director), plan, north.pk) == dict.fromkeys(screens(plan, north.pk), 200)


def test_the_functions_raise_404_outside_the_scope(plan, areas, org):
    east, north = areas[org.east.pk], areas[org.north.pk]
    assert access.visible_plan(org.manager, plan.pk) == plan
    assert access.visible_node(org.manager, east.pk).plan == plan
    assert access.plan_node(org.manager, plan, str(east.pk)) == east  # an id from a query string
    assert access.entry_node(org.manager, plan) == east  # his area is the top of what he sees
    assert access.entry_node(org.director, plan) == plan.nodes.get(parent=None)
    for call in (
        lambda: access.visible_node(org.manager, north.pk),
        lambda: access.plan_node(org.manager, plan, north.pk),
        lambda: access.plan_node(org.manager, plan, "1.5"),
        lambda: access.visible_plan(org.rep_other, plan.pk),
    ):
        with pytest.raises(Http404):
            call()
