"""Editing draft targets (amount, owner, deadline) and bottom-up commitments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
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
    lock_plan_edits,
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
    levels: tuple[Decimal | str | None, Decimal | str | None] | None = None,
    actor: User,
) -> TargetNode:
    """Edit a draft node's amount, owner or deadline (a stale `expected_version` raises ConflictError).

    A new amount must keep the parent's sum: refused unless `rebalance=True`, in which case the
    siblings absorb the difference in proportion to their amounts. The root's amount is the plan
    total. The subtrees of every changed node are rescaled so all levels still add up. `levels` (stretch,
    challenge), when given, are set after the amount (`node_set_levels`), in the same transaction.
    """
    lock_plan_edits(node.plan_id)
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
        check_levels(amount, node.stretch, node.challenge)
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
        for sibling in TargetNode.objects.filter(pk__in=[pk for pk in new_amounts if pk != node.pk]):
            check_levels(new_amounts[sibling.pk], sibling.stretch, sibling.challenge)
        # Levels below the changed nodes derive from theirs: cleared while the amounts move, then handed down again.
        paths = list(TargetNode.objects.filter(pk__in=list(new_amounts)).values_list("path", flat=True))
        below = Q()
        for path in paths:
            below |= Q(path__startswith=path) & ~Q(path=path)
        TargetNode.objects.filter(below, plan=plan).exclude(stretch=None, challenge=None).update(
            stretch=None, challenge=None
        )
        rescaled = rescale_subtrees(plan, new_amounts, places, only_changed=True)
        rescaled.pop(node.pk, None)
        apply_amounts(plan, rescaled)
        changes["amount"] = [str(node.amount), str(amount)]
        if len(rescaled) <= AUDIT_CHILDREN_LIMIT:
            changes["rebalanced"] = [None, {str(k): [str(o), str(n)] for k, (o, n) in rescaled.items()}]
        node.amount = amount
        fields.append("amount")
    if not fields:
        if levels is not None and levels != (node.stretch, node.challenge):
            return node_set_levels(node=node, stretch=levels[0], challenge=levels[1], actor=actor)
        return node
    node.save(update_fields=[*fields, "updated_at"])
    if "amount" in fields:
        for changed in TargetNode.objects.filter(pk__in=list(new_amounts)).select_related("plan__metric"):
            if changed.stretch is not None or changed.challenge is not None:
                spread_levels(changed)
    audit(actor=actor, action="target.update", obj=node, changes=changes)
    if levels is not None and levels != (node.stretch, node.challenge):
        node = node_set_levels(node=node, stretch=levels[0], challenge=levels[1], actor=actor)
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


def check_levels(amount: Decimal, stretch: Decimal | None, challenge: Decimal | None) -> None:
    """Stretch levels rise: stretch >= base (the amount), challenge >= stretch (>= base without a stretch)."""
    if stretch is not None and stretch < amount:
        raise ValidationError(
            {"stretch": _("The stretch target cannot be below the base target (%(base)s).") % {"base": amount}}
        )
    floor = stretch if stretch is not None else amount
    if challenge is not None and challenge < floor:
        raise ValidationError(
            {"challenge": _("The challenge target cannot be below %(floor)s (the stretch or base).") % {"floor": floor}}
        )


@transaction.atomic
def node_set_levels(
    *,
    node: TargetNode,
    stretch: Decimal | str | None,
    challenge: Decimal | str | None,
    expected_version: int | None = None,
    actor: User,
) -> TargetNode:
    """Set (or clear, with None) a draft node's stretch (冲刺) and challenge (挑战) targets above its base.

    Its descendants get the levels in proportion to their amounts (`spread_levels`), summing exactly.
    """
    lock_plan_edits(node.plan_id)
    node = lock_node(node, expected_version)
    plan = node.plan
    check_manager(actor)
    check_draft(plan)
    check_scope(actor, node)
    check_not_own(actor, node)
    places = plan.metric.places
    new_stretch = None if stretch in (None, "") else check_amount(stretch, places, field="stretch")
    new_challenge = None if challenge in (None, "") else check_amount(challenge, places, field="challenge")
    check_levels(node.amount, new_stretch, new_challenge)
    changes = {
        "stretch": [str(node.stretch) if node.stretch is not None else None, str(new_stretch) if new_stretch else None],
        "challenge": [
            str(node.challenge) if node.challenge is not None else None,
            str(new_challenge) if new_challenge else None,
        ],
    }
    node.stretch, node.challenge = new_stretch, new_challenge
    bump(node, "stretch", "challenge")
    spread_levels(node)
    audit(actor=actor, action="target.levels", obj=node, changes=changes)
    return node


def _spread(total_above: Decimal, amounts: list[Decimal], places: int) -> list[Decimal]:
    return allocation.largest_remainder(total_above, amounts, places=places)


def spread_levels(node: TargetNode) -> int:
    """Hand a node's stretch and challenge levels down its subtree, level by level, in proportion to the
    children's amounts: a child's stretch is its amount plus its share of (parent stretch - parent amount), its
    challenge its stretch plus its share of (parent challenge - parent stretch). So children's levels sum exactly
    to the parent's, to the cent, and each child's levels rise as its parent's do. A parent without a level clears
    them as they are. One read of the subtree, one bulk update; returns how many nodes changed."""
    places = node.plan.metric.places
    rows = list(
        TargetNode.objects.filter(plan_id=node.plan_id, path__startswith=node.path)
        .order_by("path")
        .only("id", "path", "parent_id", "amount", "stretch", "challenge")
    )
    by_id = {n.pk: n for n in rows}
    if node.pk in by_id:
        by_id[node.pk].stretch, by_id[node.pk].challenge = node.stretch, node.challenge
    children: dict[int, list[TargetNode]] = {}
    for n in rows:
        if n.pk != node.pk and n.parent_id is not None:
            children.setdefault(n.parent_id, []).append(n)
    changed = []
    for parent in rows:  # parents come before their children in path order
        kids = children.get(parent.pk)
        if not kids or (parent.stretch is None and parent.challenge is None):
            continue
        amounts = [k.amount for k in kids]
        stretches: list[Decimal | None] = [None] * len(kids)
        challenges: list[Decimal | None] = [None] * len(kids)
        if parent.stretch is not None:
            extra = _spread(parent.stretch - parent.amount, amounts, places)
            stretches = [a + e for a, e in zip(amounts, extra, strict=True)]
        if parent.challenge is not None:
            floor = parent.stretch if parent.stretch is not None else parent.amount
            bases = [s if s is not None else a for s, a in zip(stretches, amounts, strict=True)]
            extra = _spread(parent.challenge - floor, amounts, places)
            challenges = [b + e for b, e in zip(bases, extra, strict=True)]
        for kid, s, c in zip(kids, stretches, challenges, strict=True):
            if (kid.stretch, kid.challenge) != (s, c):
                kid.stretch, kid.challenge = s, c
                changed.append(kid)
    TargetNode.objects.bulk_update(changed, ["stretch", "challenge"], batch_size=2000)
    return len(changed)


def has_levels(node: TargetNode) -> bool:
    """Whether a node or one below it carries a stretch level (one query)."""
    return (
        TargetNode.objects.filter(plan_id=node.plan_id, path__startswith=node.path)
        .filter(Q(stretch__isnull=False) | Q(challenge__isnull=False))
        .exists()
    )
