"""Good news: the milestones a target reaches (50 %, 90 %, 100 % of its amount), recorded and told once.

`evaluate_milestones` runs at the end of every alert evaluation (`targets.alerts.evaluation.evaluate_alerts`),
so after every recompute, over the same nodes. It reads each node's newest figures (`LatestAttainment`, written
with the snapshots) and records, set-based, each level they reach that is not recorded yet for the node and
the version of its amount: a `TargetMilestone` row, unique on (node, version, level). Evaluating twice, a
recompute run again, or two evaluations at once, therefore record and tell each milestone once.

Decisions:
- Reached, not crossed between two readings: the first evaluation that reads the figures at or above a
  level records it, so a reading missed (two recomputes coalesced) loses nothing.
- Falling below a level and reaching it again within the same version is no new milestone (no second
  "50 %" after a deal was reopened and won again). A new amount (a new version: an adjustment) starts afresh:
  reaching 100 % of a raised target is news.
- Only figures computed for the amount in force (the row's target equals the node's amount) count, and only
  nodes with an owner, of approved plans, whose period runs today or ended less than `GRACE_DAYS` ago (the
  last days' deals are often recorded after the period).
- When one evaluation finds a node past several levels at once (a first recompute, a big win), all are
  recorded and only the highest is told.
- The owner is told; for the levels that `tell_manager` (100 % and above), his manager too; each in the
  notification centre and/or by e-mail per their "milestones" preference (default: both).

A level is a share of the target (`MILESTONES`) or an amount the target carries (its stretch and challenge
levels); each is named in `targets.alerts.selectors.MILESTONE_LEVEL_NAMES` when not a share. Levels are listed
lowest first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from crm.models import User
from salesmgmt import freshness
from salesmgmt.lib import attainment as math
from salesmgmt.lib.money import quantize
from targets.alerts.notifications import enqueue_emails, notifications_insert
from targets.alerts.people import manager_of
from targets.alerts.selectors import wants_kind
from targets.attainment.services import touch_nodes
from targets.models import (
    PREFERENCE_MILESTONES,
    LatestAttainment,
    Notification,
    NotificationPreference,
    NotificationTopic,
    PlanStatus,
    TargetMilestone,
    TargetNode,
)

# The shares of the target whose reaching is news. The single definition: `LEVELS` below is built from it.
MILESTONES = (50, 90, 100)

# A period that ended this many days ago still has its milestones read (late-recorded deals).
GRACE_DAYS = 7


@dataclasses.dataclass(frozen=True)
class Level:
    """A milestone level: a share of the target (`percent`) or an amount of the node (`amount_field`)."""

    key: str
    percent: int | None = None
    amount_field: str | None = None
    tell_manager: bool = False

    def reached(self) -> Q:
        """The condition, on `LatestAttainment` rows, that the node's figures reached this level."""
        if self.percent is not None:
            # actual × 100 ≥ target × percent: exact, no division.
            return Q(hundred_actual__gte=F("target") * self.percent)
        return Q(**{f"node__{self.amount_field}__gt": 0, "actual__gte": F(f"node__{self.amount_field}")})

    def threshold(self, node: TargetNode) -> Decimal | None:
        if self.percent is not None:
            return quantize(node.amount * self.percent / 100)
        return getattr(node, self.amount_field or "", None) or None


LEVELS: tuple[Level, ...] = (
    *(Level(str(p), percent=p, tell_manager=p >= 100) for p in MILESTONES),
    # The stretch (冲刺) and challenge (挑战) amounts a target may carry above its base.
    Level("stretch", amount_field="stretch", tell_manager=True),
    Level("challenge", amount_field="challenge", tell_manager=True),
)
RANK = {level.key: i for i, level in enumerate(LEVELS)}


def milestones_of(node: TargetNode) -> list[tuple[str, Decimal]]:
    """(level key, threshold amount) of every level a node has, lowest first: e.g. ("50", 500000.00)."""
    pairs = [(level.key, level.threshold(node)) for level in LEVELS]
    return [(key, amount) for key, amount in pairs if amount is not None]


def _candidates(plan_id: int | None, node_ids: Iterable[int] | None, today: date) -> QuerySet[LatestAttainment]:
    qs = LatestAttainment.objects.filter(
        node__plan__status=PlanStatus.APPROVED,
        node__owner__isnull=False,
        node__period_start__lte=today,
        node__period_end__gte=today - timedelta(days=GRACE_DAYS),
        target__gt=0,
        target=F("node__amount"),
    ).alias(hundred_actual=F("actual") * 100)
    if plan_id is not None:
        qs = qs.filter(node__plan_id=plan_id)
    if node_ids is not None:
        qs = qs.filter(node_id__in=list(node_ids))
    return qs.order_by()


def evaluate_milestones(
    *, plan_id: int | None = None, node_ids: Iterable[int] | None = None, today: date | None = None
) -> int:
    """Record the milestones newly reached (every node, one plan's, or the given nodes') and tell people;
    returns how many were recorded. One query per level, one insert, then a few queries for the news.

    Two evaluations at once: the second insert of a key waits for the first and skips it, so the rows read back
    by this evaluation's timestamp are its own (two evaluations within one microsecond, or under a frozen test
    clock, may both count them: nobody is told twice, the notifications being unique per person and milestone).
    """
    today = today or timezone.localdate()
    if node_ids is not None:
        node_ids = list(node_ids)
        if not node_ids:
            return 0
    base = _candidates(plan_id, node_ids, today)
    now = timezone.now()
    rows = []
    for level in LEVELS:
        known = TargetMilestone.objects.filter(
            node=OuterRef("node"), version=OuterRef("node__version"), level=level.key
        )
        reached = base.filter(level.reached()).exclude(Exists(known))
        for row in reached.values("node_id", "node__version", "actual", "target"):
            rows.append(
                TargetMilestone(
                    node_id=row["node_id"],
                    level=level.key,
                    version=row["node__version"],
                    actual=row["actual"],
                    target=row["target"],
                    reached_on=today,
                    created_at=now,
                )
            )
    if not rows:
        return 0
    with freshness.covering(("targets_targetmilestone",)):
        touch_nodes(sorted({row.node_id for row in rows}))
        TargetMilestone.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    # What this evaluation inserted carries its timestamp (a concurrent one's insert of the same key was skipped).
    recorded = list(TargetMilestone.objects.filter(created_at=now).order_by())
    _notify(recorded)
    return len(recorded)


def _notify(milestones: list[TargetMilestone]) -> int:
    """Tell the owner (and for the top levels his manager) of the highest milestone each node reached."""
    top: dict[int, TargetMilestone] = {}
    for milestone in milestones:
        best = top.get(milestone.node_id)
        if best is None or RANK.get(milestone.level, -1) > RANK.get(best.level, -1):
            top[milestone.node_id] = milestone
    if not top:
        return 0
    nodes = {
        node.pk: node
        for node in TargetNode.objects.filter(pk__in=list(top)).select_related(
            "plan", "owner", "owner__region", "owner__region__parent", "region", "product", "product_line", "rep"
        )
    }
    recipients: list[tuple[TargetMilestone, TargetNode, int]] = []
    for node_id, milestone in top.items():
        node = nodes[node_id]
        owner = node.owner
        assert owner is not None  # only nodes with an owner are read (`_candidates`)
        people = [owner.pk]
        level = next((lv for lv in LEVELS if lv.key == milestone.level), None)
        if level is not None and level.tell_manager:
            region = owner.region
            manager = manager_of(
                owner.pk,
                region.manager_id if region else None,
                region.parent.manager_id if region and region.parent else None,
            )
            if manager:
                people.append(manager)
        recipients += [(milestone, node, person) for person in people]
    people_ids = {person for _m, _n, person in recipients}
    active = set(User.objects.filter(pk__in=people_ids, is_active=True).values_list("pk", flat=True))
    preferences = {
        p.user_id: p
        for p in NotificationPreference.objects.filter(user_id__in=active, kind=PREFERENCE_MILESTONES).order_by()
    }
    now = timezone.now()
    rows = []
    for milestone, node, person in recipients:
        if person not in active:
            continue
        in_app, email = wants_kind(preferences.get(person), PREFERENCE_MILESTONES)
        if in_app or email:
            rows.append(
                Notification(
                    recipient_id=person,
                    topic=NotificationTopic.MILESTONE,
                    milestone=milestone,
                    params=milestone_params(milestone, node),
                    link=reverse("targets:node_attainment", args=[node.pk]),
                    in_app=in_app,
                    email=email,
                    created_at=now,
                )
            )
    if not rows:
        return 0
    notifications_insert(rows)
    if any(row.email for row in rows):
        enqueue_emails(created_at=now)
    return len(rows)


def milestone_params(milestone: TargetMilestone, node: TargetNode) -> dict:
    """What the message says (rendered in the reader's language when shown): the target, its owner, the period
    and the attainment, rounded once from the exact ratio as every screen shows it."""
    cell = node.label
    suffix = f" · {node.period_key}"
    if cell.endswith(suffix):
        cell = cell[: -len(suffix)]
    return {
        "level": milestone.level,
        "target": f"{node.plan} · {cell}" if cell else str(node.plan),
        "owner": str(node.owner) if node.owner else "",
        "period": node.period_key,
        "attainment": str(math.percent(milestone.actual, milestone.target)),
        "actual": str(milestone.actual),
        "amount": str(milestone.target),
    }
