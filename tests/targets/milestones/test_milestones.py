"""Milestone notifications: a target reaching 50 %, 90 % and 100 % tells its owner (and, at 100 %, his manager)
once per level and version of the amount, by their preferences, with the figure every screen shows."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction

from pipeline.models import Opportunity
from salesmgmt.lib.attainment import percent
from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.milestones import MILESTONES, evaluate_milestones, milestones_of
from targets.alerts.notifications import notification_preferences_update
from targets.alerts.selectors import notification_message, notifications_of
from targets.attainment.services import attainment_recompute
from targets.models import (
    PREFERENCE_MILESTONES,
    LatestAttainment,
    Notification,
    NotificationPreference,
    NotificationTopic,
    TargetMilestone,
)
from targets.services import plan_approve, plan_create, plan_submit
from tests.factories import make_deal
from tests.targets.milestones.conftest import TODAY, won


def win(org, plan, amount, **kwargs):
    """A won deal of `amount`, then the plan recomputed and its alerts and milestones evaluated."""
    make_deal(owner=org.rep, amount=amount, stage=won(org), close=date(2027, 3, 1), **kwargs)
    attainment_recompute(plan=plan, as_of=TODAY)
    evaluate_alerts()


def reached(node) -> set[tuple[str, int]]:
    return set(TargetMilestone.objects.filter(node=node).values_list("level", "version"))


def told(node, **filters) -> list[tuple[int, str]]:
    """(recipient, level) of the node's milestone notifications, sorted (a multiset: repeats count)."""
    rows = Notification.objects.filter(milestone__node=node, **filters)
    return sorted(rows.values_list("recipient_id", "milestone__level"))


def test_the_levels_are_one_definition():
    assert MILESTONES == (50, 90, 100)


def test_milestones_of_a_node_are_shares_of_its_amount(plan):
    node = plan.nodes.get()
    assert milestones_of(node) == [
        ("50", Decimal("600000.00")),
        ("90", Decimal("1080000.00")),
        ("100", Decimal("1200000.00")),
    ]


def test_reaching_50_tells_the_owner_once_even_evaluated_twice(org, plan, frozen):
    node = plan.nodes.get()
    win(org, plan, "599999.99")  # 49.99999 %: not yet
    assert reached(node) == set()
    win(org, plan, "0.01")  # exactly 600,000: 50 %
    assert reached(node) == {("50", node.version)}
    assert told(node) == [(org.rep.pk, "50")]  # the manager hears of 100 % only
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()
    evaluate_milestones()
    attainment_recompute(plan=plan, as_of=TODAY)  # a recompute run again
    evaluate_alerts()
    assert reached(node) == {("50", node.version)}
    assert told(node) == [(org.rep.pk, "50")]


def test_several_levels_at_once_are_all_recorded_and_the_highest_told(org, plan):
    node = plan.nodes.get()
    win(org, plan, "1200000")
    assert reached(node) == {("50", 1), ("90", 1), ("100", 1)}
    # 100 % tells the owner and his manager (East's manager: the rep's province has none).
    assert told(node) == sorted([(org.rep.pk, "100"), (org.manager.pk, "100")])


def test_each_level_is_told_as_it_is_reached(org, plan, frozen):
    node = plan.nodes.get()
    win(org, plan, "700000")
    frozen.shift(timedelta(hours=1))
    win(org, plan, "400000")  # 1.1M: 91.7 %
    frozen.shift(timedelta(hours=1))
    win(org, plan, "100000")  # 1.2M: 100 %
    expected = [(org.rep.pk, "50"), (org.rep.pk, "90"), (org.rep.pk, "100"), (org.manager.pk, "100")]
    assert told(node) == sorted(expected)


def test_dropping_below_and_reaching_again_in_one_version_is_not_news(org, plan, frozen):
    node = plan.nodes.get()
    win(org, plan, "650000")
    deal = Opportunity.objects.get()
    # The deal is un-won (its figures drop to 0 %), then won again: one "50 %" only.
    LatestAttainment.objects.filter(node=node).update(actual=Decimal("0"))
    evaluate_milestones()
    LatestAttainment.objects.filter(node=node).update(actual=deal.amount_company)
    frozen.shift(timedelta(hours=1))
    evaluate_milestones()
    assert told(node) == [(org.rep.pk, "50")]


def test_a_new_version_of_the_amount_starts_afresh(org, plan, frozen):
    node = plan.nodes.get()
    win(org, plan, "650000")
    # The target is adjusted (a new version of its amount) and recomputed: 650,000 of 1,000,000 is 65 %.
    type(node).objects.filter(pk=node.pk).update(amount=Decimal("1000000"), version=node.version + 1)
    frozen.shift(timedelta(hours=1))
    attainment_recompute(plan=plan, as_of=TODAY)
    evaluate_alerts()
    assert reached(node) == {("50", 1), ("50", 2)}
    assert told(node) == [(org.rep.pk, "50"), (org.rep.pk, "50")]


def test_figures_of_an_older_amount_do_not_count(org, plan):
    node = plan.nodes.get()
    win(org, plan, "100")
    # The amount changed but its figures are not recomputed yet: nothing is read against the old target.
    LatestAttainment.objects.filter(node=node).update(actual=Decimal("700000"), target=Decimal("1000000"))
    evaluate_milestones()
    assert reached(node) == set()


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ("0", set()),
        ("599999.99", set()),
        ("600000", {"50"}),
        ("1079999.99", {"50"}),
        ("1080000", {"50", "90"}),
        ("1199999.99", {"50", "90"}),
        ("1200000", {"50", "90", "100"}),
        ("5000000", {"50", "90", "100"}),
    ],
)
def test_levels_reached_equal_a_plain_replay(org, plan, actual, expected):
    node = plan.nodes.get()
    attainment_recompute(plan=plan, as_of=TODAY)
    LatestAttainment.objects.filter(node=node).update(actual=Decimal(actual))
    evaluate_milestones()
    replay = {str(p) for p in MILESTONES if Decimal(actual) * 100 >= Decimal("1200000") * p}
    assert replay == expected
    assert {level for level, _v in reached(node)} == expected


def test_preferences_off_tell_nobody_but_still_record(org, plan):
    notification_preferences_update(user=org.rep, choices={PREFERENCE_MILESTONES: (False, False)}, actor=org.rep)
    notification_preferences_update(user=org.manager, choices={PREFERENCE_MILESTONES: (True, False)}, actor=org.manager)
    win(org, plan, "1200000")
    node = plan.nodes.get()
    assert reached(node) == {("50", 1), ("90", 1), ("100", 1)}
    assert told(node) == [(org.manager.pk, "100")]
    assert told(node, email=True) == []
    # And once off, it stays unsaid: evaluating again does not tell the rep later.
    evaluate_milestones()
    assert told(node, recipient=org.rep) == []


def test_e_mails_follow_the_preferences_and_go_once(org, plan, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=org.manager, kind=PREFERENCE_MILESTONES, in_app=True, email=False)
    org.rep.email, org.manager.email = "rep@example.com", "manager@example.com"
    org.rep.save(update_fields=["email"])
    org.manager.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        win(org, plan, "1200000")
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_alerts()
    milestone_mails = [m for m in mail.outbox if "milestone" in m.subject.lower()]
    assert [m.to for m in milestone_mails] == [["rep@example.com"]]
    body = milestone_mails[0].body
    assert "100 %" in body and "FY2027" in body and str(org.rep) in body


def test_the_message_names_target_owner_period_and_the_rounded_figure(org, plan, client_for):
    win(org, plan, "700000.55")
    node = plan.nodes.get()
    notification = Notification.objects.get(recipient=org.rep, topic=NotificationTopic.MILESTONE)
    text = notification_message(notification)
    figure = percent(Decimal("700000.55"), Decimal("1200000"))
    assert f"{figure} %" in text  # 58.3 %: rounded once from the exact ratio
    assert str(org.rep) in text and "FY2027" in text and str(plan) in text and "50 %" in text
    assert notification.link.endswith(f"/nodes/{node.pk}/attainment/")
    # In the rep's notification centre, not in anyone else's.
    assert list(notifications_of(org.rep).filter(topic=NotificationTopic.MILESTONE)) == [notification]
    assert not notifications_of(org.rep_other).filter(topic=NotificationTopic.MILESTONE).exists()
    response = client_for(org.rep).get("/targets/notifications/")
    assert response.status_code == 200 and str(figure) in response.content.decode()
    assert 'data-testid="milestone-badge"' in response.content.decode()  # good news looks like it


def test_the_database_refuses_a_second_milestone_of_one_level_and_version(org, plan):
    win(org, plan, "600000")
    node = plan.nodes.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        TargetMilestone.objects.create(
            node=node, level="50", version=node.version, actual=1, target=1, reached_on=TODAY
        )


def test_a_period_long_over_is_left_alone(org, metrics):
    with time_machine.travel("2028-03-15 09:00 +0800", tick=False):
        plan = plan_create(
            metric=metrics["won_revenue"], period_key="FY2027", total="1000", owner=org.director, actor=org.director
        )
        plan.nodes.update(owner=org.rep)
        plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
        make_deal(owner=org.rep, amount="1000", stage=won(org), close=date(2027, 12, 1))
        attainment_recompute(plan=plan)
        evaluate_milestones()
    assert not TargetMilestone.objects.exists()


def test_the_stretch_and_challenge_levels_are_milestones_too(org, metrics, frozen):
    """A target carrying stretch (冲刺) and challenge (挑战) levels tells its owner and his manager when the
    actual reaches each, by the level's name, once."""
    from targets.services import node_set_levels

    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="1200000", owner=org.director, actor=org.director
    )
    plan.nodes.update(owner=org.rep)
    node_set_levels(node=plan.nodes.get(), stretch="1500000", challenge="1800000", actor=org.director)
    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    node = plan.nodes.get()
    assert milestones_of(node)[3:] == [("stretch", Decimal("1500000.00")), ("challenge", Decimal("1800000.00"))]
    win(org, plan, "1499999.99")
    assert {level for level, _v in reached(node)} == {"50", "90", "100"}
    frozen.shift(timedelta(hours=1))
    win(org, plan, "0.01")  # exactly the stretch level
    assert {level for level, _v in reached(node)} == {"50", "90", "100", "stretch"}
    assert [t for t in told(node) if t[1] == "stretch"] == sorted(
        [(org.rep.pk, "stretch"), (org.manager.pk, "stretch")]
    )
    stretch = Notification.objects.filter(milestone__node=node, milestone__level="stretch").first()
    assert "stretch level" in notification_message(stretch)
    frozen.shift(timedelta(hours=1))
    win(org, plan, "300000")  # 1.8M: the challenge level
    assert [t for t in told(node) if t[1] == "challenge"] == sorted(
        [(org.rep.pk, "challenge"), (org.manager.pk, "challenge")]
    )
