"""Recompute attainment snapshots: a full rebuild of plans from the facts, or the leaves a change touched.

Snapshots are upserted on (node, as_of), so running a recompute twice equals running it once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import transaction
from django.utils import timezone

from targets.attainment import Figures, ancestor_paths, compute_actuals, leaf_figures, plan_nodes, roll_up
from targets.models import AttainmentSnapshot, PlanStatus, TargetNode, TargetPlan

UPDATE_FIELDS = ["actual", "target", "weighted_pipeline", "open_pipeline", "computed_at"]


def _upsert(nodes: list[dict], figures: dict[int, Figures], as_of: date) -> int:
    now = timezone.now()
    rows = [
        AttainmentSnapshot(
            node_id=n["id"],
            as_of=as_of,
            actual=figures[n["id"]].actual,
            target=n["amount"],
            weighted_pipeline=figures[n["id"]].weighted_pipeline,
            open_pipeline=figures[n["id"]].open_pipeline,
            computed_at=now,
        )
        for n in nodes
    ]
    AttainmentSnapshot.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["node", "as_of"], update_fields=UPDATE_FIELDS
    )
    return len(rows)


def _recompute_plan(plan: TargetPlan, as_of: date) -> int:
    nodes, figures = compute_actuals(plan, as_of)
    return _upsert(nodes, figures, as_of)


def _recompute_leaves(plan: TargetPlan, leaf_ids: set[int], as_of: date) -> int:
    """The given leaves from the facts, their ancestors from all leaves' snapshots of the same day.

    When a leaf of the plan has no snapshot that day yet (the nightly reconcile has not run), the
    whole plan is rebuilt instead: an ancestor must never be summed from missing or stale leaves.
    """
    nodes = plan_nodes(plan)
    leaves = [n for n in nodes if not n["split_dimension"]]
    stored = {
        row["node_id"]: Figures(row["actual"], row["weighted_pipeline"], row["open_pipeline"])
        for row in AttainmentSnapshot.objects.filter(node__plan=plan, node__split_dimension="", as_of=as_of).values(
            "node_id", "actual", "weighted_pipeline", "open_pipeline"
        )
    }
    if len(stored) < len(leaves):
        return _recompute_plan(plan, as_of)
    changed = [n for n in leaves if n["id"] in leaf_ids]
    stored.update(zip((n["id"] for n in changed), leaf_figures(plan, changed, as_of), strict=True))
    figures = roll_up(nodes, stored)
    touched_paths = {p for n in changed for p in (n["path"], *ancestor_paths(n["path"]))}
    return _upsert([n for n in nodes if n["path"] in touched_paths], figures, as_of)


@transaction.atomic
def attainment_recompute(*, plan: TargetPlan | None = None, node_ids=None, as_of: date | None = None) -> int:
    """Rebuild snapshots for `as_of` (today by default); returns how many were written.

    - `node_ids`: incremental, those leaves (inner nodes given are ignored) and their ancestors;
    - `plan`: that whole plan;
    - neither: every approved plan (the nightly reconcile).
    """
    as_of = as_of or timezone.localdate()
    if node_ids is not None:
        by_plan = defaultdict(set)
        for node_id, plan_id in TargetNode.objects.leaves().filter(pk__in=list(node_ids)).values_list("id", "plan_id"):
            by_plan[plan_id].add(node_id)
        plans = TargetPlan.objects.select_related("metric").filter(pk__in=by_plan).order_by("pk")
        return sum(_recompute_leaves(p, by_plan[p.pk], as_of) for p in plans)
    if plan is not None:
        plans = [TargetPlan.objects.select_related("metric").get(pk=plan.pk)]
    else:
        plans = TargetPlan.objects.select_related("metric").filter(status=PlanStatus.APPROVED).order_by("pk")
    return sum(_recompute_plan(p, as_of) for p in plans)
