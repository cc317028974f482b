"""Process measures (过程量) as targets: each metric's attainment equals an independent count of the fixture's facts
(plain Python), the stored figures (the SQL engine on PostgreSQL) equal the reference engine, and an incremental
recompute after logging an activity or moving a deal equals a full rebuild."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from pipeline.models import Activity, ActivityKind, Opportunity, OpportunityHistory
from pipeline.services import activity_log, opportunity_move_stage
from targets.attainment.reference import compute_actuals
from targets.attainment.services import attainment_recompute
from targets.services import metric_create
from tests.factories import CustomerFactory, make_deal
from tests.targets.attainment.test_recompute import build_plan, node, snapshots

AS_OF = date(2027, 9, 15)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROCESS_METRICS = ("visits", "calls", "meetings", "deals_created", "solution_presented", "customers_covered")


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


@pytest.fixture
def process_facts(org):
    """Over FY2027 (and a little of FY2026): activities of each kind, deals created on known days, some moved to
    方案呈现 (and back and forth), customers added to each rep's book."""
    reps = [org.rep, org.rep_same_team, org.rep_js, org.rep_other]
    open_stages = sorted((s for s in org.stages if not s.is_won and not s.is_lost), key=lambda s: s.order)
    kinds = [ActivityKind.VISIT, ActivityKind.CALL, ActivityKind.MEETING]
    for i in range(40):
        rep = reps[i % len(reps)]
        day = date(2026 if i % 9 == 0 else 2027, 1 + (5 * i) % 12, 1 + (3 * i) % 27)
        with time_machine.travel(at(day, 8 + i % 12), tick=False):
            customer = CustomerFactory(owner=rep, region=rep.region)
            Activity.objects.create(customer=customer, owner=rep, kind=kinds[i % 3], date=day)
            if i % 2:
                Activity.objects.create(customer=customer, owner=rep, kind=kinds[(i + 1) % 3], date=day)
            if i % 3 != 2:
                deal = make_deal(owner=rep, customer=customer, amount="100", close=date(2027, 12, 1))
        if i % 3 != 2 and i % 4 != 3:
            later = min(date(day.year, day.month, 28), AS_OF) if day <= AS_OF else day
            with time_machine.travel(at(later, 20), tick=False):
                deal = opportunity_move_stage(opportunity=deal, stage=open_stages[1], actor=rep, evidence="met")
                if i % 5 == 0:  # back and forth: reaching the stage again does not count twice
                    deal = opportunity_move_stage(opportunity=deal, stage=open_stages[0], actor=rep)
                    deal = opportunity_move_stage(opportunity=deal, stage=open_stages[1], actor=rep, evidence="met")


def _facts_in_python(code, org):
    """(owner id, credited team's region path, day) of every fact of a process metric, from plain rows."""
    if code in ("visits", "calls", "meetings"):
        kind = {"visits": "visit", "calls": "call", "meetings": "meeting"}[code]
        return [(a.owner_id, a.owner.region.path, a.date) for a in Activity.objects.all() if a.kind == kind]
    if code == "deals_created":
        return [(d.owner_id, d.region.path, timezone.localdate(d.created_at)) for d in Opportunity.objects.all()]
    if code == "customers_covered":
        from crm.models import Customer

        return [(c.owner_id, c.owner.region.path, timezone.localdate(c.created_at)) for c in Customer.objects.all()]
    # Deals reaching the stage of order 2 (方案呈现): the first time each deal entered it.
    first: dict[int, datetime] = {}
    for h in OpportunityHistory.objects.all():
        reached = h.new_stage is not None and h.new_stage.order == 2
        if reached and (h.opportunity_id not in first or h.changed_at < first[h.opportunity_id]):
            first[h.opportunity_id] = h.changed_at
    deals = {d.pk: d for d in Opportunity.objects.all()}
    return [(deals[pk].owner_id, deals[pk].region.path, timezone.localdate(t)) for pk, t in first.items()]


def _count(facts, n, as_of):
    """How many facts count for a node: in its period (up to `as_of`), its rep, within its region."""
    return sum(
        1
        for owner_id, path, day in facts
        if n.period_start <= day <= min(n.period_end, as_of)
        and (n.rep_id is None or n.rep_id == owner_id)
        and (n.region_id is None or f"/{n.region_id}/" in path)
    )


@pytest.mark.parametrize("code", PROCESS_METRICS)
def test_each_process_metric_equals_an_independent_count_and_both_engines_agree(org, metrics, process_facts, code):
    with time_machine.travel(at(AS_OF), tick=False):
        plan = build_plan(org, metrics[code], dimensions=("region", "rep", "month"))
        attainment_recompute(plan=plan, as_of=AS_OF)  # PostgreSQL: the one-statement SQL engine
        nodes, reference = compute_actuals(plan, AS_OF)  # the portable reference engine
    stored = snapshots(plan, AS_OF)
    facts = _facts_in_python(code, org)
    expected = {n.pk: _count(facts, n, AS_OF) for n in plan.nodes.all()}
    assert {pk: s.actual for pk, s in stored.items()} == expected
    assert {n["id"]: reference[n["id"]].actual for n in nodes} == expected
    assert all(s.open_pipeline == 0 and s.weighted_pipeline == 0 for s in stored.values())  # counts: no pipeline
    root = plan.nodes.get(depth=0)
    assert expected[root.pk] > 0  # the data exercises the metric
    # Per rep and per region, spelled out.
    assert expected[node(plan, rep=org.rep).pk] == _count([f for f in facts if f[0] == org.rep.pk], root, AS_OF)
    east = [f for f in facts if f"/{org.east.pk}/" in f[1]]
    assert expected[node(plan, region=org.east).pk] == _count(east, root, AS_OF)
    assert metrics[code].places == 0


def test_customers_covered_differs_from_new_customers(org, metrics, process_facts):
    """New customers (新客户数) count first wins; customers covered count customers added, won or not."""
    with time_machine.travel(at(AS_OF), tick=False):
        covered = build_plan(org, metrics["customers_covered"], dimensions=("region",))
        new = build_plan(org, metrics["new_customers"], dimensions=("region",))
        attainment_recompute(as_of=AS_OF)
    root_covered = snapshots(covered, AS_OF)[covered.nodes.get(depth=0).pk].actual
    root_new = snapshots(new, AS_OF)[new.nodes.get(depth=0).pk].actual
    assert root_new == 0  # nobody won a deal
    assert root_covered > 0


@pytest.fixture
def frozen():
    with time_machine.travel(at(date(2027, 3, 15)), tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("code", ["visits", "solution_presented", "deals_created"])
def test_incremental_equals_a_full_rebuild_after_an_activity_or_a_stage_move(
    org, metrics, frozen, django_capture_on_commit_callbacks, code
):
    today = date(2027, 3, 15)
    customer = CustomerFactory(owner=org.rep, region=org.rep.region)
    with django_capture_on_commit_callbacks(execute=True):
        deal = make_deal(owner=org.rep, customer=customer, amount="100", close=date(2027, 6, 1))
    plan = build_plan(org, metrics[code])
    attainment_recompute(plan=plan)
    leaf, east = node(plan, rep=org.rep, month=3).pk, node(plan, region=org.east).pk
    before = snapshots(plan, today)[leaf].actual

    with django_capture_on_commit_callbacks(execute=True):
        activity_log(customer=customer, kind=ActivityKind.VISIT, date=today, actor=org.rep)
        second = make_deal(owner=org.rep, customer=customer, amount="5", close=date(2027, 6, 1))
        stage = next(s for s in org.stages if s.order == 2)
        opportunity_move_stage(opportunity=deal, stage=stage, actor=org.rep, evidence="met")
        opportunity_move_stage(opportunity=second, stage=stage, actor=org.rep, evidence="met")
    incremental = {pk: s.actual for pk, s in snapshots(plan, today).items()}
    assert incremental[leaf] == before + {"visits": 1, "solution_presented": 2, "deals_created": 1}[code]
    assert incremental[east] == incremental[leaf]  # the rep is the team's only one with facts
    attainment_recompute(plan=plan)  # a full rebuild from the facts
    assert {pk: s.actual for pk, s in snapshots(plan, today).items()} == incremental


def test_a_process_metric_filters_are_checked(org):
    with pytest.raises(ValidationError):
        metric_create(code="x1", name="X", source="activities", filters={"kind": "lunch"}, actor=org.admin)
    with pytest.raises(ValidationError):
        metric_create(code="x2", name="X", source="stage_reached", filters={}, actor=org.admin)
    with pytest.raises(ValidationError):
        metric_create(code="x3", name="X", source="stage_reached", filters={"stage_order": "abc"}, actor=org.admin)
    with pytest.raises(ValidationError):
        metric_create(code="x4", name="X", source="won_revenue", filters={"kind": "visit"}, actor=org.admin)
    metric = metric_create(
        code="east_visits", name="East visits", source="activities", filters={"kind": "visit"}, actor=org.admin
    )
    assert (metric.unit, metric.places) == ("count", 0)


def test_a_history_split_of_a_process_target_follows_last_years_counts(org, metrics):
    """FY2027 visits split by rep by history: in proportion to each rep's FY2026 visits (an independent count)."""
    from targets.alerts.evaluation import evaluate_alerts
    from targets.services import plan_create, target_split

    visits = {org.rep: 6, org.rep_same_team: 3, org.rep_js: 1}
    for rep, n in visits.items():
        customer = CustomerFactory(owner=rep, region=rep.region)
        for i in range(n):
            Activity.objects.create(customer=customer, owner=rep, kind=ActivityKind.VISIT, date=date(2026, 4, 1 + i))
        Activity.objects.create(customer=customer, owner=rep, kind=ActivityKind.CALL, date=date(2026, 4, 1))
    plan = plan_create(
        metric=metrics["visits"], period_key="FY2027", total="200", owner=org.director, actor=org.director
    )
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    east = plan.nodes.get(region=org.east)
    target_split(node=east, dimension="rep", method="history", actor=org.director)
    parts = {n.rep: n.amount for n in east.children.all()}
    total = sum(visits.values())
    for rep, n in visits.items():
        assert abs(parts[rep] - east.amount * n / total) < 1  # whole visits (0 places), largest remainder
    assert sum(parts.values()) == east.amount
    assert all(a == a.to_integral_value() for a in parts.values())
    # Attainment and alerts run on a process plan like on any other.
    from targets.services import plan_approve, plan_submit

    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    with time_machine.travel(at(date(2027, 6, 30)), tick=False):
        attainment_recompute(plan=plan)
        evaluate_alerts(plan.pk, None, None)
