"""The approval chain's refusals (who is refused is decided in `targets.planning.approval_chain`), and telling
the approvers that a plan waits for them."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Region, User
from targets.models import AdjustmentRequest, Notification, NotificationTopic, TargetPlan
from targets.planning.approval_chain import (
    approver_names,
    can_approve,
    outranks_proposer,
    plan_approvers,
)


class ApprovalRefused(ValidationError):
    """The actor may not decide this (not above the submitter, or the submitter himself): the API answers 403,
    a page shows the message like any other refusal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_approver")


def check_plan_approver(actor: User, plan: TargetPlan, *, returning: bool = False) -> None:
    """Refuse the submitter and anyone not above him, naming who the plan waits for."""
    if can_approve(actor, plan):
        return
    approvers = plan_approvers(plan)
    if plan.submitted_by_id is not None and actor.pk == plan.submitted_by_id:
        if returning:
            message = _("You submitted this plan, so someone above you decides on it: %(approvers)s.")
        else:
            message = _("You submitted this plan, so someone above you approves it: %(approvers)s.")
    elif returning:
        message = _("Only someone above the plan's submitter can send it back: %(approvers)s.")
    else:
        message = _("Only someone above the plan's submitter can approve it: %(approvers)s.")
    nobody = _("nobody yet (a director or an admin other than the submitter is needed)")
    raise ApprovalRefused(message % {"approvers": approver_names(approvers) or nobody})


def check_adjustment_approver(actor: User, adjustment: AdjustmentRequest, line: list[Region]) -> None:
    """The proposer never approves his own adjustment; the approver is above him."""
    if actor.pk == adjustment.proposer_id:
        raise ApprovalRefused(_("Someone other than the proposer has to approve an adjustment."))
    if not outranks_proposer(actor, adjustment, line):
        raise ApprovalRefused(
            _(
                "Only someone above %(proposer)s (a manager of a higher region, a director or an admin) "
                "can decide on this adjustment."
            )
            % {"proposer": adjustment.proposer}
        )


def notify_plan_submitted(plan: TargetPlan, approvers: Iterable[User]) -> int:
    """Tell each approver, in the notification centre, that the plan waits for them; returns how many."""
    link = reverse("targets:plan_detail", args=[plan.pk])
    params = {"plan": plan.name, "submitter": str(plan.submitted_by)}
    now = timezone.now()
    rows = [
        Notification(
            recipient=user,
            topic=NotificationTopic.PLAN_SUBMITTED,
            params=params,
            link=link,
            in_app=True,
            email=False,
            created_at=now,
        )
        for user in approvers
    ]
    Notification.objects.bulk_create(rows)
    return len(rows)
