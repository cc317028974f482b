"""Alert rules evaluated set-based: compute every firing condition, upsert those alerts, resolve the rest.

Node rules (pace gap, coverage) read each node's newest attainment snapshot (for today) of approved plans whose period
contains the day, with `derive`; "leaf without owner" reads the leaves. Deal rules are one query each.
Nothing issues a query per node or per deal, and evaluating twice equals evaluating once: alerts are
upserted on (rule, subject_key, period_key), a database unique constraint.

The alerts an evaluation opens (new, or resolved and firing again) get a new `opened_at`, and their owners
and managers are notified of that opening (`targets.alerts.notifications`), once each. The same evaluation
records the milestones (50 %, 90 %, 100 %) the nodes' figures reached and tells their owners
(`targets.alerts.milestones`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from crm.models import CompanySettings
from crm.scopes import ALERTS, people_keys
from pipeline.models import OPEN, Opportunity, OpportunityHistory
from pipeline.selectors import stuck_in_stage
from salesmgmt import freshness
from salesmgmt.lib import attainment as math
from targets.alerts.milestones import evaluate_milestones
from targets.alerts.notifications import notify_alerts_opened
from targets.alerts.people import manager_of as _manager
from targets.attainment.reference import derive, reading_day
from targets.models import (
    NODE_ALERT_KINDS,
    Alert,
    AlertKind,
    AlertRule,
    AlertState,
    AttainmentSnapshot,
    MetricUnit,
    PlanStatus,
    TargetNode,
)

# A big deal's backwards move or loss keeps its alert open for this long.
BIG_DEAL_LOOKBACK_DAYS = 30

# An evaluation touching more people than this makes every cached page stale instead of naming each.
PEOPLE_KEYS_LIMIT = 2000
UPDATE_FIELDS = ["severity", "owner", "owner_manager", "state", "params", "last_seen", "resolved_at", "opened_at"]


@dataclasses.dataclass(frozen=True)
class Firing:
    rule: AlertRule
    owner_id: int
    owner_manager_id: int | None
    node_id: int | None = None
    opportunity_id: int | None = None
    period_key: str = ""
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def subject_key(self) -> str:
        return f"node:{self.node_id}" if self.node_id else f"deal:{self.opportunity_id}"

    @property
    def key(self) -> tuple:
        return (self.rule.pk, self.subject_key, self.period_key)


def _rule_for(rules: list[AlertRule], metric_id: int) -> AlertRule | None:
    """A metric's own rule of a kind, else the general one."""
    own = [r for r in rules if r.metric_id == metric_id]
    general = [r for r in rules if r.metric_id is None]
    found = own or general
    return found[0] if found else None


def _general(rules: dict[str, list[AlertRule]], kind: str) -> list[AlertRule]:
    """Deal rules are not per metric: the general rule of the kind (else the first), as a 0/1 list."""
    of_kind = rules.get(kind, [])
    return ([r for r in of_kind if r.metric_id is None] or of_kind)[:1]


def _node_firings(
    rules: dict[str, list[AlertRule]], plan_id: int | None, today: date, node_ids: Iterable[int] | None = None
) -> list[Firing]:
    """Firing node conditions: of every approved plan, of one plan, or of the given nodes only."""
    firings: list[Firing] = []
    pace_rules, coverage_rules = rules.get(AlertKind.PACE_GAP, []), rules.get(AlertKind.COVERAGE, [])
    if pace_rules or coverage_rules:
        # Each node's newest snapshot (written when its figures last changed), read for today.
        snaps = (
            AttainmentSnapshot.objects.newest(on=today)
            .filter(
                node__plan__status=PlanStatus.APPROVED,
                node__period_start__lte=today,
                node__period_end__gte=today,
            )
            .select_related("node__plan__metric")
            .annotate(
                owner_fallback=F("node__plan__owner_id"),
                region_manager=F("node__owner__region__manager_id"),
                parent_manager=F("node__owner__region__parent__manager_id"),
            )
            .order_by()
        )
        if plan_id is not None:
            snaps = snaps.filter(node__plan_id=plan_id)
        if node_ids is not None:
            snaps = snaps.filter(node_id__in=node_ids)
        working_days = CompanySettings.load().count_working_days
        for snap in snaps:
            node = snap.node
            metric = node.plan.metric
            owner_id = node.owner_id or snap.owner_fallback
            manager = _manager(owner_id, snap.region_manager, snap.parent_manager)
            day = reading_day(snap.as_of, today)
            derived = derive(snap, on=day, working_days=working_days)
            common = {"owner_id": owner_id, "owner_manager_id": manager, "node_id": node.pk}
            common["period_key"] = node.period_key
            pace = _rule_for(pace_rules, metric.pk)
            if pace is not None and derived.pace_gap is not None:
                # The figures as every screen shows them, rounded once from the exact ratios (`math.percent`):
                # the alert fires on, and its message says, the pace gap a user reads on the target.
                elapsed = math.elapsed_share(node.period_start, node.period_end, day, working_days=working_days)
                points = math.points(snap.actual, snap.target, *elapsed)
                if points is not None and points < (pace.threshold or 0):
                    params = {
                        "pace_gap": str(points),
                        "threshold": str(pace.threshold),
                        # For the message: "attainment 31.0 %, time progress 45.2 %".
                        "attainment": str(math.percent(snap.actual, snap.target)),
                        "time_progress": str(math.percent(*elapsed)),
                    }
                    firings.append(Firing(rule=pace, params=params, **common))
            cover = _rule_for(coverage_rules, metric.pk)
            low = derived.coverage is not None and derived.coverage < (getattr(cover, "threshold", 0) or 0)
            if cover is not None and metric.unit != MetricUnit.COUNT and low:
                params = {"coverage": str(derived.coverage), "threshold": str(cover.threshold)}
                firings.append(Firing(rule=cover, params=params, **common))
    owner_rules = rules.get(AlertKind.LEAF_WITHOUT_OWNER, [])
    if owner_rules:
        leaves = TargetNode.objects.leaves().filter(
            owner__isnull=True, plan__status=PlanStatus.APPROVED, period_end__gte=today
        )
        if plan_id is not None:
            leaves = leaves.filter(plan_id=plan_id)
        if node_ids is not None:
            leaves = leaves.filter(pk__in=node_ids)
        rows = leaves.order_by().values(
            "id", "period_key", "plan__metric_id", "plan__owner_id", "plan__owner__region__manager_id"
        )
        for row in rows:
            rule = _rule_for(owner_rules, row["plan__metric_id"])
            if rule is None:  # only other metrics have a rule of this kind
                continue
            owner_id = row["plan__owner_id"]
            firings.append(
                Firing(
                    rule=rule,
                    owner_id=owner_id,
                    owner_manager_id=_manager(owner_id, row["plan__owner__region__manager_id"], None),
                    node_id=row["id"],
                    period_key=row["period_key"],
                )
            )
    return firings


DEAL_FIELDS = ("id", "owner_id", "owner__region__manager_id", "owner__region__parent__manager_id")


def _deal_firing(rule: AlertRule, row: Mapping[str, Any], **params: object) -> Firing:
    owner_id = row["owner_id"]
    manager = _manager(owner_id, row["owner__region__manager_id"], row["owner__region__parent__manager_id"])
    return Firing(rule=rule, owner_id=owner_id, owner_manager_id=manager, opportunity_id=row["id"], params=params)


def _deal_firings(
    rules: dict[str, list[AlertRule]], today: date, deal_ids: Iterable[int] | None = None
) -> list[Firing]:
    """Firing deal conditions: of every deal, or of the given deals only."""
    firings: list[Firing] = []
    now = timezone.now()
    every = Opportunity.objects.all() if deal_ids is None else Opportunity.objects.filter(pk__in=deal_ids)
    open_deals = every.open().order_by()
    for rule in _general(rules, AlertKind.STALE_IN_STAGE):
        for row in open_deals.filter(stuck_in_stage(now)).values(*DEAL_FIELDS, "stage__expected_days"):
            firings.append(_deal_firing(rule, row, expected_days=row["stage__expected_days"]))
    for rule in _general(rules, AlertKind.CLOSE_DATE_PASSED):
        for row in open_deals.filter(expected_close_date__lt=today).values(*DEAL_FIELDS, "expected_close_date"):
            firings.append(_deal_firing(rule, row, expected_close_date=row["expected_close_date"].isoformat()))
    for rule in _general(rules, AlertKind.BIG_DEAL_BACKWARDS_OR_LOST):
        since = today - timedelta(days=BIG_DEAL_LOOKBACK_DAYS)
        backwards = OpportunityHistory.objects.filter(
            field="stage",
            changed_at__gte=now - timedelta(days=BIG_DEAL_LOOKBACK_DAYS),
            new_stage__order__lt=F("old_stage__order"),
        ).values("opportunity_id")
        if deal_ids is not None:  # a deal's change: its own history, not every deal's moves of the month
            backwards = backwards.filter(opportunity_id__in=deal_ids)
        lost = Q(stage__is_lost=True, closed_on__gte=since)
        moved_back = OPEN & Q(pk__in=backwards)
        deals = every.filter(lost | moved_back, amount_company__gte=rule.threshold or 0).order_by()
        for row in deals.values(*DEAL_FIELDS, "amount_company", "stage__is_lost"):
            firings.append(_deal_firing(rule, row, amount=str(row["amount_company"]), lost=row["stage__is_lost"]))
    return firings


def _params_text(params: object) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _shown_differently(previous: Mapping[str, Any] | None, firing: Firing) -> bool:
    """Whether a firing alert shows otherwise than it did (new, or another severity, owner or figures): its
    last-seen time alone is shown only on the alert list, which is never cached."""
    if previous is None:
        return True
    return (
        previous["severity"] != firing.rule.severity
        or previous["owner_id"] != firing.owner_id
        or previous["owner_manager_id"] != firing.owner_manager_id
        or _params_text(previous["params"]) != _params_text(firing.params)
    )


@transaction.atomic
def evaluate_alerts(
    plan_id: int | None = None,
    node_ids: Iterable[int] | None = None,
    deal_ids: Iterable[int] | None = None,
    *,
    today: date | None = None,
) -> int:
    """Upsert the alerts of every firing condition and resolve those whose condition no longer holds.

    - nothing given: every rule over everything (the nightly reconcile; deals age without changing);
    - `plan_id`: the node rules of that plan (its figures were recomputed; its deals did not change: their
      rules run when they change and every night);
    - `node_ids` and/or `deal_ids` (after a change): only those nodes and deals — the work then depends on
      the change, not on the size of the company.
    Returns how many conditions fire.
    """
    narrow = node_ids is not None or deal_ids is not None
    if narrow:
        node_ids, deal_ids = list(node_ids or ()), list(deal_ids or ())
    elif plan_id:
        deal_ids = []
    today = today or timezone.localdate()
    now = timezone.now()
    rules: dict[str, list[AlertRule]] = {}
    for rule in AlertRule.objects.filter(active=True).order_by("kind", "metric_id", "id"):
        rules.setdefault(rule.kind, []).append(rule)
    firings = {f.key: f for f in _node_firings(rules, plan_id, today, node_ids) + _deal_firings(rules, today, deal_ids)}

    # The alerts this evaluation is responsible for (it resolves those of them that no longer fire).
    node_kinds = Q(rule__kind__in=NODE_ALERT_KINDS)
    if narrow:
        scope = (node_kinds & Q(node_id__in=node_ids)) | (~node_kinds & Q(opportunity_id__in=deal_ids))
    elif plan_id:
        scope = node_kinds & Q(node__plan_id=plan_id)
    else:
        scope = Q()
    existing = {
        (row["rule_id"], row["subject_key"], row["period_key"]): row
        for row in Alert.objects.filter(scope)
        .filter(state__in=(AlertState.OPEN, AlertState.ACKNOWLEDGED))
        .order_by()
        .values(
            "id",
            "rule_id",
            "subject_key",
            "period_key",
            "state",
            "opened_at",
            "owner_id",
            "owner_manager_id",
            "severity",
            "params",
        )
    }
    rows = []
    for key, f in firings.items():
        previous = existing.get(key)
        acknowledged = previous is not None and previous["state"] == AlertState.ACKNOWLEDGED
        rows.append(
            Alert(
                rule=f.rule,
                severity=f.rule.severity,
                owner_id=f.owner_id,
                owner_manager_id=f.owner_manager_id,
                state=AlertState.ACKNOWLEDGED if acknowledged else AlertState.OPEN,
                node_id=f.node_id,
                opportunity_id=f.opportunity_id,
                subject_key=f.subject_key,
                period_key=f.period_key,
                params=f.params,
                first_seen=now,
                last_seen=now,
                resolved_at=None,
                # New, or resolved and firing again: a new opening (people are notified of it below).
                opened_at=previous["opened_at"] if previous is not None else now,
            )
        )
    gone = [row["id"] for key, row in existing.items() if key not in firings]
    # An alert is seen by its owner, his manager and whoever sees its owner (`alerts_visible_to`): those pages only.
    people = {pk for f in firings.values() for pk in (f.owner_id, f.owner_manager_id)}
    people |= {pk for row in existing.values() for pk in (row["owner_id"], row["owner_manager_id"])}
    with freshness.covering(("targets_alert",)):
        if len(people) > PEOPLE_KEYS_LIMIT:
            freshness.changed()  # a company-wide evaluation: every page
        elif gone or any(_shown_differently(existing.get(key), f) for key, f in firings.items()):
            freshness.touch(people_keys(people, facet=ALERTS))
        else:
            freshness.unseen()  # the same alerts as before, seen again: only their last-seen time moves
        if rows:
            Alert.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["rule", "subject_key", "period_key"],
                update_fields=UPDATE_FIELDS,
            )
        if gone:
            Alert.objects.filter(pk__in=gone).update(state=AlertState.RESOLVED, resolved_at=now)
    if any(key not in existing for key in firings):
        # Exactly the alerts opened by this evaluation carry its timestamp; one query, then set-based inserts.
        opened = Alert.objects.filter(opened_at=now, state=AlertState.OPEN).order_by()
        notify_alerts_opened(opened.values("id", "rule__kind", "severity", "owner_id", "owner_manager_id", "opened_at"))
    if not narrow or node_ids:
        # Good news read from the same snapshots: the milestones the figures reached (once each).
        evaluate_milestones(plan_id=plan_id, node_ids=node_ids if narrow else None, today=today)
    return len(firings)
