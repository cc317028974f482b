"""Fixtures for the plan screens: logged-in clients and an East plan split by region."""

from decimal import Decimal

import pytest
import time_machine

from targets.services import plan_create, target_split
from tests.targets.conftest import by_region


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel("2026-11-20 09:00 +0800", tick=False):
        yield


@pytest.fixture
def east_plan(org, metrics):
    """FY2027 signed revenue for East (600,000.00), created and owned by East's manager."""
    return plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=Decimal("600000"), region=org.east, actor=org.manager
    )


@pytest.fixture
def east_tree(east_plan, org):
    """East -> Shanghai / Jiangsu (no managers: no owner yet); Shanghai -> its two reps."""
    root = east_plan.nodes.get()
    provinces = by_region(target_split(node=root, dimension="region", method="equal", actor=org.manager).children)
    reps = {
        n.rep: n
        for n in target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager).children
    }
    return {"root": root, "sh": provinces[org.sh.pk], "js": provinces[org.js.pk], "reps": reps}
