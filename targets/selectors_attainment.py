"""Attainment reads for the screens and the API: the latest snapshot of each node, with its derived ratios.

One query for any number of nodes (a correlated subquery picks each node's newest `as_of`, portable to
SQLite and PostgreSQL); ratios are derived in memory with `targets.attainment.derive`.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django.db.models import F, OuterRef, Subquery

from crm.models import CompanySettings
from crm.scopes import visible_regions, visible_users
from salesmgmt.lib import attainment as math
from salesmgmt.lib.money import ZERO
from targets.attainment import Derived, derive
from targets.models import AttainmentSnapshot, PeriodKind, TargetNode
from targets.selectors import nodes_visible_to

# Pace gap (a fraction) at or above this is amber rather than red: 10 points behind time.
AMBER_FROM = Decimal("-0.10")


@dataclasses.dataclass(frozen=True)
class Attainment:
    """The latest snapshot of a node and what is derived from it."""

    snapshot: AttainmentSnapshot
    derived: Derived

    @property
    def actual(self) -> Decimal:
        return self.snapshot.actual

    @property
    def as_of(self):
        return self.snapshot.as_of

    @property
    def attainment_pct(self) -> Decimal | None:
        rate = self.derived.attainment
        return None if rate is None else rate * 100

    @property
    def time_progress_pct(self) -> Decimal:
        return self.derived.time_progress * 100

    @property
    def pace_gap_points(self) -> Decimal | None:
        gap = self.derived.pace_gap
        return None if gap is None else gap * 100

    @property
    def pace(self) -> str:
        """ "good" (on or ahead of time), "warn" (up to 10 points behind), "bad" (further behind), "" unknown."""
        return pace_class(self.derived.pace_gap)


def pace_class(pace_gap: Decimal | None) -> str:
    if pace_gap is None:
        return ""
    if pace_gap >= 0:
        return "good"
    if pace_gap >= AMBER_FROM:
        return "warn"
    return "bad"


def latest_snapshots(node_ids) -> dict[int, AttainmentSnapshot]:
    """The newest snapshot of each given node, in ONE query (nodes without a snapshot are absent)."""
    ids = list(node_ids)
    if not ids:
        return {}
    newest = AttainmentSnapshot.objects.filter(node=OuterRef("node")).order_by("-as_of").values("as_of")[:1]
    qs = AttainmentSnapshot.objects.filter(node_id__in=ids, as_of=Subquery(newest)).order_by()
    return {s.node_id: s for s in qs}


def attainment_of(nodes, *, working_days: bool | None = None) -> dict[int, Attainment]:
    """The latest figures of the given (already visible) nodes: node id -> `Attainment`.

    The nodes' own objects are attached to their snapshots, so deriving costs no query per node.
    """
    nodes = list(nodes)
    snapshots = latest_snapshots(n.pk for n in nodes)
    if not snapshots:
        return {}
    if working_days is None:
        working_days = CompanySettings.load().count_working_days
    result = {}
    for node in nodes:
        snapshot = snapshots.get(node.pk)
        if snapshot is None:
            continue
        snapshot.node = node
        result[node.pk] = Attainment(snapshot, derive(snapshot, working_days=working_days))
    return result


def decorate(nodes) -> None:
    """Set `node.attainment` (an `Attainment` or None) on each node, for templates."""
    nodes = list(nodes)
    figures = attainment_of(nodes)
    for node in nodes:
        node.attainment = figures.get(node.pk)


# --- leaderboard ----------------------------------------------------------------------------------


@dataclasses.dataclass
class RankRow:
    """One rep on the leaderboard: the sums of their targets of the period (latest snapshots)."""

    rank: int
    rep: object
    actual: Decimal
    target: Decimal
    attainment: Decimal | None
    time_progress: Decimal | None
    pace_gap: Decimal | None

    @property
    def pace(self) -> str:
        return pace_class(self.pace_gap)

    @property
    def attainment_pct(self) -> Decimal | None:
        return None if self.attainment is None else self.attainment * 100

    @property
    def pace_gap_points(self) -> Decimal | None:
        return None if self.pace_gap is None else self.pace_gap * 100


def leaderboard_periods(plan) -> list[str]:
    """The periods of a plan that have rep targets, in time order (the whole plan first)."""
    rows = (
        TargetNode.objects.filter(plan=plan, rep__isnull=False)
        .order_by("period_start", "-period_end", "period_key")
        .values_list("period_key", flat=True)
        .distinct()
    )
    return list(dict.fromkeys(rows))


def _ranked(nodes, key, who) -> list[RankRow]:
    """Group nodes by `key(node)`, summing their latest snapshots (a node without one adds its amount to
    the target only), best attainment first; `who(node)` is what a row shows. One query."""
    figures = attainment_of(nodes)
    groups: dict = {}
    for node in nodes:
        row = groups.setdefault(key(node), {"who": who(node), "actual": ZERO, "target": ZERO, "progress": None})
        att = figures.get(node.pk)
        if att is None:
            row["target"] += node.amount
            continue
        row["actual"] += att.snapshot.actual
        row["target"] += att.snapshot.target
        row["progress"] = att.derived.time_progress
    rows = []
    for row in groups.values():
        progress = row["progress"]
        rate = None if progress is None else math.attainment(row["actual"], row["target"])
        pace = None if progress is None else math.pace_gap(rate, progress)
        rows.append(RankRow(0, row["who"], row["actual"], row["target"], rate, progress, pace))
    rows.sort(key=lambda r: (r.attainment is None, -(r.attainment or ZERO), str(r.rep)))
    for i, row in enumerate(rows, start=1):
        row.rank = i
    return rows


def _topmost(qs, field: str):
    """Nodes that are the first of their `field` in the tree (a part of the same value and period is left
    out, so a target split further is not counted twice)."""
    return qs.exclude(**{f"parent__{field}": F(field), "parent__period_key": F("period_key")})


def leaderboard(user, plan, period_key: str) -> list[RankRow]:
    """Reps in `user`'s scope ranked by attainment (best first) for one period of a plan.

    A rep's figure is the sum over their topmost targets of the period (a rep target split further by
    product or segment is not counted twice). Two queries: the nodes, their latest snapshots.
    """
    qs = nodes_visible_to(user).filter(plan=plan, period_key=period_key, rep__isnull=False, rep__in=visible_users(user))
    nodes = list(_topmost(qs, "rep").select_related("rep").order_by("path"))
    return _ranked(nodes, lambda n: n.rep_id, lambda n: n.rep)


DIMENSIONS = ("rep", "region", "month")


def attainment_by_dimension(user, plan, dimension: str) -> list[tuple[object, str, RankRow]]:
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
