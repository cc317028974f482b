"""Alerts: the general rules (`rules`) and their set-based evaluation (`evaluation`), how an alert reads
(`messages`), who sees which (`selectors`), acknowledging, resolving and the rules' settings (`services`), and
the notifications an opening sends (`notifications`)."""

# Migration 0005 reads the defaults as `targets.alerts.DEFAULT_RULES`; migrations are not edited.
from targets.alerts.rules import DEFAULT_RULES

__all__ = ["DEFAULT_RULES"]
