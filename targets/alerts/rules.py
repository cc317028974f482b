"""The general alert rule of every kind, with its default threshold and severity: what a new installation
starts with (migration 0005) and what the rules page restores."""

from __future__ import annotations

from decimal import Decimal

from targets.models import AlertKind, AlertRule, AlertSeverity

DEFAULT_RULES = (
    # kind, threshold, severity
    (AlertKind.PACE_GAP, Decimal("-10"), AlertSeverity.WARNING),
    (AlertKind.COVERAGE, Decimal("3"), AlertSeverity.WARNING),
    (AlertKind.STALE_IN_STAGE, None, AlertSeverity.INFO),
    (AlertKind.CLOSE_DATE_PASSED, None, AlertSeverity.WARNING),
    (AlertKind.BIG_DEAL_BACKWARDS_OR_LOST, Decimal("500000"), AlertSeverity.CRITICAL),
    (AlertKind.LEAF_WITHOUT_OWNER, None, AlertSeverity.WARNING),
)


def ensure_default_rules() -> list[AlertRule]:
    """The general (all-metrics) rule of every kind, created once; existing rules are left as configured."""
    rules = []
    for kind, threshold, severity in DEFAULT_RULES:
        rule, _created = AlertRule.objects.get_or_create(
            kind=kind, metric=None, defaults={"threshold": threshold, "severity": severity}
        )
        rules.append(rule)
    return rules
