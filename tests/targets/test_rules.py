"""Who may change which target: own targets, subtrees, reps, concurrent edits, commitments, actions."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm.models import AuditLog
from salesmgmt.errors import ConflictError
from targets.models import ActionStatus, TargetNode
from targets.planning.selectors import nodes_visible_to
from targets.services import (
    action_plan_create,
    action_plan_update,
    node_commit,
    node_update,
    target_split,
    target_split_preview,
)
from tests.targets.conftest import by_region


@pytest.fixture
def areas(plan, org):
    root = plan.nodes.get(parent__isnull=True)
    return by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)


def test_nobody_edits_their_own_target(areas, org):
    east = areas[org.east.pk]
    assert east.owner == org.manager
    with pytest.raises(ValidationError, match="your own target"):
        node_update(node=east, deadline=date(2027, 10, 31), expected_version=east.version, actor=org.manager)
    east.refresh_from_db()
    assert east.deadline == date(2027, 12, 31)


def test_a_director_may_change_the_root_they_own(plan, org):
    root = plan.nodes.get(parent__isnull=True)
    assert root.owner == org.director
    node_update(node=root, amount="1500000", expected_version=root.version, actor=org.director)
    plan.refresh_from_db()
    assert plan.total == Decimal("1500000")


def test_managers_split_only_within_their_subtree(areas, org):
    with pytest.raises(ValidationError, match="outside your regions"):
        target_split(node=areas[org.north.pk], dimension="rep", method="equal", actor=org.manager)
    assert not areas[org.north.pk].children.exists()
    # Their own area: distributing what was handed down to their people is their job.
    reps = target_split(node=areas[org.east.pk], dimension="rep", method="equal", actor=org.manager).children
    assert {r.rep for r in reps} == {org.rep, org.rep_same_team, org.rep_js}


def test_company_level_targets_need_a_director(plan, org):
    root = plan.nodes.get(parent__isnull=True)
    with pytest.raises(ValidationError, match="company-level"):
        target_split_preview(node=root, dimension="region", method="equal", actor=org.manager)


def test_reps_cannot_split(areas, org):
    with pytest.raises(ValidationError, match="Only managers"):
        target_split(node=areas[org.east.pk], dimension="month", method="equal", actor=org.rep)


def test_concurrent_edits_conflict_instead_of_overwriting(areas, org):
    north = areas[org.north.pk]
    seen = north.version  # two people open the same target
    node_update(node=north, deadline=date(2027, 9, 30), expected_version=seen, actor=org.director)
    with pytest.raises(ConflictError):
        node_update(node=north, deadline=date(2027, 6, 30), expected_version=seen, actor=org.admin)
    north.refresh_from_db()
    assert north.deadline == date(2027, 9, 30)
    assert north.version == seen + 1


def test_a_split_with_a_stale_version_conflicts(areas, org):
    east = areas[org.east.pk]
    node_update(node=east, owner=org.rep_js, expected_version=east.version, actor=org.director)
    with pytest.raises(ConflictError):
        target_split(node=east, dimension="month", method="equal", expected_version=east.version, actor=org.director)
    assert not east.children.exists()


def test_only_the_owner_commits(areas, org):
    east = areas[org.east.pk]
    reps = {r.rep: r for r in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    with pytest.raises(ValidationError, match="Only the owner"):
        node_commit(node=reps[org.rep], amount="250000", actor=org.manager)
    node = node_commit(node=reps[org.rep], amount="250000", actor=org.rep)
    assert node.committed_amount == Decimal("250000")
    assert AuditLog.objects.filter(action="target.commit", object_id=str(node.pk), actor=org.rep).exists()


def test_reps_see_their_own_targets_managers_their_subtree(areas, org):
    east = areas[org.east.pk]
    target_split(node=east, dimension="rep", method="equal", actor=org.manager)
    target_split(node=areas[org.north.pk], dimension="rep", method="equal", actor=org.director)
    assert set(nodes_visible_to(org.rep).values_list("rep", flat=True)) == {org.rep.pk}
    manager_sees = nodes_visible_to(org.manager)
    assert east in manager_sees and areas[org.north.pk] not in manager_sees
    assert not manager_sees.filter(rep=org.rep_other).exists()
    assert nodes_visible_to(org.director).count() == TargetNode.objects.count()


def test_action_plans_hang_under_a_target(areas, org):
    east = areas[org.east.pk]
    reps = {r.rep: r for r in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    mine = reps[org.rep]
    action = action_plan_create(
        node=mine,
        activity="Visit the 10 biggest accounts",
        due_date=date(2027, 3, 31),
        resources="Pre-sales engineer, 2 days",
        actor=org.rep,
    )
    assert (action.owner, action.status) == (org.rep, ActionStatus.OPEN)
    with pytest.raises(ValidationError, match="not one of your targets"):
        action_plan_create(node=reps[org.rep_js], activity="Poach", due_date=date(2027, 3, 31), actor=org.rep)
    with pytest.raises(ValidationError, match="end of the target"):
        action_plan_create(node=mine, activity="Late", due_date=date(2028, 1, 5), actor=org.rep)
    action = action_plan_update(action_plan=action, data={"status": ActionStatus.IN_PROGRESS}, actor=org.rep)
    assert action.status == ActionStatus.IN_PROGRESS
    # The manager may plan actions for his people's targets too.
    action_plan_create(
        node=reps[org.rep_js], activity="Joint visit", owner=org.rep_js, due_date=date(2027, 2, 1), actor=org.manager
    )
    assert AuditLog.objects.filter(action__startswith="action_plan.").count() == 3
