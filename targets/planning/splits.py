"""Splitting targets: previews, one node at a time, or every leaf under a node in one go."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.models import User
from crm.services import audit
from salesmgmt.lib import allocation
from salesmgmt.lib.money import to_decimal
from targets.models import (
    Dimension,
    SplitMethod,
    TargetNode,
    WeightBasis,
)
from targets.planning.bulk import (
    apply_amounts,
    delete_descendants,
    insert_children_sql,
    insert_nodes,
    node_row,
    rescale_subtrees,
)
from targets.planning.members import COORD_FIELDS, Member, dimension_error, members_batch, region_paths
from targets.planning.nodes import has_levels, spread_levels
from targets.planning.rules import (
    AUDIT_CHILDREN_LIMIT,
    MAX_CHILDREN,
    bump,
    check_amount,
    check_draft,
    check_manager,
    check_scope,
    fiscal_start,
    lock_node,
    lock_plan_edits,
    round_amount,
)
from targets.planning.selectors import TREE_RELATED
from targets.planning.weights import Source, weights_batch, weights_with_sources


@dataclasses.dataclass
class ProposedChild:
    key: str
    label: str
    amount: Decimal
    weight: Decimal | None
    owner_id: int | None
    deadline: date | None
    coords: dict
    committed_amount: Decimal | None = None
    node_id: int | None = None
    # By history: where the part's weight came from (`weights.SOURCES`) and its label for a manager.
    source: str | None = None
    source_label: str | None = None


@dataclasses.dataclass
class SplitPreview:
    node: TargetNode
    dimension: str
    method: str
    children: list[ProposedChild]
    warnings: list[str]
    # Bottom-up only: what was handed down, what the people below committed, and the difference.
    top_down: Decimal | None = None
    bottom_up: Decimal | None = None
    gap: Decimal | None = None

    @property
    def total(self) -> Decimal:
        """What the parts add up to (the target's amount, once the parts are valid)."""
        return sum((c.amount for c in self.children), Decimal(0))


@dataclasses.dataclass
class SplitResult:
    node: TargetNode
    children: QuerySet[TargetNode]  # in tree order
    warnings: list[str]


@dataclasses.dataclass
class LeafPreview:
    """One leaf of a bulk split and the parts it would get."""

    leaf: TargetNode
    children: list[ProposedChild]

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.children), Decimal(0))


@dataclasses.dataclass
class LeavesSplitPreview:
    """What splitting every leaf below a node would create: the parts of the leaves `offset` to
    `offset + limit` (tree order), the number of leaves, warnings and how many parts each source weighs."""

    node: TargetNode
    dimension: str
    method: str
    leaves: list[LeafPreview]
    leaf_count: int
    part_count: int
    offset: int
    warnings: list[str]
    sources: dict[str, int]  # {source label: parts}, by history only
    limit: int  # leaves a page shows

    @property
    def first_shown(self) -> int:
        """The 1-based number of the first leaf shown (0 when none is)."""
        return self.offset + 1 if self.leaves else 0

    @property
    def last_shown(self) -> int:
        return self.offset + len(self.leaves)

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.leaf_count // self.limit))

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


@dataclasses.dataclass
class LeavesSplitResult:
    node: TargetNode
    leaves: int
    created: int
    warnings: list[str]


def amount_left(amount: Decimal, typed: Iterable[object]) -> Decimal | None:
    """What is left of `amount` to allocate once the `typed` parts are (negative: too much), as a manual
    split is typed; None while a part is not a number."""
    total = Decimal(0)
    for value in typed:
        try:
            total += to_decimal(value)
        except ValueError:
            return None
    return amount - total


# --- split -------------------------------------------------------------------------------


def _child_owner(node: TargetNode, dimension: str, member: Member) -> int | None:
    """Owner suggestion: the region's manager, the rep, otherwise the parent's owner."""
    if dimension == Dimension.REGION:
        return member.manager_id
    if dimension == Dimension.REP:
        return int(member.key)
    return node.owner_id


def _child_coords(node: TargetNode, member: Member) -> dict[str, Any]:
    coords: dict[str, Any] = {
        "region_id": node.region_id,
        "product_line_id": node.product_line_id,
        "product_id": node.product_id,
        "rep_id": node.rep_id,
        "segment": node.segment,
        "period_kind": node.period_kind,
        "period_key": node.period_key,
        "period_start": node.period_start,
        "period_end": node.period_end,
    }
    coords.update(member.coords)
    return coords


def _proposed_children(
    node: TargetNode,
    dimension: str,
    members: list[Member],
    amounts: Sequence[Decimal],
    weights: Sequence[Decimal | None],
    sources: Sequence[Source | None] | None,
) -> list[ProposedChild]:
    """The parts splitting `node` into `members` proposes, one per member with its amount and weight, and
    the source of its weight when the split is by history (`sources` None otherwise)."""
    if sources is None:
        sources = [None] * len(members)
    return [
        ProposedChild(
            key=m.key,
            label=m.label,
            amount=amount,
            weight=w,
            owner_id=_child_owner(node, dimension, m),
            deadline=m.period.end if m.period else node.deadline,
            coords=_child_coords(node, m),
            source=source.kind if source else None,
            source_label=source.label if source else None,
        )
        for m, amount, w, source in zip(members, amounts, weights, sources, strict=True)
    ]


def _select_members(node: TargetNode, all_members: list[Member], members: Iterable[object] | None) -> list[Member]:
    if members is None:
        chosen = all_members
    else:
        wanted = [str(getattr(m, "pk", m)) for m in members]
        known = {m.key: m for m in all_members}
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise ValidationError(
                {
                    "members": _("%(keys)s cannot be part of “%(target)s”.")
                    % {"keys": ", ".join(unknown), "target": node.label}
                }
            )
        chosen = [known[k] for k in dict.fromkeys(wanted)]
    if not chosen:
        raise ValidationError(
            _("“%(target)s” has nothing to split into along this dimension.") % {"target": node.label}
        )
    if len(chosen) > MAX_CHILDREN:
        raise ValidationError(_("A split can have at most %(max)d parts.") % {"max": MAX_CHILDREN})
    return chosen


def _manual_amounts(node: TargetNode, members: list[Member], amounts: dict | None, places: int) -> list[Decimal]:
    if not amounts:
        raise ValidationError({"amounts": _("Enter the amount of each part.")})
    given = {str(getattr(k, "pk", k)): v for k, v in amounts.items()}
    unknown = set(given) - {m.key for m in members}
    if unknown:
        raise ValidationError(
            {"amounts": _("%(keys)s are not parts of this split.") % {"keys": ", ".join(sorted(unknown))}}
        )
    result = [check_amount(given.get(m.key, 0), places, field="amounts") for m in members]
    left = allocation.remainder(node.amount, result)
    if left > 0:
        raise ValidationError(
            {
                "amounts": _("The parts must add up to %(total)s: %(left)s is still unallocated.")
                % {"total": node.amount, "left": left}
            }
        )
    if left < 0:
        raise ValidationError(
            {
                "amounts": _("The parts must add up to %(total)s: they are %(over)s too much.")
                % {"total": node.amount, "over": -left}
            }
        )
    return result


def _preview(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    members: Iterable[object] | None,
    weights: dict | None,
    amounts: dict | None,
    basis: str | None,
    tiers: Iterable[str] | None,
    actor: User,
) -> SplitPreview:
    plan = node.plan
    places = plan.metric.places
    if method == SplitMethod.BOTTOM_UP:
        return _preview_bottom_up(node=node, dimension=dimension, places=places)
    error = dimension_error(node, dimension)
    if error:
        raise ValidationError({"dimension": error})
    start_month = fiscal_start()
    regions = region_paths([node])
    chosen = _select_members(node, members_batch([node], dimension, regions, start_month)[0], members)
    warnings: list[str] = []
    used: Sequence[Decimal | None]
    if method == SplitMethod.MANUAL:
        parts = _manual_amounts(node, chosen, amounts, places)
        used = [None] * len(chosen)
        sources = None
    else:
        (used,), sources, warnings = weights_with_sources(
            plan=plan,
            nodes=[node],
            members=[chosen],
            dimension=dimension,
            method=method,
            basis=basis,
            weights=weights,
            tiers=tiers,
            regions=regions,
            start_month=start_month,
            actor=actor,
        )
        parts = [round_amount(p) for p in allocation.largest_remainder(node.amount, used, places=places)]
    children = _proposed_children(node, dimension, chosen, parts, used, sources[0] if sources else None)
    if dimension == Dimension.REGION and any(c.owner_id is None for c in children):
        names = ", ".join(c.label for c in children if c.owner_id is None)
        warnings.append(_("No manager to own %(regions)s; assign an owner before approval.") % {"regions": names})
    return SplitPreview(node=node, dimension=dimension, method=method, children=children, warnings=warnings)


def _preview_bottom_up(*, node: TargetNode, dimension: str, places: int) -> SplitPreview:
    """Reconcile with the commitments of the existing children: they get what they committed, scaled
    to the amount handed down when the two differ (the gap is reported)."""
    if not node.split_dimension or dimension != node.split_dimension:
        raise ValidationError(
            {
                "method": _(
                    "Bottom-up reconciles an existing split: split “%(target)s” first so its owners can commit."
                )
                % {"target": node.label}
            }
        )
    kids = list(node.children.order_by("path"))
    missing = [k for k in kids if k.committed_amount is None]
    bases = [k.committed_amount if k.committed_amount is not None else k.amount for k in kids]
    bottom_up = sum(bases, Decimal(0))
    warnings: list[str] = []
    if missing:
        warnings.append(
            _("No commitment yet from %(targets)s; their current targets are used.")
            % {"targets": ", ".join(k.label for k in missing[:20])}
        )
    gap = bottom_up - node.amount
    if gap:
        warnings.append(
            _(
                "Commitments total %(bottom_up)s, %(gap)s %(direction)s the %(top_down)s handed down; "
                "they are scaled to the target."
            )
            % {
                "bottom_up": bottom_up,
                "gap": abs(gap),
                "direction": _("above") if gap > 0 else _("below"),
                "top_down": node.amount,
            }
        )
        parts = [round_amount(p) for p in allocation.largest_remainder(node.amount, bases, places=places)]
    else:
        parts = bases
    children = [
        ProposedChild(
            key=str(k.pk),
            label=k.label,
            amount=amount,
            weight=base,
            owner_id=k.owner_id,
            deadline=k.deadline,
            coords={
                f: getattr(k, f) for f in (*COORD_FIELDS, "period_kind", "period_key", "period_start", "period_end")
            },
            committed_amount=k.committed_amount,
            node_id=k.pk,
        )
        for k, amount, base in zip(kids, parts, bases, strict=True)
    ]
    return SplitPreview(
        node=node,
        dimension=dimension,
        method=SplitMethod.BOTTOM_UP,
        children=children,
        warnings=warnings,
        top_down=node.amount,
        bottom_up=bottom_up,
        gap=gap,
    )


def _check_can_split(actor: User, node: TargetNode) -> None:
    check_manager(actor)
    check_draft(node.plan)
    check_scope(actor, node)


def target_split_preview(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    members: Iterable[object] | None = None,
    weights: dict | None = None,
    amounts: dict | None = None,
    basis: str | None = None,
    tiers: Iterable[str] | None = None,
    actor: User,
) -> SplitPreview:
    """The children a split would create (coordinates, amount, owner suggestion, deadline) and warnings.

    Writes nothing. `members` limits the split to some of the dimension's members (keys or objects);
    `weights` ({key: weight}) and `basis` drive the weights method; `amounts` ({key: amount}) the manual one.
    """
    node = TargetNode.objects.select_related("plan", "plan__metric", "region").get(pk=node.pk)
    _check_can_split(actor, node)
    return _preview(
        node=node,
        dimension=dimension,
        method=method,
        members=members,
        weights=weights,
        amounts=amounts,
        basis=basis,
        tiers=tiers,
        actor=actor,
    )


@transaction.atomic
def target_split(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    members: Iterable[object] | None = None,
    weights: dict | None = None,
    amounts: dict | None = None,
    basis: str | None = None,
    tiers: Iterable[str] | None = None,
    expected_version: int | None = None,
    actor: User,
) -> SplitResult:
    """Split a node along one dimension; the children sum exactly to the node.

    Existing children are replaced (the plan is a draft). `method="bottom_up"` instead reconciles
    the existing children with their owners' commitments, keeping them and their subtrees.
    """
    lock_plan_edits(node.plan_id)
    node = lock_node(node, expected_version)
    _check_can_split(actor, node)
    preview = _preview(
        node=node,
        dimension=dimension,
        method=method,
        members=members,
        weights=weights,
        amounts=amounts,
        basis=basis,
        tiers=tiers,
        actor=actor,
    )
    old = {"dimension": node.split_dimension, "method": node.split_method}
    if method == SplitMethod.BOTTOM_UP:
        changed = {c.node_id: c.amount for c in preview.children if c.node_id is not None}  # the existing children
        if node.stretch is not None or node.challenge is not None:  # derived below: handed down again after
            TargetNode.objects.filter(plan_id=node.plan_id, path__startswith=node.path).exclude(pk=node.pk).update(
                stretch=None, challenge=None
            )
        apply_amounts(node.plan, rescale_subtrees(node.plan, changed, node.plan.metric.places, only_changed=True))
        node.split_method = SplitMethod.BOTTOM_UP
        bump(node, "split_method")
    else:
        delete_descendants(node)
        now = timezone.now()
        insert_nodes(
            [
                node_row(node, i, c.coords, c.amount, c.owner_id, c.deadline, now)
                for i, c in enumerate(preview.children, start=1)
            ]
        )
        node.split_dimension, node.split_method = dimension, method
        bump(node, "split_dimension", "split_method")
    if node.stretch is not None or node.challenge is not None:
        spread_levels(node)  # children get the stretch levels in the same proportions as the amount
    changes: dict[str, list[object]] = {
        "split": [old["dimension"] or None, dimension],
        "method": [old["method"] or None, method],
        "children": [None, len(preview.children)],
    }
    if len(preview.children) <= AUDIT_CHILDREN_LIMIT:
        changes["amounts"] = [None, {c.label: str(c.amount) for c in preview.children}]
    if preview.gap:
        changes["gap"] = [None, str(preview.gap)]
    audit(actor=actor, action="target.split", obj=node, changes=changes)
    # Lazy: a split into 5,000 reps need not load them unless the caller looks.
    children = node.children.select_related("region", "rep", "owner", "product_line", "product").order_by("path")
    return SplitResult(node=node, children=children, warnings=preview.warnings)


@transaction.atomic
def target_split_leaves(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    basis: str | None = None,
    weights: dict | None = None,
    tiers: Iterable[str] | None = None,
    actor: User,
) -> LeavesSplitResult:
    """Split every leaf under `node` along `dimension` in one go (e.g. 5,000 rep targets into 12 months).

    Set-based. When every leaf gets the same parts (periods, segments, product lines), the whole split
    is one INSERT ... SELECT computing the largest remainder method in SQL (history weights, which
    differ per leaf, go in through a temporary table). Otherwise (reps or regions that differ per
    leaf): one query for the leaves, one for the members, one aggregate for the weights, one UPDATE
    and one bulk insert (COPY on PostgreSQL). Manual amounts and bottom-up need a node at a time (`target_split`).
    """
    if method in (SplitMethod.MANUAL, SplitMethod.BOTTOM_UP):
        raise ValidationError({"method": _("Manual and bottom-up splits are made one target at a time.")})
    lock_plan_edits(node.plan_id)
    node = lock_node(node, None)
    _check_can_split(actor, node)
    kwargs: dict[str, Any] = {
        "node": node,
        "dimension": dimension,
        "method": method,
        "basis": basis,
        "weights": weights,
        "actor": actor,
    }
    result = (SPLIT_LEAVES_IN_SQL and _split_leaves_sql(**kwargs)) or _split_leaves_each(**kwargs, tiers=tiers)
    if has_levels(node):
        spread_levels(node)  # the split leaves' stretch levels, handed down to their new children
    audit(
        actor=actor,
        action="target.split_leaves",
        obj=node,
        changes={
            "split": [None, dimension],
            "method": [None, method],
            "leaves": [None, result.leaves],
            "created": [None, result.created],
        },
    )
    return result


# The leaf fields a uniform split's parts depend on: one distinct value set means every leaf splits alike.
UNIFORM_FIELDS: dict[str, tuple[str, ...]] = {
    Dimension.QUARTER: ("period_kind", "period_key", "period_start", "period_end"),
    Dimension.MONTH: ("period_kind", "period_key", "period_start", "period_end"),
    Dimension.WEEK: ("period_kind", "period_key", "period_start", "period_end"),
    Dimension.SEGMENT: ("segment",),
    Dimension.PRODUCT_LINE: ("product_line_id", "product_id"),
    Dimension.PRODUCT: ("product_line_id", "product_id"),
}
UNIFORM_BASES = (WeightBasis.MANUAL, WeightBasis.MARKET_POTENTIAL, WeightBasis.DAYS)
SQL_INT_LIMIT = 2**62  # products of units and weights must fit a 64-bit integer in SQL
# False: every bulk split takes the general Python path, even one that would fit the SQL (the tests hold the two
# equal to the cent). Whether a split ran in SQL shows in its queries: one INSERT ... SELECT of the parts.
SPLIT_LEAVES_IN_SQL = True


def _split_leaves_sql(
    *, node: TargetNode, dimension: str, method: str, basis: str | None, weights: dict | None, actor: User
) -> LeavesSplitResult | None:
    """The bulk split in SQL when every leaf gets the same parts (periods, segments, product lines).

    Equal or fixed weights are the same for every leaf; history gives each leaf its own weights,
    which go to the database through a narrow temporary table. None when the split does not fit
    (parts that differ per leaf, or amounts too large for 64-bit SQL arithmetic).
    """
    fields = UNIFORM_FIELDS.get(dimension)
    if fields is None or method not in (SplitMethod.EQUAL, SplitMethod.WEIGHTS, SplitMethod.HISTORY):
        return None
    if method == SplitMethod.WEIGHTS and (basis or WeightBasis.MANUAL) not in UNIFORM_BASES:
        return None
    plan = node.plan
    leaves = TargetNode.objects.filter(plan_id=plan.pk, path__startswith=node.path, split_dimension="")
    contexts = list(leaves.order_by().values(*fields).distinct()[:2])
    if len(contexts) != 1:
        return None
    sample = TargetNode(plan_id=plan.pk, **contexts[0])
    error = dimension_error(sample, dimension)
    if error:
        raise ValidationError({"dimension": error})
    start_month = fiscal_start()
    members = members_batch([sample], dimension, {}, start_month)[0]
    if not members:
        raise ValidationError(_("There is nothing to split into along this dimension."))
    if len(members) > MAX_CHILDREN:
        raise ValidationError(_("A split can have at most %(max)d parts.") % {"max": MAX_CHILDREN})
    stats = leaves.aggregate(count=Count("pk"), top=Max("amount"), last_id=Max("pk"))
    places = plan.metric.places
    common = {
        "plan": plan,
        "dimension": dimension,
        "method": method,
        "basis": basis,
        "weights": weights,
        "tiers": None,
        "start_month": start_month,
        "actor": actor,
    }
    weight_rows: list[tuple[int, int, int]] | None
    if method == SplitMethod.HISTORY:
        cells = list(
            leaves.filter(pk__lte=stats["last_id"])
            .only(
                "id",
                "plan_id",
                "path",
                "amount",
                "period_kind",
                "period_key",
                "period_start",
                "period_end",
                *COORD_FIELDS,
            )
            .order_by("path")
        )
        per_leaf, warnings = weights_batch(
            nodes=cells, members=[members] * len(cells), regions=region_paths(cells), **common
        )
        scaled: dict[tuple[Decimal, ...], list[int]] = {}
        weight_rows = []
        for cell, ws in zip(cells, per_leaf, strict=True):
            key = tuple(ws)
            if key not in scaled:
                ints = allocation.integer_weights(key)
                scaled[key] = ints if any(ints) else [1] * len(ints)
            weight_rows.extend((cell.pk, j, w) for j, w in enumerate(scaled[key], start=1))
        uniform = None
        top_weight = max(w for _leaf, _j, w in weight_rows)
    else:
        (used,), warnings = weights_batch(nodes=[sample], members=[members], regions={}, **common)
        uniform = allocation.integer_weights(used)
        if not any(uniform):
            uniform = [1] * len(uniform)
        weight_rows = None
        top_weight = max(uniform)
    if allocation.to_units(stats["top"], places) * top_weight >= SQL_INT_LIMIT:
        return None  # the Python path is exact at any size
    now = timezone.now()
    insert_children_sql(
        plan_id=plan.pk,
        prefix=node.path,
        last_id=stats["last_id"],
        dimension=dimension,
        members=members,
        uniform_weights=uniform,
        leaf_weights=weight_rows,
        places=places,
        now=now,
    )
    leaves.filter(pk__lte=stats["last_id"]).update(
        split_dimension=dimension, split_method=method, version=F("version") + 1, updated_at=now
    )
    count = stats["count"]
    return LeavesSplitResult(node=node, leaves=count, created=count * len(members), warnings=warnings)


def _leaves_and_members(
    node: TargetNode, dimension: str, *, lock: bool
) -> tuple[list[TargetNode], list[list[Member]], dict[int, tuple[str, int]], int]:
    """The leaves under `node` (tree order), the members each gets along `dimension`, their regions and the
    fiscal start; a clear error when a leaf cannot be split that way."""
    qs = TargetNode.objects.filter(plan=node.plan, path__startswith=node.path, split_dimension="")
    if lock:
        qs = qs.select_for_update()
    leaves = list(
        qs.only(
            "id",
            "plan_id",
            "path",
            "depth",
            "amount",
            "owner_id",
            "deadline",
            "period_kind",
            "period_key",
            "period_start",
            "period_end",
            *COORD_FIELDS,
        ).order_by("path")
    )
    bad = [leaf for leaf in leaves if dimension_error(leaf, dimension)]
    if bad:
        raise ValidationError(
            {
                "dimension": ngettext(
                    "%(count)d target cannot be split this way: %(error)s",
                    "%(count)d targets cannot be split this way, e.g. %(error)s",
                    len(bad),
                )
                % {"count": len(bad), "error": dimension_error(bad[0], dimension)}
            }
        )
    start_month = fiscal_start()
    regions = region_paths(leaves)
    members = members_batch(leaves, dimension, regions, start_month)
    empty = [leaf for leaf, ms in zip(leaves, members, strict=True) if not ms]
    if empty:
        raise ValidationError(
            _("%(target)s has nothing to split into along this dimension.") % {"target": empty[0].label}
        )
    return leaves, members, regions, start_month


def _leaves_weighed(
    node: TargetNode,
    dimension: str,
    *,
    method: str,
    basis: str | None,
    weights: dict | None,
    tiers: Iterable[str] | None,
    lock: bool,
    actor: User,
) -> tuple[list[TargetNode], list[list[Member]], list[list[Decimal]], list[list[Source]] | None, list[str]]:
    """The leaves under `node`, their members and the weights of those (with their sources, None unless by
    history) and the warnings: one computation, so a bulk split's preview shows the parts the split writes."""
    leaves, members, regions, start_month = _leaves_and_members(node, dimension, lock=lock)
    used, sources, warnings = weights_with_sources(
        plan=node.plan,
        nodes=leaves,
        members=members,
        dimension=dimension,
        method=method,
        basis=basis,
        weights=weights,
        tiers=tiers,
        regions=regions,
        start_month=start_month,
        actor=actor,
    )
    return leaves, members, used, sources, warnings


class _LeafUnits:
    """A leaf's parts in units (cents), as the bulk split computes them in SQL or in Python: the largest
    remainder over the leaf's weights scaled to integers (all zero: equal)."""

    def __init__(self, places: int) -> None:
        self.places = places
        # The same weights recur for many leaves: scale them to integers once.
        self.scaled: dict[tuple[Decimal, ...], list[int]] = {}

    def __call__(self, amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
        key = tuple(weights)
        if key not in self.scaled:
            self.scaled[key] = allocation.integer_weights(key)
        units = allocation.largest_remainder_units(allocation.to_units(amount, self.places), self.scaled[key])
        return [allocation.from_units(u, self.places) for u in units]


# The leaves of a bulk split's preview shown at a time (each with all its parts).
LEAF_PREVIEW_PAGE = 20


def target_split_leaves_preview(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    basis: str | None = None,
    weights: dict | None = None,
    tiers: Iterable[str] | None = None,
    offset: int = 0,
    limit: int = LEAF_PREVIEW_PAGE,
    actor: User,
) -> LeavesSplitPreview:
    """Every part splitting every leaf under `node` would create, for the leaves `offset` to `offset + limit`
    (tree order), each part with the source of its weight; writes nothing.

    The weights of all the leaves are computed (one aggregate query, as the split does), so the warnings
    and the parts counted by source cover the whole split; the amounts are those the split writes."""
    if method in (SplitMethod.MANUAL, SplitMethod.BOTTOM_UP):
        raise ValidationError({"method": _("Manual and bottom-up splits are made one target at a time.")})
    node = TargetNode.objects.select_related("plan", "plan__metric").get(pk=node.pk)
    _check_can_split(actor, node)
    leaves, members, used, sources, warnings = _leaves_weighed(
        node, dimension, method=method, basis=basis, weights=weights, tiers=tiers, lock=False, actor=actor
    )
    counts = Counter(s.label for ss in sources for s in ss) if sources else {}
    offset = max(0, min(offset, max(len(leaves) - 1, 0)))
    page = range(offset, min(offset + limit, len(leaves)))
    shown = TargetNode.objects.select_related(*TREE_RELATED).in_bulk([leaves[i].pk for i in page])
    units = _LeafUnits(node.plan.metric.places)
    previews = []
    for i in page:
        leaf = shown[leaves[i].pk]
        children = _proposed_children(
            leaf, dimension, members[i], units(leaf.amount, used[i]), used[i], sources[i] if sources else None
        )
        previews.append(LeafPreview(leaf=leaf, children=children))
    return LeavesSplitPreview(
        node=node,
        dimension=dimension,
        method=method,
        leaves=previews,
        leaf_count=len(leaves),
        part_count=sum(len(ms) for ms in members),
        offset=offset,
        warnings=warnings,
        sources=dict(counts),
        limit=limit,
    )


def _split_leaves_each(
    *,
    node: TargetNode,
    dimension: str,
    method: str,
    basis: str | None,
    weights: dict | None,
    tiers: Iterable[str] | None,
    actor: User,
) -> LeavesSplitResult:
    """The general bulk split: members and weights per leaf, computed in Python, inserted in bulk."""
    plan = node.plan
    leaves, members, used, _sources, warnings = _leaves_weighed(
        node, dimension, method=method, basis=basis, weights=weights, tiers=tiers, lock=True, actor=actor
    )
    now = timezone.now()
    rows = []
    units = _LeafUnits(plan.metric.places)
    for leaf, ms, ws in zip(leaves, members, used, strict=True):
        for i, (m, amount) in enumerate(zip(ms, units(leaf.amount, ws), strict=True), start=1):
            rows.append(
                node_row(
                    leaf,
                    i,
                    _child_coords(leaf, m),
                    amount,
                    _child_owner(leaf, dimension, m),
                    m.period.end if m.period else leaf.deadline,
                    now,
                )
            )
    TargetNode.objects.filter(pk__in=[leaf.pk for leaf in leaves]).update(
        split_dimension=dimension, split_method=method, version=F("version") + 1, updated_at=now
    )
    insert_nodes(rows)
    return LeavesSplitResult(node=node, leaves=len(leaves), created=len(rows), warnings=warnings)
