"""Notifications of alert openings: who is told, in the notification centre and by e-mail, per their choices.

`notify_alerts_opened` is called by `evaluate_alerts` with the alerts that evaluation opened (new ones, and
resolved ones firing again). It tells each alert's owner and the owner's manager, set-based: one query for
preferences, one insert that skips what already exists (the unique (recipient, alert, opened_at) key),
and one Celery task per batch of e-mails. The e-mail task claims each row before sending, so a task
delivered twice sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.models import User
from crm.scopes import NOTIFICATIONS, user_keys
from salesmgmt import freshness, outbox
from targets.alerts.messages import alert_message
from targets.alerts.selectors import (
    NOTIFICATION_RELATED,
    milestone_level_label,
    milestone_message,
    notification_link,
    wants,
)
from targets.models import (
    PREFERENCE_KINDS,
    Notification,
    NotificationPreference,
    NotificationTopic,
)

log = logging.getLogger(__name__)

EMAIL_BATCH = 200
EMAIL_TASK = "targets.send_alert_emails"


def notify_alerts_opened(alerts: Iterable[Mapping[str, Any]]) -> int:
    """Notify the owner and the owner's manager of each alert just opened; returns the rows inserted.

    `alerts` are dicts with id, rule__kind, severity, owner_id, owner_manager_id and opened_at. Runs inside
    the evaluation's transaction: the e-mail tasks go out after it commits.
    """
    alerts = list(alerts)
    if not alerts:
        return 0
    people = {a["owner_id"] for a in alerts} | {a["owner_manager_id"] for a in alerts if a["owner_manager_id"]}
    active = set(User.objects.filter(pk__in=people, is_active=True).values_list("pk", flat=True))
    preferences = {(p.user_id, p.kind): p for p in NotificationPreference.objects.filter(user_id__in=active).order_by()}
    now = timezone.now()
    rows = []
    for alert in alerts:
        for user_id in dict.fromkeys((alert["owner_id"], alert["owner_manager_id"])):
            if user_id not in active:
                continue
            in_app, email = wants(preferences.get((user_id, alert["rule__kind"])), alert["severity"])
            if in_app or email:
                rows.append(
                    Notification(
                        recipient_id=user_id,
                        topic=NotificationTopic.ALERT,
                        alert_id=alert["id"],
                        opened_at=alert["opened_at"],
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


def notifications_insert(rows: list[Notification]) -> None:
    """Insert notifications (one already there is skipped): only their recipients' pages go stale (the bell)."""
    with freshness.covering(("targets_notification",)):
        freshness.touch(user_keys(*{row.recipient_id for row in rows}, facet=NOTIFICATIONS))
        Notification.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def enqueue_emails(*, created_at: datetime) -> None:
    """Queue the e-mails of the notifications inserted at `created_at` (rows that already existed, skipped by
    the insert, carry an older time: they were notified before)."""
    ids = list(
        Notification.objects.filter(created_at=created_at, email=True, emailed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(ids), EMAIL_BATCH):
        outbox.enqueue_name(EMAIL_TASK, ids[start : start + EMAIL_BATCH])  # the outbox hashes long keys


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}" if path.startswith("/") else path


def _milestone_email(notification: Notification) -> EmailMessage:
    subject = _("[salesmgmt] Target milestone reached: %(level)s") % {
        "level": milestone_level_label(str(notification.params.get("level", "")))
    }
    body = "\n\n".join(
        [
            milestone_message(notification.params),
            _("See it here: %(url)s") % {"url": _absolute(notification_link(notification))},
            _("Choose which notifications reach you by e-mail: %(url)s")
            % {"url": _absolute(reverse("targets:notification_settings"))},
        ]
    )
    return EmailMessage(subject=subject, body=body, to=[notification.recipient.email])


def _email_for(notification: Notification) -> EmailMessage:
    if notification.topic == NotificationTopic.MILESTONE:
        return _milestone_email(notification)
    alert = notification.alert
    assert alert is not None  # only an alert's notifications are e-mailed (`notifications_email`)
    subject = _("[salesmgmt] %(severity)s: %(kind)s") % {
        "severity": alert.get_severity_display(),
        "kind": alert.rule.get_kind_display(),
    }
    body = "\n\n".join(
        [
            alert_message(alert),
            _("See it here: %(url)s") % {"url": _absolute(notification_link(notification))},
            _("Choose which alerts reach you by e-mail: %(url)s")
            % {"url": _absolute(reverse("targets:notification_settings"))},
        ]
    )
    return EmailMessage(subject=subject, body=body, to=[notification.recipient.email])


def notifications_email(*, notification_ids: list[int]) -> int:
    """Send the e-mails of these notifications (of alerts and milestones) not sent yet; returns how many went out.

    Each row is claimed (emailed_at set where still empty) before its mail is sent, so a second delivery of
    the task sends nothing again. A failed send releases its claim and the task fails after the others
    went out, so the outbox retries only those. Users without an e-mail address are skipped. Users have no
    language of their own: mails are written in the site's language.
    """
    candidates = (
        Notification.objects.filter(pk__in=list(notification_ids), email=True, emailed_at__isnull=True)
        .exclude(recipient__email="")
        .filter(Q(alert__isnull=False) | Q(milestone__isnull=False), recipient__is_active=True)
        .select_related(*NOTIFICATION_RELATED)
        .order_by("id")
    )
    sent = 0
    failed: list[Exception] = []
    with translation.override(settings.LANGUAGE_CODE):
        connection = get_connection()
        for notification in candidates:
            claimed = Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
                emailed_at=timezone.now()
            )
            if not claimed:
                continue
            message = _email_for(notification)
            message.connection = connection
            try:
                message.send()
            except Exception as exc:  # SMTP down: release the claim, let the task be retried
                log.warning("alert e-mail %s not sent: %s", notification.pk, exc)
                Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
                failed.append(exc)
                continue
            sent += 1
    if failed:
        raise failed[0]
    return sent


def notification_mark_read(*, notification: Notification, actor: User) -> Notification:
    """Mark one of the actor's own notifications read (again: nothing changes)."""
    if notification.recipient_id != actor.pk:
        raise ValidationError(_("This notification is not yours."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        with _reading(actor):
            Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, actor: User) -> int:
    """Mark every unread notification of the actor read; returns how many."""
    with _reading(actor):
        return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())


def notifications_mark_alert_read(*, alert_id: int, actor: User) -> int:
    """The actor dealt with an alert (acknowledged or resolved it): its notifications to them are read."""
    with _reading(actor):
        return Notification.objects.filter(recipient=actor, alert_id=alert_id, read_at__isnull=True).update(
            read_at=timezone.now()
        )


@contextmanager
def _reading(actor: User) -> Iterator[None]:
    """Notifications read by their recipient: only his pages go stale (the bell), not everybody's."""
    with freshness.covering(("targets_notification",)):
        freshness.touch(user_keys(actor.pk, facet=NOTIFICATIONS))
        yield


@transaction.atomic
def notification_preferences_update(*, user: User, choices: dict[str, tuple[bool, bool]], actor: User) -> None:
    """Store the user's (in the centre, by e-mail) per alert kind, for milestones and for the weekly digest;
    people set only their own."""
    if actor.pk != user.pk:
        raise ValidationError(_("You can only change your own notification settings."))
    unknown = set(choices) - {kind for kind, _label in PREFERENCE_KINDS}
    if unknown:
        raise ValidationError(_("Unknown alert kind: %(kinds)s.") % {"kinds": ", ".join(sorted(unknown))})
    rows = [
        NotificationPreference(user=user, kind=kind, in_app=bool(in_app), email=bool(email))
        for kind, (in_app, email) in choices.items()
    ]
    NotificationPreference.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["user", "kind"], update_fields=["in_app", "email"]
    )
