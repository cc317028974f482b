"""Fixtures for people changes: the FY2027 plan split Root -> East/North -> reps, East's reps by month, approved;
the day is frozen in May 2027 (tests/targets/conftest.py)."""

import pytest

from targets.models import TargetNode
from targets.services import plan_approve, plan_submit, target_split
from tests.targets.conftest import by_region


@pytest.fixture(autouse=True)
def _frozen_day(my_targets_day):
    """Every test here runs at `MY_TARGETS_DAY` (15 May 2027)."""


@pytest.fixture
def tree(plan, org):
    """1,200,000: East and North 600,000 each; East's three reps 200,000 each, split equally by month."""
    root = plan.nodes.get(parent__isnull=True)
    areas = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    east, north = areas[org.east.pk], areas[org.north.pk]
    reps = {n.rep: n for n in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    target_split(node=north, dimension="rep", method="equal", actor=org.manager_north)
    for node in reps.values():
        target_split(node=node, dimension="month", method="equal", actor=org.manager)
    return {"root": root, "east": east, "north": north, "reps": reps}


@pytest.fixture
def approved(plan, tree, org):
    plan_submit(plan=plan, actor=org.director)
    return plan_approve(plan=plan, actor=org.admin)


def months_of(plan, rep) -> dict[str, TargetNode]:
    """A rep's month leaves by month number ("01".."12")."""
    return {
        n.period_start.strftime("%m"): n
        for n in TargetNode.objects.leaves().filter(plan=plan, rep=rep).order_by("path")
    }


def assert_every_level_adds_up(plan):
    """Each inner node's amount is exactly the sum of its children's, and the root is the plan total."""
    nodes = list(TargetNode.objects.filter(plan=plan))
    children: dict[int, list] = {}
    for n in nodes:
        children.setdefault(n.parent_id, []).append(n)
    for n in nodes:
        if n.split_dimension:
            assert sum(c.amount for c in children[n.pk]) == n.amount, n.label
    root = next(n for n in nodes if n.parent_id is None)
    plan.refresh_from_db()
    assert root.amount == plan.total
