"""Reads of the forecast call and the review meetings: scoped querysets, the deal-based forecast figures, the
team roll-up, forecast accuracy, and what a meeting shows (live while planned, its snapshot once held).

Every aggregate is one SQL query (conditional sums, grouped by owner); the latest submission of each person is
picked by a correlated subquery, so no query count grows with the number of reps or weeks.

The deal-based forecast of a period (defined here once, used by the prefill, the roll-up and the API):
- won: Σ amount (company currency) of the deals won with a close day in the period;
- commit: won + Σ of the open deals in the commit category expected to close in the period;
- best case: commit + Σ of the open deals in the best-case category expected to close in the period.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.utils import timezone

from coaching.models import (
    ActionItem,
    ActionItemStatus,
    ForecastLevel,
    ForecastSubmission,
    Meeting,
    MeetingStatus,
)
from coaching.review import Review, build_review
from crm.models import CompanySettings, DataScope, Region, Role, User
from crm.rollup import subtree_totals
from crm.scopes import region_subtree, sees_subtree, visible_regions
from pipeline.models import OPEN, ForecastCategory, Opportunity
from pipeline.selectors import deals_visible
from salesmgmt.lib import periods as fiscal
from salesmgmt.lib.attainment import percent
from salesmgmt.lib.money import ZERO, quantize

FORECAST_KINDS = (fiscal.MONTH, fiscal.QUARTER)


def week_of(day: date) -> date:
    """The Monday of `day`'s week: the week a submission or a meeting belongs to."""
    return day - timedelta(days=day.weekday())


# --- periods -------------------------------------------------------------------------------------


def forecast_period(key: str) -> fiscal.Period:
    """The month or quarter of a period key (FY2026-M06, FY2026-Q2); ValueError for anything else."""
    period = fiscal.parse_key(key, CompanySettings.load().fiscal_year_start_month)
    if period.kind not in FORECAST_KINDS:
        raise ValueError(f"not a month or quarter: {key!r}")
    return period


def forecast_periods(today: date) -> list[fiscal.Period]:
    """The periods offered: the previous, current and next month and quarter (past ones for accuracy)."""
    company = CompanySettings.load()
    result: list[fiscal.Period] = []
    for kind in FORECAST_KINDS:
        current = company.period_of(today, kind)
        before = company.period_of(current.start - timedelta(days=1), kind)
        after = company.period_of(current.end + timedelta(days=1), kind)
        result += [before, current, after]
    return result


def current_period(today: date) -> fiscal.Period:
    return CompanySettings.load().period_of(today, fiscal.MONTH)


# --- scope ---------------------------------------------------------------------------------------


def _all(user: User) -> bool:
    return user.effective_scope == DataScope.ALL


def forecasts_visible_to(user: User | None) -> QuerySet[ForecastSubmission]:
    """A rep sees his own forecasts; a manager also his teams' (and sub-teams'); a director all."""
    if user is None or not user.is_authenticated:
        return ForecastSubmission.objects.none()
    qs = ForecastSubmission.objects.all()
    if _all(user):
        return qs
    if not user.is_manager_or_above:
        return qs.filter(owner=user)
    return qs.filter(Q(owner=user) | Q(region__in=visible_regions(user)))


def teams_for(user: User) -> QuerySet[Region]:
    """The teams whose forecast and meetings `user` may run: managers and directors, within their regions."""
    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return Region.objects.none()
    return visible_regions(user)


def default_team(user: User) -> Region | None:
    """The team a page opens on: the region the user manages (the topmost), else his own region."""
    teams = teams_for(user)
    managed = teams.filter(manager=user).order_by("depth", "path").first()
    if managed is not None:
        return managed
    if user.region_id and teams.filter(pk=user.region_id).exists():
        return user.region
    return teams.order_by("depth", "path").first()


def team_members(team: Region) -> QuerySet[User]:
    """The people of a team: its manager and everyone whose region is in its subtree."""
    return User.objects.filter(Q(region__in=region_subtree(team)) | Q(pk=team.manager_id), is_active=True)


def team_reps(team: Region) -> QuerySet[User]:
    return User.objects.filter(region__in=region_subtree(team), role=Role.REP, is_active=True)


def meetings_visible_to(user: User | None) -> QuerySet[Meeting]:
    """Managers see their teams' (and sub-teams') meetings, directors all; reps none (their items only)."""
    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return Meeting.objects.none()
    if _all(user):
        return Meeting.objects.all()
    return Meeting.objects.filter(region__in=visible_regions(user))


def items_visible_to(user: User | None) -> QuerySet[ActionItem]:
    """The items a user owns, and, for a manager, his teams' items; a director all."""
    if user is None or not user.is_authenticated:
        return ActionItem.objects.none()
    if _all(user):
        return ActionItem.objects.all()
    if not user.is_manager_or_above:
        return ActionItem.objects.filter(owner=user)
    return ActionItem.objects.filter(Q(owner=user) | Q(region__in=visible_regions(user)))


# --- deal-based figures ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DealFigures:
    """The deal-based forecast of a period (module docstring): won, commit, best case."""

    won: Decimal = ZERO
    commit: Decimal = ZERO
    best_case: Decimal = ZERO


def _sums(period: fiscal.Period) -> dict:
    won = Q(stage__is_won=True, closed_on__range=(period.start, period.end))
    expected = OPEN & Q(expected_close_date__range=(period.start, period.end))
    return {
        "won": Sum("amount_company", filter=won),
        "open_commit": Sum("amount_company", filter=expected & Q(forecast_category=ForecastCategory.COMMIT)),
        "open_best": Sum("amount_company", filter=expected & Q(forecast_category=ForecastCategory.BEST_CASE)),
    }


def _figures(row: Mapping[str, Any]) -> DealFigures:
    # Sums of cents are exact; SQLite hands them back with a float's tail, so they are brought back to cents.
    won = quantize(Decimal(row["won"] or ZERO))
    commit = won + quantize(Decimal(row["open_commit"] or ZERO))
    return DealFigures(won=won, commit=commit, best_case=commit + quantize(Decimal(row["open_best"] or ZERO)))


def deal_figures(deals: QuerySet[Opportunity], period: fiscal.Period) -> DealFigures:
    """The deal-based forecast of some (already scoped) deals: one aggregate query."""
    return _figures(deals.order_by().aggregate(**_sums(period)))


def subtree_deal_figures(viewer: User, region: Region, paths: Mapping[int, str], period: fiscal.Period) -> DealFigures:
    """`deal_figures` of the deals credited to `region`'s subtree (`paths`: its regions' id -> path) that `viewer`
    sees. Where he sees all of them (`sees_subtree`), added up from per-region sums kept in the cache
    (`crm.rollup`): only the teams changed since they were kept are summed again."""
    if not sees_subtree(viewer, region):
        return deal_figures(deals_visible(viewer).filter(region__in=list(paths)), period)
    sums = _sums(period)

    def cents(value: object) -> Decimal:
        return quantize(Decimal(value or ZERO))  # type: ignore[arg-type]

    def own(ids: list[int]) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
        rows: Iterable[Mapping[str, Any]] = (
            Opportunity.objects.filter(region__in=ids).order_by().values("region").annotate(**sums)
        )
        return {r["region"]: (cents(r["won"]), cents(r["open_commit"]), cents(r["open_best"])) for r in rows}

    def add(
        a: tuple[Decimal, Decimal, Decimal], b: tuple[Decimal, Decimal, Decimal]
    ) -> tuple[Decimal, Decimal, Decimal]:
        return (a[0] + b[0], a[1] + b[1], a[2] + b[2])

    totals = subtree_totals(f"deal_figures:{period.start}:{period.end}", paths, own, add, (ZERO, ZERO, ZERO))
    won, commit, best = totals[region.pk]
    return _figures({"won": won, "open_commit": commit, "open_best": best})


def deal_figures_by_owner(deals: QuerySet[Opportunity], period: fiscal.Period) -> dict[int, DealFigures]:
    """The same per deal owner: one grouped query."""
    rows = deals.order_by().values("owner").annotate(**_sums(period))
    return {row["owner"]: _figures(row) for row in rows}


def total_of(figures: Iterable[DealFigures]) -> DealFigures:
    """The figures of several groups of deals added up (each group's sums are already in cents)."""
    rows = list(figures)
    return DealFigures(
        won=sum((f.won for f in rows), ZERO),
        commit=sum((f.commit for f in rows), ZERO),
        best_case=sum((f.best_case for f in rows), ZERO),
    )


def prefill(user: User, period: fiscal.Period) -> DealFigures:
    """What a rep's forecast form starts from: the deal-based figures of his own deals."""
    return deal_figures(deals_visible(user).filter(owner=user), period)


def team_deals(viewer: User, team: Region) -> QuerySet[Opportunity]:
    """The deals credited to the team's subtree (业绩归属), as far as `viewer` sees them."""
    return deals_visible(viewer).filter(region__in=region_subtree(team))


# --- submissions -----------------------------------------------------------------------------------


def latest_submissions(
    qs: QuerySet[ForecastSubmission], *, by: str, period_key: str, level: str, up_to: date | None = None
) -> QuerySet[ForecastSubmission]:
    """The latest submission of each `by` (owner or region) for a period, made in week `up_to` or before."""
    rows = qs.filter(period_key=period_key, level=level)
    if up_to is not None:
        rows = rows.filter(week__lte=up_to)
    newer = ForecastSubmission.objects.filter(
        **{by: OuterRef(by)}, period_key=period_key, level=level, pk__in=rows.values("pk")
    ).order_by("-submitted_at", "-id")
    return rows.filter(pk=Subquery(newer.values("pk")[:1]))


def submission_history(viewer: User, *, owner: User, period_key: str) -> QuerySet[ForecastSubmission]:
    return forecasts_visible_to(viewer).filter(owner=owner, level=ForecastLevel.REP, period_key=period_key)


@dataclasses.dataclass
class RepRow:
    rep: User
    latest: ForecastSubmission | None
    deals: DealFigures
    week: date

    @property
    def submitted_this_week(self) -> bool:
        return self.latest is not None and self.latest.week == self.week


@dataclasses.dataclass
class TeamRow:
    region: Region
    latest: ForecastSubmission | None
    week: date

    @property
    def submitted_this_week(self) -> bool:
        return self.latest is not None and self.latest.week == self.week


@dataclasses.dataclass
class Rollup:
    """A team's forecast for a period as of a week: each rep's latest submission beside his deal-based figures,
    the sub-teams' submissions, the reps' sum and the team's own (manager's) latest submission."""

    team: Region
    period: fiscal.Period
    week: date
    reps: list[RepRow]
    teams: list[TeamRow]
    deals: DealFigures
    team_latest: ForecastSubmission | None

    @property
    def missing(self) -> list[RepRow]:
        return [row for row in self.reps if not row.submitted_this_week]

    @property
    def commit(self) -> Decimal:
        return sum((row.latest.commit for row in self.reps if row.latest), ZERO)

    @property
    def best_case(self) -> Decimal:
        return sum((row.latest.best_case for row in self.reps if row.latest), ZERO)

    @property
    def teams_commit(self) -> Decimal:
        return sum((row.latest.commit for row in self.teams if row.latest), ZERO)

    @property
    def teams_best_case(self) -> Decimal:
        return sum((row.latest.best_case for row in self.teams if row.latest), ZERO)


def rollup(viewer: User, team: Region, period: fiscal.Period, week: date) -> Rollup:
    """The roll-up of `team` (already checked visible to `viewer`) as of `week`: five queries, whatever its size."""
    reps = list(team_reps(team).select_related("region").order_by("region__path", "first_name", "username"))
    visible = forecasts_visible_to(viewer)
    latest = {
        s.owner_id: s
        for s in latest_submissions(
            visible.filter(owner__in=[r.pk for r in reps]),
            by="owner",
            period_key=period.key,
            level=ForecastLevel.REP,
            up_to=week,
        )
    }
    by_owner = deal_figures_by_owner(team_deals(viewer, team), period)
    rows = [RepRow(rep=r, latest=latest.get(r.pk), deals=by_owner.get(r.pk, DealFigures()), week=week) for r in reps]
    children = list(Region.objects.filter(parent=team, manager__isnull=False).order_by("path"))
    team_subs = {
        s.region_id: s
        for s in latest_submissions(
            visible.filter(region__in=[team.pk, *(c.pk for c in children)]),
            by="region",
            period_key=period.key,
            level=ForecastLevel.TEAM,
            up_to=week,
        )
    }
    return Rollup(
        team=team,
        period=period,
        week=week,
        reps=rows,
        teams=[TeamRow(region=c, latest=team_subs.get(c.pk), week=week) for c in children],
        deals=total_of(by_owner.values()),  # every owner's deals credited to the team, the reps' and others'
        team_latest=team_subs.get(team.pk),
    )


# --- accuracy --------------------------------------------------------------------------------------


def period_weeks(period: fiscal.Period) -> list[date]:
    """The Mondays of the weeks of a period (the first one may start before it)."""
    weeks, monday = [], week_of(period.start)
    while monday <= period.end:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


@dataclasses.dataclass(frozen=True)
class AccuracyCell:
    week: date
    commit: Decimal | None
    best_case: Decimal | None
    actual: Decimal

    @property
    def commit_pct(self) -> Decimal | None:
        """Forecast accuracy: submitted ÷ actual, as a percentage (None without a submission or an actual)."""
        return None if self.commit is None else percent(self.commit, self.actual)

    @property
    def best_case_pct(self) -> Decimal | None:
        return None if self.best_case is None else percent(self.best_case, self.actual)


@dataclasses.dataclass
class AccuracyRow:
    key: str
    name: str
    actual: Decimal
    cells: list[AccuracyCell]


@dataclasses.dataclass
class Accuracy:
    period: fiscal.Period
    weeks: list[date]
    reps: list[AccuracyRow]
    team: AccuracyRow | None


def _week_table(subs: Iterable[ForecastSubmission], key: str) -> dict[tuple[int, date], ForecastSubmission]:
    return {(getattr(s, key), s.week): s for s in subs}


def _cells(weeks: list[date], found: dict, who: int, actual: Decimal) -> list[AccuracyCell]:
    cells = []
    for week in weeks:
        sub = found.get((who, week))
        cells.append(
            AccuracyCell(week, sub and sub.commit, sub and sub.best_case, actual)
            if sub
            else AccuracyCell(week, None, None, actual)
        )
    return cells


def accuracy(viewer: User, period: fiscal.Period, *, team: Region | None = None) -> Accuracy:
    """Forecast accuracy of a period, week by week (the submission of week W is the latest made in W): per rep
    of `team` (or the viewer alone, without a team) and for the team's own submissions. Four queries."""
    weeks = period_weeks(period)
    visible = forecasts_visible_to(viewer)
    in_weeks = visible.filter(period_key=period.key, week__in=weeks)
    if team is None:
        reps = [viewer]
        deals = deals_visible(viewer).filter(owner=viewer)
    else:
        reps = list(team_reps(team).order_by("region__path", "first_name", "username"))
        deals = team_deals(viewer, team)
    rep_subs = in_weeks.filter(level=ForecastLevel.REP, owner__in=[r.pk for r in reps])
    newest = ForecastSubmission.objects.filter(
        owner=OuterRef("owner"), week=OuterRef("week"), level=ForecastLevel.REP, period_key=period.key
    ).order_by("-submitted_at", "-id")
    found = _week_table(rep_subs.filter(pk=Subquery(newest.values("pk")[:1])), "owner_id")
    won = deal_figures_by_owner(deals, period)
    rows = [
        AccuracyRow(
            key=f"rep:{r.pk}",
            name=str(r),
            actual=won.get(r.pk, DealFigures()).won,
            cells=_cells(weeks, found, r.pk, won.get(r.pk, DealFigures()).won),
        )
        for r in reps
    ]
    team_row = None
    if team is not None:
        team_won = total_of(won.values()).won
        newest_team = ForecastSubmission.objects.filter(
            region=OuterRef("region"), week=OuterRef("week"), level=ForecastLevel.TEAM, period_key=period.key
        ).order_by("-submitted_at", "-id")
        team_subs = in_weeks.filter(level=ForecastLevel.TEAM, region=team)
        found_team = _week_table(team_subs.filter(pk=Subquery(newest_team.values("pk")[:1])), "region_id")
        team_row = AccuracyRow(
            key=f"team:{team.pk}", name=team.name, actual=team_won, cells=_cells(weeks, found_team, team.pk, team_won)
        )
    return Accuracy(period=period, weeks=weeks, reps=rows, team=team_row)


# --- meetings --------------------------------------------------------------------------------------


def carried_items(meeting: Meeting) -> QuerySet[ActionItem]:
    """The items of earlier meetings of the team still open, or closed in this meeting (carried forward)."""
    return (
        ActionItem.objects.filter(region=meeting.region_id, meeting__week__lt=meeting.week)
        .filter(Q(status=ActionItemStatus.OPEN) | Q(closed_in=meeting))
        .select_related("owner", "node__plan", "opportunity", "alert__rule", "meeting")
        .order_by("due_date", "id")
    )


def new_items(meeting: Meeting) -> QuerySet[ActionItem]:
    return meeting.new_items.select_related("owner", "node__plan", "opportunity", "alert__rule", "meeting").order_by(
        "due_date", "id"
    )


def previous_held(meeting: Meeting) -> Meeting | None:
    return (
        Meeting.objects.filter(region=meeting.region_id, status=MeetingStatus.HELD, week__lt=meeting.week)
        .order_by("-week")
        .first()
    )


# What a meeting shows, as JSON-safe data: built live while the meeting is planned, and saved as the meeting's
# snapshot when it is held, so the page renders the same data either way.

DELTA_FIELDS = ("target", "actual", "attainment_pct", "gap", "weighted_pipeline", "coverage", "forecast_run_rate")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def item_data(item: ActionItem) -> dict:
    return {
        "id": item.pk,
        "what": item.what,
        "owner": item.owner_id,
        "owner_name": str(item.owner),
        "due_date": item.due_date.isoformat(),
        "status": item.status,
        "notes": item.notes,
        "created_week": item.meeting.week.isoformat(),
        "node": {"id": item.node_id, "label": f"{item.node.plan.name} · {item.node.label}"} if item.node else None,
        "opportunity": {"id": item.opportunity_id, "name": item.opportunity.name} if item.opportunity else None,
        "alert": {"id": item.alert_id, "label": str(item.alert.rule)} if item.alert else None,
    }


def forecast_data(roll: Rollup) -> dict:
    team = roll.team_latest
    return {
        "period": roll.period.key,
        "week": roll.week.isoformat(),
        "reps": [
            {
                "id": row.rep.pk,
                "name": str(row.rep),
                "commit": _money(row.latest.commit if row.latest else None),
                "best_case": _money(row.latest.best_case if row.latest else None),
                "submitted_week": row.latest.week.isoformat() if row.latest else None,
                "this_week": row.submitted_this_week,
                "deals_won": _money(row.deals.won),
                "deals_commit": _money(row.deals.commit),
                "deals_best_case": _money(row.deals.best_case),
            }
            for row in roll.reps
        ],
        "rollup_commit": _money(roll.commit),
        "rollup_best_case": _money(roll.best_case),
        "deals": {
            "won": _money(roll.deals.won),
            "commit": _money(roll.deals.commit),
            "best_case": _money(roll.deals.best_case),
        },
        "team": None
        if team is None
        else {
            "commit": _money(team.commit),
            "best_case": _money(team.best_case),
            "rollup_commit": _money(team.rollup_commit),
            "note": team.note,
            "week": team.week.isoformat(),
            "by": str(team.submitted_by),
        },
    }


def headline_deltas(current: dict, previous: dict | None) -> dict:
    """Week over week: each headline figure minus the same metric's figure in the previous held meeting."""
    if not previous:
        return {}
    before = {row["metric"]: row for row in previous.get("review", {}).get("headline", [])}
    deltas: dict[str, dict[str, str | None]] = {}
    for row in current.get("headline", []):
        old = before.get(row["metric"])
        if old is None:
            continue
        deltas[row["metric"]] = {
            f: None if row.get(f) is None or old.get(f) is None else str(Decimal(row[f]) - Decimal(old[f]))
            for f in DELTA_FIELDS
        }
        deltas[row["metric"]]["metric_name"] = row.get("metric_name") or row["metric"]
    return deltas


def meeting_data(viewer: User, meeting: Meeting) -> dict:
    """What `meeting` shows: its snapshot once held, else built now (the review, the forecast, the items)."""
    if meeting.is_held:
        return meeting.snapshot
    review = weekly_review(viewer, region=meeting.region, week=meeting.week).to_snapshot()
    previous = previous_held(meeting)
    period = CompanySettings.load().period_of(meeting.week, fiscal.MONTH)
    return {
        "review": review,
        "forecast": forecast_data(rollup(viewer, meeting.region, period, meeting.week)),
        "items": {
            "carried": [item_data(i) for i in carried_items(meeting)],
            "new": [item_data(i) for i in new_items(meeting)],
        },
        "attendees": [str(u) for u in meeting.attendees.order_by("first_name", "username")],
        "previous": None if previous is None else {"id": previous.pk, "week": previous.week.isoformat()},
        "deltas": headline_deltas(review, previous.snapshot if previous else None),
    }


# --- the review wired to the forecast call and the meetings ------------------------------------------


def last_meeting_day(user: User, team: Region | None) -> date | None:
    """The day the team's last review meeting was held, if `user` sees the team's meetings: where the pipeline
    flow starts by default ("since the last meeting"). None without one. One query."""
    if team is None:
        return None
    held = (
        meetings_visible_to(user)
        .filter(region=team, status=MeetingStatus.HELD, held_at__isnull=False)
        .order_by("-held_at")
        .values_list("held_at", flat=True)
        .first()
    )
    return timezone.localdate(held) if held is not None else None


def next_meeting(user: User, team: Region | int | None, today: date) -> Meeting | None:
    """The review meeting a team's manager or director looks at next: the team's earliest planned meeting of
    this week or later; failing that, its latest held one (the page offers to plan the next). None when the
    user may not see the team's meetings (`meetings_visible_to`) or there is none. One query: the planned ones
    first, by week; then the held ones, the latest first."""
    if team is None:
        return None
    planned = Q(status=MeetingStatus.PLANNED, week__gte=week_of(today))
    return (
        meetings_visible_to(user)
        .filter(planned | Q(status=MeetingStatus.HELD), region=team)
        .select_related("region")
        .alias(
            held=Case(When(planned, then=Value(0)), default=Value(1)),
            planned_week=Case(When(planned, then=F("week"))),
            planned_pk=Case(When(planned, then=F("pk"))),
        )
        .order_by("held", "planned_week", "planned_pk", "-week", "-pk")
        .first()
    )


def meeting_of_week(user: User, team: Region, week: date) -> Meeting | None:
    """The team's meeting of the week of `week`, if `user` sees it."""
    return meetings_visible_to(user).filter(region=team, week=week_of(week)).first()


def _submission_data(sub: ForecastSubmission | None) -> dict | None:
    if sub is None:
        return None
    return {
        "commit": _money(sub.commit),
        "best_case": _money(sub.best_case),
        "week": sub.week.isoformat(),
        "by": str(sub.submitted_by),
        "note": sub.note,
    }


def submitted_forecast(viewer: User, team: Region, week: date) -> dict | None:
    """What the review's headline shows of the forecast call for the week of `week` (JSON-safe, kept in a held
    meeting's snapshot): the period is the month of the week; `team` is the team's own latest submission by
    then (`rollup(...).team_latest`); `reps` the sum of its reps' latest submissions by then (the roll-up, as
    the forecast page adds them up), with how many reps submitted. None when nothing was submitted. Three
    queries, whatever the team's size."""
    monday = week_of(week)
    period = CompanySettings.load().period_of(monday, fiscal.MONTH)
    visible = forecasts_visible_to(viewer)
    team_sub = (
        latest_submissions(
            visible.filter(region=team), by="region", period_key=period.key, level=ForecastLevel.TEAM, up_to=monday
        )
        .select_related("submitted_by")
        .first()
    )
    reps = latest_submissions(
        visible.filter(owner__in=team_reps(team).values("pk")),
        by="owner",
        period_key=period.key,
        level=ForecastLevel.REP,
        up_to=monday,
    ).aggregate(commit=Sum("commit"), best_case=Sum("best_case"), n=Count("pk"))
    if team_sub is None and not reps["n"]:
        return None
    return {
        "period": period.key,
        "week": monday.isoformat(),
        "team": _submission_data(team_sub),
        "reps": None
        if not reps["n"]
        else {
            "commit": _money(quantize(Decimal(reps["commit"]))),
            "best_case": _money(quantize(Decimal(reps["best_case"]))),
            "count": reps["n"],
        },
    }


def weekly_review(viewer: User, *, region: Region, week: date, **options: Any) -> Review:
    """The review of `region` for the week of `week` (`coaching.review.build_review`, same options) with the
    forecast call's submitted figures in its headline: what the review page, the home pages and a meeting show
    (a held meeting keeps it in its snapshot)."""
    review = build_review(viewer, region=region, week=week, **options)
    return dataclasses.replace(review, submitted_forecast=submitted_forecast(viewer, region, review.week))
