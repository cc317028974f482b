"""The target lifecycle as a hypothesis state machine: split, edit, commit, submit, approve, adjust (propose,
approve, reject), transfer a leaving rep's target, in any order, by the people the rules allow and by some they refuse.

After every step the invariants hold:
- every level adds up: a node's target is the exact sum of its children's, to the cent, and the root's is the
  plan total (in the draft, and in every approved version: the version in force and the original one);
- a refused step (a ValidationError, a conflict, an approval refused) changes nothing at all;
- the original plan (version 1) never changes once approved, and a reallocation never changes the total;
- every node's version rows are contiguous: one open row per node, each row ending (exclusively) where the next
  begins, so every version has exactly one amount per node that existed then (a target added by a people change
  exists from the version that added it, and waits at zero until then).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from salesmgmt.errors import ConflictError
from targets.models import (
    AdjustmentKind,
    AdjustmentRequest,
    AdjustmentStatus,
    Dimension,
    PlanStatus,
    TargetNode,
    TargetNodeAmount,
    TargetPlan,
)
from targets.services import (
    adjustment_approve,
    adjustment_propose,
    adjustment_reject,
    node_commit,
    node_update,
    plan_approve,
    plan_create,
    plan_submit,
    target_split,
    transfer_propose,
)

pytestmark = pytest.mark.django_db(transaction=False)

CENT = Decimal("0.01")
REFUSED = (ValidationError, ConflictError)
DIMENSIONS = [Dimension.REP, Dimension.REGION, Dimension.SEGMENT, Dimension.QUARTER, Dimension.MONTH]


def _state(plan_id: int) -> tuple:
    """Everything a step may change, to compare before and after a refused one."""
    plan = TargetPlan.objects.values_list("status", "total", "current_version").get(pk=plan_id)
    nodes = tuple(
        TargetNode.objects.filter(plan_id=plan_id)
        .order_by("path")
        .values_list("id", "parent_id", "amount", "owner_id", "deadline", "committed_amount", "version")
    )
    amounts = tuple(
        TargetNodeAmount.objects.filter(node__plan_id=plan_id)
        .order_by("node_id", "version_from")
        .values_list("node_id", "amount", "version_from", "version_to")
    )
    adjustments = tuple(AdjustmentRequest.objects.filter(plan_id=plan_id).order_by("pk").values_list("pk", "status"))
    return plan, nodes, amounts, adjustments


def step_name(step) -> str:
    """The service a step calls (its first public name), for the tally of what the runs reached."""
    names = [n for n in step.__code__.co_names if not n.startswith("_") and n not in ("people", "objects", "set")]
    return names[0] if names else step.__name__


def _check_sums(amount_of: dict[int, Decimal], parent_of: dict[int, int | None], total: Decimal, label: str) -> None:
    children_sum: dict[int, Decimal] = defaultdict(Decimal)
    has_children: set[int] = set()
    for node, parent in parent_of.items():
        if parent is not None:
            children_sum[parent] += amount_of[node]
            has_children.add(parent)
    for node in has_children:
        assert children_sum[node] == amount_of[node], f"{label}: node {node} != the sum of its children"
    roots = [n for n, p in parent_of.items() if p is None]
    assert len(roots) == 1 and amount_of[roots[0]] == total, f"{label}: root != plan total"
    assert all(a >= 0 and a == a.quantize(CENT) for a in amount_of.values()), f"{label}: bad amount"


REACHED: dict[str, int] = defaultdict(int)  # how far the runs got: a machine that never approves proves little


class Lifecycle(RuleBasedStateMachine):
    org = None  # set by the test before the machine runs
    metrics = None

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # every run starts from the fixtures and is rolled back in teardown
        org = self.org
        self.people = {
            "admin": org.admin,
            "director": org.director,
            "manager": org.manager,
            "manager_north": org.manager_north,
            "rep": org.rep,
            "rep_sh2": org.rep_same_team,
            "rep_js": org.rep_js,
        }
        self.plan = plan_create(
            metric=self.metrics["won_revenue"],
            period_key="FY2027",
            total=Decimal("1200000"),
            region=org.east,
            actor=org.director,
        )
        self.original: dict[int, Decimal] | None = None  # version 1, once approved

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------------------------------

    def _plan(self) -> TargetPlan:
        return TargetPlan.objects.get(pk=self.plan.pk)

    def _nodes(self) -> list[TargetNode]:
        return list(TargetNode.objects.filter(plan=self.plan).order_by("path"))

    def _pick(self, data, *, leaves_only: bool = False) -> TargetNode:
        nodes = self._nodes()
        if leaves_only:
            parents = {n.parent_id for n in nodes}
            nodes = [n for n in nodes if n.pk not in parents]
        return data.draw(st.sampled_from(nodes), label="node")

    def _attempt(self, step) -> bool:
        """Run a step; when the rules refuse it, nothing may have changed."""
        before = _state(self.plan.pk)
        try:
            with transaction.atomic():
                step()
        except REFUSED:
            REACHED["refused"] += 1
            assert _state(self.plan.pk) == before, "a refused step changed something"
            return False
        REACHED[step_name(step)] += 1
        return True

    def _draft(self) -> bool:
        return self._plan().status == PlanStatus.DRAFT

    def _approved(self) -> bool:
        return self._plan().status == PlanStatus.APPROVED

    @initialize(by_rep=st.booleans())
    def start(self, by_rep):
        """Half the runs start from the plan split to the team's reps, as most are: transfers need reps' targets."""
        if by_rep:
            target_split(node=self._nodes()[0], dimension=Dimension.REP, method="equal", actor=self.people["director"])

    # --- the draft -----------------------------------------------------------------------------------------

    @precondition(lambda self: self._draft())
    @rule(data=st.data(), dimension=st.sampled_from(DIMENSIONS), who=st.sampled_from(["director", "manager", "rep"]))
    def split(self, data, dimension, who):
        node = self._pick(data, leaves_only=True)
        self._attempt(lambda: target_split(node=node, dimension=dimension, method="equal", actor=self.people[who]))

    @precondition(lambda self: self._draft())
    @rule(
        data=st.data(),
        cents=st.integers(min_value=0, max_value=200_000_000),
        rebalance=st.booleans(),
        who=st.sampled_from(["director", "manager", "manager_north", "rep"]),
    )
    def edit_amount(self, data, cents, rebalance, who):
        node = self._pick(data)
        amount = Decimal(cents) / 100
        self._attempt(
            lambda: node_update(
                node=node,
                amount=amount,
                rebalance=rebalance,
                expected_version=node.version,
                actor=self.people[who],
            )
        )

    @precondition(lambda self: self._draft())
    @rule(data=st.data(), owner=st.sampled_from(["rep", "rep_sh2", "rep_js", "manager"]), stale=st.booleans())
    def give_owner_and_deadline(self, data, owner, stale):
        node = self._pick(data, leaves_only=True)
        version = node.version - 1 if stale else node.version  # a stale version is a conflict
        self._attempt(
            lambda: node_update(
                node=node,
                owner=self.people[owner],
                deadline=node.period_end,
                expected_version=version,
                actor=self.people["director"],
            )
        )

    @precondition(lambda self: self._draft())
    @rule(owner=st.sampled_from(["rep", "rep_sh2", "rep_js"]))
    def complete_submit_and_approve(self, owner):
        """What a team does to lock its plan: every leaf gets its 3定 (owner, deadline) in the editor, the plan's
        owner submits it and the director approves it, as one run of steps."""

        def complete():
            parents = set(TargetNode.objects.filter(plan=self.plan).values_list("parent_id", flat=True))
            for leaf in TargetNode.objects.filter(plan=self.plan).exclude(pk__in=parents):
                node_update(
                    node=leaf,
                    owner=leaf.owner or self.people[owner],
                    deadline=leaf.period_end,
                    expected_version=leaf.version,
                    actor=self.people["director"],
                )

        if self._attempt(complete) and self._attempt(
            lambda: plan_submit(plan=self._plan(), actor=self.people["manager"])
        ):
            self.approve("director")

    @precondition(lambda self: self._draft())
    @rule(data=st.data(), cents=st.integers(min_value=0, max_value=100_000_000))
    def commit(self, data, cents):
        node = self._pick(data)
        owner = node.owner or self.people["rep"]  # nobody but the owner may commit: the rep is refused elsewhere
        self._attempt(lambda: node_commit(node=node, amount=Decimal(cents) / 100, actor=owner))

    @precondition(lambda self: self._draft())
    @rule(who=st.sampled_from(["manager", "director", "rep"]))
    def submit(self, who):
        self._attempt(lambda: plan_submit(plan=self._plan(), actor=self.people[who]))

    @precondition(lambda self: self._plan().status == PlanStatus.SUBMITTED)
    @rule(who=st.sampled_from(["director", "manager", "manager_north"]))
    def approve(self, who):
        if self._attempt(lambda: plan_approve(plan=self._plan(), actor=self.people[who])):
            REACHED["plan approved"] += 1
            self.original = {n.pk: n.amount for n in self._nodes()}

    # --- the approved plan ------------------------------------------------------------------------------------

    @precondition(lambda self: self._approved())
    @rule(
        data=st.data(),
        cents=st.integers(min_value=1, max_value=10_000_000),
        kind=st.sampled_from(AdjustmentKind.values),
        who=st.sampled_from(["manager", "manager", "director", "rep"]),
    )
    def propose(self, data, cents, kind, who):
        nodes = self._nodes()
        below_root = [n for n in nodes if n.parent_id is not None]  # the root is the plan owner's own target
        first = data.draw(st.sampled_from(below_root or nodes), label="node")
        delta = Decimal(cents) / 100
        others = [n for n in below_root if n.pk != first.pk]
        if kind == AdjustmentKind.REALLOCATION and others:  # move delta from one target to another
            second = data.draw(st.sampled_from(others), label="other node")
            changes = [
                {"node": first.pk, "amount": first.amount - delta},
                {"node": second.pk, "amount": second.amount + delta},
            ]
        else:
            changes = [{"node": first.pk, "amount": first.amount + delta}]
        self._attempt(
            lambda: adjustment_propose(
                plan=self._plan(), kind=kind, reason="hypothesis", changes=changes, actor=self.people[who]
            )
        )

    @precondition(lambda self: self._approved())
    @rule(
        giver=st.sampled_from(["rep", "rep_sh2", "rep_js"]),
        receiver=st.sampled_from(["rep", "rep_sh2", "rep_js", None]),
        day=st.dates(min_value=date(2026, 12, 1), max_value=date(2028, 1, 31)),
        cents=st.one_of(st.none(), st.integers(min_value=1, max_value=50_000_000)),
        who=st.sampled_from(["manager", "manager", "director", "rep"]),
    )
    def transfer(self, giver, receiver, day, cents, who):
        """A rep leaves or moves team: his target from a day on goes to a peer, or to the team (None)."""
        self._attempt(
            lambda: transfer_propose(
                plan=self._plan(),
                from_rep=self.people[giver],
                to_rep=self.people[receiver] if receiver else None,
                effective=day,
                amount=None if cents is None else Decimal(cents) / 100,
                reason="hypothesis",
                actor=self.people[who],
            )
        )

    @precondition(lambda self: AdjustmentRequest.objects.filter(status=AdjustmentStatus.PENDING).exists())
    @rule(
        data=st.data(),
        approve=st.sampled_from([True, True, False]),
        who=st.sampled_from(["director", "director", "admin", "manager", "manager_north", "rep"]),
    )
    def decide(self, data, approve, who):
        pending = list(AdjustmentRequest.objects.filter(plan=self.plan, status=AdjustmentStatus.PENDING).order_by("pk"))
        adjustment = data.draw(st.sampled_from(pending), label="adjustment")
        total_before = self._plan().total
        if approve:
            if self._attempt(lambda: adjustment_approve(adjustment=adjustment, actor=self.people[who])):
                REACHED["adjustment approved"] += 1
                if adjustment.kind == AdjustmentKind.REALLOCATION:
                    assert self._plan().total == total_before, "a reallocation changed the plan total"
        else:
            self._attempt(lambda: adjustment_reject(adjustment=adjustment, actor=self.people[who], note="no"))

    # --- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def every_level_adds_up(self):
        plan = self._plan()
        nodes = self._nodes()
        parent_of = {n.pk: n.parent_id for n in nodes}
        _check_sums({n.pk: n.amount for n in nodes}, parent_of, plan.total, "current")
        if plan.current_version == 0:
            return
        rows = list(
            TargetNodeAmount.objects.filter(node__plan=plan).values_list(
                "node_id", "amount", "version_from", "version_to"
            )
        )
        by_node: dict[int, list[tuple]] = defaultdict(list)
        for node_id, amount, start, end in rows:
            by_node[node_id].append((start, end, amount))
        for node_id, spans in by_node.items():
            spans.sort()
            assert spans[-1][1] is None, f"node {node_id}: its last version row is closed"
            for (_start, end, _), (next_start, _, _) in zip(spans, spans[1:], strict=False):
                assert end is not None and end == next_start, f"node {node_id}: a gap or overlap in its versions"
        current = {n.pk: n.amount for n in nodes}
        for version in {1, plan.current_version}:
            in_force = {
                node_id: amount
                for node_id, spans in by_node.items()
                for start, end, amount in spans
                if start <= version and (end is None or version < end)  # version_to is not included
            }
            # A target added later (a new hire's, the team's unassigned one) exists from the version that added it;
            # until its adjustment is approved it waits in the tree at zero.
            missing = {n: current[n] for n in parent_of if n not in in_force}
            if version == plan.current_version:
                assert all(a == 0 for a in missing.values()), f"targets outside the version in force: {missing}"
            existing = {n: p for n, p in parent_of.items() if n in in_force}
            assert all(p is None or p in existing for p in existing.values()), f"version {version}: an orphan target"
            total = in_force[next(n for n, p in existing.items() if p is None)]
            _check_sums(in_force, existing, total, f"version {version}")
            if version == plan.current_version:
                assert in_force == {n: a for n, a in current.items() if n in in_force}, "version in force != nodes"
        if self.original is not None:
            first = {n: a for n, spans in by_node.items() for s, e, a in spans if s == 1}
            assert {n: first.get(n) for n in self.original} == self.original, "the original plan (version 1) changed"
            # A people change proposed while version 1 is in force adds the receiver's targets to it at zero.
            added = {n: a for n, a in first.items() if n not in self.original}
            assert all(a == 0 for a in added.values()), f"a target added later has an original amount: {added}"


def test_target_lifecycle_keeps_its_invariants(org, metrics, django_capture_on_commit_callbacks):
    Lifecycle.org, Lifecycle.metrics = org, metrics
    REACHED.clear()
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        ),
    )
    print(dict(REACHED))
    reached = (
        "target_split",
        "node_update",
        "plan_approve",
        "adjustment_propose",
        "transfer_propose",
        "adjustment approved",
    )
    for step in (*reached, "refused"):
        assert REACHED[step] > 0, f"no run reached {step}: {dict(REACHED)}"
