"""Action plans (行动计划) under a target."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import User
from crm.scopes import visible_users
from crm.services import audit
from targets.models import (
    ActionPlan,
    ActionStatus,
    TargetNode,
)
from targets.planning.rules import check_manager


def _check_action_access(actor: User, node: TargetNode) -> None:
    """The target's owner or rep plans their own actions; managers plan within their scope."""
    if actor.pk in (node.owner_id, node.rep_id):
        return
    if not TargetNode.objects.visible_to(actor).filter(pk=node.pk).exists():
        raise ValidationError(_("“%(target)s” is not one of your targets.") % {"target": node.label})
    check_manager(actor)


def _check_action_owner(actor: User, owner: User) -> None:
    if owner.pk != actor.pk and not visible_users(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot give actions to %(user)s.") % {"user": owner}})


@transaction.atomic
def action_plan_create(
    *, node: TargetNode, activity: str, owner: User | None = None, due_date: date, resources: str = "", actor: User
) -> ActionPlan:
    node = TargetNode.objects.select_related("plan").get(pk=node.pk)
    _check_action_access(actor, node)
    owner = owner or actor
    _check_action_owner(actor, owner)
    if due_date is None or due_date > node.period_end:
        raise ValidationError(
            {
                "due_date": _("The action must be due by the end of the target's period (%(end)s).")
                % {"end": node.period_end}
            }
        )
    action = ActionPlan(
        node=node,
        activity=(activity or "").strip(),
        owner=owner,
        due_date=due_date,
        resources=(resources or "").strip(),
        created_by=actor,
    )
    action.full_clean()
    action.save()
    audit(
        actor=actor,
        action="action_plan.create",
        obj=node,
        changes={"action": [None, action.activity], "owner": [None, str(owner)], "due_date": [None, str(due_date)]},
    )
    return action


ACTION_EDITABLE = ("activity", "owner", "due_date", "resources", "status")


@transaction.atomic
def action_plan_update(*, action_plan: ActionPlan, data: dict, actor: User) -> ActionPlan:
    action = ActionPlan.objects.select_for_update().select_related("node").get(pk=action_plan.pk)
    node = action.node
    if actor.pk != action.owner_id:
        _check_action_access(actor, node)
    data = {k: v for k, v in data.items() if k in ACTION_EDITABLE}
    if "owner" in data and data["owner"].pk != action.owner_id:
        _check_action_owner(actor, data["owner"])
    if "status" in data and data["status"] not in ActionStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if "due_date" in data and (data["due_date"] is None or data["due_date"] > node.period_end):
        raise ValidationError(
            {
                "due_date": _("The action must be due by the end of the target's period (%(end)s).")
                % {"end": node.period_end}
            }
        )
    changes: dict[str, list[str]] = {}
    for field, new in data.items():
        old = getattr(action, field)
        if old != new:
            changes[field] = [str(old), str(new)]
            setattr(action, field, new)
    if not changes:
        return action
    action.full_clean()
    action.save(update_fields=[*changes, "updated_at"])
    audit(actor=actor, action="action_plan.update", obj=node, changes={"action": [None, action.pk], **changes})
    return action
