"""Mid-period adjustments (季度目标动态调整): propose, approve (a new version), reject.

The proposer never approves his own adjustment; whoever approves or rejects it is above him
(`targets.planning.approval_chain`) and may change every target it changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User
from crm.services import audit
from salesmgmt import outbox
from salesmgmt.errors import ConflictError
from targets.models import (
    AdjustmentKind,
    AdjustmentRequest,
    AdjustmentStatus,
    PlanStatus,
    TargetNode,
    TargetPlan,
)
from targets.planning.approval_chain import adjustment_lines
from targets.planning.approvals import ApprovalRefused, check_adjustment_approver
from targets.planning.bulk import apply_amounts, rescale_subtrees
from targets.planning.people import withdraw_created
from targets.planning.rules import ancestor_paths, check_amount, check_manager, check_not_own, check_scope, is_top


def _effective_changes(
    plan: TargetPlan, explicit: dict[int, Decimal], places: int
) -> dict[int, tuple[Decimal, Decimal]]:
    """The full change set of an adjustment: explicit nodes, their ancestors (by the deltas) and
    their rescaled subtrees. {node id: (old, new)}."""
    nodes = {n.pk: n for n in TargetNode.objects.filter(pk__in=list(explicit))}
    deltas: defaultdict[str, Decimal] = defaultdict(Decimal)
    for pk, new in explicit.items():
        for path in ancestor_paths(nodes[pk].path):
            deltas[path] += new - nodes[pk].amount
    result = rescale_subtrees(plan, explicit, places)
    for ancestor in TargetNode.objects.filter(plan=plan, path__in=list(deltas)).values("id", "path", "amount"):
        if deltas[ancestor["path"]]:
            result[ancestor["id"]] = (ancestor["amount"], ancestor["amount"] + deltas[ancestor["path"]])
    return {k: v for k, v in result.items() if v[0] != v[1]}


def _check_adjuster(actor: User, nodes: Iterable[TargetNode]) -> None:
    check_manager(actor)
    for node in nodes:
        check_scope(actor, node)
        check_not_own(actor, node)


@transaction.atomic
def adjustment_propose(
    *, plan: TargetPlan, kind: str, reason: str, changes: list[dict], actor: User
) -> AdjustmentRequest:
    """Propose new amounts for some nodes of an approved plan: `changes` = [{"node": node or id, "amount": new}].

    Each change moves the node's ancestors by the same difference and rescales its subtree. A
    reallocation keeps the plan total (the differences add up to zero); a total change does not.
    """
    plan = TargetPlan.objects.select_related("metric").get(pk=plan.pk)
    if plan.status != PlanStatus.APPROVED:
        raise ValidationError(_("Only an approved plan is adjusted; change a draft directly."))
    if kind not in (AdjustmentKind.REALLOCATION, AdjustmentKind.TOTAL_CHANGE):
        raise ValidationError({"kind": _("Choose a reallocation or a total change.")})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the adjustment.")})
    if not changes:
        raise ValidationError({"changes": _("Change at least one target.")})
    places = plan.metric.places
    wanted: dict[int, Decimal] = {}
    for change in changes:
        pk = getattr(change["node"], "pk", change["node"])
        wanted[int(pk)] = check_amount(change.get("amount"), places, field="changes")
    nodes = list(TargetNode.objects.filter(plan=plan, pk__in=list(wanted)).select_related("region", "rep", "owner"))
    if len(nodes) != len(wanted):
        raise ValidationError({"changes": _("Some targets are not part of this plan.")})
    _check_adjuster(actor, nodes)
    paths = sorted(n.path for n in nodes)
    for a, b in zip(paths, paths[1:], strict=False):
        if b.startswith(a):
            raise ValidationError({"changes": _("Change a target or its parts, not both.")})
    total_delta = sum((wanted[n.pk] - n.amount for n in nodes), Decimal(0))
    if not any(wanted[n.pk] != n.amount for n in nodes):
        raise ValidationError({"changes": _("The new amounts are the same as the current ones.")})
    if kind == AdjustmentKind.REALLOCATION and total_delta:
        raise ValidationError(
            {
                "changes": _(
                    "A reallocation keeps the plan total, but these changes add up to %(delta)s. "
                    "Balance them or propose a total change."
                )
                % {"delta": f"{total_delta:+}"}
            }
        )
    if kind == AdjustmentKind.TOTAL_CHANGE and not total_delta:
        raise ValidationError({"kind": _("These changes keep the plan total; propose a reallocation.")})
    adjustment = AdjustmentRequest.objects.create(
        plan=plan,
        kind=kind,
        reason=reason.strip(),
        changes=[{"node": n.pk, "label": n.label, "old": str(n.amount), "new": str(wanted[n.pk])} for n in nodes],
        proposer=actor,
        based_on_version=plan.current_version,
    )
    audit(
        actor=actor,
        action="target_adjustment.propose",
        obj=plan,
        changes={"adjustment": [None, adjustment.pk], "kind": [None, kind], "total_delta": [None, str(total_delta)]},
    )
    return adjustment


def _check_decider(adjustment: AdjustmentRequest, actor: User, *, approving: bool) -> list[TargetNode]:
    if adjustment.status != AdjustmentStatus.PENDING:
        raise ValidationError(
            _("This adjustment was already %(status)s.") % {"status": adjustment.get_status_display().lower()}
        )
    nodes = list(
        TargetNode.objects.filter(pk__in=[c["node"] for c in adjustment.changes]).select_related(
            "region", "rep", "owner"
        )
    )
    if approving and actor.pk == adjustment.proposer_id:
        raise ApprovalRefused(_("Someone other than the proposer has to approve an adjustment."))
    if approving and adjustment.kind == AdjustmentKind.TOTAL_CHANGE and not is_top(actor):
        raise ApprovalRefused(_("A change of the plan total needs a director's approval."))
    if approving or actor.pk != adjustment.proposer_id:  # the proposer may withdraw his own
        _check_adjuster(actor, nodes)
        check_adjustment_approver(actor, adjustment, adjustment_lines([adjustment])[adjustment.pk])
    return nodes


@transaction.atomic
def adjustment_approve(*, adjustment: AdjustmentRequest, actor: User, note: str = "") -> AdjustmentRequest:
    """Approve: a new version of the plan; the changed nodes' old rows are closed, new ones opened."""
    adjustment = (
        AdjustmentRequest.objects.select_for_update(of=("self",)).select_related("proposer").get(pk=adjustment.pk)
    )
    plan = TargetPlan.objects.select_for_update().select_related("metric").get(pk=adjustment.plan_id)
    _check_decider(adjustment, actor, approving=True)
    if plan.current_version != adjustment.based_on_version:
        raise ConflictError(
            _("The plan moved to version %(version)d since this adjustment was proposed; propose it again.")
            % {"version": plan.current_version}
        )
    explicit = {c["node"]: Decimal(c["new"]) for c in adjustment.changes}
    effective = _effective_changes(plan, explicit, plan.metric.places)
    version = plan.current_version + 1
    apply_amounts(plan, effective, version=version)
    root_id = TargetNode.objects.filter(plan=plan, parent__isnull=True).values_list("id", flat=True).get()
    old_total = plan.total
    if root_id in effective:
        plan.total = effective[root_id][1]
    plan.current_version = version
    plan.save(update_fields=["total", "current_version"])
    adjustment.status = AdjustmentStatus.APPROVED
    adjustment.approver = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = (note or "").strip()
    adjustment.resulting_version = version
    adjustment.save(update_fields=["status", "approver", "decided_at", "decision_note", "resulting_version"])
    audit(
        actor=actor,
        action="target_adjustment.approve",
        obj=plan,
        changes={
            "adjustment": [None, adjustment.pk],
            "version": [version - 1, version],
            "total": [str(old_total), str(plan.total)],
            "nodes_changed": [None, len(effective)],
            "proposed_by": [adjustment.proposer_id, adjustment.proposer_id],
            "approved_by": [None, actor.pk],
        },
    )
    outbox.enqueue_name("targets.recompute_plan", plan.pk)
    return adjustment


@transaction.atomic
def adjustment_reject(*, adjustment: AdjustmentRequest, actor: User, note: str) -> AdjustmentRequest:
    """Reject (or, by its proposer, withdraw) a pending adjustment; the plan does not change."""
    adjustment = (
        AdjustmentRequest.objects.select_for_update(of=("self",)).select_related("proposer").get(pk=adjustment.pk)
    )
    _check_decider(adjustment, actor, approving=False)
    if not (note or "").strip():
        raise ValidationError({"note": _("Say why the adjustment is rejected.")})
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.approver = actor
    adjustment.decided_at = timezone.now()
    adjustment.decision_note = note.strip()
    adjustment.save(update_fields=["status", "approver", "decided_at", "decision_note"])
    withdraw_created(adjustment)
    audit(
        actor=actor,
        action="target_adjustment.reject",
        obj=adjustment.plan,
        changes={"adjustment": [None, adjustment.pk], "status": [AdjustmentStatus.PENDING, AdjustmentStatus.REJECTED]},
    )
    return adjustment
