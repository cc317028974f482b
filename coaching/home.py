"""Reads of the home pages (工作台): what each role sees first after logging in.

- A rep: his targets in force (this month, quarter and year) against time progress, his deals that need action,
  his open alerts and this week's activities.
- A manager: his team's review of this week without the charts (`coaching.review.build_review`: KPI tiles per
  metric of the plans in force, the reps behind pace).
- A director: the same for the company, with one row per region below, and a heatmap of attainment per region
  and product line.

Every list is bounded (a rep's own open deals that need action, at most `ACTION_LIMIT`) and every figure comes
from the selectors the other pages use, so a home page and the page its tile links to agree.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from coaching.review import BY_REP, Review, build_review, default_region, plot_div, week_of
from crm.models import Region, Role, User
from crm.scopes import region_subtree
from pipeline.models import OPEN, Activity, Opportunity
from pipeline.selectors import deals_visible, stuck_in_stage
from salesmgmt.lib import attainment as math
from salesmgmt.lib.money import ZERO
from targets.alerts.messages import alert_link, alert_message
from targets.alerts.selectors import alerts_filtered
from targets.attainment.selectors import attainment_of
from targets.models import AlertState, PeriodKind, PlanStatus, TargetNode, TargetPlan
from targets.planning.selectors import nodes_visible_to, owned_targets

ACTION_LIMIT = 20
TARGET_LIMIT = 20
HOME_REPS = 60  # a manager's home lists his reps up to this many, his sub-regions beyond
ALERT_LIMIT = 10
ACTIVITY_LIMIT = 30

# Why a deal needs action (the reasons shown beside it).
CLOSE_PASSED, STUCK, NEXT_STEP_DUE = "close_passed", "stuck", "next_step_due"


def role_of(user: User) -> str:
    """Which home page: "director" (directors and admins), "manager" or "rep"."""
    if user.is_director_or_above:
        return "director"
    if user.is_manager_or_above:
        return "manager"
    return "rep"


# --- rep ------------------------------------------------------------------------------------------


def my_targets_now(user: User, today: date) -> list[TargetNode]:
    """The user's own targets of approved plans whose period holds `today` (month, quarter, year; the shortest
    first, at most `TARGET_LIMIT`), each with `.attainment` (the latest figures, or None): a few queries, whatever
    their number."""
    kinds = (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR)
    nodes = list(
        owned_targets(user)
        .filter(
            plan__status=PlanStatus.APPROVED,
            period_kind__in=kinds,
            period_start__lte=today,
            period_end__gte=today,
        )
        .order_by(F("period_rank").desc(), "plan__metric__name", "path")[:TARGET_LIMIT]
    )
    figures = attainment_of(nodes)
    for node in nodes:
        node.attainment = figures.get(node.pk)  # type: ignore[attr-defined]  # for the template
    return nodes


def deals_needing_action(user: User, today: date, *, limit: int = ACTION_LIMIT) -> list[Opportunity]:
    """The user's own open deals whose close date has passed, that sit in their stage beyond its expected days, or
    whose next step is due (today or before), soonest close date first; each with `.reasons`. Two queries."""
    now = timezone.now()
    stuck = stuck_in_stage(now)
    due = Q(expected_close_date__lt=today) | stuck | Q(next_step_date__lte=today)
    deals = list(deals_visible(user).filter(OPEN, owner=user).filter(due).order_by("expected_close_date", "id")[:limit])
    for deal in deals:
        reasons = []
        if deal.expected_close_date and deal.expected_close_date < today:
            reasons.append((CLOSE_PASSED, _("Close date passed")))
        days = deal.stage.expected_days
        if days is not None and deal.stage_entered_at < now - timedelta(days=days):
            reasons.append((STUCK, _("In stage beyond %(days)d days") % {"days": days}))
        if deal.next_step_date and deal.next_step_date <= today:
            reasons.append((NEXT_STEP_DUE, _("Next step due")))
        deal.reasons = reasons  # type: ignore[attr-defined]  # for the template
    return deals


def my_open_alerts(user: User, *, limit: int = ALERT_LIMIT) -> list:
    alerts = list(alerts_filtered(user, states=(AlertState.OPEN,), owner=user)[:limit])
    for alert in alerts:
        alert.message = alert_message(alert)  # type: ignore[attr-defined]
        alert.link = alert_link(alert, user)  # type: ignore[attr-defined]
    return alerts


def my_week_activities(user: User, today: date, *, limit: int = ACTIVITY_LIMIT) -> QuerySet[Activity]:
    monday = week_of(today)
    return (
        Activity.objects.visible_to(user)
        .filter(owner=user, date__gte=monday, date__lte=monday + timedelta(days=6))
        .select_related("customer", "opportunity")
        .order_by("date", "id")[:limit]
    )


# --- manager and director -------------------------------------------------------------------------


def team_review(user: User, today: date) -> Review | None:
    """A manager's team this week without charts: one row per rep (the reps behind pace come from it), or per
    sub-region when his region holds more than `HOME_REPS` reps (an area's manager: a page he opens every
    morning stays fast, and the review has the reps)."""
    region = user.region if user.region_id else None
    if region is None:
        return None
    reps = User.objects.filter(region__in=region_subtree(region), role=Role.REP, is_active=True)[: HOME_REPS + 1]
    rows_by = BY_REP if reps.count() <= HOME_REPS else ""
    return build_review(
        user, region=region, week=today, with_charts=False, with_activity=False, rows_by=rows_by, today=today
    )


def company_review(user: User, today: date) -> Review | None:
    """The company this week, one row per region below it, without charts."""
    region = default_region(user)
    if region is None:
        return None
    return build_review(user, region=region, week=today, with_charts=False, with_activity=False, today=today)


@dataclasses.dataclass(frozen=True)
class Heatmap:
    """Attainment % per region (rows) and product line (columns): None where no target is set."""

    regions: list[str]
    lines: list[str]
    cells: list[list[Decimal | None]]  # [region][line]
    targets: list[list[Decimal | None]]
    actuals: list[list[Decimal | None]]

    @property
    def named_rows(self) -> list[tuple[str, list[Decimal | None]]]:
        return list(zip(self.regions, self.cells, strict=True))

    def chart(self) -> SafeString:
        if not self.regions or not self.lines:
            return SafeString("")
        z = [[None if v is None else float(v) for v in row] for row in self.cells]
        text = [["—" if v is None else f"{v}%" for v in row] for row in self.cells]
        data = [
            {
                "type": "heatmap",
                "z": z,
                "x": self.lines,
                "y": self.regions,
                "text": text,
                "texttemplate": "%{text}",
                "colorscale": [[0, "#c62828"], [0.5, "#ffb74d"], [1, "#2e7d32"]],
                "zmin": 0,
                "zmax": 100,
                "name": _("Attainment %"),
                "colorbar": {"ticksuffix": "%"},
            }
        ]
        return plot_div(data, {}, "home-heatmap")


def attainment_heatmap(user: User, region: Region | int, plan: TargetPlan | None) -> Heatmap | None:
    """Attainment per region directly below `region` and product line, from the plan's targets that have both
    (over the plan's whole period, without rep, product or segment; the topmost of each pair), read from their
    latest snapshots: two queries. None without such targets."""
    if plan is None:
        return None
    qs = (
        nodes_visible_to(user)
        .filter(
            plan=plan,
            period_key=plan.period_key,
            region__parent=region.pk if isinstance(region, Region) else region,
            product_line__isnull=False,
            product__isnull=True,
            rep__isnull=True,
            segment="",
        )
        .exclude(parent__region=F("region"), parent__product_line=F("product_line"), parent__period_key=F("period_key"))
        .select_related("region", "product_line")
        .order_by("region__name", "product_line__name", "path")
    )
    nodes = list(qs)
    if not nodes:
        return None
    figures = attainment_of(nodes)
    regions = sorted({n.region.name for n in nodes if n.region})
    lines = sorted({n.product_line.name for n in nodes if n.product_line})
    target = {(r, line): ZERO for r in regions for line in lines}
    actual: dict[tuple[str, str], Decimal] = {}
    for node in nodes:
        if node.region is None or node.product_line is None:
            continue
        key = (node.region.name, node.product_line.name)
        att = figures.get(node.pk)
        if att is None:
            target[key] += node.amount
            continue
        target[key] += att.snapshot.target
        actual[key] = actual.get(key, ZERO) + att.snapshot.actual
    cells, targets, actuals = [], [], []
    for r in regions:
        cells.append([math.percent(actual[(r, ln)], target[(r, ln)]) if (r, ln) in actual else None for ln in lines])
        targets.append([target[(r, line)] or None for line in lines])
        actuals.append([actual.get((r, line)) for line in lines])
    return Heatmap(regions, lines, cells, targets, actuals)


def primary_plan(review: Review | None) -> TargetPlan | None:
    head = review.primary if review else None
    return TargetPlan.objects.select_related("metric").filter(pk=head.plan_id).first() if head else None
