"""Each kind of alert reads as one line with its figures, in the active language, and links to its cause."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.utils import translation

from pipeline.services import opportunity_move_stage
from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.messages import alert_link, alert_message
from targets.models import Alert, AlertKind
from tests.factories import make_deal
from tests.targets.alerts.test_alerts import approved_plan, stage


def only(kind, **filters) -> Alert:
    return Alert.objects.select_related("node__plan", "opportunity__stage", "rule").get(rule__kind=kind, **filters)


def test_pace_gap_names_the_target_and_its_figures(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"])
    evaluate_alerts()
    alert = only(AlertKind.PACE_GAP)
    gap = Decimal(alert.params["pace_gap"])
    progress = Decimal(alert.params["time_progress"])
    assert gap == -progress  # nothing won: attainment 0, the whole time progress is the gap
    one = lambda x: x.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)  # noqa: E731
    expected = f"FY2027: pace gap \u2212{one(abs(gap))} pts (attainment 0.0 %, time progress {one(progress)} %)"
    assert alert_message(alert) == expected
    root = plan.nodes.get()
    assert alert_link(alert, org.director) == f"/targets/plans/{plan.pk}/#node-{root.pk}"
    assert alert_link(alert, org.rep) == f"/targets/mine/?plan={plan.pk}"


def test_coverage_and_target_without_owner(org, metrics, rules, frozen):
    plan = approved_plan(org, metrics["won_revenue"], split=True)
    east = plan.nodes.get(region=org.east)
    plan.nodes.filter(pk=east.pk).update(owner=None)
    evaluate_alerts()
    coverage = only(AlertKind.COVERAGE, node__parent__isnull=True)
    assert alert_message(coverage) == ("FY2027: the open pipeline covers 0.00× of the remaining gap (below 3.0×)")
    ownerless = only(AlertKind.LEAF_WITHOUT_OWNER)
    assert alert_message(ownerless) == f"East · FY2027 of the plan “{plan.name}” has no owner"


def test_deal_messages_and_links(org, alerts):
    late = only(AlertKind.CLOSE_DATE_PASSED, opportunity__owner=org.rep)
    assert alert_message(late) == "Deal “Shanghai servers” is still open after its expected close date, March 1, 2027"
    assert alert_link(late, org.rep) == f"/pipeline/deals/{late.opportunity_id}/"
    stale = only(AlertKind.STALE_IN_STAGE)
    assert alert_message(stale) == "Deal “Nanjing racks” has been in Needs confirmed for 15 days (expected 14)"


def test_the_stage_is_named_in_the_readers_language(org, alerts):
    stale = only(AlertKind.STALE_IN_STAGE)
    with translation.override("zh-hans"):
        assert "需求确认" in alert_message(stale)
    with translation.override("en"):
        assert "Needs confirmed" in alert_message(stale)


def test_big_deal_lost_and_moved_back(org, rules, frozen):
    lost_stage = next(s for s in org.stages if s.is_lost)
    lost = make_deal(owner=org.rep, name="Big loss", amount="600000", close=date(2027, 6, 1))
    opportunity_move_stage(opportunity=lost, stage=lost_stage, actor=org.rep, lost_reason="Price")
    back = make_deal(
        owner=org.rep, name="Slipping", amount="700000", stage=stage(org, "Negotiation"), close=date(2027, 6, 1)
    )
    opportunity_move_stage(opportunity=back, stage=stage(org, "Needs confirmed"), actor=org.rep)
    evaluate_alerts()
    assert alert_message(only(AlertKind.BIG_DEAL_BACKWARDS_OR_LOST, opportunity=lost)) == (
        "Big deal “Big loss” (600,000.00 CNY) was lost"
    )
    assert alert_message(only(AlertKind.BIG_DEAL_BACKWARDS_OR_LOST, opportunity=back)) == (
        "Big deal “Slipping” (700,000.00 CNY) moved back to Needs confirmed"
    )
