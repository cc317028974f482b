"""Plans: create, submit, send back to draft, approve (which writes version 1 of every node).

A plan is company-wide (directors and admins) or for one region (also its manager, who submits it).
Nobody approves what they submitted: someone above the submitter approves or sends back
(`targets.planning.approval_chain`), and is told so in the notification centre."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.models import Region, User
from crm.scopes import visible_regions, visible_users
from crm.services import audit
from salesmgmt import outbox
from salesmgmt.lib import periods
from salesmgmt.locking import locked_get
from targets.models import (
    Metric,
    PlanPeriodKind,
    PlanStatus,
    TargetNode,
    TargetNodeAmount,
    TargetPlan,
)
from targets.planning.approval_chain import approver_names, plan_approvers
from targets.planning.approvals import check_plan_approver, notify_plan_submitted
from targets.planning.rules import check_amount, fiscal_start, is_top, may_decide_plan
from targets.planning.selectors import incomplete_leaves, unbalanced_nodes


@transaction.atomic
def plan_create(
    *,
    metric: Metric,
    period_key: str,
    total: Decimal | str,
    owner: User | None = None,
    region: Region | None = None,
    name: str = "",
    actor: User,
) -> TargetPlan:
    """A plan for one metric and one fiscal year or quarter, company-wide or for one region; its root
    node holds the total and the region. Directors and admins create any plan, a manager only plans
    for the regions in his scope. The owner defaults to the region's manager, else the actor."""
    if actor is None or not actor.is_authenticated or not actor.is_manager_or_above:
        raise ValidationError(_("Only managers, directors and admins can create a target plan."))
    if region is None and not is_top(actor):
        raise ValidationError(
            {"region": _("Only a director or an admin can create a company-wide plan; choose your region.")}
        )
    if region is not None and not is_top(actor) and not visible_regions(actor).filter(pk=region.pk).exists():
        raise ValidationError({"region": _("%(region)s is outside your regions.") % {"region": region}})
    if not metric.is_active:
        raise ValidationError({"metric": _("The metric %(metric)s is not active.") % {"metric": metric}})
    try:
        period = periods.parse_key(period_key.strip(), fiscal_start())
    except ValueError:
        raise ValidationError(
            {"period_key": _("“%(key)s” is not a period such as FY2027 or FY2027-Q2.") % {"key": period_key}}
        )
    if period.kind not in PlanPeriodKind.values:
        raise ValidationError({"period_key": _("A plan covers a fiscal year or a quarter.")})
    total = check_amount(total, metric.places, field="total")
    if owner is None:
        owner = (region.manager if region is not None else None) or actor
    if not owner.is_active or not owner.is_manager_or_above:
        raise ValidationError({"owner": _("A plan is owned by a director or a manager.")})
    if not is_top(actor) and not visible_users(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot make %(user)s responsible for a plan.") % {"user": owner}})
    if TargetPlan.objects.filter(metric=metric, period_key=period.key, region=region).exists():
        if region is None:
            message = _("There is already a company-wide %(metric)s plan for %(period)s.")
        else:
            message = _("There is already a %(metric)s plan for %(region)s in %(period)s.")
        raise ValidationError({"period_key": message % {"metric": metric, "period": period.key, "region": region}})
    plan = TargetPlan(
        metric=metric,
        name=(name or "").strip() or " ".join(str(x) for x in (metric.display_name, region, period.key) if x),
        period_kind=period.kind,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        total=total,
        region=region,
        owner=owner,
        created_by=actor,
    )
    plan.full_clean()
    plan.save()
    TargetNode.objects.create(
        plan=plan,
        parent=None,
        path="0001.",
        depth=0,
        region=region,
        period_kind=period.kind,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        amount=total,
        owner=owner,
        deadline=period.end,
    )
    audit(
        actor=actor,
        action="target_plan.create",
        obj=plan,
        changes={
            "metric": [None, metric.code],
            "period": [None, period.key],
            "region": [None, str(region) if region is not None else None],
            "total": [None, str(total)],
        },
    )
    return plan


@transaction.atomic
def plan_submit(*, plan: TargetPlan, actor: User) -> TargetPlan:
    """Submit for approval by someone above the actor; refused when nobody could approve it."""
    plan = TargetPlan.objects.select_for_update(of=("self",)).select_related("region").get(pk=plan.pk)
    if not (actor.pk in (plan.owner_id, plan.created_by_id) or may_decide_plan(actor, plan)):
        raise ValidationError(_("Only the plan's owner or a director can submit it."))
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(_("Only a draft plan can be submitted."))
    old_submitter = plan.submitted_by_id
    plan.submitted_by = actor
    approvers = plan_approvers(plan)
    if not approvers:
        raise ValidationError(
            _("Nobody above you could approve this plan: it needs a director or an admin other than you.")
        )
    plan.status = PlanStatus.SUBMITTED
    plan.submitted_at = timezone.now()
    plan.save(update_fields=["status", "submitted_at", "submitted_by"])
    audit(
        actor=actor,
        action="target_plan.submit",
        obj=plan,
        changes={
            "status": [PlanStatus.DRAFT, plan.status],
            "submitted_by": [old_submitter, actor.pk],
            "approvers": [None, approver_names(approvers)],
        },
    )
    notify_plan_submitted(plan, approvers)
    return plan


@transaction.atomic
def plan_return(*, plan: TargetPlan, reason: str, actor: User) -> TargetPlan:
    """Send a submitted plan back to draft so it can be changed."""
    plan = locked_get(TargetPlan.objects.select_related("region", "submitted_by"), plan.pk)
    check_plan_approver(actor, plan, returning=True)
    if plan.status != PlanStatus.SUBMITTED:
        raise ValidationError(_("Only a submitted plan can be sent back to draft."))
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say what has to change.")})
    plan.status = PlanStatus.DRAFT
    plan.save(update_fields=["status"])
    audit(
        actor=actor,
        action="target_plan.return",
        obj=plan,
        changes={
            "status": [PlanStatus.SUBMITTED, PlanStatus.DRAFT],
            "reason": [None, reason.strip()],
            "submitted_by": [plan.submitted_by_id, plan.submitted_by_id],
        },
    )
    return plan


@transaction.atomic
def plan_approve(*, plan: TargetPlan, actor: User) -> TargetPlan:
    """Lock the plan: refused to its submitter and anyone not above him (`check_plan_approver`) and while a
    leaf lacks 3定; writes version 1 of every node in one statement."""
    plan = locked_get(TargetPlan.objects.select_related("region", "submitted_by"), plan.pk)
    check_plan_approver(actor, plan)
    if plan.status != PlanStatus.SUBMITTED:
        raise ValidationError(_("Only a submitted plan can be approved."))
    incomplete = incomplete_leaves(plan)
    count = incomplete.count()
    if count:
        shown = "; ".join(n.label for n in incomplete[:20])
        raise ValidationError(
            ngettext(
                "%(count)d target has no owner or no period: %(targets)s.",
                "%(count)d targets have no owner or no period: %(targets)s.",
                count,
            )
            % {"count": count, "targets": shown},
            code="incomplete",
        )
    unbalanced = list(unbalanced_nodes(plan)[:5])
    if unbalanced:  # Only possible after a bug or a manual database edit; never lock a plan that does not add up.
        raise ValidationError(
            _("These targets do not add up to their parts: %(targets)s.")
            % {"targets": "; ".join(n.label for n in unbalanced)}
        )
    _write_version_one(plan)
    plan.status = PlanStatus.APPROVED
    plan.approved_by = actor
    plan.approved_at = timezone.now()
    plan.current_version = 1
    plan.save(update_fields=["status", "approved_by", "approved_at", "current_version"])
    audit(
        actor=actor,
        action="target_plan.approve",
        obj=plan,
        changes={
            "status": [PlanStatus.SUBMITTED, PlanStatus.APPROVED],
            "version": [0, 1],
            "submitted_by": [plan.submitted_by_id, plan.submitted_by_id],
            "approved_by": [None, actor.pk],
        },
    )
    outbox.enqueue_name("targets.recompute_plan", plan.pk)
    return plan


def _write_version_one(plan: TargetPlan) -> None:
    """INSERT ... SELECT: version 1 of every node, set-based however large the tree."""
    amounts = TargetNodeAmount._meta
    nodes = TargetNode._meta
    qn = connection.ops.quote_name
    col = {f.name: qn(f.column) for f in amounts.concrete_fields if f.column}
    ncol = {f.name: qn(f.column) for f in nodes.concrete_fields if f.column}
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(amounts.db_table)} ({col['plan']}, {col['node']}, {col['amount']}, "
            f"{col['version_from']}, {col['version_to']}) "
            f"SELECT {ncol['plan']}, {ncol['id']}, {ncol['amount']}, 1, NULL FROM {qn(nodes.db_table)} "
            f"WHERE {ncol['plan']} = %s",
            [plan.pk],
        )
