"""A draft FY2027 plan split down to reps, as the API tests' starting point, on a frozen day."""

import pytest
import time_machine

from targets.models import TargetNode
from targets.services import node_update, plan_approve, plan_submit, target_split
from tests.targets.conftest import by_region


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2027-04-10 09:00 +0800", tick=False):
        yield


@pytest.fixture
def tree(plan, org):
    """Root (director) -> East (manager) / North (manager_north); East -> Shanghai / Jiangsu (no owner yet);
    Shanghai -> its two reps. 1,200,000.00 in all."""
    root = plan.nodes.get(parent__isnull=True)
    areas = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    provinces = by_region(
        target_split(node=areas[org.east.pk], dimension="region", method="equal", actor=org.manager).children
    )
    reps = by_rep(target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager).children)
    return {
        "root": root,
        "east": areas[org.east.pk],
        "north": areas[org.north.pk],
        "sh": provinces[org.sh.pk],
        "js": provinces[org.js.pk],
        "rep": reps[org.rep.pk],
        "rep_sh2": reps[org.rep_same_team.pk],
    }


def by_rep(nodes):
    return {n.rep_id: n for n in nodes}


def fresh(node) -> TargetNode:
    return TargetNode.objects.get(pk=node.pk)


@pytest.fixture
def approved(plan, tree, org):
    """The tree with owners everywhere, submitted and approved (version 1)."""
    for key, owner in (("sh", org.rep_same_team), ("js", org.rep_js)):
        node = fresh(tree[key])
        node_update(node=node, owner=owner, expected_version=node.version, actor=org.director)
    plan_submit(plan=plan, actor=org.director)
    return plan_approve(plan=plan, actor=org.admin)
