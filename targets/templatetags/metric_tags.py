"""How a target's figures read: `{{ value|metric_amount:metric }}`, the amount of a target or of its attainment as
its metric counts it: the one rule of every page's target amounts (the plan editor and grid, my targets, the
review, the home pages, the Excel import's preview)."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
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
    return format_html(
        '<span class="att-pace pace-{}" data-pace="{}">{}</span>',
        state or "none",
        "" if state is None else state,
        _pace_gap(figures.pace_gap_points),
    )


def _pace_gap(gap) -> str:
    """The points attainment runs ahead of (+) or behind time progress, or a dash when not measured."""
    return "—" if gap is None else f"{'+' if gap >= 0 else ''}{floatformat(gap, 1)} {gettext('pts')}"


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


def _raw(value) -> str:
    """`{{ value|default_if_none:''|unlocalize }}`: a number as a machine reads it (a data attribute), whatever the
    language; empty for none."""
    return "" if value is None else str(localize(value, use_l10n=False))


def _blocktranslate(message: str, **values) -> SafeString:
    """`{% blocktranslate with k=v %}`: the translation of `message` with its values escaped in."""
    return mark_safe(gettext(message) % {k: conditional_escape(v) for k, v in values.items()})  # noqa: S308


@register.simple_tag
def attainment_figures(att, metric, node) -> str:
    """The latest attainment of a target (`att`: an `Attainment` or None; "—" until a snapshot exists) as every
    target list shows it: actual, attainment %, time progress, pace gap, stretch and challenge levels and the
    week's trend, each with its machine value. A tag rather than an included template: a rep's targets page shows
    dozens, and the include's lookup and filters were a third of that page's CPU."""
    if not att:
        return format_html('<span class="muted" title="{}">—</span>\n', gettext("Attainment is not measured yet."))
    pk = node.pk
    derived = att.derived
    rate = att.attainment_pct
    state = att.pace
    parts = [
        format_html(
            '<span class="attainment-figures" data-testid="attainment-figures-{}" title="{}">\n',
            pk,
            _blocktranslate("As of %(day)s", day=date_filter(att.as_of, "Y-m-d")),
        ),
        format_html(
            '<span class="att-actual" data-testid="att-actual-{}" data-value="{}">{}</span>\n',
            pk,
            _raw(att.actual),
            metric_amount(att.actual, metric),
        ),
        format_html(
            '<span class="att-rate" data-testid="att-rate-{}" data-value="{}">{}</span>\n',
            pk,
            _raw(derived.attainment),
            "—" if rate is None else SafeString(f"{floatformat(rate, 1)}%"),
        ),
        format_html(
            '<small class="att-progress muted" data-testid="att-progress-{}" data-value="{}">{} {}%</small>\n',
            pk,
            _raw(derived.time_progress),
            gettext("time"),
            floatformat(att.time_progress_pct, 1),
        ),
        format_html(
            '<small class="att-pace pace-{}" data-testid="att-pace-{}" data-pace="{}" data-value="{}">{}</small>\n',
            state or "none",
            pk,
            state,
            _raw(derived.pace_gap),
            _pace_gap(att.pace_gap_points),
        ),
    ]
    # The stretch levels (冲刺, 挑战) a node carries: the actual against each.
    for level, name, value, rate in (
        ("stretch", gettext("stretch"), att.stretch, att.stretch_pct),
        ("challenge", gettext("challenge"), att.challenge, att.challenge_pct),
    ):
        if value:
            parts.append(
                format_html(
                    '<small class="att-{}" data-testid="att-{}-{}" data-value="{}">{} {}%</small>',
                    level,
                    level,
                    pk,
                    _raw(rate),
                    name,
                    floatformat(rate, 1),
                )
            )
        parts.append(SafeString("\n"))
    trend = att.trend
    if trend:
        points = floatformat(att.week_change_points, 1)
        if trend == "up":
            text = _blocktranslate("+%(points)s pts vs last week", points=points)
        else:
            text = _blocktranslate("%(points)s pts vs last week", points=points)
        parts.append(
            format_html(
                '<small class="att-trend trend-{}" data-testid="att-trend-{}" data-trend="{}" data-value="{}"'
                ' title="{}"><span aria-hidden="true">{}</span> {}</small>',
                trend,
                pk,
                trend,
                _raw(att.week_change),
                _blocktranslate(
                    "Change in attainment since the snapshot of %(day)s",
                    day=date_filter(att.week_before.as_of, "Y-m-d"),
                ),
                {"up": "▲", "down": "▼"}.get(trend, "▶"),
                text,
            )
        )
    parts.append(SafeString("\n</span>\n"))
    return SafeString("".join(parts))
