"""Recompute attainment snapshots: a full rebuild of plans from the facts, or the leaves a change touched.

A snapshot is written only for a node whose figures or target changed (and its latest row with it), upserted
on (node, as_of), so running a recompute twice equals running it once. Every
recompute of a plan first locks the plan's row, so a full rebuild and an incremental one of the same plan
never interleave (an incremental one waiting for a rebuild then reads what the rebuild wrote).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from targets.attainment.reference import NODE_FIELDS, Figures, ancestor_paths, compute_actuals, leaf_figures
from targets.attainment.sql import plan_snapshots_upsert
from targets.models import AttainmentSnapshot, LatestAttainment, PlanStatus, TargetNode, TargetPlan

FIGURE_FIELDS = ["actual", "target", "weighted_pipeline", "open_pipeline"]


def _newest_on(node_ids: Iterable[int], as_of: date) -> dict[int, AttainmentSnapshot]:
    """Each given node's figures on `as_of`: its newest snapshot on or before that day (one query)."""
    qs = AttainmentSnapshot.objects.filter(node_id__in=list(node_ids)).newest(on=as_of)
    return {s.node_id: s for s in qs.only("node_id", "as_of", *FIGURE_FIELDS)}


def _same(before: AttainmentSnapshot | None, target: Decimal, f: Figures) -> bool:
    """Whether a node's new figures and target equal those it has so far (`before`)."""
    if before is None:
        return False
    now = (f.actual, f.weighted_pipeline, f.open_pipeline, target)
    return (before.actual, before.weighted_pipeline, before.open_pipeline, before.target) == now


def _write(rows: list[tuple], as_of: date, before: dict[int, AttainmentSnapshot] | None = None) -> int:
    """Write (node id, target, Figures) rows as the figures of `as_of`; returns how many snapshots were written.

    Only a node whose figures or target differ from its figures on that day so far (`before`: its newest
    snapshot on or before `as_of`) gets a snapshot (replacing that day's, if any) and its latest row, the
    latest row unless a later day already has one (a backfill never overwrites newer figures).
    """
    if before is None:
        before = _newest_on([node_id for node_id, _target, _f in rows], as_of)
    changed = [(node_id, target, f) for node_id, target, f in rows if not _same(before.get(node_id), target, f)]
    if not changed:
        return 0
    now = timezone.now()
    values = [
        {
            "node_id": node_id,
            "as_of": as_of,
            "actual": f.actual,
            "target": target,
            "weighted_pipeline": f.weighted_pipeline,
            "open_pipeline": f.open_pipeline,
        }
        for node_id, target, f in changed
    ]
    AttainmentSnapshot.objects.bulk_create(
        [AttainmentSnapshot(computed_at=now, **v) for v in values],
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["node", "as_of"],
        update_fields=[*FIGURE_FIELDS, "computed_at"],
    )
    newer = set(
        LatestAttainment.objects.filter(node_id__in=[v["node_id"] for v in values], as_of__gt=as_of).values_list(
            "node_id", flat=True
        )
    )
    LatestAttainment.objects.bulk_create(
        [LatestAttainment(**v) for v in values if v["node_id"] not in newer],
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["node"],
        update_fields=["as_of", *FIGURE_FIELDS],
    )
    return len(changed)


def _lock(plan_id: int) -> None:
    """Serialise recomputes of one plan (FOR NO KEY UPDATE: inserting nodes that point to it still works)."""
    list(TargetPlan.objects.select_for_update(no_key=True).filter(pk=plan_id).values_list("pk", flat=True))


def _recompute_plan(plan: TargetPlan, as_of: date) -> int:
    _lock(plan.pk)
    if connection.vendor == "postgresql":
        return plan_snapshots_upsert(plan, as_of, timezone.now())
    nodes, figures = compute_actuals(plan, as_of)
    return _write([(n["id"], n["amount"], figures[n["id"]]) for n in nodes], as_of)


def _recompute_leaves(plan: TargetPlan, leaf_ids: set[int], as_of: date) -> int:
    """The given leaves from the facts; their ancestors by the change of those leaves (a delta).

    Reads and writes only the touched leaves and their ancestors, whatever the size of the plan. An
    ancestor's figures (its newest snapshot) equal the sum of its leaves' because a full rebuild wrote
    every node's figures and every change since moved a leaf and its ancestors by the same amount. When
    one of them has no snapshot yet (a node added since the last rebuild), the whole plan is rebuilt instead.
    """
    _lock(plan.pk)
    leaves = list(TargetNode.objects.leaves().filter(plan=plan, pk__in=list(leaf_ids)).values(*NODE_FIELDS))
    paths = {p for n in leaves for p in ancestor_paths(n["path"])}
    ancestors = list(TargetNode.objects.filter(plan=plan, path__in=paths).values("id", "path", "amount"))
    ids = [n["id"] for n in leaves] + [n["id"] for n in ancestors]
    before = _newest_on(ids, as_of)
    if len(before) < len(ids):
        return _recompute_plan(plan, as_of)
    stored = {pk: Figures(s.actual, s.weighted_pipeline, s.open_pipeline) for pk, s in before.items()}
    id_of = {n["path"]: n["id"] for n in ancestors}
    delta: defaultdict[int, Figures] = defaultdict(Figures)
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
    return _write(rows, as_of, before)


@transaction.atomic
def attainment_recompute(
    *, plan: TargetPlan | None = None, node_ids: Iterable[int] | None = None, as_of: date | None = None
) -> int:
    """Recompute the figures of `as_of` (today by default); returns how many snapshots were written (the nodes
    whose figures or target changed).

    - `node_ids`: incremental, those leaves (inner nodes given are ignored) and their ancestors;
    - `plan`: that whole plan;
    - neither: every approved plan (the nightly reconcile).
    """
    as_of = as_of or timezone.localdate()
    plans: Iterable[TargetPlan]
    if node_ids is not None:
        by_plan: defaultdict[int, set[int]] = defaultdict(set)
        for node_id, plan_id in TargetNode.objects.leaves().filter(pk__in=list(node_ids)).values_list("id", "plan_id"):
            by_plan[plan_id].add(node_id)
        plans = TargetPlan.objects.select_related("metric").filter(pk__in=by_plan).order_by("pk")
        return sum(_recompute_leaves(p, by_plan[p.pk], as_of) for p in plans)
    if plan is not None:
        plans = [TargetPlan.objects.select_related("metric").get(pk=plan.pk)]
    else:
        plans = TargetPlan.objects.select_related("metric").filter(status=PlanStatus.APPROVED).order_by("pk")
    return sum(_recompute_plan(p, as_of) for p in plans)
