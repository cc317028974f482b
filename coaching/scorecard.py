"""The scorecard (过程量 + 结果量): a score per person per period from weighted, capped measures.

The formula (one `ScorecardConfig` per role and period, its items the measures):

    score = Σᵢ weightᵢ × min(ratioᵢ, capᵢ)        ratioᵢ = actualᵢ ÷ targetᵢ

- a result measure (signed revenue, collections...) is the person's attainment of that metric: the latest figures
  (actual and target) of his target in the period (his topmost target node of that period in an approved plan of
  the metric; several such nodes add up);
- a process measure (visits, calls, meetings, deals created, deals reaching a stage, customers covered) is the
  same when he has a target of that process metric; without one, his count of the process facts in the period (up
  to today) against the item's default target;
- a measure without any target has no ratio: it scores 0 and is flagged (`Component.missing_target`);
- weights are points (e.g. 40 + 30 + 30 = 100: a person at 100 % of every measure scores 100); caps are ratios
  (1.20 = a measure counts up to 120 %). Components are exact; the score is rounded once, to 0.1 (half up).

Set-based: one query for the config, one for every person's target figures, one per process metric without targets
(grouped by person), whatever the number of people.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Exists, OuterRef, Sum
from django.utils import timezone

from coaching.models import ScorecardConfig, ScorecardItem
from crm.models import CompanySettings, Region, Role, User
from crm.scopes import region_subtree, visible_users
from salesmgmt.lib import attainment as math
from salesmgmt.lib import periods
from targets.models import PROCESS_SOURCES, LatestAttainment, PlanStatus, TargetNode
from targets.planning.weights import facts_in, process_facts

SCORE_PLACES = Decimal("0.1")
EDITORS = (Role.ADMIN, Role.DIRECTOR, Role.MANAGER)


@dataclasses.dataclass(frozen=True)
class Component:
    """One measure of one person's score."""

    item: ScorecardItem
    actual: Decimal
    target: Decimal | None
    from_targets: bool  # the figures are his target's (else a count against the item's default target)

    @property
    def ratio(self) -> Decimal | None:
        """actual ÷ target, exact (None without a target)."""
        return None if not self.target else Decimal(self.actual) / Decimal(self.target)

    @property
    def missing_target(self) -> bool:
        return self.ratio is None

    @property
    def capped(self) -> Decimal:
        """min(ratio, cap); 0 without a target."""
        return Decimal(0) if self.ratio is None else min(self.ratio, self.item.cap)

    @property
    def is_capped(self) -> bool:
        return self.ratio is not None and self.ratio > self.item.cap

    @property
    def points(self) -> Decimal:
        """weight × min(ratio, cap), exact."""
        return self.item.weight * self.capped

    @property
    def ratio_pct(self) -> Decimal | None:
        return None if not self.target else math.percent(self.actual, self.target)

    @property
    def points_shown(self) -> Decimal:
        return self.points.quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)


@dataclasses.dataclass
class Row:
    """One person's score, its breakdown (one component per item, in the config's order) and rank."""

    user: User
    components: list[Component]
    rank: int = 0

    @property
    def exact(self) -> Decimal:
        return sum((c.points for c in self.components), Decimal(0))

    @property
    def score(self) -> Decimal:
        """Σ weight × min(ratio, cap), rounded once to 0.1."""
        return self.exact.quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)


@dataclasses.dataclass
class Scorecard:
    config: ScorecardConfig | None
    period: periods.Period | None
    items: list[ScorecardItem]
    rows: list[Row]

    @property
    def max_score(self) -> Decimal:
        """What a person at or above every cap scores."""
        return sum((i.weight * i.cap for i in self.items), Decimal(0))


def config_for(role: str, period_key: str) -> ScorecardConfig | None:
    return ScorecardConfig.objects.filter(role=role, period_key=period_key).first()


def configs() -> list[ScorecardConfig]:
    return list(ScorecardConfig.objects.order_by("-period_key", "role"))


def can_edit(user: User) -> bool:
    return user.is_authenticated and (user.is_superuser or user.role in EDITORS)


def people_in_scope(user: User, role: str):
    """Whom `user` sees on the scorecard: a rep himself, a manager his team, a director everybody."""
    return visible_users(user).filter(role=role, is_active=True).order_by("username")


def _period(period_key: str) -> periods.Period | None:
    try:
        return periods.parse_key(period_key, CompanySettings.load().fiscal_year_start_month)
    except ValueError:
        return None


def _target_figures(user_ids: list[int], items: list[ScorecardItem], period_key: str) -> dict[tuple[int, int], tuple]:
    """(person id, metric id) -> (actual, target) of the person's targets in the period: the latest figures of his
    topmost nodes of that period in approved plans of the items' metrics. ONE query."""
    nested = TargetNode.objects.filter(
        pk=OuterRef("node__parent_id"), rep_id=OuterRef("node__rep_id"), period_key=period_key
    )
    rows = (
        LatestAttainment.objects.filter(
            node__rep_id__in=user_ids,
            node__period_key=period_key,
            node__plan__status=PlanStatus.APPROVED,
            node__plan__metric_id__in=[i.metric_id for i in items],
        )
        .exclude(Exists(nested))
        .order_by()
        .values("node__rep_id", "node__plan__metric_id")
        .annotate(actual=Sum("actual"), target=Sum("target"))
    )
    return {(r["node__rep_id"], r["node__plan__metric_id"]): (r["actual"], r["target"]) for r in rows}


def _process_counts(user_ids: list[int], item: ScorecardItem, period: periods.Period, today: date) -> dict[int, int]:
    """person id -> his count of the item's process facts in the period up to today (one grouped query)."""
    facts = process_facts(item.metric.source)
    end = min(period.end, today)
    if facts is None or end < period.start:
        return {}
    qs = facts_in(facts, item.metric, period.start, end).filter(**{f"{facts.rep}__in": user_ids})
    return {r[facts.rep]: r["n"] for r in qs.order_by().values(facts.rep).annotate(n=Count("pk"))}


def period_key_at(role: str, day: date) -> str | None:
    """The period of the newest scorecard of `role` whose period holds `day` (what the weekly review shows)."""
    for key in ScorecardConfig.objects.filter(role=role).order_by("-period_key").values_list("period_key", flat=True):
        period = _period(key)
        if period is not None and period.start <= day <= period.end:
            return key
    return None


def scorecard(
    user: User, *, role: str, period_key: str, today: date | None = None, region: Region | None = None
) -> Scorecard:
    """The scores of the people of `role` `user` may see for `period_key` (in `region`'s subtree, when given),
    ranked best first (ties share a rank)."""
    today = today or timezone.localdate()
    config = config_for(role, period_key)
    period = _period(period_key)
    if config is None or period is None:
        return Scorecard(config, period, [], [])
    items = list(config.items.select_related("metric"))
    scope = people_in_scope(user, role)
    if region is not None:
        scope = scope.filter(region__in=region_subtree(region))
    people = list(scope)
    ids = [p.pk for p in people]
    figures = _target_figures(ids, items, period_key) if items and ids else {}
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    for item in items:
        if item.metric.source in PROCESS_SOURCES and ids:
            counts[item.pk] = _process_counts(ids, item, period, today)
    rows = []
    for person in people:
        components = []
        for item in items:
            own = figures.get((person.pk, item.metric_id))
            if own is not None and own[1]:
                components.append(Component(item, own[0], own[1], True))
            elif item.metric.source in PROCESS_SOURCES:
                count = Decimal(counts[item.pk].get(person.pk, 0))
                components.append(Component(item, count, item.target, False))
            else:
                components.append(Component(item, own[0] if own else Decimal(0), None, True))
        rows.append(Row(person, components))
    rows.sort(key=lambda r: (-r.exact, r.user.username))
    for i, row in enumerate(rows):
        row.rank = rows[i - 1].rank if i and rows[i - 1].exact == row.exact else i + 1
    return Scorecard(config, period, items, rows)
