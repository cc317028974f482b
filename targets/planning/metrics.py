"""Metrics: the built-in ones, and admin-defined ones that narrow a source with filters."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import Product, ProductLine, Region, Role, Segment, User
from crm.services import audit
from pipeline.models import ActivityKind, Stage
from targets.models import (
    METRIC_FILTER_KEYS,
    PROCESS_SOURCES,
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

# The process measures (过程量): code, name, name_zh, source, filters; all counts. "Solution presented"
# (方案呈现) is the 2nd stage of the default pipeline: deals reaching the stage of that order in any pipeline.
BUILTIN_PROCESS_METRICS = [
    ("visits", "Customer visits", "拜访次数", MetricSource.ACTIVITIES, {"kind": "visit"}),
    ("calls", "Calls", "电话次数", MetricSource.ACTIVITIES, {"kind": "call"}),
    ("meetings", "Meetings", "会议次数", MetricSource.ACTIVITIES, {"kind": "meeting"}),
    ("deals_created", "Opportunities created", "新建商机数", MetricSource.DEALS_CREATED, {}),
    (
        "solution_presented",
        "Deals reaching Solution presented",
        "方案呈现商机数",
        MetricSource.STAGE_REACHED,
        {"stage_order": 2},
    ),
    ("customers_covered", "New customers covered", "新覆盖客户数", MetricSource.CUSTOMERS_COVERED, {}),
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
    for code, name, name_zh, source, filters in BUILTIN_PROCESS_METRICS:
        metric, _created = Metric.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "name_zh": name_zh,
                "unit": MetricUnit.COUNT,
                "source": source,
                "filters": filters,
                "is_builtin": True,
            },
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
    if source in PROCESS_SOURCES:
        unit = MetricUnit.COUNT  # a process measure counts things
    if "kind" in filters and (source != MetricSource.ACTIVITIES or filters["kind"] not in ActivityKind.values):
        raise ValidationError({"filters": _("The kind narrows activities: visit, call or meeting.")})
    for key in ("stage", "stage_order"):
        if key in filters and source != MetricSource.STAGE_REACHED:
            raise ValidationError({"filters": _("A stage narrows the deals reaching a stage.")})
    if source == MetricSource.STAGE_REACHED and not ({"stage", "stage_order"} & set(filters)):
        raise ValidationError({"filters": _('Name the stage to reach: {"stage": id} or {"stage_order": n}.')})
    for key in ("stage", "stage_order"):
        if key in filters and (isinstance(filters[key], bool) or not str(filters[key]).isdigit()):
            raise ValidationError({"filters": _("The stage must be given as a whole number.")})
    if "stage" in filters and not Stage.objects.filter(pk=filters["stage"]).exists():
        raise ValidationError({"filters": _("stage %(value)s does not exist.") % {"value": filters["stage"]}})
    if "stage_order" in filters and not Stage.objects.filter(order=filters["stage_order"]).exists():
        raise ValidationError({"filters": _("No stage has the order %(value)s.") % {"value": filters["stage_order"]}})
    if "segment" in filters and filters["segment"] not in Segment.values:
        raise ValidationError({"filters": _("The segment must be “existing” or “new”.")})
    metric = Metric(code=code, name=name, name_zh=name_zh, unit=unit, source=source, filters=filters)
    metric.full_clean()
    metric.save()
    audit(actor=actor, action="metric.create", obj=metric, changes={"code": [None, code], "filters": [None, filters]})
    return metric
