"""Recompute attainment snapshots: a full rebuild of plans from the facts, or the leaves a change touched.

Snapshots are upserted on (node, as_of), so running a recompute twice equals running it once. Every
recompute of a plan first locks the plan's row, so a full rebuild and an incremental one of the same plan
never interleave (an incremental one waiting for a rebuild then reads what the rebuild wrote).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from targets.attainment import NODE_FIELDS, Figures, ancestor_paths, compute_actuals, leaf_figures
from targets.attainment_sql import plan_snapshots_upsert
from targets.models import AttainmentSnapshot, PlanStatus, TargetNode, TargetPlan

UPDATE_FIELDS = ["actual", "target", "weighted_pipeline", "open_pipeline", "computed_at"]


def _upsert(rows: list[tuple], as_of: date) -> int:
    """Write (node id, target, Figures) rows as the snapshots of `as_of`, replacing that day's."""
    if not rows:
        return 0
    now = timezone.now()
    AttainmentSnapshot.objects.bulk_create(
        [
            AttainmentSnapshot(
                node_id=node_id,
                as_of=as_of,
                actual=f.actual,
                target=target,
                weighted_pipeline=f.weighted_pipeline,
                open_pipeline=f.open_pipeline,
                computed_at=now,
            )
            for node_id, target, f in rows
        ],
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["node", "as_of"],
        update_fields=UPDATE_FIELDS,
    )
    return len(rows)


def _lock(plan_id: int) -> None:
    """Serialise recomputes of one plan (FOR NO KEY UPDATE: inserting nodes that point to it still works)."""
    list(TargetPlan.objects.select_for_update(no_key=True).filter(pk=plan_id).values_list("pk", flat=True))


def _recompute_plan(plan: TargetPlan, as_of: date) -> int:
    _lock(plan.pk)
    if connection.vendor == "postgresql":
        return plan_snapshots_upsert(plan, as_of, timezone.now())
    nodes, figures = compute_actuals(plan, as_of)
    return _upsert([(n["id"], n["amount"], figures[n["id"]]) for n in nodes], as_of)


def _recompute_leaves(plan: TargetPlan, leaf_ids: set[int], as_of: date) -> int:
    """The given leaves from the facts; their ancestors by the change of those leaves (a delta).

    Reads and writes only the touched leaves and their ancestors, whatever the size of the plan. An
    ancestor equals the sum of its leaves because the day's snapshots were written together by a full
    rebuild and every change since moved a leaf and its ancestors by the same amount. When one of them has
    no snapshot that day yet (no rebuild today, or a node added since), the whole plan is rebuilt instead.
    """
    _lock(plan.pk)
    leaves = list(TargetNode.objects.leaves().filter(plan=plan, pk__in=list(leaf_ids)).values(*NODE_FIELDS))
    paths = {p for n in leaves for p in ancestor_paths(n["path"])}
    ancestors = list(TargetNode.objects.filter(plan=plan, path__in=paths).values("id", "path", "amount"))
    ids = [n["id"] for n in leaves] + [n["id"] for n in ancestors]
    stored = {
        row["node_id"]: Figures(row["actual"], row["weighted_pipeline"], row["open_pipeline"])
        for row in AttainmentSnapshot.objects.filter(node_id__in=ids, as_of=as_of).values(
            "node_id", "actual", "weighted_pipeline", "open_pipeline"
        )
    }
    if len(stored) < len(ids):
        return _recompute_plan(plan, as_of)
    id_of = {n["path"]: n["id"] for n in ancestors}
    delta = defaultdict(Figures)
    rows = []
    for leaf, new in zip(leaves, leaf_figures(plan, leaves, as_of), strict=True):
        old = stored[leaf["id"]]
        change = new.minus(old)
        rows.append((leaf["id"], leaf["amount"], new))
        for path in ancestor_paths(leaf["path"]):
            if path in id_of:
                delta[id_of[path]].add(change)
    for node in ancestors:
        figures = stored[node["id"]]
        figures.add(delta[node["id"]])
        rows.append((node["id"], node["amount"], figures))
    return _upsert(rows, as_of)


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
