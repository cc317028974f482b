"""The weekly review (周例会) of a team or the company for one week: what the meeting looks at, as plain data.

`build_review(user, region=, week=)` reads everything once, set-based, and returns a `Review`: the headline per
metric of the plans in force, one row per rep (or per sub-region), the cumulative actual against the target's
pace and the gap waterfall. A `Review` is plain values (Decimals, dates, strings): `to_snapshot()` turns it into
JSON-safe data a meeting keeps, `Review.from_snapshot()` turns that back, and the template
`coaching/review/_body.html` and the charts read only the `Review`, so a review kept by a meeting shows exactly
as it was.

Which figures, read for the week's last day (today for the running week), `D`:
- a plan is in force when it is approved and its period contains D; per metric, the one that started last
  (a quarter plan inside a year plan), the plan of the region itself before a wider one;
- the region's target node is the plan's root (a company plan for the company, a plan of the region) or the
  topmost node of the region without rep, product or segment over the plan's whole period; its figures are its
  newest attainment snapshot on or before D. Without such a node, the region's figures are the sum of its rows;
- a rep's row sums his topmost targets of the plan's period under the region's node (a target split further is
  not counted twice); a sub-region's row is its own node, else the sum of its reps';
- time progress, pace gap, gap, coverage (open pipeline ÷ remaining gap, `salesmgmt.lib.attainment.coverage`, the
  ratio the alerts and the targets' pages use) and the run-rate forecast (actual ÷ elapsed share of the period)
  come from `salesmgmt.lib.attainment`, rounded once from the exact figures;
- win rate: won ÷ (won + lost) deals closed in the plan's period up to D, credited to the row (业绩归属);
- activities (过程量): visits, calls and meetings dated in the week; alerts: the row's people's open alerts.

The number of queries does not depend on the number of reps or regions.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm.models import CompanySettings, Region, Role, User
from crm.scopes import INLINE_IDS, region_subtree, visible_regions, visible_users
from pipeline.analytics import BY_OWNER as BY_OWNER_GROUP
from pipeline.analytics import BY_REGION as BY_REGION_GROUP
from pipeline.analytics import win_rates
from pipeline.models import Activity
from salesmgmt.charts import chart_html
from salesmgmt.lib import attainment as math
from salesmgmt.lib import periods
from salesmgmt.lib.money import ZERO, quantize
from targets.alerts.selectors import alerts_visible_to
from targets.attainment.reference import path_ids
from targets.attainment.selectors import pace_class
from targets.models import (
    AlertState,
    AttainmentSnapshot,
    LatestAttainment,
    MetricSource,
    MetricUnit,
    PlanStatus,
    TargetNode,
    TargetPlan,
)
from targets.planning.selectors import nodes_visible_to, original_targets, plans_visible_to

BY_REP, BY_REGION = "rep", "region"

# The row table's sort keys (`?sort=`, a leading "-" for descending): the row attribute each sorts by.
SORT_KEYS = {
    "name": "name",
    "target": "target",
    "actual": "actual",
    "attainment": "attainment_pct",
    "original": "original_attainment_pct",
    "pace": "pace_gap_points",
    "gap": "gap",
    "pipeline": "pipeline",
    "coverage": "coverage",
    "win_rate": "win_rate",
    "activities": "activities",
    "alerts": "alerts",
}
DEFAULT_SORT = "pace"
WEEK = timedelta(days=7)


# --- the data ------------------------------------------------------------------------------------


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class Headline:
    """The figures of the region for one metric of a plan in force."""

    metric: str  # the metric's code
    metric_name: str
    unit: str  # MetricUnit: money or count
    plan_id: int
    node_id: int | None  # the region's target (None: the figures are the sum of its rows)
    period_key: str
    period_start: date
    period_end: date
    target: Decimal | None
    actual: Decimal | None
    attainment_pct: Decimal | None
    time_progress_pct: Decimal | None
    pace_gap_points: Decimal | None
    gap: Decimal | None
    weighted_pipeline: Decimal | None
    open_pipeline: Decimal | None
    coverage: Decimal | None
    forecast_run_rate: Decimal | None
    # The same against the original plan (the first approved version: `original_targets`).
    original_target: Decimal | None = None
    original_attainment_pct: Decimal | None = None

    @property
    def pace(self) -> str:
        return _pace(self.pace_gap_points)

    DECIMALS = (
        "target",
        "actual",
        "attainment_pct",
        "time_progress_pct",
        "pace_gap_points",
        "gap",
        "weighted_pipeline",
        "open_pipeline",
        "coverage",
        "forecast_run_rate",
        "original_target",
        "original_attainment_pct",
    )

    def to_snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {f: _str(getattr(self, f)) for f in self.DECIMALS}
        data.update(
            metric=self.metric,
            metric_name=self.metric_name,
            unit=self.unit,
            plan_id=self.plan_id,
            node_id=self.node_id,
            period_key=self.period_key,
            period_start=self.period_start.isoformat(),
            period_end=self.period_end.isoformat(),
        )
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Headline:
        return cls(
            metric=data["metric"],
            metric_name=data["metric_name"],
            unit=data.get("unit", MetricUnit.MONEY),
            plan_id=data.get("plan_id") or 0,
            node_id=data.get("node_id"),
            period_key=data.get("period_key", ""),
            period_start=date.fromisoformat(data["period_start"]),
            period_end=date.fromisoformat(data["period_end"]),
            **{f: _dec(data.get(f)) for f in cls.DECIMALS},
        )


@dataclasses.dataclass(frozen=True)
class Row:
    """One rep (key "rep:<id>") or sub-region (key "region:<id>") of the review's table."""

    key: str
    name: str
    target: Decimal | None
    actual: Decimal | None
    attainment_pct: Decimal | None
    time_progress_pct: Decimal | None
    pace_gap_points: Decimal | None
    gap: Decimal | None
    pipeline: Decimal | None  # open pipeline of the period
    weighted_pipeline: Decimal | None
    coverage: Decimal | None
    win_rate: Decimal | None  # percent, one decimal
    won: int | None
    lost: int | None
    activities: int | None
    alerts: int | None
    # The same against the original plan (the first approved version: `original_targets`).
    original_target: Decimal | None = None
    original_attainment_pct: Decimal | None = None

    @property
    def pace(self) -> str:
        return _pace(self.pace_gap_points)

    @property
    def kind(self) -> str:
        return self.key.partition(":")[0]

    @property
    def ident(self) -> int:
        return int(self.key.partition(":")[2])

    DECIMALS = (
        "target",
        "actual",
        "attainment_pct",
        "time_progress_pct",
        "pace_gap_points",
        "gap",
        "pipeline",
        "weighted_pipeline",
        "coverage",
        "win_rate",
        "original_target",
        "original_attainment_pct",
    )
    INTS = ("won", "lost", "activities", "alerts")

    def to_snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "name": self.name}
        data.update({f: _str(getattr(self, f)) for f in (*self.DECIMALS, *self.INTS)})
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Row:
        values: dict[str, Any] = {f: _dec(data.get(f)) for f in cls.DECIMALS}
        values.update({f: _int(data.get(f)) for f in cls.INTS})
        return cls(key=data["key"], name=data["name"], **values)


@dataclasses.dataclass(frozen=True)
class Waterfall:
    """From the target to what is still missing: target − won − commit − best case = gap (may be below zero)."""

    target: Decimal
    won: Decimal
    commit: Decimal
    best_case: Decimal

    @property
    def gap(self) -> Decimal:
        return self.target - self.won - self.commit - self.best_case

    def to_snapshot(self) -> dict[str, str]:
        return {f: str(getattr(self, f)) for f in ("target", "won", "commit", "best_case", "gap")}

    @classmethod
    def from_snapshot(cls, data: dict[str, str]) -> Waterfall:
        return cls(*(Decimal(data[f]) for f in ("target", "won", "commit", "best_case")))


@dataclasses.dataclass(frozen=True)
class CumulativePoint:
    """The actual so far and the target's pace (target × time progress) at the end of a week or month."""

    label: str  # the period's key (FY2027-W05, FY2027-M03)
    end: date
    actual: Decimal | None
    target_pace: Decimal

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "end": self.end.isoformat(),
            "actual": _str(self.actual),
            "target_pace": str(self.target_pace),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> CumulativePoint:
        return cls(data["label"], date.fromisoformat(data["end"]), _dec(data["actual"]), Decimal(data["target_pace"]))


@dataclasses.dataclass(frozen=True)
class Review:
    """Everything the review of a region for a week shows, as plain values (see the module's docstring)."""

    region_id: int
    region_name: str
    week: date  # the Monday
    as_of: date  # the day the figures are read for: the week's Sunday, or today in the running week
    rows_by: str  # BY_REP or BY_REGION
    metric: str  # the metric of the rows, the cumulative chart and the waterfall ("" without a plan)
    headline: tuple[Headline, ...]
    rows: tuple[Row, ...]
    cumulative: tuple[CumulativePoint, ...] = ()
    waterfall: Waterfall | None = None
    sort: str = DEFAULT_SORT
    # The forecast call's submitted figures, wired in by the forecast part (JSON-safe; None: not submitted).
    submitted_forecast: dict[str, Any] | None = None

    @property
    def week_end(self) -> date:
        return self.week + timedelta(days=6)

    @property
    def primary(self) -> Headline | None:
        return next((h for h in self.headline if h.metric == self.metric), None)

    @property
    def unit(self) -> str:
        primary = self.primary
        return primary.unit if primary else MetricUnit.MONEY

    @property
    def behind_pace(self) -> list[Row]:
        """The rows behind time (amber or red), furthest behind first."""
        rows = [r for r in self.rows if r.pace in ("warn", "bad")]
        return sorted(rows, key=lambda r: (r.pace_gap_points or ZERO, r.name))

    def sorted_by(self, sort: str) -> Review:
        """The same review with its rows in the order of `sort` (a key of `SORT_KEYS`, "-" for descending;
        an unknown key keeps the default). Rows without the figure come last either way."""
        key = sort.removeprefix("-")
        if key not in SORT_KEYS:
            sort, key = DEFAULT_SORT, DEFAULT_SORT
        attribute = SORT_KEYS[key]
        descending = sort.startswith("-")
        present = [r for r in self.rows if getattr(r, attribute) is not None]
        missing = [r for r in self.rows if getattr(r, attribute) is None]
        present.sort(key=lambda r: r.name)
        present.sort(key=lambda r: getattr(r, attribute), reverse=descending)
        missing.sort(key=lambda r: r.name)
        return dataclasses.replace(self, rows=tuple(present + missing), sort=sort)

    # --- snapshot ---

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "region": {"id": self.region_id, "name": self.region_name},
            "week": self.week.isoformat(),
            "as_of": self.as_of.isoformat(),
            "rows_by": self.rows_by,
            "metric": self.metric,
            "sort": self.sort,
            "headline": [h.to_snapshot() for h in self.headline],
            "rows": [r.to_snapshot() for r in self.rows],
            "cumulative": [p.to_snapshot() for p in self.cumulative],
            "waterfall": None if self.waterfall is None else self.waterfall.to_snapshot(),
            "submitted_forecast": self.submitted_forecast,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Review:
        waterfall = data.get("waterfall")
        return cls(
            region_id=data["region"]["id"],
            region_name=data["region"]["name"],
            week=date.fromisoformat(data["week"]),
            as_of=date.fromisoformat(data.get("as_of") or data["week"]),
            rows_by=data.get("rows_by", BY_REP),
            metric=data.get("metric", ""),
            sort=data.get("sort", DEFAULT_SORT),
            headline=tuple(Headline.from_snapshot(h) for h in data.get("headline", [])),
            rows=tuple(Row.from_snapshot(r) for r in data.get("rows", [])),
            cumulative=tuple(CumulativePoint.from_snapshot(p) for p in data.get("cumulative", [])),
            waterfall=None if waterfall is None else Waterfall.from_snapshot(waterfall),
            submitted_forecast=data.get("submitted_forecast"),
        )

    def columns(self) -> list[dict[str, str]]:
        """The table's sortable columns: key, label, the `sort` its header link asks for (the reverse of the
        current order on the sorted column, else descending for figures and ascending for the name) and the
        arrow shown on the sorted one."""
        labels = {
            "name": _("Region") if self.rows_by == BY_REGION else _("Sales rep"),
            "target": _("Target"),
            "actual": _("Actual"),
            "attainment": _("Attainment"),
            "original": _("vs original"),
            "pace": _("Pace gap"),
            "gap": _("Gap"),
            "pipeline": _("Pipeline"),
            "coverage": _("Coverage"),
            "win_rate": _("Win rate"),
            "activities": _("Activities"),
            "alerts": _("Alerts"),
        }
        titles = {
            "attainment": _("Attainment / time progress"),
            "original": _("The target of the original plan (its first approved version) and attainment against it"),
            "pace": _("Attainment minus time progress, in points"),
            "pipeline": _("Open deals expected to close in the period"),
            "coverage": _("Open pipeline ÷ remaining gap (healthy from 3×)"),
            "win_rate": _("Won ÷ (won + lost) deals closed in the period so far"),
            "activities": _("Visits, calls and meetings this week (过程量)"),
            "alerts": _("Open alerts of the people"),
        }
        current = self.sort.removeprefix("-")
        descending = self.sort.startswith("-")
        columns = []
        for key, text in labels.items():
            if key == current:
                asks, arrow = (key if descending else f"-{key}"), ("▼" if descending else "▲")
            else:
                asks, arrow = (key if key == "name" else f"-{key}"), ""
            columns.append({"key": key, "label": text, "sort": asks, "arrow": arrow, "title": titles.get(key, "")})
        return columns

    # --- charts: built from these values only, never from the database ---

    def attainment_chart(self) -> SafeString:
        """Attainment % per row (bars) with the time-progress line: two traces."""
        rows = [r for r in self.rows if r.attainment_pct is not None]
        if not rows:
            return SafeString("")
        names = [r.name for r in rows]
        data = [
            {
                "type": "bar",
                "x": names,
                "y": [_float(r.attainment_pct) for r in rows],
                "name": _("Attainment %"),
                "marker": {"color": [PACE_COLOURS.get(r.pace, "#90a4ae") for r in rows]},
            },
            {
                "type": "scatter",
                "x": names,
                "y": [_float(r.time_progress_pct) for r in rows],
                "name": _("Time progress %"),
                "mode": "lines+markers",
                "line": {"dash": "dot", "color": "#263238"},
            },
        ]
        return plot_div(data, {"yaxis": {"ticksuffix": "%", "rangemode": "tozero"}}, "review-chart-attainment")

    def cumulative_chart(self) -> SafeString:
        """Cumulative actual against the target's pace at the end of each week or month: two traces."""
        if not self.cumulative:
            return SafeString("")
        labels = [p.label for p in self.cumulative]
        data = [
            {
                "type": "scatter",
                "x": labels,
                "y": [_float(p.actual) for p in self.cumulative],
                "name": _("Actual"),
                "mode": "lines+markers",
                "line": {"color": "#1e88e5"},
            },
            {
                "type": "scatter",
                "x": labels,
                "y": [_float(p.target_pace) for p in self.cumulative],
                "name": _("Target at time progress"),
                "mode": "lines",
                "line": {"dash": "dot", "color": "#263238"},
            },
        ]
        return plot_div(data, {"yaxis": {"rangemode": "tozero"}}, "review-chart-cumulative")

    def waterfall_chart(self) -> SafeString:
        """Target → won → commit → best case → what is still missing: one waterfall trace."""
        w = self.waterfall
        if w is None:
            return SafeString("")
        data = [
            {
                "type": "waterfall",
                "x": [_("Target"), _("Won"), _("Commit"), _("Best case"), _("Gap")],
                "y": [float(w.target), -float(w.won), -float(w.commit), -float(w.best_case), float(w.gap)],
                "measure": ["absolute", "relative", "relative", "relative", "total"],
                "name": _("Gap to target"),
                # What is won or expected closes the gap: green; the target and what is left: totals.
                "decreasing": {"marker": {"color": "#66bb6a"}},
                "increasing": {"marker": {"color": "#ef5350"}},
                "totals": {"marker": {"color": "#1e88e5"}},
                "connector": {"line": {"color": "#90a4ae"}},
            }
        ]
        return plot_div(data, {"showlegend": False}, "review-chart-waterfall")


PACE_COLOURS = {"good": "#2e7d32", "warn": "#ef6c00", "bad": "#c62828"}


def _pace(points: Decimal | None) -> str:
    """The pace classes of the targets' pages ("good", "warn", "bad"), from the pace gap in points."""
    return pace_class(None if points is None else points / 100)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# The look of every review chart (plotly's "plotly_white", spelled out: a named template is resolved by
# plotly.py's figure objects, which cost ~30 ms a chart; the figures here are plain dicts).
CHART_LAYOUT = {
    "paper_bgcolor": "#fff",
    "plot_bgcolor": "#fff",
    "font": {"size": 12},
    "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
    "height": 320,
    "legend": {"orientation": "h", "y": -0.25},
    "xaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True},
    "yaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True},
}


def plot_div(data: list[dict[str, Any]], layout: dict[str, Any], div_id: str) -> SafeString:
    """A figure (its traces and layout as plain dicts, one trace per series) as a div for plotly.js, which the
    page loads. The id is fixed, so the same review renders the same markup every time (a kept review is
    compared with the live one)."""
    merged = {**CHART_LAYOUT, **layout}
    for axis in ("xaxis", "yaxis"):
        merged[axis] = {**CHART_LAYOUT[axis], **layout.get(axis, {})}
    return chart_html({"data": data, "layout": merged}, div_id=div_id, validate=False)


def snapshot_json(review: Review) -> str:
    """The snapshot as JSON text (what a meeting stores)."""
    return json.dumps(review.to_snapshot(), ensure_ascii=False, sort_keys=True)


# --- which region, which week -------------------------------------------------------------------


def week_of(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def reading_day(week: date, today: date | None = None) -> date:
    """The day a week's figures are read for: its Sunday, or today while it runs."""
    today = today or timezone.localdate()
    return min(week_of(week) + timedelta(days=6), max(today, week_of(week)))


def may_review(user: User) -> bool:
    """Team reviews are for managers and above; a rep has his own figures on his home page."""
    return bool(user.is_authenticated and user.is_manager_or_above)


def default_region(user: User) -> Region | None:
    """The region a user's review opens on: the company for a director (the top of the organisation), else
    the user's own region (a manager's team)."""
    if user.is_director_or_above:
        top = visible_regions(user).filter(parent__isnull=True).order_by("path").first()
        if top is not None:
            return top
    return user.region if user.region_id else None


def reviewable_region(user: User, region_id: int | str | None) -> Region | None:
    """The region `region_id` when `user` may review it (a region in his scope), the default region when
    none is asked for; None otherwise (the view answers 404)."""
    if not may_review(user):
        return None
    if region_id in (None, ""):
        return default_region(user)
    try:
        pk = int(region_id)
    except (TypeError, ValueError):
        return None
    return visible_regions(user).filter(pk=pk).first()


def regions_for_picker(user: User) -> QuerySet[Region]:
    return visible_regions(user).order_by("path") if may_review(user) else Region.objects.none()


# --- building a review ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Sum:
    """Figures of a row or headline being added up from node snapshots."""

    target: Decimal = ZERO
    actual: Decimal = ZERO
    weighted: Decimal = ZERO
    open: Decimal = ZERO
    measured: bool = False  # at least one node has a snapshot
    original: Decimal = ZERO  # the nodes' original targets (`original_targets`)

    def add_node(self, amount: Decimal, snap: dict | None, original: Decimal | None = None) -> None:
        self.original += original or ZERO
        if snap is None:
            self.target += amount
            return
        self.measured = True
        self.target += snap["target"]
        self.actual += snap["actual"]
        self.weighted += snap["weighted_pipeline"]
        self.open += snap["open_pipeline"]

    def add(self, other: _Sum) -> None:
        self.target += other.target
        self.actual += other.actual
        self.weighted += other.weighted
        self.open += other.open
        self.original += other.original
        self.measured = self.measured or other.measured


@dataclasses.dataclass(frozen=True)
class _Clock:
    """A plan's period read on day `on`."""

    start: date
    end: date
    on: date
    working_days: bool

    @property
    def elapsed(self) -> tuple[int, int]:
        return math.elapsed_share(self.start, self.end, self.on, working_days=self.working_days)


@dataclasses.dataclass(frozen=True)
class Ratios:
    """What a target, an actual and a pipeline give on a day, by the one rule of `salesmgmt.lib.attainment`."""

    attainment_pct: Decimal | None
    time_progress_pct: Decimal | None
    pace_gap_points: Decimal | None
    gap: Decimal | None
    coverage: Decimal | None
    run_rate: Decimal | None


def ratios(target: Decimal, actual: Decimal, open_pipeline: Decimal, clock: _Clock) -> Ratios:
    elapsed = clock.elapsed
    missing = math.gap(actual, target)
    return Ratios(
        attainment_pct=math.percent(actual, target),
        time_progress_pct=math.percent(*elapsed),
        pace_gap_points=math.points(actual, target, *elapsed),
        gap=missing,
        coverage=math.coverage(open_pipeline, missing),
        run_rate=math.run_rate_forecast(actual, clock.start, clock.end, clock.on, working_days=clock.working_days),
    )


SNAP_FIELDS = ("node_id", "as_of", "target", "actual", "weighted_pipeline", "open_pipeline")


def snapshots_on(node_ids: Iterable[int], day: date, today: date) -> dict[int, dict]:
    """Each node's figures on `day` (its newest snapshot on or before it), in ONE query: the latest rows for
    today or later, the snapshots' history for a day gone by."""
    ids = list(node_ids)
    if not ids:
        return {}
    if day >= today:
        rows = LatestAttainment.objects.filter(node_id__in=ids, as_of__lte=day).values(*SNAP_FIELDS)
    else:
        rows = AttainmentSnapshot.objects.filter(node_id__in=ids).newest(on=day).order_by().values(*SNAP_FIELDS)
    return {r["node_id"]: r for r in rows}


def plans_in_force(user: User, region: Region, day: date) -> list[TargetPlan]:
    """The approved plans in force on `day` that cover `region` (company-wide, or of the region or a region
    above it) and that `user` sees: one per metric (see the module docstring), by metric. One query."""
    above = path_ids(region.path)
    qs = (
        plans_visible_to(user)
        .filter(status=PlanStatus.APPROVED, period_start__lte=day, period_end__gte=day)
        .filter(Q(region__isnull=True) | Q(region_id__in=above))
        .select_related("metric")
    )
    depth = {pk: i for i, pk in enumerate(above)}

    def rank(plan: TargetPlan) -> tuple[date, int, int]:
        """Greater is preferred: started later, then of a deeper region (a company plan: -1), then older."""
        return (plan.period_start, depth.get(plan.region_id, -1) if plan.region_id else -1, -plan.pk)

    best: dict[int, TargetPlan] = {}
    for plan in qs:
        current = best.get(plan.metric_id)
        if current is None or rank(plan) > rank(current):
            best[plan.metric_id] = plan
    # Signed revenue first (what the rows show by default), then the other built-in metrics, then the admins'.
    return sorted(
        best.values(),
        key=lambda p: (
            p.metric.source != MetricSource.WON_REVENUE,
            not p.metric.is_builtin,
            p.metric.source,
            p.metric.code,
        ),
    )


def _primary(plans: list[TargetPlan], metric: str = "") -> TargetPlan | None:
    """The plan whose figures the rows show: the one of `metric` (a code) if asked, else signed revenue, else
    the first."""
    if metric:
        found = next((p for p in plans if p.metric.code == metric), None)
        if found is not None:
            return found
    return next((p for p in plans if p.metric.source == MetricSource.WON_REVENUE and not p.metric.filters), None) or (
        plans[0] if plans else None
    )


NODE_VALUES = ("id", "plan_id", "path", "depth", "amount", "region_id", "rep_id")


def region_nodes(user: User, plans: list[TargetPlan], region: Region) -> dict[int, dict]:
    """Per plan, the region's own target (see the module docstring): plan id -> node values. One query."""
    if not plans:
        return {}
    found: dict[int, dict] = {}
    own = Q(region=region, rep__isnull=True, product_line__isnull=True, product__isnull=True, segment="")
    roots = Q(parent__isnull=True)
    qs = nodes_visible_to(user).filter(plan__in=plans).filter(own | roots).values(*NODE_VALUES, "period_key")
    plan_of = {p.pk: p for p in plans}
    for node in qs.order_by("depth", "path"):
        plan = plan_of[node["plan_id"]]
        if node["period_key"] != plan.period_key:
            continue
        if node["depth"] == 0:  # the root: the plan's region, or the company for a company-wide plan
            whole = plan.region_id == region.pk or (plan.region_id is None and region.parent_id is None)
        else:
            whole = node["region_id"] == region.pk
        if whole and plan.pk not in found:
            found[plan.pk] = node
    return found


def _topmost_rep_nodes(user: User, plan: TargetPlan, under: dict | None, region: Region) -> QuerySet[TargetNode]:
    qs = nodes_visible_to(user).filter(plan=plan, period_key=plan.period_key, rep__isnull=False)
    qs = qs.filter(path__startswith=under["path"]) if under else qs.filter(rep__region__in=region_subtree(region))
    # A rep target whose parent is the same rep's over the same period (split further) is not topmost.
    return qs.exclude(parent__rep=F("rep"), parent__period_key=F("period_key"))


def build_review(
    user: User,
    *,
    region: Region,
    week: date,
    metric: str = "",
    with_charts: bool = True,
    with_activity: bool = True,
    rows_by: str = "",
    today: date | None = None,
) -> Review:
    """The review of `region` for the week of `week` (any day of it), as `user` may see it (his scopes filter
    every read; the caller checks that he may review the region: `reviewable_region`).

    `metric`: the code of the metric the rows show (default: signed revenue); `rows_by`: BY_REP for one row per
    rep even where the region has sub-regions (default: sub-regions where there are); `with_charts`: read
    what the cumulative chart and the waterfall need; `with_activity`: read the rows' win rates, activities and
    alerts (a home page does without both: they are None)."""
    today = today or timezone.localdate()
    monday = week_of(week)
    day = reading_day(monday, today)
    settings = CompanySettings.load()
    working_days = settings.count_working_days
    plans = plans_in_force(user, region, day)
    primary = _primary(plans, metric)
    own_nodes = region_nodes(user, plans, region)
    children = list(visible_regions(user).filter(parent=region).order_by("name", "pk").values("pk", "name", "path"))
    rows_by = rows_by or (BY_REGION if children else BY_REP)
    paths = dict(region_subtree(region).order_by().values_list("pk", "path"))
    context = _Context(
        user=user, region=region, day=day, today=today, monday=monday, working_days=working_days, paths=paths
    )

    row_sums: dict[str, _Sum] = {}
    names: dict[str, str] = {}
    if rows_by == BY_REGION:
        names = {f"region:{c['pk']}": c["name"] for c in children}
        if primary is not None:
            row_sums = _region_row_sums(context, primary, own_nodes.get(primary.pk), children)
    else:
        people = list(
            visible_users(user)
            .filter(region__in=region_subtree(region), role=Role.REP)
            .values("pk", "username", "first_name", "last_name")
        )
        names = {f"rep:{p['pk']}": _person(p) for p in people}
        if primary is not None:
            row_sums, more = _rep_row_sums(context, primary, own_nodes.get(primary.pk))
            names.update({k: v for k, v in more.items() if k not in names})

    clock = _Clock(primary.period_start, primary.period_end, day, working_days) if primary else None
    extras = _row_extras(context, rows_by, primary, children) if with_activity else None
    rows = []
    for key, name in names.items():
        total = row_sums.get(key)
        rows.append(_row(key, name, total, clock, extras))

    headline = []
    own_snaps = snapshots_on((n["id"] for n in own_nodes.values()), day, today)
    own_originals = original_targets(n["id"] for n in own_nodes.values()) if own_nodes else {}
    for plan in plans:
        node = own_nodes.get(plan.pk)
        plan_clock = _Clock(plan.period_start, plan.period_end, day, working_days)
        if node is not None:
            total = _Sum()
            total.add_node(node["amount"], own_snaps.get(node["id"]), own_originals.get(node["id"]))
        elif plan is primary:
            total = _Sum()
            for value in row_sums.values():
                total.add(value)
        else:
            continue  # neither a target of the region nor rows to add up
        headline.append(_headline(plan, node, total, plan_clock))

    cumulative: tuple[CumulativePoint, ...] = ()
    waterfall = None
    if primary is not None and with_charts:
        node = own_nodes.get(primary.pk)
        head = next((h for h in headline if h.plan_id == primary.pk), None)
        if head is not None and head.target is not None:
            ids = (
                [node["id"]]
                if node is not None
                else list(_topmost_rep_nodes(user, primary, None, region).values_list("pk", flat=True))
            )
            cumulative = _cumulative(primary, ids, head.target, day, working_days, settings.fiscal_year_start_month)
            if primary.metric.source == MetricSource.WON_REVENUE and not primary.metric.filters:
                waterfall = _waterfall(context, primary, head)
    return Review(
        region_id=region.pk,
        region_name=region.name,
        week=monday,
        as_of=day,
        rows_by=rows_by,
        metric=primary.metric.code if primary else "",
        headline=tuple(headline),
        rows=tuple(rows),
        cumulative=cumulative,
        waterfall=waterfall,
    ).sorted_by(DEFAULT_SORT)


@dataclasses.dataclass(frozen=True)
class _Context:
    user: User
    region: Region
    day: date
    today: date
    monday: date
    working_days: bool
    # The region's subtree: region id -> path, read once (the rows' fold and every filter by team use it).
    paths: dict[int, str]

    @property
    def region_ids(self) -> list[int] | QuerySet[Region]:
        """The subtree's ids for a filter: a list the planner can count (a subquery over the region paths is
        estimated at one row, and it then walks the deals region by region); a subquery when very long."""
        if len(self.paths) <= INLINE_IDS:
            return list(self.paths)
        return region_subtree(self.region).values("pk")


def _person(values: Mapping[str, Any]) -> str:
    full = f"{values.get('first_name') or ''} {values.get('last_name') or ''}".strip()
    return full or values["username"]


def _rep_row_sums(context: _Context, plan: TargetPlan, under: dict | None) -> tuple[dict[str, _Sum], dict[str, str]]:
    """Per rep ("rep:<id>"): the sum of his topmost targets of the plan under the region's target. Two queries
    (the nodes with their reps' names, their snapshots)."""
    nodes = list(
        _topmost_rep_nodes(context.user, plan, under, context.region).values(
            "id", "amount", "rep_id", "rep__username", "rep__first_name", "rep__last_name"
        )
    )
    snaps = snapshots_on((n["id"] for n in nodes), context.day, context.today)
    originals = original_targets(n["id"] for n in nodes)
    sums: dict[str, _Sum] = defaultdict(_Sum)
    names: dict[str, str] = {}
    for node in nodes:
        key = f"rep:{node['rep_id']}"
        sums[key].add_node(node["amount"], snaps.get(node["id"]), originals.get(node["id"]))
        names[key] = _person(
            {
                "username": node["rep__username"],
                "first_name": node["rep__first_name"],
                "last_name": node["rep__last_name"],
            }
        )
    return dict(sums), names


def _child_of(region_paths: dict[int, str], child_ids: set[int], depth: int) -> dict[int, int]:
    """region id -> the child (of the reviewed region, at path index `depth`) whose subtree holds it."""
    result = {}
    for pk, path in region_paths.items():
        ids = path_ids(path)
        if len(ids) > depth and ids[depth] in child_ids:
            result[pk] = ids[depth]
    return result


def _region_row_sums(
    context: _Context, plan: TargetPlan, under: dict | None, children: Sequence[Mapping[str, Any]]
) -> dict[str, _Sum]:
    """Per sub-region ("region:<id>"): its own target (topmost node of the region over the plan's period), else
    the sum of the topmost targets of the reps of its subtree. Three or four queries."""
    child_ids = {c["pk"] for c in children}
    qs = nodes_visible_to(context.user).filter(
        plan=plan,
        period_key=plan.period_key,
        region_id__in=child_ids,
        rep__isnull=True,
        product_line__isnull=True,
        product__isnull=True,
        segment="",
    )
    if under:
        qs = qs.filter(path__startswith=under["path"])
    own: dict[int, Mapping[str, Any]] = {}
    for values in qs.order_by("depth", "path").values("id", "amount", "region_id"):
        own.setdefault(values["region_id"], values)
    missing = [c for c in children if c["pk"] not in own]
    rep_nodes: list[Mapping[str, Any]] = []
    if missing:
        reps = _topmost_rep_nodes(context.user, plan, under, context.region).filter(
            rep__region__in=_subtrees_of([c["pk"] for c in missing])
        )
        rep_nodes = list(reps.values("id", "amount", "rep__region_id", "rep__region__path"))
    ids = [n["id"] for n in own.values()] + [n["id"] for n in rep_nodes]
    snaps = snapshots_on(ids, context.day, context.today)
    originals = original_targets(ids)
    sums: dict[str, _Sum] = defaultdict(_Sum)
    for region_id, own_node in own.items():
        sums[f"region:{region_id}"].add_node(
            own_node["amount"], snaps.get(own_node["id"]), originals.get(own_node["id"])
        )
    depth = len(path_ids(context.region.path))
    child = _child_of({n["rep__region_id"]: n["rep__region__path"] for n in rep_nodes}, child_ids, depth)
    for node in rep_nodes:
        parent = child.get(node["rep__region_id"])
        if parent is not None:
            sums[f"region:{parent}"].add_node(node["amount"], snaps.get(node["id"]), originals.get(node["id"]))
    return dict(sums)


def _subtrees_of(region_ids: list[int]) -> QuerySet[Region]:
    from crm.scopes import subtrees

    return subtrees(Region.objects.filter(pk__in=region_ids))


@dataclasses.dataclass
class _Extras:
    """Per row key: won and lost deals, activities of the week, open alerts."""

    won: dict[str, int] = dataclasses.field(default_factory=dict)
    lost: dict[str, int] = dataclasses.field(default_factory=dict)
    activities: dict[str, int] = dataclasses.field(default_factory=dict)
    alerts: dict[str, int] = dataclasses.field(default_factory=dict)


def _row_extras(
    context: _Context, rows_by: str, plan: TargetPlan | None, children: Sequence[Mapping[str, Any]]
) -> _Extras:
    """Win rate counts, activities and alerts per row: one grouped query each, folded to the rows (a rep's, or
    a sub-region's: deals by the team they are credited to, activities and alerts by their owner's team)."""
    user, region = context.user, context.region
    extras = _Extras()
    ids = context.region_ids
    by_region = rows_by == BY_REGION
    child: dict[int, int] = {}
    if by_region:
        child = _child_of(context.paths, {c["pk"] for c in children}, len(path_ids(region.path)))

    def key_of(owner_id: int | None, region_id: int | None) -> str | None:
        if not by_region:
            return f"rep:{owner_id}"
        parent = child.get(region_id) if region_id is not None else None
        return None if parent is None else f"region:{parent}"

    # Grouped by what the rows are: people by their team or themselves. Won and lost come from the analytics'
    # win rate (`pipeline.analytics.win_rates`, the one rule: deals closed in the period, credited team).
    person_group = "owner__region_id" if by_region else "owner_id"
    child_ids = {c["pk"] for c in children}
    if plan is not None:
        for rate in win_rates(
            user,
            date_from=plan.period_start,
            date_to=context.day,
            by=BY_REGION_GROUP if by_region else BY_OWNER_GROUP,
            period=None,
            region=region,
            counts_only=True,
        ):
            key = f"region:{rate.key}" if by_region else f"rep:{rate.key}"
            if by_region and rate.key not in child_ids:
                continue  # deals credited to the reviewed region itself: no row of theirs
            extras.won[key] = extras.won.get(key, 0) + rate.won
            extras.lost[key] = extras.lost.get(key, 0) + rate.lost
    week_end = context.monday + timedelta(days=6)
    activities = (
        Activity.objects.visible_to(user)
        .filter(date__gte=context.monday, date__lte=week_end, owner__region__in=ids)
        .order_by()
        .values(person_group)
        .annotate(n=Count("id"))
    )
    for done in activities:
        key = key_of(done.get("owner_id"), done.get("owner__region_id"))
        if key is not None:
            extras.activities[key] = extras.activities.get(key, 0) + done["n"]
    alerts = (
        alerts_visible_to(user)
        .filter(state=AlertState.OPEN, owner__region__in=ids)
        .order_by()
        .values(person_group)
        .annotate(n=Count("id"))
    )
    for alert in alerts:
        key = key_of(alert.get("owner_id"), alert.get("owner__region_id"))
        if key is not None:
            extras.alerts[key] = extras.alerts.get(key, 0) + alert["n"]
    return extras


def _row(key: str, name: str, total: _Sum | None, clock: _Clock | None, extras: _Extras | None) -> Row:
    won = lost = activities = alerts = None
    if extras is not None:
        won, lost = extras.won.get(key, 0), extras.lost.get(key, 0)
        activities, alerts = extras.activities.get(key, 0), extras.alerts.get(key, 0)
    figures = None
    if total is not None and clock is not None:
        figures = ratios(total.target, total.actual, total.open, clock)
    measured = total is not None and total.measured and figures is not None
    return Row(
        key=key,
        name=name,
        target=total.target if total is not None else None,
        actual=total.actual if measured and total else None,
        attainment_pct=figures.attainment_pct if measured and figures else None,
        time_progress_pct=figures.time_progress_pct if figures else None,
        pace_gap_points=figures.pace_gap_points if measured and figures else None,
        gap=figures.gap if measured and figures else None,
        pipeline=total.open if measured and total else None,
        weighted_pipeline=total.weighted if measured and total else None,
        coverage=figures.coverage if measured and figures else None,
        win_rate=None if won is None or lost is None else math.percent(won, won + lost),
        won=won,
        lost=lost,
        activities=activities,
        alerts=alerts,
        original_target=total.original if total is not None else None,
        original_attainment_pct=math.percent(total.actual, total.original) if measured and total else None,
    )


def _headline(plan: TargetPlan, node: dict | None, total: _Sum, clock: _Clock) -> Headline:
    figures = ratios(total.target, total.actual, total.open, clock)
    measured = total.measured
    return Headline(
        metric=plan.metric.code,
        metric_name=plan.metric.display_name,
        unit=plan.metric.unit,
        plan_id=plan.pk,
        node_id=node["id"] if node else None,
        period_key=plan.period_key,
        period_start=plan.period_start,
        period_end=plan.period_end,
        target=total.target,
        actual=total.actual if measured else None,
        attainment_pct=figures.attainment_pct if measured else None,
        time_progress_pct=figures.time_progress_pct,
        pace_gap_points=figures.pace_gap_points if measured else None,
        gap=figures.gap if measured else None,
        weighted_pipeline=total.weighted if measured else None,
        open_pipeline=total.open if measured else None,
        coverage=figures.coverage if measured else None,
        forecast_run_rate=figures.run_rate if measured else None,
        original_target=total.original,
        original_attainment_pct=math.percent(total.actual, total.original) if measured else None,
    )


def cumulative_buckets(start: date, end: date, day: date, fiscal_start_month: int) -> list[periods.Period]:
    """The weeks (a period of a quarter or less) or months (longer) of [start, end] that began by `day`."""
    kind = periods.WEEK if (end - start).days <= 92 else periods.MONTH
    parent = periods.Period(start, end, periods.YEAR if kind == periods.MONTH else periods.QUARTER, 0, 0)
    fy = periods.fiscal_year_of(start, fiscal_start_month)
    parent = dataclasses.replace(parent, fiscal_year=fy)
    try:
        parts = periods.children(parent, kind, fiscal_start_month)
    except ValueError:
        parts = []
    return [p for p in parts if p.start <= day]


def _cumulative(
    plan: TargetPlan, node_ids: list[int], target: Decimal, day: date, working_days: bool, fiscal_start_month: int
) -> tuple[CumulativePoint, ...]:
    """The actual of the nodes at the end of each week or month of the plan's period up to `day` (each node's
    newest snapshot by then, summed) and the target's pace then. One query."""
    if not node_ids:
        return ()
    buckets = cumulative_buckets(plan.period_start, plan.period_end, day, fiscal_start_month)
    rows = (
        AttainmentSnapshot.objects.filter(node_id__in=node_ids, as_of__lte=day)
        .order_by("as_of")
        .values_list("node_id", "as_of", "actual")
    )
    history = list(rows)
    points = []
    current: dict[int, Decimal] = {}
    i = 0
    for bucket in buckets:
        end = min(bucket.end, day)
        while i < len(history) and history[i][1] <= end:
            current[history[i][0]] = history[i][2]
            i += 1
        done, whole = math.elapsed_share(plan.period_start, plan.period_end, end, working_days=working_days)
        pace = quantize(target * done / whole)
        # Before the first snapshot nothing is known (which is not zero).
        actual = sum(current.values(), ZERO) if current else None
        points.append(CumulativePoint(bucket.key, end, actual, pace))
    return tuple(points)


def _waterfall(context: _Context, plan: TargetPlan, head: Headline) -> Waterfall:
    """Target, won (the actual), and the open deals of the region's teams expected to close in the plan's
    period in the commit and best-case forecast categories: the forecast call's one definition
    (`coaching.selectors.deal_figures`: commit = won + open commit, best case = commit + open best case), of
    which the waterfall shows the open parts."""
    from coaching.selectors import subtree_deal_figures  # coaching.selectors builds reviews: imported when needed

    period = periods.Period(plan.period_start, plan.period_end, plan.period_kind, 0, 0)
    figures = subtree_deal_figures(context.user, context.region, context.paths, period)
    return Waterfall(
        target=head.target or ZERO,
        won=head.actual or ZERO,
        commit=figures.commit - figures.won,
        best_case=figures.best_case - figures.commit,
    )
