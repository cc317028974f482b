"""People who change in the middle of an approved plan: a rep leaves or moves team (a transfer of his remaining
target), a new hire gets a prorated or ramped target taken from a peer. Both are adjustments (季度目标动态调整)
that keep the plan total to the cent: proposed with a reason, approved by someone above the proposer
(`targets.planning.adjustments.adjustment_approve`), and then in force as the plan's next version.

The rule of a transfer from an effective date D (`remaining_part`):

- a leaf of the leaving rep whose period starts on or after D moves whole;
- a leaf whose period straddles D moves the part after D, prorated by days: amount × (days from D to the period's
  end, both included) ÷ (days in the period), rounded half up to the metric's places (cents, or whole counts);
- a leaf whose period ended before D stays: what was attained stays with whom it was attained.

Each moving part goes to the receiving rep's leaf with the same coordinates (region, product, segment, period)
under the same split by rep; when he has none (a new hire, a rep who never had that product), the leaf and the
nodes above it up to the split by rep are added to the plan at zero when the change is proposed, and get their
amounts on approval (withdrawn again if the change is rejected). A target the receiver did not have in the
original plan has an original target of zero (`targets.planning.selectors.original_targets`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils.translation import gettext as _

from crm.models import User
from crm.services import audit
from salesmgmt.lib import allocation
from salesmgmt.lib.money import quantize
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
from targets.planning.rules import (
    PATH_STEP,
    ancestor_paths,
    check_amount,
    check_manager,
    check_not_own,
    check_scope,
)

# What a node's label and the scope checks read, loaded with it.
LABEL_RELATED = ("region", "rep", "owner", "product_line", "product")

# A ramp of a new hire: the share of a full target per month from his start (the last share holds after).
DEFAULT_RAMP = (25, 50, 75, 100)


def remaining_part(amount: Decimal, start: date, end: date, effective: date, places: int) -> Decimal:
    """The part of a leaf's target (`amount` over `start`..`end`) from `effective` on (see the module docstring)."""
    if effective <= start:
        return amount
    if effective > end:
        return Decimal(0).quantize(Decimal(1).scaleb(-places))
    days = (end - start).days + 1
    left = (end - effective).days + 1
    return quantize(amount * left / days, Decimal(1).scaleb(-places))


def ramp_share(ramp: list[int] | tuple[int, ...], start: date, period_start: date) -> int:
    """The ramp % of a period for a hire who starts on `start`: by the months between his first month and the
    period's first month (the month he starts in is the first step)."""
    months = (period_start.year - start.year) * 12 + period_start.month - start.month
    return ramp[min(max(months, 0), len(ramp) - 1)]


@dataclasses.dataclass
class Move:
    source: TargetNode  # the giving rep's leaf
    amount: Decimal
    receiver: TargetNode | None = None  # the receiving rep's leaf (None: to be added)


def _party_leaves(plan: TargetPlan, party: User | None, *, team_of: User | None = None) -> list[TargetNode]:
    """The leaves of a rep, or (None) the team's unassigned leaves of the team `team_of` belongs to."""
    leaves = (
        TargetNode.objects.leaves().filter(plan=plan).select_related(*LABEL_RELATED).order_by("period_start", "path")
    )
    if party is not None:
        return list(leaves.filter(rep=party))
    line = (team_of.region.path if team_of is not None and team_of.region is not None else "") or ""
    return [n for n in leaves.filter(unassigned=True) if n.region is None or line.startswith(n.region.path)]


def _belongs(node: TargetNode, party: User | None) -> bool:
    """Is `node` the rep's (a User), or the team's unassigned target (None)?"""
    return node.unassigned if party is None else node.rep_id == party.pk


def party_name(party: User | None) -> str:
    return str(party) if party is not None else str(_("the team (unassigned)"))


def _check_common(plan: TargetPlan, giver: User | None, receiver: User | None, day: date | None, reason: str) -> None:
    if plan.status != PlanStatus.APPROVED:
        raise ValidationError(_("Only an approved plan is adjusted; change a draft directly."))
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the change.")})
    if giver is None and receiver is None:
        raise ValidationError(_("Choose who gives and who receives the target."))
    if giver is not None and receiver is not None and giver.pk == receiver.pk:
        raise ValidationError({"to_rep": _("The target goes to someone else: choose another rep.")})
    if day is None or not (plan.period_start <= day <= plan.period_end):
        raise ValidationError(
            {
                "effective": _("The date must lie within the plan's period (%(start)s to %(end)s).")
                % {"start": plan.period_start, "end": plan.period_end}
            }
        )
    if receiver is not None and not receiver.is_active:
        raise ValidationError({"to_rep": _("%(user)s is not active.") % {"user": receiver}})


def _anchor(leaf: TargetNode, party: User | None, chain: dict[str, TargetNode]) -> list[TargetNode]:
    """The nodes from the topmost one of `party` above `leaf` (the part of a split by rep) down to the leaf."""
    path = []
    node: TargetNode | None = leaf
    while node is not None and _belongs(node, party):
        path.append(node)
        parent_path = node.path[:-PATH_STEP]
        node = chain.get(parent_path)
    path.reverse()
    return path


def _same_place(a: TargetNode, b: TargetNode) -> bool:
    return (
        a.region_id == b.region_id
        and a.product_line_id == b.product_line_id
        and a.product_id == b.product_id
        and a.segment == b.segment
        and a.period_start == b.period_start
        and a.period_end == b.period_end
    )


class _Receiver:
    """Finds (or adds at zero) the receiving rep's node matching each node of the giver's, level by level."""

    def __init__(self, plan: TargetPlan, giver: User | None, receiver: User | None, leaves: list[TargetNode]):
        """`leaves`: the giver's leaves. Reads their ancestors and the receiver's nodes (two queries), not the
        whole plan."""
        self.plan, self.giver, self.receiver = plan, giver, receiver
        above = {p for leaf in leaves for p in ancestor_paths(leaf.path)}
        mine = Q(unassigned=True) if receiver is None else Q(rep=receiver)
        nodes = [
            *TargetNode.objects.filter(plan=plan, path__in=sorted(above)).select_related(*LABEL_RELATED),
            *leaves,
            *TargetNode.objects.filter(plan=plan).filter(mine).select_related(*LABEL_RELATED),
        ]
        self.by_path = {n.path: n for n in sorted(nodes, key=lambda n: n.path)}
        self.children: defaultdict[str, list[TargetNode]] = defaultdict(list)
        for n in self.by_path.values():
            if len(n.path) > PATH_STEP:
                self.children[n.path[:-PATH_STEP]].append(n)
        self.created: list[TargetNode] = []

    def check_team(self, leaf: TargetNode) -> None:
        top = _anchor(leaf, self.giver, self.by_path)[0]
        parent = self.by_path.get(top.path[:-PATH_STEP])
        if parent is None or parent.split_dimension != Dimension.REP:
            raise ValidationError(
                _("%(target)s is not part of a split by rep, so it cannot go to another rep.") % {"target": top.label}
            )
        if self.receiver is None:
            return  # the team's own unassigned target
        region = top.region
        rep_region = self.receiver.region
        if region is not None and (rep_region is None or not rep_region.path.startswith(region.path)):
            raise ValidationError(
                {
                    "to_rep": _("%(user)s is not in %(region)s, the team of %(target)s.")
                    % {"user": self.receiver, "region": region, "target": top.label}
                }
            )

    def leaf_for(self, leaf: TargetNode) -> TargetNode:
        """The receiver's leaf for `leaf`, adding it (and the nodes above it up to the split by rep) at zero."""
        found: TargetNode | None = None
        for node in _anchor(leaf, self.giver, self.by_path):
            parent = found if found is not None else self.by_path[node.path[:-PATH_STEP]]
            match = next(
                (c for c in self.children[parent.path] if _belongs(c, self.receiver) and _same_place(c, node)), None
            )
            if match is None:
                match = self._add(parent, node)
            found = match
        if found is None or not found.is_leaf:
            raise ValidationError(
                _("%(user)s's target for %(target)s is split further; change it through an adjustment.")
                % {"user": party_name(self.receiver), "target": leaf.label}
            )
        return found

    def _add(self, parent: TargetNode, like: TargetNode) -> TargetNode:
        siblings = self.children[parent.path]
        last = TargetNode.objects.filter(plan=self.plan, parent=parent).aggregate(m=Max("path"))["m"]
        index = int(last[-PATH_STEP:-1]) + 1 if last else 1
        node = TargetNode.objects.create(
            plan=self.plan,
            parent=parent,
            path=f"{parent.path}{index:04d}.",
            depth=parent.depth + 1,
            region_id=like.region_id,
            product_line_id=like.product_line_id,
            product_id=like.product_id,
            rep=self.receiver,
            unassigned=self.receiver is None,
            segment=like.segment,
            period_kind=like.period_kind,
            period_key=like.period_key,
            period_start=like.period_start,
            period_end=like.period_end,
            split_dimension=like.split_dimension,
            split_method=like.split_method,
            amount=Decimal(0),
            owner=self.receiver if like.owner_id in (None, getattr(self.giver, "pk", None)) else like.owner,
            deadline=like.deadline,
        )
        # In force from the current version at zero: comparing versions shows it going from 0 to its amount.
        TargetNodeAmount.objects.create(
            plan=self.plan, node=node, amount=Decimal(0), version_from=max(self.plan.current_version, 1)
        )
        siblings.append(node)
        self.by_path[node.path] = node
        self.created.append(node)
        return node


def _check_may_change(actor: User, nodes: list[TargetNode]) -> None:
    """The actor may change every node: in his scope (one check per region: a query each) and not his own."""
    seen: set[int | None] = set()
    for node in nodes:
        if node.region_id not in seen:
            seen.add(node.region_id)
            check_scope(actor, node)
        check_not_own(actor, node)


def _write(
    *,
    plan: TargetPlan,
    kind: str,
    moves: list[Move],
    receiver: _Receiver,
    reason: str,
    details: dict,
    actor: User,
) -> AdjustmentRequest:
    moves = [m for m in moves if m.amount > 0]
    if not moves:
        raise ValidationError(_("Nothing would move: there is no target left to move from that date."))
    _check_may_change(actor, [m.source for m in moves])
    for move in moves:
        move.receiver = receiver.leaf_for(move.source)
    new: dict[int, Decimal] = {}
    nodes: dict[int, TargetNode] = {}
    for move in moves:
        assert move.receiver is not None
        for node, delta in ((move.source, -move.amount), (move.receiver, move.amount)):
            nodes[node.pk] = node
            new[node.pk] = new.get(node.pk, node.amount) + delta
    _check_may_change(actor, list(nodes.values()))
    adjustment = AdjustmentRequest.objects.create(
        plan=plan,
        kind=kind,
        reason=reason.strip(),
        changes=[
            {"node": pk, "label": nodes[pk].label, "old": str(nodes[pk].amount), "new": str(new[pk])}
            for pk in sorted(nodes, key=lambda pk: nodes[pk].path)
        ],
        details={
            **details,
            "moved": str(sum((m.amount for m in moves), Decimal(0))),
            "created": [n.pk for n in receiver.created],
        },
        proposer=actor,
        based_on_version=plan.current_version,
    )
    audit(
        actor=actor,
        action=f"target_adjustment.propose_{kind}",
        obj=plan,
        changes={
            "adjustment": [None, adjustment.pk],
            "kind": [None, kind],
            "moved": [None, adjustment.details["moved"]],
            **{k: [None, v] for k, v in details.items()},
        },
    )
    return adjustment


def _spread(moves: list[Move], amount: Decimal, places: int) -> None:
    """Move only `amount` of what could move, spread over the leaves in proportion (largest remainder)."""
    parts = allocation.largest_remainder(amount, [m.amount for m in moves], places=places)
    for move, part in zip(moves, parts, strict=True):
        move.amount = part


@transaction.atomic
def transfer_propose(
    *,
    plan: TargetPlan,
    from_rep: User | None,
    to_rep: User | None,
    effective: date | None,
    reason: str,
    actor: User,
    amount: Decimal | str | None = None,
) -> AdjustmentRequest:
    """Propose moving `from_rep`'s remaining target from `effective` on to `to_rep` (all of it, or only `amount`
    of it spread in proportion); `to_rep` None: to his team, unassigned (a leaver nobody replaces yet: the team's
    unassigned target, which a new hire can take later). The plan total never changes; the new amounts are in
    force once approved."""
    check_manager(actor)
    plan = TargetPlan.objects.select_for_update().select_related("metric").get(pk=plan.pk)
    if from_rep is None:
        raise ValidationError({"from_rep": _("Choose the rep who leaves or moves.")})
    _check_common(plan, from_rep, to_rep, effective, reason)
    assert effective is not None
    places = plan.metric.places
    leaves = _party_leaves(plan, from_rep)
    if not leaves:
        raise ValidationError({"from_rep": _("%(user)s has no target in this plan.") % {"user": from_rep}})
    receiver = _Receiver(plan, from_rep, to_rep, leaves)
    moves = []
    for leaf in leaves:
        part = remaining_part(leaf.amount, leaf.period_start, leaf.period_end, effective, places)
        if part > 0:
            receiver.check_team(leaf)
            moves.append(Move(leaf, part))
    remaining = sum((m.amount for m in moves), Decimal(0))
    if amount not in (None, ""):
        wanted = check_amount(amount, places)
        if wanted > remaining:
            raise ValidationError(
                {
                    "amount": _("%(user)s has only %(remaining)s of target left from %(day)s; move at most that.")
                    % {"user": from_rep, "remaining": remaining, "day": effective}
                }
            )
        if wanted == 0:
            raise ValidationError({"amount": _("Move more than zero.")})
        _spread(moves, wanted, places)
    details = {"from_rep": from_rep.pk, "to_rep": getattr(to_rep, "pk", None), "effective": effective.isoformat()}
    return _write(
        plan=plan,
        kind=AdjustmentKind.TRANSFER,
        moves=moves,
        receiver=receiver,
        reason=reason,
        details=details,
        actor=actor,
    )


def parse_ramp(value: str | list | tuple | None) -> list[int]:
    """ "25, 50, 75, 100" -> [25, 50, 75, 100]: whole percentages from 0 to 100 that never go down."""
    if value in (None, ""):
        return list(DEFAULT_RAMP)
    parts = value.replace("%", "").replace("/", ",").split(",") if isinstance(value, str) else list(value)
    try:
        ramp = [int(str(p).strip()) for p in parts if str(p).strip()]
    except ValueError:
        raise ValidationError({"ramp": _("Write the ramp as percentages separated by commas, e.g. 25, 50, 75, 100.")})
    if not ramp or any(p < 0 or p > 100 for p in ramp) or any(b < a for a, b in zip(ramp, ramp[1:], strict=False)):
        raise ValidationError({"ramp": _("A ramp is percentages from 0 to 100 that never go down, e.g. 25, 50, 100.")})
    return ramp


@transaction.atomic
def new_hire_propose(
    *,
    plan: TargetPlan,
    hire: User | None,
    source: User | None,
    start: date | None,
    full_amount: Decimal | str | None,
    reason: str,
    actor: User,
    ramp: list[int] | None = None,
) -> AdjustmentRequest:
    """Propose a target for `hire` from his `start`, taken from the peer `source` (None: from the team's unassigned
    target, what a leaver left) so the plan total is kept.

    `full_amount` is what a fully productive rep carries for the whole plan period; it is spread over the
    source's leaves in proportion to their amounts, then each leaf's part is prorated by the days from the start
    (`remaining_part`) and, with a `ramp`, scaled by the ramp's share of its month (`ramp_share`). No leaf gives
    more than it has."""
    check_manager(actor)
    plan = TargetPlan.objects.select_for_update().select_related("metric").get(pk=plan.pk)
    if hire is None:
        raise ValidationError({"hire": _("Choose the new hire.")})
    _check_common(plan, source, hire, start, reason)
    assert start is not None
    places = plan.metric.places
    full = check_amount(full_amount, places, field="full_amount")
    if full == 0:
        raise ValidationError({"full_amount": _("Give the hire's full target (more than zero).")})
    leaves = _party_leaves(plan, source, team_of=hire)
    if not leaves:
        if source is None:
            raise ValidationError({"source": _("%(user)s's team has no unassigned target.") % {"user": hire}})
        raise ValidationError({"source": _("%(user)s has no target in this plan.") % {"user": source}})
    receiver = _Receiver(plan, source, hire, leaves)
    shares = allocation.largest_remainder(full, [leaf.amount for leaf in leaves], places=places)
    moves = []
    step = Decimal(1).scaleb(-places)
    for leaf, share in zip(leaves, shares, strict=True):
        part = remaining_part(share, leaf.period_start, leaf.period_end, start, places)
        if ramp:
            part = quantize(part * ramp_share(ramp, start, leaf.period_start) / 100, step)
        if part <= 0:
            continue
        receiver.check_team(leaf)
        if part > leaf.amount:
            raise ValidationError(
                {
                    "full_amount": _("%(target)s has only %(left)s; the hire would take %(part)s from it.")
                    % {"target": leaf.label, "left": leaf.amount, "part": part}
                }
            )
        moves.append(Move(leaf, part))
    details = {
        "from_rep": getattr(source, "pk", None),
        "to_rep": hire.pk,
        "effective": start.isoformat(),
        "full_amount": str(full),
        "ramp": list(ramp or []),
    }
    return _write(
        plan=plan,
        kind=AdjustmentKind.NEW_HIRE,
        moves=moves,
        receiver=receiver,
        reason=reason,
        details=details,
        actor=actor,
    )


def withdraw_created(adjustment: AdjustmentRequest) -> int:
    """A rejected people change: remove the receiver's nodes it added at zero, unless another pending change
    counts on them or they carry an amount. Returns how many were removed (with their subtrees)."""
    created = adjustment.details.get("created") or []
    if not created:
        return 0
    others = AdjustmentRequest.objects.filter(plan_id=adjustment.plan_id, status=AdjustmentStatus.PENDING).exclude(
        pk=adjustment.pk
    )
    used = {c["node"] for other in others for c in other.changes}
    nodes = list(TargetNode.objects.filter(pk__in=created).order_by("path"))
    removed = 0
    for node in nodes:
        subtree = TargetNode.objects.subtree(node)
        if subtree.filter(pk__in=used).exists() or subtree.exclude(amount=0).exists():
            continue
        if not TargetNode.objects.filter(pk=node.pk).exists():
            continue  # gone with an ancestor removed just before
        removed += subtree.count()
        TargetNode.objects.filter(pk=node.pk).delete()
    return removed


def people_change_summary(adjustment: AdjustmentRequest) -> dict | None:
    """Who gives, who receives, from when and how much (for the approval pages); None for other kinds."""
    if adjustment.kind not in (AdjustmentKind.TRANSFER, AdjustmentKind.NEW_HIRE) or not adjustment.details:
        return None
    d = adjustment.details
    users = {u.pk: u for u in User.objects.filter(pk__in=[d.get("from_rep"), d.get("to_rep")])}
    return {
        "from_rep": party_name(users.get(d["from_rep"])) if d.get("from_rep") else party_name(None),
        "to_rep": party_name(users.get(d["to_rep"])) if d.get("to_rep") else party_name(None),
        "effective": date.fromisoformat(d["effective"]) if d.get("effective") else None,
        "moved": Decimal(d.get("moved", "0")),
        "full_amount": Decimal(d["full_amount"]) if d.get("full_amount") else None,
        "ramp": d.get("ramp") or [],
    }
