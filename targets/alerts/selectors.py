"""Alerts a user may see, the list's filters, and the counts by state."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet

from crm.models import User
from crm.scopes import visible_users
from targets.alerts.messages import ALERT_RELATED
from targets.models import Alert, AlertState, TargetPlan

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
