"""Alerts: who sees which (and the list's filters), acknowledge, resolve by hand, and the rules' settings
(threshold, severity, active). Acknowledging or resolving an alert also marks your notifications of it read.

Evaluation itself is `targets.alerts.evaluate_alerts` (derived data, no actor). An alert is handled by its
owner, the owner's manager, or anyone whose data scope includes the owner.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.scopes import visible_users
from crm.services import audit
from targets.alert_messages import ALERT_RELATED
from targets.models import Alert, AlertKind, AlertRule, AlertSeverity, AlertState
from targets.services.notifications import notifications_mark_alert_read

# The list's default: what still needs attention.
ACTIVE_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


def alerts_visible_to(user):
    """The alerts `user` may see: their own, their team's as manager, and those of users in their scope."""
    if user is None or not user.is_authenticated:
        return Alert.objects.none()
    return Alert.objects.filter(Q(owner=user) | Q(owner_manager=user) | Q(owner__in=visible_users(user)))


def alerts_filtered(user, *, states=ACTIVE_STATES, severity="", kind="", owner=None, plan=None, period=""):
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


def alert_state_counts(qs) -> dict[str, int]:
    """How many alerts of `qs` are in each state, in one query."""
    counts = qs.order_by().aggregate(**{state: Count("id", filter=Q(state=state)) for state in AlertState.values})
    return {state: counts[state] or 0 for state in AlertState.values}


def _locked(alert: Alert, actor) -> Alert:
    found = alerts_visible_to(actor).select_for_update().filter(pk=alert.pk).first()
    if found is None:
        raise ValidationError(_("This alert is not one of yours."))
    return found


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    """Seen and being handled: stays acknowledged while its condition keeps firing."""
    alert = _locked(alert, actor)
    if alert.state != AlertState.OPEN:
        raise ValidationError(_("Only an open alert can be acknowledged."))
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["state", "acknowledged_by", "acknowledged_at"])
    audit(actor=actor, action="alert_acknowledge", obj=alert, changes={"state": [AlertState.OPEN, alert.state]})
    notifications_mark_alert_read(alert_id=alert.pk, actor=actor)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor) -> Alert:
    """Closed by hand; the next evaluation re-opens it if its condition still holds."""
    alert = _locked(alert, actor)
    if alert.state == AlertState.RESOLVED:
        raise ValidationError(_("This alert is already resolved."))
    old = alert.state
    alert.state = AlertState.RESOLVED
    alert.resolved_at = timezone.now()
    alert.save(update_fields=["state", "resolved_at"])
    audit(actor=actor, action="alert_resolve", obj=alert, changes={"state": [old, alert.state]})
    notifications_mark_alert_read(alert_id=alert.pk, actor=actor)
    return alert


@transaction.atomic
def alert_rule_update(*, rule: AlertRule, actor, threshold=None, severity: str | None = None, active=None):
    """Change a rule's threshold, severity or whether it is active (directors and admins)."""
    if not actor.is_director_or_above:
        raise ValidationError(_("Only a director or an admin changes alert rules."))
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    errors = {}
    changes = {}
    if threshold is not None:
        try:
            value = Decimal(str(threshold))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            errors["threshold"] = _("Enter a number.")
        elif value < 0 and rule.kind in (AlertKind.COVERAGE, AlertKind.BIG_DEAL_BACKWARDS_OR_LOST):
            errors["threshold"] = _("This threshold cannot be negative.")
        else:
            changes["threshold"] = [str(rule.threshold), str(value)]
            rule.threshold = value
    if severity is not None:
        if severity not in AlertSeverity.values:
            errors["severity"] = _("Choose info, warning or critical.")
        else:
            changes["severity"] = [rule.severity, severity]
            rule.severity = severity
    if active is not None:
        changes["active"] = [rule.active, bool(active)]
        rule.active = bool(active)
    if errors:
        raise ValidationError(errors)
    rule.save(update_fields=["threshold", "severity", "active"])
    audit(actor=actor, action="alert_rule_update", obj=rule, changes=changes)
    return rule
