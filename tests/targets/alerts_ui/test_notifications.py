"""Notifications of alert openings: once per opening for the owner and their manager, by their choices,
e-mailed through the outbox task, never twice; evaluation stays set-based."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import User
from pipeline.models import Opportunity
from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.services import alert_resolve
from targets.models import Alert, AlertKind, AlertState, Notification, NotificationPreference
from targets.tasks import send_alert_emails
from tests.factories import make_deal


def recipients(alert) -> set[int]:
    return set(Notification.objects.filter(alert=alert).values_list("recipient_id", flat=True))


def test_owner_and_manager_are_notified_once_per_opening(org, alerts, frozen):
    assert recipients(alerts.late) == {org.rep.pk, org.manager.pk}
    assert recipients(alerts.late_other) == {org.rep_other.pk, org.manager_north.pk}
    before = Notification.objects.count()
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()  # the same conditions still hold: the same openings
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()
    assert Notification.objects.count() == before


def test_a_resolved_alert_that_fires_again_notifies_again(org, alerts, frozen):
    alert_resolve(alert=alerts.late, actor=org.rep)
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()  # the deal is still late: a new opening
    alert = Alert.objects.get(pk=alerts.late.pk)
    assert alert.state == AlertState.OPEN and alert.opened_at > alerts.late.opened_at
    rows = Notification.objects.filter(alert=alert, recipient=org.rep).order_by("opened_at")
    assert [n.opened_at for n in rows] == [alerts.late.opened_at, alert.opened_at]


def test_a_condition_that_ends_and_returns_notifies_again(org, alerts, deals, frozen):
    Opportunity.objects.filter(pk=deals.late.pk).update(expected_close_date=date(2027, 4, 1))
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()
    assert Alert.objects.get(pk=alerts.late.pk).state == AlertState.RESOLVED
    assert Notification.objects.filter(alert=alerts.late, recipient=org.rep).count() == 1
    Opportunity.objects.filter(pk=deals.late.pk).update(expected_close_date=date(2027, 3, 2))
    frozen.shift(timedelta(hours=1))
    evaluate_alerts()
    assert Notification.objects.filter(alert=alerts.late, recipient=org.rep).count() == 2


def test_the_database_refuses_a_second_notification_of_one_opening(org, alerts):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(recipient=org.rep, alert=alerts.late, opened_at=alerts.late.opened_at)


def test_by_default_warnings_are_e_mailed_and_info_is_not(
    org, rules, deals, emails, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_alerts()
    to = sorted(address for m in mail.outbox for address in m.to)
    # Two late deals (warning) to their owners and managers; the stale deal (info) to nobody.
    assert to == sorted(
        ["rep@example.com", "manager@example.com", "rep_other@example.com", "manager_north@example.com"]
    )
    rep_mail = next(m for m in mail.outbox if m.to == ["rep@example.com"])
    assert "Shanghai servers" in rep_mail.body and "is still open after its expected close date" in rep_mail.body
    assert f"http://127.0.0.1:8000/pipeline/deals/{deals.late.pk}/" in rep_mail.body
    assert "Warning" in rep_mail.subject
    # Info in the centre only.
    stale = Notification.objects.get(alert__opportunity=deals.stale, recipient=org.rep_js)
    assert (stale.in_app, stale.email, stale.emailed_at) == (True, False, None)


def test_preferences_are_honoured(org, rules, deals, emails, django_capture_on_commit_callbacks):
    kind = AlertKind.CLOSE_DATE_PASSED
    NotificationPreference.objects.create(user=org.rep, kind=kind, in_app=False, email=True)
    NotificationPreference.objects.create(user=org.manager, kind=kind, in_app=False, email=False)
    NotificationPreference.objects.create(user=org.rep_js, kind=AlertKind.STALE_IN_STAGE, in_app=True, email=True)
    NotificationPreference.objects.create(user=org.rep_other, kind=kind, in_app=True, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_alerts()
    # In the centre off: nothing there; both off: no row at all.
    assert not Notification.objects.filter(recipient=org.rep, in_app=True).exists()
    assert not Notification.objects.filter(recipient=org.manager, alert__rule__kind=kind).exists()
    assert Notification.objects.filter(recipient=org.manager, alert__rule__kind=AlertKind.STALE_IN_STAGE).exists()
    to = sorted(address for m in mail.outbox for address in m.to)
    # rep: e-mail on; rep_js: e-mail on for an info kind; rep_other: e-mail off; manager_north: the default.
    assert to == ["manager_north@example.com", "rep@example.com", "rep_js@example.com"]
    assert "Nanjing racks" in next(m for m in mail.outbox if m.to == ["rep_js@example.com"]).body
    assert Notification.objects.get(recipient=org.rep_other).in_app is True


def test_the_e_mail_task_sends_each_mail_once_and_skips_people_without_an_address(
    org, rules, deals, emails, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=org.manager.pk).update(email="")
    evaluate_alerts()  # without running on-commit: the tasks are not sent yet
    ids = list(Notification.objects.filter(email=True).values_list("id", flat=True))
    assert len(ids) == 4
    assert send_alert_emails(ids) == 3  # the manager has no address
    assert send_alert_emails(ids) == 0  # delivered twice: nothing more
    assert len(mail.outbox) == 3
    assert Notification.objects.filter(pk__in=ids, emailed_at__isnull=False).count() == 3


def test_a_failed_send_is_released_for_the_retry(org, rules, deals, emails, settings, monkeypatch):
    evaluate_alerts()
    ids = list(Notification.objects.filter(email=True).values_list("id", flat=True))

    def refuse(self, *args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    with pytest.raises(OSError):
        send_alert_emails(ids)
    assert not Notification.objects.filter(pk__in=ids, emailed_at__isnull=False).exists()
    monkeypatch.undo()
    assert send_alert_emails(ids) == 4


def test_notifying_is_set_based(org, rules, emails, frozen):
    """The evaluation's query count does not grow with the number of alerts opened."""

    def evaluate_with(n):
        Alert.objects.all().delete()
        for i in range(n):
            make_deal(owner=[org.rep, org.rep_other][i % 2], amount="1000", close=date(2027, 3, 1) - timedelta(days=i))
        with CaptureQueriesContext(connection) as queries:
            evaluate_alerts()
        return len(queries), Notification.objects.count()

    few_queries, few = evaluate_with(2)
    Notification.objects.all().delete()
    many_queries, many = evaluate_with(20)
    assert many > few
    assert many_queries == few_queries


def test_marking_read_and_acknowledging(org, alerts):
    from targets.alerts.notifications import notifications_mark_all_read
    from targets.alerts.selectors import unread_count
    from targets.alerts.services import alert_acknowledge

    assert unread_count(org.manager) == 2  # rep's and rep_js's deals (Shanghai and Jiangsu report to East)
    alert_acknowledge(alert=alerts.late, actor=org.manager)  # dealt with: its notification is read
    assert unread_count(org.manager) == 1
    assert unread_count(org.rep) == 1  # the rep's own stays unread
    assert notifications_mark_all_read(actor=org.manager) == 1
    assert unread_count(org.manager) == 0
    assert Notification.objects.filter(recipient=org.manager, read_at__lte=timezone.now()).count() == 2
