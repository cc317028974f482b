"""Metrics: the built-in ones, and admin-defined ones that narrow a source with filters."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import Product, ProductLine, Region, Role, Segment, User
from crm.services import audit
from targets.models import (
    METRIC_FILTER_KEYS,
    Metric,
    MetricSource,
    MetricUnit,
)

BUILTIN_METRICS = [
    # code, name, name_zh, unit, source
    ("won_revenue", "Signed revenue", "签约额", MetricUnit.MONEY, MetricSource.WON_REVENUE),
    ("collections", "Cash collection", "回款额", MetricUnit.MONEY, MetricSource.COLLECTIONS),
    ("new_customers", "New customers", "新客户数", MetricUnit.COUNT, MetricSource.NEW_CUSTOMERS),
    ("gross_margin", "Gross margin", "毛利", MetricUnit.MONEY, MetricSource.GROSS_MARGIN),
    ("key_product_share", "Key-product revenue", "重点产品占比", MetricUnit.MONEY, MetricSource.KEY_PRODUCT_SHARE),
]


@transaction.atomic
def metric_ensure_defaults() -> list[Metric]:
    """Create the built-in metrics once; running it again changes nothing."""
    result = []
    for code, name, name_zh, unit, source in BUILTIN_METRICS:
        metric, _created = Metric.objects.get_or_create(
            code=code, defaults={"name": name, "name_zh": name_zh, "unit": unit, "source": source, "is_builtin": True}
        )
        result.append(metric)
    return result


@transaction.atomic
def metric_create(
    *,
    code: str,
    name: str,
    source: str,
    unit: str = MetricUnit.MONEY,
    name_zh: str = "",
    filters: dict | None = None,
    actor: User,
) -> Metric:
    """An admin-defined metric: a built-in source narrowed by filters (e.g. one product line, tier A)."""
    if not (actor.is_superuser or actor.role == Role.ADMIN):
        raise ValidationError(_("Only an admin can define metrics."))
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(METRIC_FILTER_KEYS))
    if unknown:
        raise ValidationError(
            {
                "filters": _("Unknown filters: %(keys)s. Use %(allowed)s.")
                % {"keys": ", ".join(unknown), "allowed": ", ".join(METRIC_FILTER_KEYS)}
            }
        )
    lookups: dict[str, type[ProductLine | Product | Region]] = {
        "product_line": ProductLine,
        "product": Product,
        "region": Region,
    }
    for key, model in lookups.items():
        if key in filters and not model.objects.filter(pk=filters[key]).exists():
            raise ValidationError(
                {"filters": _("%(key)s %(value)s does not exist.") % {"key": key, "value": filters[key]}}
            )
    if "segment" in filters and filters["segment"] not in Segment.values:
        raise ValidationError({"filters": _("The segment must be “existing” or “new”.")})
    metric = Metric(code=code, name=name, name_zh=name_zh, unit=unit, source=source, filters=filters)
    metric.full_clean()
    metric.save()
    audit(actor=actor, action="metric.create", obj=metric, changes={"code": [None, code], "filters": [None, filters]})
    return metric
