"""Alerts a user may see, the list's filters, and the counts by state; a user's notifications (the centre, the
bell's count, each one's message and link) and notification choices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import User
from crm.scopes import visible_users
from targets.alerts.messages import ALERT_RELATED, alert_link, alert_message
from targets.models import (
    PREFERENCE_MILESTONES,
    PREFERENCE_WEEKLY_DIGEST,
    Alert,
    AlertKind,
    AlertRule,
    AlertSeverity,
    AlertState,
    Notification,
    NotificationPreference,
    NotificationTopic,
    TargetMilestone,
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


# Without a preference of their own: milestones (good news, a few a year per target) in the centre and by
# e-mail; the weekly digest by e-mail (it has no place in the centre).
DEFAULT_WANTS = {PREFERENCE_MILESTONES: (True, True), PREFERENCE_WEEKLY_DIGEST: (False, True)}


def wants(preference: NotificationPreference | None, severity: str) -> tuple[bool, bool]:
    """(in the centre, by e-mail) for an alert of `severity`, given the user's preference for its kind."""
    if preference is None:
        return True, severity in DEFAULT_EMAIL_SEVERITIES
    return preference.in_app, preference.email


def wants_kind(preference: NotificationPreference | None, kind: str) -> tuple[bool, bool]:
    """(in the centre, by e-mail) for the milestones or the weekly digest, given the user's preference."""
    if preference is None:
        return DEFAULT_WANTS[kind]
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
    if notification.topic == NotificationTopic.MILESTONE:
        return milestone_message(notification.params)
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
    result = {kind: wants(own.get(kind), severities.get(kind, AlertSeverity.WARNING)) for kind in AlertKind.values}
    return result | {kind: wants_kind(own.get(kind), kind) for kind in DEFAULT_WANTS}


def milestone_message(params: dict) -> str:
    """The text of a milestone reached, in the reader's language, from the figures recorded then."""
    return _("%(owner)s reached %(level)s of the target %(target)s (%(period)s): %(attainment)s %% attained.") % {
        "owner": params.get("owner", ""),
        "level": milestone_level_label(str(params.get("level", ""))),
        "target": params.get("target", ""),
        "period": params.get("period", ""),
        "attainment": params.get("attainment", ""),
    }


def milestone_level_label(level: str) -> str:
    """ "50 %" for a share of the target; the other levels (stretch, challenge) by their name."""
    if level.isdigit():
        return f"{level} %"
    return str(MILESTONE_LEVEL_NAMES.get(level, level))


# The names of the levels that are not a share of the target (`targets.alerts.milestones.LEVELS`).
MILESTONE_LEVEL_NAMES: dict[str, str | Promise] = {
    "stretch": gettext_lazy("the stretch level (冲刺)"),
    "challenge": gettext_lazy("the challenge level (挑战)"),
}


def milestones_reached(user: User | None, *, since: date) -> QuerySet[TargetMilestone]:
    """The milestones the targets `user` owns reached on or after `since`, newest first, with their targets
    (good news for a home page or the weekly digest)."""
    if user is None or not user.is_authenticated:
        return TargetMilestone.objects.none()
    return (
        TargetMilestone.objects.filter(node__owner=user, reached_on__gte=since)
        .select_related("node__plan", "node__owner", "node__region", "node__product", "node__product_line", "node__rep")
        .order_by("-reached_on", "-created_at", "-id")
    )
