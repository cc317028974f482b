"""Approval (3定 complete, version 1) and mid-period adjustments (季度目标动态调整) with kept versions."""

from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from crm.models import AuditLog
from salesmgmt.errors import ConflictError
from targets.models import AdjustmentStatus, PlanStatus, TargetNode, TargetNodeAmount
from targets.planning.selectors import unbalanced_nodes, version_changes
from targets.services import (
    adjustment_approve,
    adjustment_propose,
    adjustment_reject,
    node_update,
    plan_approve,
    plan_create,
    plan_return,
    plan_submit,
    target_split,
)
from tests.targets.amounts import amounts_in
from tests.targets.conftest import by_region

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel("2027-04-10 09:00 +0800", tick=False):
        yield


@pytest.fixture
def tree(plan, org):
    """Root -> East/North; East -> Shanghai/Jiangsu (no managers yet) ; Shanghai -> its 2 reps."""
    root = plan.nodes.get(parent__isnull=True)
    areas = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    provinces = by_region(
        target_split(node=areas[org.east.pk], dimension="region", method="equal", actor=org.manager).children
    )
    reps = {
        n.rep: n
        for n in target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager).children
    }
    return {"root": root, **{r.name: n for r, n in {**areas, **provinces}.items() for r in [n.region]}, "reps": reps}


def approved(plan, tree, org):
    for name in ("Shanghai", "Jiangsu"):
        node = TargetNode.objects.get(pk=tree[name].pk)
        owner = org.rep_same_team if name == "Shanghai" else org.rep_js
        node_update(node=node, owner=owner, expected_version=node.version, actor=org.director)
    plan_submit(plan=plan, actor=org.director)
    return plan_approve(plan=plan, actor=org.admin)


def test_approval_is_blocked_by_incomplete_leaves_then_succeeds(plan, tree, org):
    plan_submit(plan=plan, actor=org.director)
    with pytest.raises(ValidationError) as err:
        plan_approve(plan=plan, actor=org.admin)
    assert "1 target has no owner" in str(err.value) and "Jiangsu" in str(err.value)
    plan.refresh_from_db()
    assert plan.status == PlanStatus.SUBMITTED and plan.current_version == 0

    plan_return(plan=plan, reason="Jiangsu needs an owner", actor=org.admin)
    js = TargetNode.objects.get(pk=tree["Jiangsu"].pk)
    node_update(node=js, owner=org.rep_js, expected_version=js.version, actor=org.manager)
    plan_submit(plan=plan, actor=org.director)
    plan = plan_approve(plan=plan, actor=org.admin)
    assert (plan.status, plan.current_version, plan.submitted_by, plan.approved_by) == (
        PlanStatus.APPROVED,
        1,
        org.director,
        org.admin,
    )
    assert TargetNodeAmount.objects.filter(plan=plan, version_from=1, version_to=None).count() == plan.nodes.count()
    assert amounts_in(plan, 1)[tree["Jiangsu"].pk] == Decimal("300000")


def test_only_a_director_approves_and_an_approved_plan_is_locked(plan, tree, org):
    plan_submit(plan=plan, actor=org.director)
    with pytest.raises(ValidationError, match="Only someone above the plan.s submitter can approve it"):
        plan_approve(plan=plan, actor=org.manager)
    plan_return(plan=plan, reason="owners", actor=org.admin)
    approved(plan, tree, org)
    rep = TargetNode.objects.get(pk=tree["reps"][org.rep].pk)
    with pytest.raises(ValidationError, match="adjustment"):
        node_update(node=rep, amount="1", expected_version=rep.version, rebalance=True, actor=org.manager)


def test_a_manager_submits_the_plan_of_his_area_and_the_director_approves_it(org, metrics):
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="600000", region=org.east, actor=org.manager
    )
    root = plan.nodes.get()
    provinces = by_region(target_split(node=root, dimension="region", method="equal", actor=org.manager).children)
    target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    for outsider in (org.rep, org.manager_north):
        with pytest.raises(ValidationError, match="Only someone above the plan's submitter"):
            plan_approve(plan=plan, actor=outsider)
    # Not even his own area's plan: someone above him approves it.
    with pytest.raises(ValidationError, match="You submitted this plan"):
        plan_approve(plan=plan, actor=org.manager)
    with pytest.raises(ValidationError, match="You submitted this plan"):
        plan_return(plan=plan, reason="Jiangsu needs an owner", actor=org.manager)
    with pytest.raises(ValidationError, match="1 target has no owner.*Jiangsu"):
        plan_approve(plan=plan, actor=org.director)
    plan_return(plan=plan, reason="Jiangsu needs an owner", actor=org.director)
    js = TargetNode.objects.get(pk=provinces[org.js.pk].pk)
    node_update(node=js, owner=org.rep_js, expected_version=js.version, actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    plan = plan_approve(plan=plan, actor=org.director)
    assert (plan.status, plan.current_version, plan.submitted_by, plan.approved_by) == (
        PlanStatus.APPROVED,
        1,
        org.manager,
        org.director,
    )
    assert TargetNodeAmount.objects.filter(plan=plan, version_from=1).count() == plan.nodes.count() == 5


def test_reallocation_creates_version_2_and_keeps_version_1(plan, tree, org):
    approved(plan, tree, org)
    reps = tree["reps"]
    a, b = reps[org.rep], reps[org.rep_same_team]
    js = tree["Jiangsu"]
    # Move 50,000 from a Shanghai rep to Jiangsu: Shanghai loses it, East keeps its total.
    adjustment = adjustment_propose(
        plan=plan,
        kind="reallocation",
        reason="Key account moved to Jiangsu",
        changes=[{"node": a, "amount": "100000"}, {"node": js.pk, "amount": "350000"}],
        actor=org.manager,
    )
    assert adjustment.status == AdjustmentStatus.PENDING
    with pytest.raises(ValidationError, match="other than the proposer"):
        adjustment_approve(adjustment=adjustment, actor=org.manager)
    adjustment = adjustment_approve(adjustment=adjustment, actor=org.director, note="OK")
    plan.refresh_from_db()
    assert (adjustment.resulting_version, plan.current_version, plan.total) == (2, 2, Decimal("1200000"))

    v1, v2 = amounts_in(plan, 1), amounts_in(plan, 2)
    assert (v1[a.pk], v2[a.pk]) == (Decimal("150000"), Decimal("100000"))
    assert (v1[b.pk], v2[b.pk]) == (Decimal("150000"), Decimal("150000"))
    assert (v1[tree["Shanghai"].pk], v2[tree["Shanghai"].pk]) == (Decimal("300000"), Decimal("250000"))
    assert v1[tree["East"].pk] == v2[tree["East"].pk] == Decimal("600000")
    diff = {n.pk: (n.old_amount, n.new_amount) for n in version_changes(plan, 1, 2)}
    assert diff == {
        a.pk: (Decimal("150000"), Decimal("100000")),
        tree["Shanghai"].pk: (Decimal("300000"), Decimal("250000")),
        js.pk: (Decimal("300000"), Decimal("350000")),
    }
    assert TargetNode.objects.get(pk=a.pk).amount == Decimal("100000")  # the node shows the version in force
    leaves = TargetNode.objects.filter(plan=plan, split_dimension="").values_list("pk", flat=True)
    assert sum(v1[pk] for pk in leaves) == sum(v2[pk] for pk in leaves) == Decimal("1200000")
    assert not unbalanced_nodes(plan).exists()
    assert AuditLog.objects.filter(action="target_adjustment.approve", object_id=str(plan.pk)).exists()


def test_a_reallocation_must_keep_the_total(plan, tree, org):
    approved(plan, tree, org)
    with pytest.raises(ValidationError, match=r"add up to \+10000"):
        adjustment_propose(
            plan=plan,
            kind="reallocation",
            reason="more",
            changes=[{"node": tree["Jiangsu"], "amount": "310000"}],
            actor=org.manager,
        )
    with pytest.raises(ValidationError, match="reason"):
        adjustment_propose(
            plan=plan,
            kind="total_change",
            reason=" ",
            changes=[{"node": tree["Jiangsu"], "amount": "310000"}],
            actor=org.manager,
        )
    with pytest.raises(ValidationError, match="or its parts"):
        adjustment_propose(
            plan=plan,
            kind="reallocation",
            reason="x",
            changes=[
                {"node": tree["Shanghai"], "amount": "290000"},
                {"node": tree["reps"][org.rep], "amount": "160000"},
            ],
            actor=org.manager,
        )


def test_a_total_change_needs_a_director_and_rescales_below(plan, tree, org):
    approved(plan, tree, org)
    adjustment = adjustment_propose(
        plan=plan,
        kind="total_change",
        reason="New product launch in Shanghai",
        changes=[{"node": tree["Shanghai"], "amount": "400000"}],
        actor=org.manager,
    )
    with pytest.raises(ValidationError, match="director"):
        adjustment_approve(adjustment=adjustment, actor=org.manager_north)
    adjustment_approve(adjustment=adjustment, actor=org.director)
    plan.refresh_from_db()
    assert (plan.total, plan.current_version) == (Decimal("1300000"), 2)
    v2 = amounts_in(plan, 2)
    assert [v2[n.pk] for n in tree["reps"].values()] == [Decimal("200000")] * 2  # the reps share the increase
    assert v2[tree["East"].pk] == Decimal("700000") and v2[tree["root"].pk] == Decimal("1300000")
    assert amounts_in(plan, 1)[tree["root"].pk] == Decimal("1200000")
    assert not unbalanced_nodes(plan).exists()


def test_a_stale_adjustment_conflicts_and_a_rejected_one_changes_nothing(plan, tree, org):
    approved(plan, tree, org)
    first = adjustment_propose(
        plan=plan,
        kind="total_change",
        reason="a",
        changes=[{"node": tree["Jiangsu"], "amount": "310000"}],
        actor=org.manager,
    )
    second = adjustment_propose(
        plan=plan,
        kind="total_change",
        reason="b",
        changes=[{"node": tree["Jiangsu"], "amount": "320000"}],
        actor=org.manager,
    )
    adjustment_approve(adjustment=first, actor=org.director)
    with pytest.raises(ConflictError):
        adjustment_approve(adjustment=second, actor=org.director)
    with pytest.raises(ValidationError, match="why"):
        adjustment_reject(adjustment=second, actor=org.director, note="")
    second = adjustment_reject(adjustment=second, actor=org.director, note="Superseded")
    plan.refresh_from_db()
    assert (second.status, plan.current_version) == (AdjustmentStatus.REJECTED, 2)
    assert amounts_in(plan, 2)[tree["Jiangsu"].pk] == Decimal("310000")
