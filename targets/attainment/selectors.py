"""Attainment reads for the screens and the API: the latest snapshot of each node, with its derived ratios.

One query for any number of nodes (a correlated subquery picks each node's newest `as_of`, portable to
SQLite and PostgreSQL); ratios are derived in memory with `targets.attainment.reference.derive`. A node's newest
snapshot holds until its figures change (snapshots are written only on change), so "now" derives it for
today (`reading_day`): time progress, pace gap and run-rate move every day even when the figures do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import DateField, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import CompanySettings, User
from crm.scopes import visible_regions, visible_users
from salesmgmt.lib import attainment as math
from salesmgmt.lib import periods as fiscal
from salesmgmt.lib.money import ZERO
from targets.attainment.reference import Derived, derive, reading_day
from targets.models import (
    AttainmentSnapshot,
    AttainmentSnapshotQuerySet,
    PeriodKind,
    PlanStatus,
    TargetNode,
    TargetPlan,
)
from targets.planning.members import COORD_FIELDS
from targets.planning.selectors import nodes_visible_to, original_targets

# Pace gap (a fraction) at or above this is amber rather than red: 10 points behind time.
AMBER_FROM = Decimal("-0.10")
# Week over week: the figures now are compared with those of this much earlier (the newest snapshot then).
WEEK = timedelta(days=7)
HISTORY_LIMIT = 400  # more than a year of changes on a node's trend page (a snapshot per day it changed)


@dataclasses.dataclass(frozen=True)
class WeekBefore:
    """The attainment of a node a week before the day it is read for (its newest snapshot then)."""

    as_of: date
    attainment: Decimal | None
    actual: Decimal | None = None
    target: Decimal | None = None


@dataclasses.dataclass(frozen=True)
class Attainment:
    """A snapshot of a node and what is derived from it on day `on` (and, when asked for, a week before).

    `on` is the day the figures are read for: today for a node's latest figures, the snapshot's own day
    on a trend. `changed_on` is the day the figures last changed (the snapshot's day).
    """

    snapshot: AttainmentSnapshot | GridSnapshot
    derived: Derived
    week_before: WeekBefore | None = None
    on: date | None = None
    working_days: bool = False

    @property
    def actual(self) -> Decimal:
        return self.snapshot.actual

    @property
    def as_of(self) -> date:
        return self.on or self.snapshot.as_of

    @property
    def changed_on(self) -> date:
        return self.snapshot.as_of

    # The percentages and points shown: rounded once from the exact ratios (`math.percent`), never from
    # the quantized fractions of `derived`.

    @property
    def elapsed(self) -> tuple[int, int]:
        """Time progress as an exact share (elapsed, whole) on the day the figures are read for."""
        node = self.snapshot.node
        return math.elapsed_share(node.period_start, node.period_end, self.as_of, working_days=self.working_days)

    @property
    def attainment_pct(self) -> Decimal | None:
        return math.percent(self.snapshot.actual, self.snapshot.target)

    # Stretch levels (冲刺, 挑战): the actual against each level the node carries (None where it has none).

    @property
    def base(self) -> Decimal:
        return self.snapshot.target

    @property
    def stretch(self) -> Decimal | None:
        return getattr(self.snapshot.node, "stretch", None)

    @property
    def challenge(self) -> Decimal | None:
        return getattr(self.snapshot.node, "challenge", None)

    @property
    def base_pct(self) -> Decimal | None:
        """Attainment against the base (the target): `attainment_pct`."""
        return self.attainment_pct

    @property
    def stretch_pct(self) -> Decimal | None:
        return math.percent(self.snapshot.actual, self.stretch) if self.stretch else None

    @property
    def challenge_pct(self) -> Decimal | None:
        return math.percent(self.snapshot.actual, self.challenge) if self.challenge else None

    @property
    def levels(self) -> list[tuple[str, Decimal, Decimal | None]]:
        """(level name, amount, attainment %) of the base and each stretch level the node carries."""
        rows = [(str(_("base")), self.base, self.base_pct)]
        if self.stretch:
            rows.append((str(_("stretch (冲刺)")), self.stretch, self.stretch_pct))
        if self.challenge:
            rows.append((str(_("challenge (挑战)")), self.challenge, self.challenge_pct))
        return rows

    @property
    def time_progress_pct(self) -> Decimal | None:
        return math.percent(*self.elapsed)

    @property
    def pace_gap_points(self) -> Decimal | None:
        return math.points(self.snapshot.actual, self.snapshot.target, *self.elapsed)

    @property
    def pace(self) -> str:
        """ "good" (on or ahead of time), "warn" (up to 10 points behind), "bad" (further behind), "" unknown."""
        return pace_class(self.derived.pace_gap)

    @property
    def week_change(self) -> Decimal | None:
        """Attainment now minus attainment a week before (a fraction); None without a comparable snapshot."""
        before = self.week_before
        if before is None or before.attainment is None or self.derived.attainment is None:
            return None
        return self.derived.attainment - before.attainment

    @property
    def week_change_points(self) -> Decimal | None:
        before = self.week_before
        if self.week_change is None or before is None or before.actual is None or before.target is None:
            return None
        return math.points(self.snapshot.actual, self.snapshot.target, before.actual, before.target)

    @property
    def trend(self) -> str:
        """ "up", "down", "flat", or "" when there is nothing to compare with."""
        change = self.week_change
        if change is None:
            return ""
        return "up" if change > 0 else "down" if change < 0 else "flat"


def pace_class(pace_gap: Decimal | None) -> str:
    if pace_gap is None:
        return ""
    if pace_gap >= 0:
        return "good"
    if pace_gap >= AMBER_FROM:
        return "warn"
    return "bad"


def _latest(
    qs: AttainmentSnapshotQuerySet[AttainmentSnapshot, AttainmentSnapshot], *, week_before: bool = False
) -> QuerySet[AttainmentSnapshot]:
    """Only the newest snapshot of each node in `qs` (a correlated subquery, portable to SQLite and
    PostgreSQL); with `week_before`, each row also carries the date, actual and target of the node's newest
    snapshot on or before a `WEEK` before the day it is read for (`week_as_of`, `week_actual`,
    `week_target`; None without one)."""
    qs = qs.newest().order_by()
    if week_before:
        read_on = Greatest(OuterRef("as_of"), Value(timezone.localdate()), output_field=DateField())
        older = AttainmentSnapshot.objects.filter(node=OuterRef("node"), as_of__lte=read_on - WEEK)
        older = older.order_by("-as_of")
        qs = qs.annotate(
            week_as_of=Subquery(older.values("as_of")[:1]),
            week_actual=Subquery(older.values("actual")[:1]),
            week_target=Subquery(older.values("target")[:1]),
        )
    return qs


def latest_snapshots(node_ids: Iterable[int], *, week_before: bool = False) -> dict[int, AttainmentSnapshot]:
    """The newest snapshot of each given node, in ONE query (nodes without a snapshot are absent)."""
    ids = list(node_ids)
    if not ids:
        return {}
    qs = _latest(AttainmentSnapshot.objects.filter(node_id__in=ids), week_before=week_before)
    return {s.node_id: s for s in qs}


def _week_before(snapshot: AttainmentSnapshot) -> WeekBefore | None:
    day = getattr(snapshot, "week_as_of", None)
    if day is None:
        return None
    # Annotated by `_latest(week_before=True)`, with `week_as_of`.
    actual, target = Decimal(snapshot.week_actual), Decimal(snapshot.week_target)  # type: ignore[attr-defined]
    return WeekBefore(day, math.attainment(actual, target), actual, target)


def _figures(snapshot: AttainmentSnapshot | GridSnapshot, working_days: bool, today: date | None = None) -> Attainment:
    """The figures of a snapshot on its own day or, given `today`, as a node's latest figures (read today)."""
    on = None if today is None else reading_day(snapshot.as_of, today)
    derived = derive(snapshot, on=on, working_days=working_days)
    week_before = _week_before(snapshot) if isinstance(snapshot, AttainmentSnapshot) else None
    return Attainment(snapshot, derived, week_before, on, working_days)


def attainment_of(
    nodes: Iterable[TargetNode], *, working_days: bool | None = None, week_before: bool = False
) -> dict[int, Attainment]:
    """The latest figures of the given (already visible) nodes: node id -> `Attainment`, in one query.

    The nodes' own objects are attached to their snapshots, so deriving costs no query per node. With
    `week_before`, the same query also reads each node's snapshot a week or more older (the
    week-over-week change of `Attainment`).
    """
    nodes = list(nodes)
    snapshots = latest_snapshots((n.pk for n in nodes), week_before=week_before)
    if not snapshots:
        return {}
    if working_days is None:
        working_days = CompanySettings.load().count_working_days
    today = timezone.localdate()
    result: dict[int, Attainment] = {}
    for node in nodes:
        snapshot = snapshots.get(node.pk)
        if snapshot is None:
            continue
        snapshot.node = node
        result[node.pk] = _figures(snapshot, working_days, today)
    return result


def decorate(nodes: Iterable[TargetNode], *, week_before: bool = True) -> None:
    """Set `node.attainment` (an `Attainment` or None, with its week-over-week change) on each node, for
    templates: one query."""
    nodes = list(nodes)
    figures = attainment_of(nodes, week_before=week_before)
    for node in nodes:
        node.attainment = figures.get(node.pk)  # type: ignore[attr-defined]  # for templates, not a column


@dataclasses.dataclass(frozen=True)
class AgainstOriginal:
    """A node's actual against its target in force and against its original target (the plan's first approved
    version, `targets.planning.selectors.original_targets`), side by side."""

    original: Decimal
    current: Decimal
    actual: Decimal | None  # None until the node has figures (a snapshot)

    @property
    def original_pct(self) -> Decimal | None:
        return None if self.actual is None else math.percent(self.actual, self.original)

    @property
    def current_pct(self) -> Decimal | None:
        return None if self.actual is None else math.percent(self.actual, self.current)

    @property
    def change(self) -> Decimal:
        """How the target moved since the original plan (the version in force minus the original)."""
        return self.current - self.original


def against_original(nodes: Iterable[TargetNode]) -> dict[int, AgainstOriginal]:
    """Each node of an approved plan with its original and current targets and its latest actual (`node.attainment`
    when `decorate` set it, else read): one query for the originals (one more without `decorate`)."""
    nodes = list(nodes)
    originals = original_targets(n.pk for n in nodes)
    missing = [n for n in nodes if not hasattr(n, "attainment")]
    figures = attainment_of(missing, week_before=False) if missing else {}
    result: dict[int, AgainstOriginal] = {}
    for node in nodes:
        original = originals.get(node.pk)
        if original is None:
            continue  # never approved: nothing to compare with
        att = node.attainment if hasattr(node, "attainment") else figures.get(node.pk)
        result[node.pk] = AgainstOriginal(original, node.amount, att.actual if att is not None else None)
    return result


def decorate_original(nodes: Iterable[TargetNode]) -> None:
    """Set `node.against_original` (an `AgainstOriginal` or None) on each node, for templates."""
    nodes = list(nodes)
    found = against_original(nodes)
    for node in nodes:
        node.against_original = found.get(node.pk)  # type: ignore[attr-defined]  # for templates, not a column


def history(node: TargetNode, *, limit: int = HISTORY_LIMIT) -> list[Attainment]:
    """The snapshots of one (already visible) node with their derived figures, oldest first: one query."""
    snapshots = list(AttainmentSnapshot.objects.filter(node=node).order_by("-as_of")[:limit])
    if not snapshots:
        return []
    working_days = CompanySettings.load().count_working_days
    result: list[Attainment] = []
    for snapshot in reversed(snapshots):
        snapshot.node = node
        result.append(_figures(snapshot, working_days))
    return result


# --- the plan grid --------------------------------------------------------------------------------

GRID_ROW_FIELDS = {"rep": "rep_id", "region": "region_id"}


@dataclasses.dataclass(frozen=True)
class GridNode:
    """What the grid and `derive` read of the node behind a grid figure."""

    pk: int
    amount: Decimal
    period_start: date
    period_end: date


@dataclasses.dataclass(frozen=True)
class GridSnapshot:
    """What `derive` reads of a snapshot: plain values rather than model instances, as a grid page
    has a thousand figures or more."""

    node: GridNode
    as_of: date
    actual: Decimal
    target: Decimal
    open_pipeline: Decimal


def grid_attainment(
    *,
    user: User,
    node: TargetNode,
    rows: str,
    row_keys: Iterable[object],
    periods: Iterable[fiscal.Period],
    working_days: bool,
) -> dict[tuple, Attainment]:
    """The latest figures of the nodes behind the figures of a grid page, in ONE query.

    A grid figure is a target node when a node under `node` has the grid node's coordinates except the
    row's (rep or region: the row key) and the column's period (or the grid node's own period, for row
    totals). The row key of column totals and the grand total is the grid node's own rep or region.
    Returns (row key, period kind, period start) -> `Attainment` (its snapshot a `GridSnapshot`), only
    where exactly one visible node with a snapshot matches; the caller still checks that the node's
    amount is the figure shown.
    """
    field = GRID_ROW_FIELDS[rows]
    keys = {*row_keys, getattr(node, field)}
    in_rows = Q(**{f"{field}__in": [k for k in keys if k is not None]})
    if None in keys:
        in_rows |= Q(**{f"{field}__isnull": True})
    fixed = Q()
    for coord in COORD_FIELDS:
        if coord != field:
            value = getattr(node, coord)
            fixed &= Q(**{f"{coord}__isnull": True}) if value is None else Q(**{coord: value})
    in_periods = Q(period_kind=node.period_kind, period_start=node.period_start)
    for period in periods:
        in_periods |= Q(period_kind=period.kind, period_start=period.start)
    candidates = nodes_visible_to(user).filter(fixed, in_rows, in_periods, plan_id=node.plan_id)
    in_grid = candidates.filter(path__startswith=node.path).values("pk")
    rows_ = _latest(AttainmentSnapshot.objects.filter(node__in=in_grid)).values_list(
        "node_id",
        "as_of",
        "actual",
        "target",
        "open_pipeline",
        f"node__{field.removesuffix('_id')}",
        "node__period_kind",
        "node__period_start",
        "node__period_end",
        "node__amount",
    )
    found: dict[tuple, list[GridSnapshot]] = {}
    for pk, as_of, actual, target, pipeline, key, kind, start, end, amount in rows_:
        snapshot = GridSnapshot(GridNode(pk, amount, start, end), as_of, actual, target, pipeline)
        found.setdefault((key, kind, start), []).append(snapshot)
    today = timezone.localdate()
    return {key: _figures(snaps[0], working_days, today) for key, snaps in found.items() if len(snaps) == 1}


# --- leaderboard ----------------------------------------------------------------------------------


# Who a leaderboard row is: a rep (User), a region, or a month as (period start, period key).
Who = TypeVar("Who")


@dataclasses.dataclass
class RankRow(Generic[Who]):
    """One rep on the leaderboard: the sums of their targets of the period (latest snapshots)."""

    rank: int
    rep: Who
    actual: Decimal
    target: Decimal
    attainment: Decimal | None
    time_progress: Decimal | None
    pace_gap: Decimal | None
    elapsed: tuple[int, int] | None = None  # time progress as an exact share (elapsed, whole)

    @property
    def pace(self) -> str:
        return pace_class(self.pace_gap)

    # Shown rounded once from the exact sums (`math.percent`), never from the quantized fractions.

    @property
    def attainment_pct(self) -> Decimal | None:
        return None if self.attainment is None else math.percent(self.actual, self.target)

    @property
    def pace_gap_points(self) -> Decimal | None:
        if self.pace_gap is None or self.elapsed is None:
            return None
        return math.points(self.actual, self.target, *self.elapsed)


@dataclasses.dataclass(frozen=True)
class LeaderboardPeriod:
    """A period a plan's leaderboard can rank: one that has rep targets."""

    key: str
    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def leaderboard_periods(plan: TargetPlan) -> list[LeaderboardPeriod]:
    """The periods of a plan that have rep targets, in time order (the whole plan first). One query."""
    rows = (
        TargetNode.objects.filter(plan=plan, rep__isnull=False)
        .exclude(period_key="")
        .order_by("period_start", "-period_end", "period_key")
        .values_list("period_key", "period_start", "period_end")
        .distinct()
    )
    periods: dict[str, LeaderboardPeriod] = {}
    for key, start, end in rows:
        periods.setdefault(key, LeaderboardPeriod(key, start, end))
    return list(periods.values())


def leaderboard_default_plan(plans: Iterable[TargetPlan], today: date) -> TargetPlan | None:
    """The plan the leaderboard opens on: the plan in force `today` (approved, its period running); else the
    approved plan that started most recently; else the plan that started most recently; a plan yet to start
    only when no other exists (the nearest). None without plans.

    Among several plans in force, the one that started last (a quarter plan inside a year) comes first.
    """

    def rank(plan: TargetPlan) -> tuple[int, int, int]:
        approved = plan.status == PlanStatus.APPROVED
        if plan.period_start <= today:
            order = 0 if approved and today <= plan.period_end else 1 if approved else 2
            return (order, -plan.period_start.toordinal(), plan.pk)
        return (3 if approved else 4, plan.period_start.toordinal(), plan.pk)

    return min(plans, key=rank, default=None)


def leaderboard_default_period(periods: list[LeaderboardPeriod], today: date) -> str:
    """The period a plan's leaderboard opens on: the current one (the shortest of its periods containing
    `today`, e.g. this month rather than this year); the whole plan when none is current. "" without any."""
    current = [p for p in periods if today in p]
    if current:
        return min(current, key=lambda p: (p.end - p.start, -p.start.toordinal())).key
    return periods[0].key if periods else ""


def _ranked(
    nodes: list[TargetNode], key: Callable[[TargetNode], object], who: Callable[[TargetNode], Who]
) -> list[RankRow[Who]]:
    """Group nodes by `key(node)`, summing their latest snapshots (a node without one adds its amount to
    the target only), best attainment first; `who(node)` is what a row shows. One query."""
    figures = attainment_of(nodes)
    groups: dict[object, dict[str, Any]] = {}
    for node in nodes:
        row = groups.setdefault(
            key(node), {"who": who(node), "actual": ZERO, "target": ZERO, "progress": None, "elapsed": None}
        )
        att = figures.get(node.pk)
        if att is None:
            row["target"] += node.amount
            continue
        row["actual"] += att.snapshot.actual
        row["target"] += att.snapshot.target
        row["progress"] = att.derived.time_progress
        row["elapsed"] = att.elapsed
    rows = []
    for row in groups.values():
        progress = row["progress"]
        rate = None if progress is None else math.attainment(row["actual"], row["target"])
        pace = None if progress is None else math.pace_gap(rate, progress)
        rows.append(RankRow[Who](0, row["who"], row["actual"], row["target"], rate, progress, pace, row["elapsed"]))
    rows.sort(key=lambda r: (r.attainment is None, -(r.attainment or ZERO), str(r.rep)))
    for i, ranked in enumerate(rows, start=1):
        ranked.rank = i
    return rows


def _topmost(qs: QuerySet[TargetNode], field: str) -> QuerySet[TargetNode]:
    """Nodes that are the first of their `field` in the tree (a part of the same value and period is left
    out, so a target split further is not counted twice)."""
    return qs.exclude(**{f"parent__{field}": F(field), "parent__period_key": F("period_key")})


def leaderboard(user: User, plan: TargetPlan, period_key: str) -> list[RankRow]:
    """Reps in `user`'s scope ranked by attainment (best first) for one period of a plan.

    A rep's figure is the sum over their topmost targets of the period (a rep target split further by
    product or segment is not counted twice). Two queries: the nodes, their latest snapshots.
    """
    qs = nodes_visible_to(user).filter(plan=plan, period_key=period_key, rep__isnull=False, rep__in=visible_users(user))
    nodes = list(_topmost(qs, "rep").select_related("rep").order_by("path"))
    return _ranked(nodes, lambda n: n.rep_id, lambda n: n.rep)


DIMENSIONS = ("rep", "region", "month")


def attainment_by_dimension(user: User, plan: TargetPlan, dimension: str) -> list[tuple[object, str, RankRow]]:
    """The plan's attainment per rep, per region (both over the plan's whole period, best first) or per
    month (in time order), within `user`'s scope: (key, label, figures) each. Two queries."""
    qs = nodes_visible_to(user).filter(plan=plan)
    if dimension == "rep":
        return [(r.rep.pk, str(r.rep), r) for r in leaderboard(user, plan, plan.period_key)]
    if dimension == "region":
        qs = qs.filter(period_key=plan.period_key, region__isnull=False, region__in=visible_regions(user))
        nodes = list(_topmost(qs, "region").select_related("region").order_by("path"))
        return [(r.rep.pk, r.rep.name, r) for r in _ranked(nodes, lambda n: n.region_id, lambda n: n.region)]
    if dimension == "month":
        qs = qs.filter(period_kind=PeriodKind.MONTH).exclude(parent__period_kind=PeriodKind.MONTH)
        nodes = list(qs.order_by("period_start", "path"))
        rows = _ranked(nodes, lambda n: n.period_key, lambda n: (n.period_start, n.period_key))
        rows.sort(key=lambda r: r.rep)
        return [(r.rep[1], r.rep[1], r) for r in rows]
    raise ValueError(dimension)
