"""What an alert says and where its cause is, rendered when shown, in the active language.

Alerts store only their kind and `params` (see `targets.alerts.evaluation`), so the same alert reads in English
for one person and in Chinese for another. Load alerts with `ALERT_RELATED` before rendering a list:
the message reads the target's coordinates or the deal's name and stage.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from crm.models import User
from targets.models import Alert, AlertKind

ALERT_RELATED = (
    "rule",
    "owner",
    "owner_manager",
    "node__plan__metric",
    "node__region",
    "node__rep",
    "node__product",
    "node__product_line",
    "opportunity__stage",
)


def _number(value: object, places: int) -> str:
    """A localized number with a real minus sign ("−14.2"); "?" when the parameter is missing."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "?"
    # number_format cuts digits off; round half up first, as money is rounded everywhere else.
    number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = formats.number_format(number, places, use_l10n=True, force_grouping=True)
    return text.replace("-", "\u2212", 1) if text.startswith("-") else text


def _money(value: object) -> str:
    return f"{_number(value, 2)} {settings.COMPANY_CURRENCY}"


def _target(alert: Alert) -> str:
    node = alert.node
    return node.label if node is not None else alert.subject_key


def _deal(alert: Alert) -> str:
    deal = alert.opportunity
    return deal.name if deal is not None else alert.subject_key


def _node_message(alert: Alert, params: dict) -> str:
    subject = _target(alert)
    if alert.rule.kind == AlertKind.PACE_GAP:
        if "attainment" in params:
            return _(
                "%(target)s: pace gap %(gap)s pts (attainment %(attainment)s %%, time progress %(progress)s %%)"
            ) % {
                "target": subject,
                "gap": _number(params.get("pace_gap"), 1),
                "attainment": _number(params.get("attainment"), 1),
                "progress": _number(params.get("time_progress"), 1),
            }
        return _("%(target)s: pace gap %(gap)s pts (threshold %(threshold)s pts)") % {
            "target": subject,
            "gap": _number(params.get("pace_gap"), 1),
            "threshold": _number(params.get("threshold"), 1),
        }
    if alert.rule.kind == AlertKind.COVERAGE:
        return _("%(target)s: the open pipeline covers %(coverage)s× of the remaining gap (below %(threshold)s×)") % {
            "target": subject,
            "coverage": _number(params.get("coverage"), 2),
            "threshold": _number(params.get("threshold"), 1),
        }
    plan = alert.node.plan.name if alert.node is not None else ""
    return _("%(target)s of the plan “%(plan)s” has no owner") % {"target": subject, "plan": plan}


def _deal_message(alert: Alert, params: dict) -> str:
    deal = alert.opportunity
    kind = alert.rule.kind
    if kind == AlertKind.STALE_IN_STAGE:
        days = (timezone.now() - deal.stage_entered_at).days if deal and deal.stage_entered_at else None
        return _("Deal “%(deal)s” has been in %(stage)s for %(days)s days (expected %(expected)s)") % {
            "deal": _deal(alert),
            "stage": deal.stage.display_name if deal is not None else "?",
            "days": days if days is not None else "?",
            "expected": params.get("expected_days", "?"),
        }
    if kind == AlertKind.CLOSE_DATE_PASSED:
        raw = params.get("expected_close_date")
        try:
            when = formats.date_format(date.fromisoformat(raw)) if raw else "?"
        except ValueError:
            when = str(raw)
        return _("Deal “%(deal)s” is still open after its expected close date, %(date)s") % {
            "deal": _deal(alert),
            "date": when,
        }
    if params.get("lost"):
        return _("Big deal “%(deal)s” (%(amount)s) was lost") % {
            "deal": _deal(alert),
            "amount": _money(params.get("amount")),
        }
    return _("Big deal “%(deal)s” (%(amount)s) moved back to %(stage)s") % {
        "deal": _deal(alert),
        "amount": _money(params.get("amount")),
        "stage": deal.stage.display_name if deal is not None else "?",
    }


def alert_message(alert: Alert) -> str:
    """One line saying what is wrong, e.g. "East · FY2027-Q1: pace gap −14.2 pts (attainment 31.0 %, …)"."""
    params = alert.params or {}
    if alert.node_id:
        return _node_message(alert, params)
    return _deal_message(alert, params)


def alert_link(alert: Alert, user: User | None = None) -> str:
    """Where the cause is: the deal, the target on the plan tree (managers), or "my targets" (reps)."""
    node = alert.node  # no query for a deal's alert
    if alert.opportunity_id or node is None:  # every alert is about a deal or a target
        return reverse("pipeline:deal_detail", args=[alert.opportunity_id])
    plan_id = node.plan_id
    if user is not None and not user.is_manager_or_above:
        return f"{reverse('targets:mine')}?plan={plan_id}"
    return f"{reverse('targets:plan_detail', args=[plan_id])}#node-{alert.node_id}"
