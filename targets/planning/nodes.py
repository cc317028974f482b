"""Editing draft targets (amount, owner, deadline) and bottom-up commitments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import User
from crm.scopes import visible_users
from crm.services import audit
from salesmgmt.lib import allocation
from targets.models import (
    TargetNode,
)
from targets.planning.bulk import apply_amounts, rescale_subtrees
from targets.planning.rules import (
    AUDIT_CHILDREN_LIMIT,
    bump,
    check_amount,
    check_draft,
    check_manager,
    check_not_own,
    check_scope,
    lock_node,
    round_amount,
)


@transaction.atomic
def node_update(
    *,
    node: TargetNode,
    amount: Decimal | str | None = None,
    owner: User | None = None,
    deadline: date | None = None,
    expected_version: int,
    rebalance: bool = False,
    actor: User,
) -> TargetNode:
    """Edit a draft node's amount, owner or deadline (a stale `expected_version` raises ConflictError).

    A new amount must keep the parent's sum: refused unless `rebalance=True`, in which case the
    siblings absorb the difference in proportion to their amounts. The root's amount is the plan
    total. The subtrees of every changed node are rescaled so all levels still add up.
    """
    node = lock_node(node, expected_version)
    plan = node.plan
    check_manager(actor)
    check_draft(plan)
    check_scope(actor, node)
    check_not_own(actor, node)
    places = plan.metric.places
    changes: dict[str, list[object]] = {}
    fields = []
    if owner is not None and owner.pk != node.owner_id:
        if not owner.is_active or not visible_users(actor).filter(pk=owner.pk).exists():
            raise ValidationError({"owner": _("You cannot make %(user)s responsible for a target.") % {"user": owner}})
        changes["owner"] = [str(node.owner) if node.owner_id else None, str(owner)]
        node.owner = owner
        fields.append("owner")
    if deadline is not None and deadline != node.deadline:
        if not node.period_start <= deadline <= node.period_end:
            raise ValidationError(
                {
                    "deadline": _("The deadline must fall within %(period)s (%(start)s to %(end)s).")
                    % {"period": node.period_key, "start": node.period_start, "end": node.period_end}
                }
            )
        changes["deadline"] = [str(node.deadline) if node.deadline else None, str(deadline)]
        node.deadline = deadline
        fields.append("deadline")
    if amount is not None:
        amount = check_amount(amount, places)
    if amount is not None and amount != node.amount:
        new_amounts = {node.pk: amount}
        if node.parent_id is None:
            plan.total = amount
            plan.save(update_fields=["total"])
        else:
            siblings = list(
                TargetNode.objects.filter(parent_id=node.parent_id)
                .exclude(pk=node.pk)
                .select_related("region")
                .order_by("path")
            )
            delta = amount - node.amount
            if not rebalance:
                parent_amount = TargetNode.objects.values_list("amount", flat=True).get(pk=node.parent_id)
                raise ValidationError(
                    {
                        "amount": _(
                            "The parts must add up to %(total)s: this change would leave %(left)s %(what)s. "
                            "Re-split the parent with manual amounts, or let the other parts absorb the difference."
                        )
                        % {
                            "total": parent_amount,
                            "left": abs(delta),
                            "what": _("over-allocated") if delta > 0 else _("unallocated"),
                        }
                    }
                )
            if not siblings:
                raise ValidationError({"amount": _("There is no other part to absorb the difference.")})
            available = sum((s.amount for s in siblings), Decimal(0))
            if delta > available:
                raise ValidationError(
                    {"amount": _("The other parts only have %(available)s to give.") % {"available": available}}
                )
            for sibling in siblings:
                check_scope(actor, sibling)
                check_not_own(actor, sibling)
            parts = allocation.rescale(available - delta, [s.amount for s in siblings], places=places)
            for sibling, part in zip(siblings, parts, strict=True):
                new_amounts[sibling.pk] = round_amount(part)
        rescaled = rescale_subtrees(plan, new_amounts, places, only_changed=True)
        rescaled.pop(node.pk, None)
        apply_amounts(plan, rescaled)
        changes["amount"] = [str(node.amount), str(amount)]
        if len(rescaled) <= AUDIT_CHILDREN_LIMIT:
            changes["rebalanced"] = [None, {str(k): [str(o), str(n)] for k, (o, n) in rescaled.items()}]
        node.amount = amount
        fields.append("amount")
    if not fields:
        return node
    node.save(update_fields=[*fields, "updated_at"])
    audit(actor=actor, action="target.update", obj=node, changes=changes)
    return node


@transaction.atomic
def node_commit(*, node: TargetNode, amount: Decimal | str | None, actor: User) -> TargetNode:
    """Bottom-up commitment: the node's owner says what they commit to; nobody commits on their behalf."""
    node = lock_node(node, None)
    if node.owner_id != actor.pk:
        raise ValidationError(_("Only the owner of “%(target)s” can commit to it.") % {"target": node.label})
    check_draft(node.plan)
    amount = check_amount(amount, node.plan.metric.places)
    old = node.committed_amount
    node.committed_amount = amount
    bump(node, "committed_amount")
    audit(
        actor=actor,
        action="target.commit",
        obj=node,
        changes={"committed_amount": [str(old) if old is not None else None, str(amount)]},
    )
    return node
