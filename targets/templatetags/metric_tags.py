"""How a target's figures read: `{{ value|metric_amount:metric }}`, the amount of a target or of its attainment as
its metric counts it: the one rule of every page's target amounts (the plan editor and grid, my targets, the
review, the home pages, the Excel import's preview)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from salesmgmt.lib.numbers import floatformat

register = template.Library()

NO_FIGURE = SafeString('<span class="muted">—</span>')


@register.filter
def metric_amount(value, metric=None) -> str:
    """`value` as a target of `metric` (a Metric, or its unit) shows it: a count (deals, customers) without
    decimals, money and any other metric with two, grouped in the active language's way; a muted dash when
    there is no value. A filter rather than an included template: a rep's targets page showed ~150 of them,
    each include a template lookup and a context of its own."""
    if value is None:
        return NO_FIGURE
    unit = metric if isinstance(metric, str) else getattr(metric, "unit", None)
    return floatformat(value, "0g" if unit == "count" else "2g")


@register.filter
def pct(value) -> str:
    """A percentage as every page shows one (attainment, time progress, a win rate): one decimal and a % sign,
    or a muted dash when there is none."""
    if value is None:
        return NO_FIGURE
    return SafeString(f"{floatformat(value, 1)}%")


@register.filter
def pace(figures) -> str:
    """The pace badge of figures with `pace` ("good", "warn", "bad", or "" / None when not measured) and
    `pace_gap_points`: the points attainment runs ahead of (+) or behind time progress."""
    state = figures.pace
    gap = figures.pace_gap_points
    text = "—" if gap is None else f"{'+' if gap >= 0 else ''}{floatformat(gap, 1)} {gettext('pts')}"
    return format_html(
        '<span class="att-pace pace-{}" data-pace="{}">{}</span>', state or "none", "" if state is None else state, text
    )


@register.simple_tag
def days_left(node) -> str:
    """How a target's deadline stands (`node.days_left`, `days_late`, `ended` as `targets.views.mine` sets them): no
    deadline, ended or overdue so many days ago, due today, or so many days left."""
    days = node.days_left
    if days is None:
        return format_html('<span class="muted">{}</span>', gettext("No deadline"))
    if days < 0 and node.ended:
        text = ngettext("Ended %(counter)s day ago", "Ended %(counter)s days ago", node.days_late)
        return format_html('<span class="muted" data-ended="1">{}</span>', text % {"counter": node.days_late})
    if days < 0:
        text = ngettext("Overdue by %(counter)s day", "Overdue by %(counter)s days", node.days_late)
        return format_html('<span class="badge warn" data-overdue="1">{}</span>', text % {"counter": node.days_late})
    if days == 0:
        return format_html('<span class="badge warn">{}</span>', gettext("Due today"))
    text = ngettext("%(counter)s day left", "%(counter)s days left", days)
    return format_html('<span class="muted">{}</span>', text % {"counter": days})
