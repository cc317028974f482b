"""Reads of targets: the tree level by level, incomplete leaves, roll-ups, versions, visibility."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Abs, Coalesce
from django.utils.translation import gettext as _

from salesmgmt.lib.money import CENT
from targets.models import TargetNode, TargetNodeAmount, TargetPlan

TREE_RELATED = ("region", "product_line", "product", "rep", "owner")
ROLLUP_FIELDS = ("region", "product_line", "product", "rep", "segment", "period_kind", "period_key", "owner")


def nodes_visible_to(user):
    """Target nodes `user` may see: their data scope over the node's region and owner, plus their own rep targets."""
    return TargetNode.objects.visible_to(user)


def plans_visible_to(user):
    return TargetPlan.objects.filter(pk__in=nodes_visible_to(user).values("plan_id")).select_related("metric", "owner")


def plan_root(plan: TargetPlan) -> TargetNode:
    return TargetNode.objects.select_related(*TREE_RELATED).get(plan=plan, parent__isnull=True)


def plan_tree(plan: TargetPlan, parent: TargetNode | None = None, *, user=None):
    """One level of the tree (the root when `parent` is None), each node with its number of children,
    for lazy expansion. With `user`, only the nodes they may see."""
    qs = TargetNode.objects.filter(plan=plan)
    qs = qs.filter(parent=parent) if parent is not None else qs.filter(parent__isnull=True)
    if user is not None:
        qs = qs.filter(pk__in=nodes_visible_to(user).filter(plan=plan).values("pk"))
    return qs.select_related(*TREE_RELATED).annotate(child_count=Count("children")).order_by("path")


def incomplete_leaves(plan: TargetPlan):
    """Leaves that break 3定: no owner (定责任), or no period/deadline (定时间)."""
    return (
        TargetNode.objects.filter(plan=plan, split_dimension="")
        .filter(Q(owner__isnull=True) | Q(deadline__isnull=True) | Q(period_key=""))
        .select_related(*TREE_RELATED)
        .order_by("path")
    )


def unbalanced_nodes(plan: TargetPlan):
    """Split nodes whose children do not add up to them (should never happen; checked before approval).

    One join and GROUP BY over the plan (not a subquery per node), so it stays fast on 60,000 leaves.
    """
    return (
        TargetNode.objects.filter(plan=plan)
        .exclude(split_dimension="")
        .annotate(children_sum=Coalesce(Sum("children__amount"), Value(Decimal(0))))
        # Half a cent of slack: SQLite adds decimals as floats; a real imbalance is at least a cent.
        .annotate(off_by=Abs(F("children_sum") - F("amount")))
        .filter(off_by__gte=Decimal("0.005"))
        .select_related(*TREE_RELATED)
    )


def amount_at(plan: TargetPlan, version: int) -> dict[int, Decimal]:
    """{node id: amount} as approved in `version` (1 = the original plan)."""
    rows = TargetNodeAmount.objects.filter(plan=plan, version_from__lte=version).filter(
        Q(version_to__isnull=True) | Q(version_to__gt=version)
    )
    return dict(rows.values_list("node_id", "amount"))


def version_diff(plan: TargetPlan, old: int, new: int) -> list[dict]:
    """The nodes whose amount differs between two versions: [{node, old, new, delta}], in tree order."""
    if old > new:
        old, new = new, old
    touched = TargetNodeAmount.objects.filter(plan=plan, version_from__gt=old, version_from__lte=new).values("node_id")
    before = amount_at_nodes(plan, old, touched)
    after = amount_at_nodes(plan, new, touched)
    nodes = TargetNode.objects.filter(pk__in=touched).select_related(*TREE_RELATED).order_by("path")
    result = []
    for node in nodes:
        a, b = before.get(node.pk), after.get(node.pk)
        if a != b:
            result.append({"node": node, "old": a, "new": b, "delta": (b or 0) - (a or 0)})
    return result


def amount_at_nodes(plan: TargetPlan, version: int, node_ids) -> dict[int, Decimal]:
    rows = TargetNodeAmount.objects.filter(plan=plan, node_id__in=node_ids, version_from__lte=version).filter(
        Q(version_to__isnull=True) | Q(version_to__gt=version)
    )
    return dict(rows.values_list("node_id", "amount"))


def rollup(plan: TargetPlan, by=("region", "period_key"), *, version: int | None = None, user=None) -> list[dict]:
    """Leaf amounts summed by coordinates: [{"region": 3, "period_key": "FY2027-M01", "amount": ...}].

    Leaves partition the plan, so any roll-up adds up to the plan total. With `version`, the
    amounts approved in that version; with `user`, only the leaves they may see.
    """
    fields = list(by)
    unknown = sorted(set(fields) - set(ROLLUP_FIELDS))
    if unknown:
        raise ValidationError(
            _("Cannot roll up by %(fields)s; choose from %(allowed)s.")
            % {"fields": ", ".join(unknown), "allowed": ", ".join(ROLLUP_FIELDS)}
        )
    leaves = TargetNode.objects.filter(plan=plan, split_dimension="")
    if user is not None:
        leaves = leaves.filter(pk__in=nodes_visible_to(user).filter(plan=plan).values("pk"))
    if version is None:
        rows = leaves.order_by(*fields).values(*fields).annotate(amount=Sum("amount"))
        return [{**row, "amount": _cents(row["amount"])} for row in rows]
    lookups = {f"node__{f}": f for f in fields}
    rows = (
        TargetNodeAmount.objects.filter(plan=plan, node__in=leaves, version_from__lte=version)
        .filter(Q(version_to__isnull=True) | Q(version_to__gt=version))
        .order_by(*lookups)
        .values(*lookups)
        .annotate(total=Sum("amount"))
    )
    return [{**{lookups[k]: row[k] for k in lookups}, "amount": _cents(row["total"])} for row in rows]


def _cents(value) -> Decimal:
    # SQLite returns sums of decimals through floats; every amount is a whole number of cents.
    return Decimal(value or 0).quantize(CENT)


def commitment_gap(node: TargetNode) -> dict:
    """Top-down vs bottom-up for a split node: what was handed down, what the owners below committed,
    the gap (bottom-up minus top-down) and who has not committed yet."""
    children = list(node.children.select_related(*TREE_RELATED).order_by("path"))
    committed = [c for c in children if c.committed_amount is not None]
    bottom_up = sum((c.committed_amount for c in committed), Decimal(0))
    # Like with like: the commitments against what was handed down to those who committed.
    handed_to_committed = sum((c.amount for c in committed), Decimal(0))
    return {
        "top_down": node.amount,
        "bottom_up": bottom_up,
        "gap": bottom_up - handed_to_committed,
        "committed": committed,
        "missing": [c for c in children if c.committed_amount is None],
        "rows": [
            {
                "node": c,
                "top_down": c.amount,
                "bottom_up": c.committed_amount,
                "gap": None if c.committed_amount is None else c.committed_amount - c.amount,
            }
            for c in children
        ],
    }
