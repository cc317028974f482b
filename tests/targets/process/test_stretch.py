"""Stretch levels (冲刺, 挑战): validated in the service and the database, handed down a split in the amounts'
proportions to the cent, settable through the API per role, and attainment shown against each level."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from salesmgmt.lib import attainment as math
from targets.attainment.selectors import attainment_of
from targets.attainment.services import attainment_recompute
from targets.models import TargetNode
from targets.services import node_set_levels, node_update, plan_approve, plan_submit, target_split
from tests.factories import make_deal


def _levels(nodes):
    return [(n.amount, n.stretch, n.challenge) for n in nodes]


def test_levels_rise_in_the_service_and_the_database(org, plan):
    root = plan.nodes.get()
    with pytest.raises(ValidationError):
        node_set_levels(node=root, stretch="1000000", challenge=None, actor=org.director)  # below the base
    with pytest.raises(ValidationError):
        node_set_levels(node=root, stretch="1500000", challenge="1400000", actor=org.director)
    with pytest.raises(ValidationError):
        node_set_levels(node=root, stretch="abc", challenge=None, actor=org.director)
    root.refresh_from_db()
    assert (root.stretch, root.challenge) == (None, None)  # nothing half-applied
    with pytest.raises(IntegrityError), transaction.atomic():
        TargetNode.objects.filter(pk=root.pk).update(stretch=Decimal("1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        TargetNode.objects.filter(pk=root.pk).update(stretch=Decimal("1300000"), challenge=Decimal("1250000"))
    node_set_levels(node=root, stretch="1300000", challenge="1500000", actor=org.director)
    root.refresh_from_db()
    assert (root.stretch, root.challenge) == (Decimal("1300000"), Decimal("1500000"))


@pytest.mark.parametrize(
    ("stretch", "challenge", "weights"),
    [
        ("1440000.01", "1800000.00", {"a": 1, "b": 1, "c": 1}),
        ("1333333.33", None, {"a": 7, "b": 2, "c": 3}),
        (None, "1500000.07", {"a": 5, "b": 0, "c": 3}),
    ],
)
def test_a_split_hands_the_levels_down_in_the_amounts_proportions_to_the_cent(org, plan, stretch, challenge, weights):
    root = plan.nodes.get()
    node_set_levels(node=root, stretch=stretch, challenge=challenge, actor=org.director)
    root.refresh_from_db()
    regions = [org.east, org.north, *[r for r in [getattr(org, "south", None)] if r]]
    keys = dict(zip("abc", regions, strict=False))
    given = {keys[k].pk: w for k, w in weights.items() if k in keys}
    target_split(node=root, dimension="region", method="weights", weights=given, actor=org.director)
    children = list(root.children.order_by("path"))
    for level in ("stretch", "challenge"):
        parent_level = getattr(root, level)
        values = [getattr(c, level) for c in children]
        if parent_level is None:
            assert values == [None] * len(children)
            continue
        assert sum(values) == parent_level  # exactly, to the cent
        for c, v in zip(children, values, strict=True):
            exact = c.amount * parent_level / root.amount  # the same proportion as the amount
            assert abs(v - exact) <= Decimal("0.02")
    for c in children:
        assert c.stretch is None or c.stretch >= c.amount
        floor = c.stretch if c.stretch is not None else c.amount
        assert c.challenge is None or c.challenge >= floor


def test_the_levels_api_per_role(org, plan, api):
    root = plan.nodes.get()
    url = f"/api/target-nodes/{root.pk}/levels/"
    assert api(org.rep).post(url, {"stretch": "1300000", "challenge": None}, format="json").status_code in (403, 404)
    bad = api(org.director).post(url, {"stretch": "1", "challenge": None}, format="json")
    assert bad.status_code == 400
    ok = api(org.director).post(url, {"stretch": "1300000", "challenge": "1400000"}, format="json")
    assert ok.status_code == 200, ok.content
    assert (Decimal(ok.json()["stretch"]), Decimal(ok.json()["challenge"])) == (Decimal("1300000"), Decimal("1400000"))


def test_attainment_shows_each_level(org, metrics, plan, api):
    root = plan.nodes.get()
    node_set_levels(node=root, stretch="1500000", challenge="2000000", actor=org.director)
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    won = next(s for s in org.stages if s.is_won)
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False):
        make_deal(owner=org.rep, amount="456789.01", stage=won, close=date(2027, 3, 2))
        attainment_recompute(plan=plan)
        root = TargetNode.objects.get(pk=root.pk)
        att = attainment_of([root])[root.pk]
        actual = Decimal("456789.01")
        assert att.actual == actual
        assert att.base_pct == math.percent(actual, Decimal("1200000"))
        assert att.stretch_pct == math.percent(actual, Decimal("1500000"))
        assert att.challenge_pct == math.percent(actual, Decimal("2000000"))
        assert [name for name, _a, _p in att.levels][1:] and len(att.levels) == 3
        body = api(org.director).get("/api/attainment/", {"node": root.pk}).json()
    figures = body[0]["figures"] if isinstance(body, list) else body["results"][0]["figures"]
    assert Decimal(figures["stretch_pct"]) == math.percent(actual, Decimal("1500000"))
    assert Decimal(figures["challenge"]) == Decimal("2000000")


def test_a_new_amount_below_the_stretch_is_refused_above_it_the_levels_follow(org, plan):
    root = plan.nodes.get()
    node_set_levels(node=root, stretch="1300000", challenge=None, actor=org.director)
    root.refresh_from_db()
    with pytest.raises(ValidationError):
        node_update(node=root, amount="1400000", expected_version=root.version, actor=org.director)
    node_update(node=root, amount="1250000", expected_version=root.version, actor=org.director)
    root.refresh_from_db()
    assert (root.amount, root.stretch) == (Decimal("1250000"), Decimal("1300000"))


def test_the_editor_sets_the_levels_and_leaves_them_when_not_posted(org, plan, client_for):
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    root.refresh_from_db()
    url = reverse("targets:node_edit", args=[plan.pk, root.pk])
    form = {"version": root.version, "amount": "1200000", "stretch": "1500000.01", "challenge": ""}
    response = client_for(org.director).post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    root.refresh_from_db()
    assert (root.stretch, root.challenge) == (Decimal("1500000.01"), None)
    assert sum(c.stretch for c in root.children.all()) == Decimal("1500000.01")
    # Below the base: a form error, nothing saved.
    bad = client_for(org.director).post(url, {"version": root.version, "amount": "1200000", "stretch": "5"})
    assert bad.status_code in (200, 400)
    root.refresh_from_db()
    assert root.stretch == Decimal("1500000.01")
    # A form without the level fields (another editor) keeps them.
    client_for(org.director).post(url, {"version": root.version, "amount": "1200000"})
    root.refresh_from_db()
    assert root.stretch == Decimal("1500000.01")


def test_splitting_every_leaf_hands_each_leafs_levels_down(org, plan):
    from targets.services import target_split_leaves

    root = plan.nodes.get()
    node_set_levels(node=root, stretch="1300000.03", challenge="1700000", actor=org.director)
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    target_split_leaves(node=root, dimension="quarter", method="equal", actor=org.director)
    parents = list(plan.nodes.filter(depth=1))
    assert sum(p.stretch for p in parents) == Decimal("1300000.03")
    for parent in parents:
        kids = list(parent.children.all())
        assert len(kids) == 4
        assert sum(k.stretch for k in kids) == parent.stretch
        assert sum(k.challenge for k in kids) == parent.challenge
        assert all(k.amount <= k.stretch <= k.challenge for k in kids)


def test_an_amount_passing_a_level_is_a_form_error_not_a_database_error(org, plan):
    from targets.services import node_update as update

    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    east = plan.nodes.get(region=org.east)
    node_set_levels(node=east, stretch="650000", challenge=None, actor=org.director)
    north = plan.nodes.get(region=org.north)
    # North down by 100,000: East absorbs it, to 700,000, past its stretch of 650,000.
    with pytest.raises(ValidationError):
        update(node=north, amount="500000", rebalance=True, expected_version=north.version, actor=org.director)
    east.refresh_from_db()
    assert (east.amount, east.stretch) == (Decimal("600000"), Decimal("650000"))
