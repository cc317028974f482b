"""Recompute attainment snapshots: a full rebuild of plans from the facts, or the leaves a change touched.

A snapshot is written only for a node whose figures or target changed (and its latest row with it), upserted
on (node, as_of), so running a recompute twice equals running it once.

Locks (PostgreSQL; SQLite runs one writer at a time). A full rebuild holds its plan's row exclusively; an
incremental recompute holds it shared, plus the latest rows of the nodes it moves: its leaves while it
computes them, their ancestors only for the short write at the end. So a rebuild and an incremental
recompute of one plan never interleave (the one that waits then reads what the other wrote), deal moves
of different reps compute side by side, and two moves of one node never lose each other's change.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from crm.scopes import TARGETS, region_keys, user_keys
from salesmgmt import freshness
from targets.attainment.reference import NODE_FIELDS, Figures, ancestor_paths, compute_actuals, leaf_figures
from targets.attainment.sql import plan_snapshots_upsert
from targets.models import AttainmentSnapshot, LatestAttainment, PlanStatus, TargetNode, TargetPlan

FIGURE_FIELDS = ["actual", "target", "weighted_pipeline", "open_pipeline"]
# A node's figures so far: its latest row or (a backfill) its newest snapshot on or before the day.
Stored = AttainmentSnapshot | LatestAttainment


def _newest_on(node_ids: Iterable[int], as_of: date) -> dict[int, Stored]:
    """Each given node's figures on `as_of`: its newest snapshot on or before that day (one query)."""
    qs = AttainmentSnapshot.objects.filter(node_id__in=list(node_ids)).newest(on=as_of)
    return {s.node_id: s for s in qs.only("node_id", "as_of", *FIGURE_FIELDS)}


def _same(before: Stored | None, target: Decimal, f: Figures) -> bool:
    """Whether a node's new figures and target equal those it has so far (`before`)."""
    if before is None:
        return False
    now = (f.actual, f.weighted_pipeline, f.open_pipeline, target)
    return (before.actual, before.weighted_pipeline, before.open_pipeline, before.target) == now


SNAPSHOT_TABLES = ("targets_attainmentsnapshot", "targets_latestattainment")
# A write of more nodes than this (a rebuild) makes every cached page stale instead of reading each node's keys.
NODE_KEYS_LIMIT = 2000


def touch_nodes(node_ids: list[int]) -> None:
    """Nodes' figures changed: the pages of their regions (and those above), of their owners and reps, and of the
    owners' teams (a node is seen by the managers of its owner's team too: `TargetNode.visible_to`)."""
    if len(node_ids) > NODE_KEYS_LIMIT:
        freshness.changed()
        return
    keys: set[str] = set()
    rows = TargetNode.objects.filter(pk__in=node_ids).values_list(
        "region__path", "owner__region__path", "owner_id", "rep_id"
    )
    for path, owner_path, owner_id, rep_id in rows:
        keys |= region_keys(path, owner_path, facet=TARGETS) | user_keys(owner_id, rep_id, facet=TARGETS)
    freshness.touch(keys)


def _write(
    rows: list[tuple], as_of: date, before: dict[int, Stored] | None = None, newer: set[int] | None = None
) -> int:
    """Write (node id, target, Figures) rows as the figures of `as_of`; returns how many snapshots were written.

    Only a node whose figures or target differ from its figures on that day so far (`before`: its newest
    snapshot on or before `as_of`) gets a snapshot (replacing that day's, if any) and its latest row, the
    latest row unless a later day already has one (a backfill never overwrites newer figures; `newer`: those
    nodes, when the caller knows them).
    """
    if before is None:
        before = _newest_on([node_id for node_id, _target, _f in rows], as_of)
    changed = [(node_id, target, f) for node_id, target, f in rows if not _same(before.get(node_id), target, f)]
    if not changed:
        return 0
    with freshness.covering(SNAPSHOT_TABLES):
        touch_nodes([node_id for node_id, _target, _f in changed])
        return _write_changed(changed, as_of, newer)


def _write_changed(changed: list[tuple], as_of: date, newer: set[int] | None) -> int:
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
    if newer is None:
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


def _lock_plan(plan_id: int, *, shared: bool = False) -> None:
    """Take the plan's row lock: exclusive for a full rebuild, shared for an incremental recompute.

    A rebuild holds FOR NO KEY UPDATE, an incremental FOR SHARE: incrementals of one plan run side by side,
    never beside a rebuild of it (either waits for the other to commit). Neither blocks inserting nodes
    (the foreign key's check takes FOR KEY SHARE). SQLite has no row locks: it runs one writer at a time.
    """
    if not shared:
        list(TargetPlan.objects.select_for_update(no_key=True).filter(pk=plan_id).values_list("pk", flat=True))
    elif connection.vendor == "postgresql":  # the ORM's select_for_update has no FOR SHARE
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {TargetPlan._meta.db_table} WHERE id = %s FOR SHARE", [plan_id])


@dataclasses.dataclass
class _SoFar:
    """Nodes' figures on a day so far (`figures`), and which of them have a later day written (`newer`)."""

    figures: dict[int, Stored]
    newer: set[int]


def _figures_so_far(node_ids: Iterable[int], as_of: date) -> _SoFar:
    """Lock the given nodes' latest rows (FOR NO KEY UPDATE, in node id order so that two recomputes locking
    overlapping nodes never deadlock), then read each node's figures on `as_of` so far, as the previous
    holder of the lock committed them: its latest row or, in a backfill (the latest row is of a later day),
    its newest snapshot on or before `as_of`. A node with neither (deleted meanwhile) is left out.
    """
    qs = LatestAttainment.objects.filter(node_id__in=sorted(set(node_ids))).select_for_update(no_key=True)
    latest = list(qs.order_by("node_id").only("node_id", "as_of", *FIGURE_FIELDS))
    figures: dict[int, Stored] = {row.node_id: row for row in latest if row.as_of <= as_of}
    newer = {row.node_id for row in latest if row.as_of > as_of}
    if newer:
        figures.update(_newest_on(newer, as_of))
    return _SoFar(figures, newer)


def _recompute_plan(plan: TargetPlan, as_of: date) -> int:
    _lock_plan(plan.pk)
    if connection.vendor == "postgresql":
        return plan_snapshots_upsert(plan, as_of, timezone.now())
    nodes, figures = compute_actuals(plan, as_of)
    return _write([(n["id"], n["amount"], figures[n["id"]]) for n in nodes], as_of)


@dataclasses.dataclass
class _LeafChanges:
    """One plan's share of an incremental recompute once its leaves are computed (their rows locked)."""

    rows: list[tuple[int, Decimal, Figures]]  # (leaf id, target, new figures)
    before: _SoFar  # the leaves' figures so far
    ancestors: list[tuple[int, Decimal]]  # (id, target) of the ancestors to write
    delta: defaultdict[int, Figures]  # ancestor id -> the change of its leaves


def _leaf_changes(plan: TargetPlan, leaf_ids: set[int], as_of: date) -> _LeafChanges | None:
    """The given leaves from the facts, and how much each of their ancestors moves with them; None when a
    node has no figures yet (one added since the last rebuild): the plan is to be rebuilt instead.

    Holds the plan shared and the leaves' latest rows from here to the commit: a recompute of other
    leaves runs meanwhile, one of the same leaves waits (and then reads these leaves' new figures).
    """
    latest = ("latest_attainment__as_of", "latest_attainment__target")  # what each node has so far, if anything
    leaves = list(TargetNode.objects.leaves().filter(plan=plan, pk__in=list(leaf_ids)).values(*NODE_FIELDS, *latest))
    paths = {p for n in leaves for p in ancestor_paths(n["path"])}
    ancestors = list(TargetNode.objects.filter(plan=plan, path__in=paths).values("id", "path", "amount", *latest))
    # Asked before any lock: a rebuild takes the plan's lock exclusively, which a recompute holding it
    # shared could not take without deadlocking with another one doing the same.
    days = {n["id"]: n["latest_attainment__as_of"] for n in leaves + ancestors}
    if None in days.values():
        return None
    target = {n["id"]: n["latest_attainment__target"] for n in ancestors}
    later = [pk for pk, day in days.items() if day > as_of]  # a backfill: the figures of that day, if any
    if later:
        older = _newest_on(later, as_of)
        if len(older) < len(later):
            return None
        target.update((pk, s.target) for pk, s in older.items())
    _lock_plan(plan.pk, shared=True)
    before = _figures_so_far([n["id"] for n in leaves], as_of)
    leaves = [n for n in leaves if n["id"] in before.figures]  # a leaf deleted meanwhile is gone
    id_of = {n["path"]: n["id"] for n in ancestors}
    delta: defaultdict[int, Figures] = defaultdict(Figures)
    rows = []
    for leaf, new in zip(leaves, leaf_figures(plan, leaves, as_of), strict=True):
        old = before.figures[leaf["id"]]
        change = new.minus(Figures(old.actual, old.weighted_pipeline, old.open_pipeline))
        rows.append((leaf["id"], leaf["amount"], new))
        for path in ancestor_paths(leaf["path"]):
            if path in id_of:
                delta[id_of[path]].add(change)
    # An ancestor none of whose leaves moved keeps its figures: it is neither locked nor written (unless its
    # target changed), so a move that changes nothing waits for no other.
    moved = [(n["id"], n["amount"]) for n in ancestors if delta[n["id"]] != Figures() or target[n["id"]] != n["amount"]]
    return _LeafChanges(rows, before, moved, delta)


def _recompute_leaves(by_plan: dict[int, set[int]], as_of: date) -> int:
    """The given leaves (per plan id) from the facts; their ancestors by the change of those leaves (a delta).

    Reads and writes only the touched leaves and their ancestors, whatever the size of the plans. An
    ancestor's figures equal the sum of its leaves' because a full rebuild wrote every node's figures and
    every change since moved a leaf and its ancestors by the same amount, under the locks of their rows:

    1. per plan (by id): the plan's row shared, the leaves' latest rows locked, the leaves computed from the
       facts (the slow part, which moves of other leaves run beside);
    2. the ancestors' latest rows locked (by id), their figures read, moved by the deltas and written: the
       short part that moves sharing an ancestor (the root, at least) run one after the other.

    Every recompute takes its locks in that one order (plans and their leaves by id, then ancestors by id)
    and a rebuild only plans' locks by id, so none waits for another that waits for it. When a node has
    no figures yet, that plan is rebuilt instead.
    """
    plans = TargetPlan.objects.select_related("metric").filter(pk__in=by_plan).order_by("pk")
    written = 0
    changes = []
    for plan in plans:
        change = _leaf_changes(plan, by_plan[plan.pk], as_of)
        if change is None:
            written += _recompute_plan(plan, as_of)
        else:
            changes.append(change)
    before = _figures_so_far({pk for c in changes for pk, _target in c.ancestors}, as_of)
    rows = []
    for change in changes:
        rows += change.rows
        before.figures.update(change.before.figures)
        before.newer |= change.before.newer
        for pk, target in change.ancestors:
            old = before.figures.get(pk)
            if old is None:  # deleted meanwhile
                continue
            figures = Figures(old.actual, old.weighted_pipeline, old.open_pipeline)
            figures.add(change.delta[pk])
            rows.append((pk, target, figures))
    return written + _write(rows, as_of, before.figures, before.newer)


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
        return _recompute_leaves(by_plan, as_of)
    if plan is not None:
        plans = [TargetPlan.objects.select_related("metric").get(pk=plan.pk)]
    else:
        plans = TargetPlan.objects.select_related("metric").filter(status=PlanStatus.APPROVED).order_by("pk")
    return sum(_recompute_plan(p, as_of) for p in plans)
