"""The seeded company the fuzz and generated-client tests run against: the persona company of
tests/conftest.py with deals in every state, a collection, activities, a product catalogue and a draft
FY2027 plan split to regions and reps, served by a live server (the client and schemathesis talk HTTP)."""

import os
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework.authtoken.models import Token

from pipeline.services import activity_log, collection_create, opportunity_move_stage
from targets.services import action_plan_create, plan_create, target_split
from tests.factories import ProductFactory, ProductLineFactory, make_deal


def pytest_collection_modifyitems(config, items):
    """The schemathesis runs take minutes: they run in `.ci/fuzz` (FUZZ=1), not in every suite run."""
    if os.environ.get("FUZZ") == "1":
        return
    skip = pytest.mark.skip(reason="schemathesis runs in .ci/fuzz (set FUZZ=1)")
    for item in items:
        if item.get_closest_marker("fuzz"):
            item.add_marker(skip)


@pytest.fixture
def world(org, metrics, transactional_db):
    """The persona company with something of every kind to read, and an API token per role."""
    servers = ProductLineFactory(code="SRV", name="Servers", is_key=True)
    ProductFactory(code="RACK", name="Rack server", line=servers)
    deals = {
        "rep": make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 30)),
        "rep_sh2": make_deal(owner=org.rep_same_team, amount="2000", close=date(2026, 7, 15)),
        "rep_js": make_deal(owner=org.rep_js, amount="3000", close=date(2026, 6, 1)),
        "rep_other": make_deal(owner=org.rep_other, amount="4000", close=date(2026, 8, 31)),
    }
    won_stage = next(s for s in org.stages if s.is_won)
    lost_stage = next(s for s in org.stages if s.is_lost)
    won = make_deal(owner=org.rep, amount="5000", close=date(2026, 5, 20), name="Won deal")
    won = opportunity_move_stage(
        opportunity=won, stage=won_stage, evidence="Contract signed", expected_version=won.version, actor=org.rep
    )
    lost = make_deal(owner=org.rep, amount="700", close=date(2026, 5, 25), name="Lost deal")
    lost = opportunity_move_stage(
        opportunity=lost, stage=lost_stage, lost_reason="Price", expected_version=lost.version, actor=org.rep
    )
    collection_create(opportunity=won, received_on=date(2026, 5, 30), amount=Decimal("2000"), actor=org.rep)
    activity_log(
        customer=deals["rep"].customer, kind="visit", date=date(2026, 6, 2), opportunity=deals["rep"], actor=org.rep
    )
    activity_log(customer=deals["rep_js"].customer, kind="call", date=date(2026, 6, 3), actor=org.rep_js)
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027",
        total=Decimal("1200000"),
        owner=org.director,
        actor=org.director,
    )
    root = plan.nodes.get(parent__isnull=True)
    areas = {
        n.region_id: n for n in target_split(node=root, dimension="region", method="equal", actor=org.director).children
    }
    provinces = {
        n.region_id: n
        for n in target_split(node=areas[org.east.pk], dimension="region", method="equal", actor=org.manager).children
    }
    reps = target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager).children
    action_plan_create(
        node=provinces[org.sh.pk],
        activity="Visit the top ten accounts",
        owner=org.manager,
        due_date=date(2027, 3, 31),
        resources="",
        actor=org.manager,
    )
    users = {"admin": org.admin, "director": org.director, "manager": org.manager, "rep": org.rep}
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    return SimpleNamespace(
        org=org,
        metrics=metrics,
        deals=deals,
        won=won,
        lost_deal=lost,
        plan=plan,
        areas_by_region=areas,
        reps_by_user={n.rep_id: n for n in reps},
        users=users,
        tokens=tokens,
    )
