"""Alerts a user may see, the list's filters, and the counts by state; a user's notifications (the centre, the
bell's count, each one's message and link) and notification choices."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.utils.translation import gettext as _

from crm.models import User
from crm.scopes import visible_users
from targets.alerts.messages import ALERT_RELATED, alert_link, alert_message
from targets.models import (
    Alert,
    AlertKind,
    AlertRule,
    AlertSeverity,
    AlertState,
    Notification,
    NotificationPreference,
    NotificationTopic,
    TargetPlan,
)

# The list's default: what still needs attention.
ACTIVE_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


def alerts_visible_to(user: User | None) -> QuerySet[Alert]:
    """The alerts `user` may see: their own, their team's as manager, and those of users in their scope."""
    if user is None or not user.is_authenticated:
        return Alert.objects.none()
    return Alert.objects.filter(Q(owner=user) | Q(owner_manager=user) | Q(owner__in=visible_users(user)))


def alerts_filtered(
    user: User | None,
    *,
    states: Iterable[str] = ACTIVE_STATES,
    severity: str = "",
    kind: str = "",
    owner: User | None = None,
    plan: TargetPlan | None = None,
    period: str = "",
) -> QuerySet[Alert]:
    """The visible alerts narrowed by the list's filters (all optional; `states` empty = every state),
    loaded for their messages, most recently seen first."""
    qs = alerts_visible_to(user)
    if states:
        qs = qs.filter(state__in=list(states))
    if severity:
        qs = qs.filter(severity=severity)
    if kind:
        qs = qs.filter(rule__kind=kind)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if plan is not None:
        qs = qs.filter(node__plan=plan)
    if period:
        qs = qs.filter(period_key=period)
    return qs.select_related(*ALERT_RELATED).order_by("-last_seen", "-id")


def alert_state_counts(qs: QuerySet[Alert]) -> dict[str, int]:
    """How many alerts of `qs` are in each state, in one query."""
    counts = qs.order_by().aggregate(**{state: Count("id", filter=Q(state=state)) for state in AlertState.values})
    return {state: counts[state] or 0 for state in AlertState.values}


# --- notifications -------------------------------------------------------------------------------

# Without a preference of their own, people get e-mails of these severities (and every alert in the centre).
DEFAULT_EMAIL_SEVERITIES = (AlertSeverity.WARNING, AlertSeverity.CRITICAL)

NOTIFICATION_RELATED = ("recipient", *(f"alert__{f}" for f in ALERT_RELATED))


def wants(preference: NotificationPreference | None, severity: str) -> tuple[bool, bool]:
    """(in the centre, by e-mail) for an alert of `severity`, given the user's preference for its kind."""
    if preference is None:
        return True, severity in DEFAULT_EMAIL_SEVERITIES
    return preference.in_app, preference.email


def notifications_of(user: User | None) -> QuerySet[Notification]:
    """The user's own notifications in the centre, unread first, newest first."""
    if user is None or not user.is_authenticated:
        return Notification.objects.none()
    unread = ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField())
    return (
        Notification.objects.filter(recipient=user, in_app=True)
        .select_related(*NOTIFICATION_RELATED)
        .order_by(unread.desc(), "-created_at", "-id")
    )


def unread_count(user: User | None) -> int:
    """One COUNT query (the nav bell)."""
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user, in_app=True, read_at__isnull=True).count()


def notification_message(notification: Notification) -> str:
    if notification.alert is not None:  # no query without one
        return alert_message(notification.alert)
    if notification.topic == NotificationTopic.PLAN_SUBMITTED:
        params = notification.params
        return _("%(submitter)s submitted the plan “%(plan)s”; it waits for your approval.") % {
            "submitter": params.get("submitter", ""),
            "plan": params.get("plan", ""),
        }
    return str(notification.params.get("text", ""))


def notification_link(notification: Notification) -> str:
    if notification.link:
        return notification.link
    if notification.alert is not None:
        return alert_link(notification.alert, notification.recipient)
    return ""


def preferences_of(user: User) -> dict[str, tuple[bool, bool]]:
    """Every alert kind's (in the centre, by e-mail) for `user`: their choice, else the default for the
    severity the kind's general rule has now."""
    own = {p.kind: p for p in NotificationPreference.objects.filter(user=user)}
    severities = dict(AlertRule.objects.filter(metric__isnull=True).values_list("kind", "severity"))
    return {kind: wants(own.get(kind), severities.get(kind, AlertSeverity.WARNING)) for kind in AlertKind.values}
