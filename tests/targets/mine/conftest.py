"""Fixtures for the "my targets" screens: a FY2027 plan split to the reps, on a frozen day in Q2."""

import pytest

from targets.models import TargetNode
from targets.services import node_update, plan_approve, plan_submit, target_split
from tests.targets.conftest import by_region


@pytest.fixture(autouse=True)
def _frozen_day(my_targets_day):
    """Every test here runs at `MY_TARGETS_DAY` (tests/targets/conftest.py)."""


@pytest.fixture
def tree(plan, org):
    """Root (director) -> East (manager) / North (manager_north); East -> its 3 reps, North -> rep_other.

    1,200,000 split equally: East and North 600,000 each; East's reps 200,000 each.
    """
    root = plan.nodes.get(parent__isnull=True)
    areas = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    east, north = areas[org.east.pk], areas[org.north.pk]
    east_reps = {n.rep: n for n in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    north_reps = {
        n.rep: n for n in target_split(node=north, dimension="rep", method="equal", actor=org.manager_north).children
    }
    return {"root": root, "east": east, "north": north, "reps": {**east_reps, **north_reps}}


@pytest.fixture
def approved(plan, tree, org):
    plan_submit(plan=plan, actor=org.director)
    return plan_approve(plan=plan, actor=org.admin)


def fresh(node) -> TargetNode:
    return TargetNode.objects.get(pk=node.pk)


def give(node, owner, actor):
    node = fresh(node)
    return node_update(node=node, owner=owner, expected_version=node.version, actor=actor)
