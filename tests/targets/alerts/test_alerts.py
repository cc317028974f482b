"""Alert rules: each fires on its case and not otherwise; evaluation is idempotent, set-based and keeps states."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipeline.models import Opportunity
from pipeline.services import opportunity_move_stage
from salesmgmt.models import OutboxTask
from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.messages import alert_message
from targets.alerts.rules import ensure_default_rules
from targets.alerts.services import alert_acknowledge, alert_resolve, alert_rule_update
from targets.attainment.services import attainment_recompute
from targets.models import Alert, AlertKind, AlertRule, AlertState
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import make_deal

TODAY = date(2027, 3, 15)


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


@pytest.fixture
def rules(db):
    return {r.kind: r for r in ensure_default_rules()}


def stage(org, name):
    return next(s for s in org.stages if s.name == name)


def won(org):
    return next(s for s in org.stages if s.is_won)


def approved_plan(org, metric, *, split=False):
    """FY2027 (calendar year) of 1,200,000, optionally split equally by region, approved and snapshotted."""
    plan = plan_create(metric=metric, period_key="FY2027", total="1200000", owner=org.director, actor=org.director)
    if split:
        target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director)
    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    attainment_recompute(plan=plan, as_of=TODAY)
    return plan


def alerts(kind, **filters):
    return Alert.objects.filter(rule__kind=kind, **filters)


# --- node rules ---------------------------------------------------------------------------------


def test_pace_gap_fires_when_attainment_lags_time(org, metrics, rules, frozen):
    # 15 March: ~20 % of the year gone, nothing won -> about -20 points, below the -10 threshold.
    plan = approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    alert = alerts(AlertKind.PACE_GAP).get()
    root = plan.nodes.get()
    assert (alert.node_id, alert.period_key, alert.state) == (root.pk, "FY2027", AlertState.OPEN)
    assert alert.owner == root.owner
    assert Decimal(alert.params["pace_gap"]) < Decimal("-10")


def test_pace_gap_does_not_fire_when_on_pace(org, metrics, rules, frozen):
    make_deal(owner=org.rep, amount="300000", stage=won(org), close=date(2027, 3, 1))  # 25 % > ~20 % time
    approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    assert not alerts(AlertKind.PACE_GAP).exists()


def test_coverage_fires_without_pipeline_and_not_with_enough(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    assert alerts(AlertKind.COVERAGE, node=plan.nodes.get()).get().params["coverage"] == "0.00"

    make_deal(owner=org.rep, amount="4000000", close=date(2027, 6, 30))  # open: 4.0M / 1.2M gap = 3.33x
    attainment_recompute(plan=plan, as_of=TODAY)
    evaluate_alerts()
    assert alerts(AlertKind.COVERAGE).get().state == AlertState.RESOLVED


def test_metric_rule_replaces_the_general_one(org, metrics, rules, frozen):
    AlertRule.objects.create(kind=AlertKind.PACE_GAP, metric=metrics["won_revenue"], threshold=Decimal("-50"))
    approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    assert not alerts(AlertKind.PACE_GAP).exists()  # -20 points is fine for this metric's own rule


def test_leaf_without_owner_fires_only_for_ownerless_leaves(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"], split=True)
    leaves = list(plan.nodes.leaves().order_by("path"))
    assert len(leaves) > 1
    plan.nodes.filter(pk__in=[n.pk for n in leaves[1:]]).update(owner=None)
    plan.nodes.filter(pk=leaves[0].pk).update(owner=org.manager)
    evaluate_alerts()
    fired = alerts(AlertKind.LEAF_WITHOUT_OWNER)
    assert {a.node_id for a in fired} == {n.pk for n in leaves[1:]}
    assert all(a.owner_id == org.director.pk for a in fired)  # the plan owner is told


def test_an_ownerless_leaf_of_a_metric_with_no_rule_of_that_kind_fires_nothing(org, metrics, rules, frozen):
    # The general rule is off, another metric has its own: this plan's metric has none, so nothing fires
    # (it crashed the whole evaluation once, found by mypy).
    plan = approved_plan(org, metrics["won_revenue"], split=True)
    plan.nodes.filter(pk=plan.nodes.leaves().order_by("path").first().pk).update(owner=None)
    rules[AlertKind.LEAF_WITHOUT_OWNER].active = False
    rules[AlertKind.LEAF_WITHOUT_OWNER].save()
    AlertRule.objects.create(kind=AlertKind.LEAF_WITHOUT_OWNER, metric=metrics["collections"])
    evaluate_alerts()
    assert not alerts(AlertKind.LEAF_WITHOUT_OWNER).exists()
    assert alerts(AlertKind.PACE_GAP).exists()  # the evaluation went on with the other rules


# --- deal rules ---------------------------------------------------------------------------------


def test_stale_in_stage(org, rules, frozen):
    stuck = make_deal(owner=org.rep, amount="1000", close=date(2027, 6, 1))
    fresh = make_deal(owner=org.rep, amount="1000", close=date(2027, 6, 1))
    Opportunity.objects.filter(pk=stuck.pk).update(stage_entered_at=timezone.now() - timedelta(days=15))  # > 14
    Opportunity.objects.filter(pk=fresh.pk).update(stage_entered_at=timezone.now() - timedelta(days=13))
    evaluate_alerts()
    alert = alerts(AlertKind.STALE_IN_STAGE).get()
    assert (alert.opportunity_id, alert.period_key, alert.owner_id) == (stuck.pk, "", org.rep.pk)
    assert alert.owner_manager_id == org.manager.pk  # Shanghai has no manager: East's


def test_close_date_passed_only_for_open_deals(org, rules, frozen):
    late = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 14))
    make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 15))  # today: not passed yet
    make_deal(owner=org.rep, amount="1000", stage=won(org), close=date(2027, 3, 1))  # won: closed
    evaluate_alerts()
    assert [a.opportunity_id for a in alerts(AlertKind.CLOSE_DATE_PASSED)] == [late.pk]


def test_big_deal_lost_or_moved_backwards(org, rules, frozen):
    lost_stage = next(s for s in org.stages if s.is_lost)
    big_lost = make_deal(owner=org.rep, amount="600000", close=date(2027, 6, 1))
    small_lost = make_deal(owner=org.rep, amount="1000", close=date(2027, 6, 1))
    for deal in (big_lost, small_lost):
        opportunity_move_stage(opportunity=deal, stage=lost_stage, actor=org.rep, lost_reason="Price")
    back = make_deal(owner=org.rep, amount="700000", stage=stage(org, "Negotiation"), close=date(2027, 6, 1))
    opportunity_move_stage(opportunity=back, stage=stage(org, "Needs confirmed"), actor=org.rep)
    forward = make_deal(owner=org.rep, amount="700000", close=date(2027, 6, 1))
    opportunity_move_stage(opportunity=forward, stage=stage(org, "Solution presented"), actor=org.rep, evidence="Met")
    evaluate_alerts()
    fired = {a.opportunity_id: a for a in alerts(AlertKind.BIG_DEAL_BACKWARDS_OR_LOST)}
    assert set(fired) == {big_lost.pk, back.pk}
    assert fired[big_lost.pk].params["lost"] is True


def test_big_deal_alert_resolves_after_the_lookback(org, rules, frozen):
    lost_stage = next(s for s in org.stages if s.is_lost)
    deal = make_deal(owner=org.rep, amount="600000", close=date(2027, 6, 1))
    opportunity_move_stage(opportunity=deal, stage=lost_stage, actor=org.rep, lost_reason="Price")
    evaluate_alerts()
    assert alerts(AlertKind.BIG_DEAL_BACKWARDS_OR_LOST).get().state == AlertState.OPEN
    frozen.shift(timedelta(days=45))
    evaluate_alerts()
    assert alerts(AlertKind.BIG_DEAL_BACKWARDS_OR_LOST).get().state == AlertState.RESOLVED


# --- idempotence, constraint, states ------------------------------------------------------------


def test_evaluating_twice_creates_no_duplicate(org, metrics, rules, frozen):
    approved_plan(org, metrics["won_revenue"])
    make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    first = sorted(Alert.objects.values_list("id", "rule_id", "subject_key", "period_key", "state"))
    evaluate_alerts()  # the task delivered twice
    evaluate_alerts(plan_id=None)
    assert sorted(Alert.objects.values_list("id", "rule_id", "subject_key", "period_key", "state")) == first
    assert len(first) == 3  # pace gap + coverage of the root, close date passed of the deal


def test_database_refuses_a_duplicate_alert(org, rules, frozen):
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    alert = alerts(AlertKind.CLOSE_DATE_PASSED).get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            rule=alert.rule, severity=alert.severity, owner=org.rep, opportunity=deal, subject_key=alert.subject_key
        )


def test_resolved_alert_reopens_when_the_condition_returns(org, rules, frozen):
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    Opportunity.objects.filter(pk=deal.pk).update(expected_close_date=date(2027, 4, 1))
    evaluate_alerts()
    alert = alerts(AlertKind.CLOSE_DATE_PASSED).get()
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
    Opportunity.objects.filter(pk=deal.pk).update(expected_close_date=date(2027, 3, 2))
    evaluate_alerts()
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_at, alert.params["expected_close_date"]) == (
        AlertState.OPEN,
        None,
        "2027-03-02",
    )
    assert alerts(AlertKind.CLOSE_DATE_PASSED).count() == 1


def test_acknowledged_stays_acknowledged_while_firing_then_resolves(org, rules, frozen):
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    alert = alert_acknowledge(alert=alerts(AlertKind.CLOSE_DATE_PASSED).get(), actor=org.rep)
    evaluate_alerts()
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == org.rep
    Opportunity.objects.filter(pk=deal.pk).update(expected_close_date=date(2027, 4, 1))
    evaluate_alerts()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_inactive_rule_resolves_its_alerts(org, rules, frozen):
    make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    alert_rule_update(rule=rules[AlertKind.CLOSE_DATE_PASSED], active=False, actor=org.director)
    evaluate_alerts()
    assert alerts(AlertKind.CLOSE_DATE_PASSED).get().state == AlertState.RESOLVED


def test_plan_scoped_evaluation_leaves_other_plans_and_deals_alone(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"])
    other = plan_create(
        metric=metrics["collections"], period_key="FY2027", total="1000", owner=org.director, actor=org.director
    )
    other = plan_approve(plan=plan_submit(plan=other, actor=org.director), actor=org.admin)
    attainment_recompute(plan=other, as_of=TODAY)
    overdue = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    before = set(alerts(AlertKind.PACE_GAP).values_list("node__plan_id", "state"))
    assert before == {(plan.pk, AlertState.OPEN), (other.pk, AlertState.OPEN)}
    assert alerts(AlertKind.CLOSE_DATE_PASSED).get().opportunity == overdue
    # A plan's evaluation (after its recompute) is about that plan's figures: the deal rules, over every
    # deal of the company, are not run (neither opened nor resolved) — deals are evaluated when they change.
    Alert.objects.filter(rule__kind=AlertKind.CLOSE_DATE_PASSED).delete()
    other_deal = make_deal(owner=org.rep_js, amount="1000", close=date(2027, 3, 2))
    with CaptureQueriesContext(connection) as captured:
        evaluate_alerts(plan_id=plan.pk)
    assert set(alerts(AlertKind.PACE_GAP).values_list("node__plan_id", "state")) == before
    assert not alerts(AlertKind.CLOSE_DATE_PASSED).exists()
    assert not any("pipeline_opportunity" in q["sql"] for q in captured)
    evaluate_alerts()  # the nightly run: every rule again
    assert set(alerts(AlertKind.CLOSE_DATE_PASSED).values_list("opportunity", flat=True)) == {overdue.pk, other_deal.pk}


def test_query_count_does_not_grow_with_nodes_or_deals(org, metrics, rules, frozen):
    approved_plan(org, metrics["won_revenue"])
    make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    with CaptureQueriesContext(connection) as small:
        evaluate_alerts()
    approved_plan_split = plan_create(
        metric=metrics["collections"], period_key="FY2027", total="1000", owner=org.director, actor=org.director
    )
    target_split(node=approved_plan_split.nodes.get(), dimension="region", method="equal", actor=org.director)
    plan = plan_approve(plan=plan_submit(plan=approved_plan_split, actor=org.director), actor=org.admin)
    attainment_recompute(plan=plan, as_of=TODAY)
    for _ in range(5):
        make_deal(owner=org.rep_js, amount="1000", close=date(2027, 3, 2))
    Alert.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        fired = evaluate_alerts()
    assert fired > 10
    assert len(large) <= len(small)


def test_recompute_task_enqueues_the_evaluation(org, metrics, rules, frozen, django_capture_on_commit_callbacks):
    from targets.tasks import recompute_plan

    plan = approved_plan(org, metrics["won_revenue"])
    Alert.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        recompute_plan(plan.pk)
    assert alerts(AlertKind.PACE_GAP, node__plan=plan).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        recompute_plan(plan.pk)  # delivered twice
    assert alerts(AlertKind.PACE_GAP, node__plan=plan).count() == 1


def test_a_narrow_evaluation_touches_only_the_given_nodes_and_deals(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"], split=True)
    east, north = plan.nodes.get(region=org.east), plan.nodes.get(region=org.north)
    late = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    other_late = make_deal(owner=org.rep_js, amount="1000", close=date(2027, 3, 2))
    evaluate_alerts(None, [east.pk], [late.pk])
    assert set(alerts(AlertKind.PACE_GAP).values_list("node_id", flat=True)) == {east.pk}
    assert set(alerts(AlertKind.CLOSE_DATE_PASSED).values_list("opportunity_id", flat=True)) == {late.pk}

    # A full evaluation finds the rest; a narrow one never resolves what it was not asked about.
    evaluate_alerts()
    assert alerts(AlertKind.PACE_GAP, node=north, state=AlertState.OPEN).exists()
    assert alerts(AlertKind.CLOSE_DATE_PASSED, opportunity=other_late, state=AlertState.OPEN).exists()
    Opportunity.objects.filter(pk=late.pk).update(expected_close_date=date(2027, 4, 1))
    evaluate_alerts(None, [east.pk], [late.pk])
    assert alerts(AlertKind.CLOSE_DATE_PASSED, opportunity=late).get().state == AlertState.RESOLVED
    assert alerts(AlertKind.CLOSE_DATE_PASSED, opportunity=other_late).get().state == AlertState.OPEN
    assert alerts(AlertKind.PACE_GAP, node=north).get().state == AlertState.OPEN


def test_a_deal_change_evaluates_that_deal_and_the_targets_it_touched(
    org, metrics, rules, frozen, django_capture_on_commit_callbacks
):
    from pipeline.services import opportunity_update

    plan = approved_plan(org, metrics["won_revenue"], split=True)
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 20))
    other_late = make_deal(owner=org.rep_other, amount="1000", close=date(2027, 3, 2))
    # The deals' creation waits in the outbox to be drained with the next change: not the change measured here.
    OutboxTask.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx, django_capture_on_commit_callbacks(execute=True):
        opportunity_update(opportunity=deal, data={"expected_close_date": date(2027, 3, 10)}, actor=org.rep)
    # The deal is late now; the East target and the root it counts for were evaluated, nothing else.
    assert alerts(AlertKind.CLOSE_DATE_PASSED, opportunity=deal).exists()
    assert not alerts(AlertKind.CLOSE_DATE_PASSED, opportunity=other_late).exists()
    east, root = plan.nodes.get(region=org.east), plan.nodes.get(depth=0)
    assert set(alerts(AlertKind.PACE_GAP).values_list("node_id", flat=True)) == {east.pk, root.pk}
    assert any("targets.evaluate_alerts" in q["sql"] for q in ctx.captured_queries)


def test_a_deal_change_reads_the_stage_history_of_that_deal_only(org, rules, frozen):
    # A big deal's move backwards is found in its own history: the query must not read every deal's moves
    # (3 M stage changes at the big company took 8 s per deal move).
    deal = make_deal(owner=org.rep, amount="900000", close=date(2027, 6, 30))
    with CaptureQueriesContext(connection) as ctx:
        evaluate_alerts(deal_ids=[deal.pk])
    history = [q["sql"] for q in ctx.captured_queries if "pipeline_opportunityhistory" in q["sql"]]
    assert history, "the backwards rule reads the stage history"
    assert all(f'"opportunity_id" IN ({deal.pk})' in sql for sql in history), history


# --- services -----------------------------------------------------------------------------------


def test_ensure_default_rules_is_idempotent(db):
    ensure_default_rules()
    ensure_default_rules()
    assert AlertRule.objects.count() == len(AlertKind.values)
    assert AlertRule.objects.get(kind=AlertKind.PACE_GAP).threshold == Decimal("-10")
    assert AlertRule.objects.get(kind=AlertKind.COVERAGE).threshold == Decimal("3")


def test_only_visible_alerts_are_handled(org, rules, frozen):
    make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    alert = alerts(AlertKind.CLOSE_DATE_PASSED).get()
    with pytest.raises(ValidationError):
        alert_acknowledge(alert=alert, actor=org.rep_other)
    alert = alert_resolve(alert=alert, actor=org.manager)
    assert alert.state == AlertState.RESOLVED
    with pytest.raises(ValidationError):
        alert_resolve(alert=alert, actor=org.manager)


def test_rule_update_validates(org, rules):
    with pytest.raises(ValidationError):
        alert_rule_update(rule=rules[AlertKind.COVERAGE], threshold="2", actor=org.rep)
    with pytest.raises(ValidationError) as err:
        alert_rule_update(rule=rules[AlertKind.COVERAGE], threshold="-1", severity="loud", actor=org.director)
    assert set(err.value.message_dict) == {"threshold", "severity"}
    rule = alert_rule_update(rule=rules[AlertKind.COVERAGE], threshold="2.5", severity="critical", actor=org.director)
    assert (rule.threshold, rule.severity) == (Decimal("2.5"), "critical")


def test_the_pace_message_shows_the_figures_of_the_screens_rounded_once(org, metrics, rules, frozen):
    # 61,764 of 1,200,000 is 5.147 %: 5.1 % as every screen shows it (5.15 %, then 5.2 %, when rounded twice).
    make_deal(owner=org.rep, amount="61764", stage=won(org), close=date(2027, 3, 1))
    approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    alert = alerts(AlertKind.PACE_GAP).get()
    # 15 March is the end of day 74 of 365: 20.274 % of the year; the gap 5.147 - 20.274 = -15.127 points.
    assert (alert.params["attainment"], alert.params["time_progress"], alert.params["pace_gap"]) == (
        "5.1",
        "20.3",
        "-15.1",
    )
    assert "attainment 5.1 %, time progress 20.3 %" in alert_message(alert)


@pytest.mark.django_db(transaction=True)
def test_alerts_seen_again_unchanged_leave_cached_pages_alone_and_a_change_refreshes_them(org, metrics, frozen):
    """Evaluated again with nothing changed, the alerts only move their last-seen time (shown on the alert list,
    which is never cached): no page goes stale. One resolving bumps the alerts' keys of its people."""
    from crm.scopes import ALERTS, people_keys
    from salesmgmt import freshness
    from salesmgmt.models import Freshness

    ensure_default_rules()
    approved_plan(org, metrics["won_revenue"])
    late = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 1))
    evaluate_alerts()
    keys = sorted(people_keys([org.rep.pk, org.manager.pk], facet=ALERTS) | {freshness.EVERYTHING})

    def versions():
        found = dict(Freshness.objects.filter(key__in=keys).values_list("key", "version"))
        return {k: found.get(k, 0) for k in keys}

    before, seen = versions(), alerts(AlertKind.CLOSE_DATE_PASSED).get().last_seen
    frozen.shift(timedelta(hours=1))
    evaluate_alerts(deal_ids=[late.pk])
    assert alerts(AlertKind.CLOSE_DATE_PASSED).get().last_seen > seen  # seen again...
    assert versions() == before  # ... and nothing a cached page shows changed

    Opportunity.objects.filter(pk=late.pk).update(expected_close_date=date(2027, 6, 1))  # undeclared: `*`
    before = versions()
    evaluate_alerts(deal_ids=[late.pk])  # the close-date alert resolves
    assert alerts(AlertKind.CLOSE_DATE_PASSED).get().state == AlertState.RESOLVED
    after = versions()
    assert after[freshness.EVERYTHING] == before[freshness.EVERYTHING]
    assert after[f"a:u{org.rep.pk}"] == before[f"a:u{org.rep.pk}"] + 1
    assert after[f"a:r{org.sh.pk}"] == before[f"a:r{org.sh.pk}"] + 1
