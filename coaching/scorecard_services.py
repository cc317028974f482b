"""Writing the scorecard's configuration (weights, caps and default targets per role and period)."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching.models import ScorecardConfig, ScorecardItem
from coaching.scorecard import can_edit
from crm.models import CompanySettings, Role, User
from crm.services import audit
from salesmgmt.lib import periods
from salesmgmt.lib.money import to_decimal
from targets.models import Metric

LIMITS = {"weight": Decimal("100000"), "cap": Decimal("10000"), "target": Decimal("1e15")}


def _number(value: object, field: str) -> Decimal:
    try:
        number = to_decimal(value, field=field)
    except (ArithmeticError, ValueError, TypeError):
        number = None
    if number is None or not number.is_finite() or abs(number) >= LIMITS[field]:
        raise ValidationError({field: _("%(value)s is not a number in range.") % {"value": value}})
    return number


@transaction.atomic
def scorecard_config_save(*, role: str, period_key: str, items: list[dict], actor: User) -> ScorecardConfig:
    """Create or replace the scorecard of `role` in `period_key`: `items` are {metric, weight, cap, target}
    (metric: a Metric or its id; cap a ratio, 1.20 = 120 %; target optional). All or nothing."""
    if not can_edit(actor):
        raise ValidationError(_("Only managers, directors and admins configure the scorecard."))
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role “%(role)s”.") % {"role": role}})
    try:
        periods.parse_key(period_key or "", CompanySettings.load().fiscal_year_start_month)
    except ValueError:
        raise ValidationError({"period_key": _("“%(key)s” is not a period (e.g. FY2027-Q1).") % {"key": period_key}})
    if not items:
        raise ValidationError({"items": _("Give the scorecard at least one measure.")})
    ids = [getattr(i.get("metric"), "pk", i.get("metric")) for i in items]
    try:
        ids = [int(x) for x in ids]
    except (TypeError, ValueError):
        raise ValidationError({"items": _("Every measure needs a metric.")}) from None
    metrics = {m.pk: m for m in Metric.objects.filter(pk__in=ids, is_active=True)}
    if len(metrics) != len(set(ids)):
        raise ValidationError({"items": _("A measure names an unknown or inactive metric.")})
    if len(set(ids)) != len(ids):
        raise ValidationError({"items": _("A metric appears twice.")})
    rows = []
    for position, (item, metric_id) in enumerate(zip(items, ids, strict=True)):
        weight = _number(item.get("weight"), "weight")
        cap = _number(item.get("cap", "1.20"), "cap")
        raw_target = item.get("target")
        target = None if raw_target in (None, "") else _number(raw_target, "target")
        if weight < 0:
            raise ValidationError({"weight": _("Weights cannot be negative.")})
        if cap <= 0:
            raise ValidationError({"cap": _("A cap must be above 0 (1.20 = 120 %).")})
        if target is not None and target <= 0:
            raise ValidationError({"target": _("A default target must be above 0.")})
        if weight != weight.quantize(Decimal("0.01")) or cap != cap.quantize(Decimal("0.01")):
            raise ValidationError({"weight": _("Weights and caps have at most two decimals.")})
        rows.append(ScorecardItem(metric=metrics[metric_id], weight=weight, cap=cap, target=target, position=position))
    config, created = ScorecardConfig.objects.select_for_update().get_or_create(role=role, period_key=period_key)
    before = {str(i.metric_id): [str(i.weight), str(i.cap)] for i in config.items.all()}
    config.items.all().delete()
    for row in rows:
        row.config = config
    ScorecardItem.objects.bulk_create(rows)
    config.updated_by, config.updated_at = actor, timezone.now()
    config.save(update_fields=["updated_by", "updated_at"])
    after = {str(r.metric_id): [str(r.weight), str(r.cap)] for r in rows}
    audit(actor=actor, action="scorecard.save", obj=config, changes={"items": [before or None, after]})
    return config
