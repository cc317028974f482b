"""Alerts: acknowledge, resolve by hand, and the rules' settings (threshold, severity, active). Acknowledging or
resolving an alert also marks your notifications of it read. Who sees which is `targets.alerts.selectors`.

Evaluation itself is `targets.alerts.evaluation.evaluate_alerts` (derived data, no actor). An alert is handled by its
owner, the owner's manager, or anyone whose data scope includes the owner.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User
from crm.services import audit
from targets.alerts.notifications import notifications_mark_alert_read
from targets.alerts.selectors import alerts_visible_to
from targets.models import Alert, AlertKind, AlertRule, AlertSeverity, AlertState


def _locked(alert: Alert, actor: User) -> Alert:
    found = alerts_visible_to(actor).select_for_update().filter(pk=alert.pk).first()
    if found is None:
        raise ValidationError(_("This alert is not one of yours."))
    return found


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: User) -> Alert:
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
def alert_resolve(*, alert: Alert, actor: User) -> Alert:
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
def alert_rule_update(
    *,
    rule: AlertRule,
    actor: User,
    threshold: Decimal | str | None = None,
    severity: str | None = None,
    active: bool | None = None,
) -> AlertRule:
    """Change a rule's threshold, severity or whether it is active (directors and admins)."""
    if not actor.is_director_or_above:
        raise ValidationError(_("Only a director or an admin changes alert rules."))
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    errors: dict[str, str] = {}
    changes: dict[str, list[object]] = {}
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
