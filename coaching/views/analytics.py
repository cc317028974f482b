"""The review's funnel, win rate and cycle page, and its driver diagnosis (业绩公式) page.

Thin: the form picks the scope among the user's regions (a region he may not see is a 404), the selectors
compute, and plotly figures are built here from their aggregates (one trace per series, never per rep)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from coaching.analytics_forms import DriversForm, FunnelForm
from coaching.drivers import DriverReview, default_region, driver_review
from crm.models import CompanySettings
from pipeline.analytics import Funnel, WinRateRow, funnel, win_rates
from salesmgmt.charts import chart_html
from salesmgmt.lib.drivers import DRIVERS
from salesmgmt.lib.money import quantize
from salesmgmt.views import is_partial, vary_on_htmx


def driver_labels() -> dict[str, str]:
    return {
        "covered": _("Covered customers"),
        "active_rate": _("Active rate"),
        "deals_per_active": _("Deals per active customer"),
        "deal_size": _("Average deal size"),
    }


@cache
def _template() -> dict:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def _figure(traces: list[dict], **layout: Any) -> dict:
    """A figure from plain dicts, a trace per series (the template is added when it is drawn)."""
    return {
        "data": traces,
        "layout": {"margin": {"l": 40, "r": 10, "t": 30, "b": 40}, "height": 340, "legend": {"orientation": "h"}}
        | layout,
    }


def chart(figure: dict) -> str:
    """A figure as a chart div (`salesmgmt.charts`; plotly.js is loaded by the page).

    Built without plotly's graph objects and without validation: each validated figure cost ~100 ms, more
    than the page's queries. The figures are checked against plotly's schema in the tests instead."""
    drawn = {**figure, "layout": {**figure["layout"], "template": _template()}}
    return chart_html(drawn, validate=False)


def funnel_figure(result: Funnel) -> dict:
    trace = {
        "type": "funnel",
        "y": [f.stage.display_name for f in result.stages],
        "x": [f.reached for f in result.stages],
        "textinfo": "value+percent previous",
        "name": _("Deals that reached the stage"),
    }
    return _figure([trace])


def days_figure(result: Funnel) -> dict:
    stages = [f for f in result.stages if f.median_days is not None]
    trace = {
        "type": "bar",
        "x": [f.stage.display_name for f in stages],
        "y": [float(f.median_days) for f in stages if f.median_days is not None],
        "name": _("Median days in stage"),
    }
    return _figure([trace])


TABLE_ROWS = 200  # groups listed (most closed deals first); a director's 5,000 reps are in the API
CHART_GROUPS = 30


def win_rate_figure(rows: list[WinRateRow], *, over_time: bool = False) -> dict:
    """Win rate % (bars) and median sales cycle (markers, right axis): per period, or per group."""
    labels = [r.period.key if over_time else (r.label or _("All")) for r in rows]
    rates = {
        "type": "bar",
        "x": labels,
        "y": [None if r.win_rate is None else float(r.win_rate) for r in rows],
        "name": _("Win rate %"),
    }
    cycle = {
        "type": "scatter",
        "mode": "markers",
        "x": labels,
        "y": [None if r.median_cycle_days is None else float(r.median_cycle_days) for r in rows],
        "name": _("Median sales cycle (days)"),
        "yaxis": "y2",
    }
    return _figure(
        [rates, cycle],
        yaxis={"ticksuffix": "%", "rangemode": "tozero", "title": {"text": _("Win rate %")}},
        yaxis2={"overlaying": "y", "side": "right", "title": {"text": _("Days")}},
    )


@login_required
@require_GET
def funnel_page(request):
    form = FunnelForm(request.GET, user=request.user)
    if not form.is_valid() and form.region_out_of_scope():
        raise Http404
    context = {"form": form, "currency": CompanySettings.load().currency}
    if form.is_valid():
        data = form.cleaned_data
        region = data.get("region")
        result = funnel(request.user, date_from=data["date_from"], date_to=data["date_to"], region=region)
        common = {"date_from": data["date_from"], "date_to": data["date_to"], "region": region, "by": data["by"]}
        # Per group over the whole range (busiest first), and the whole scope per period (the trend).
        groups = sorted(win_rates(request.user, period=None, **common), key=lambda r: (-(r.won + r.lost), r.label))
        trend = win_rates(request.user, period=data["period"], **{**common, "by": None})
        context.update(
            funnel=result,
            rows=groups[:TABLE_ROWS],
            group_count=len(groups),
            trend=trend,
            funnel_chart=chart(funnel_figure(result)) if result.stages else "",
            days_chart=chart(days_figure(result)) if any(f.median_days is not None for f in result.stages) else "",
            win_rate_chart=chart(win_rate_figure(groups[:CHART_GROUPS])) if groups else "",
            trend_chart=chart(win_rate_figure(trend, over_time=True)) if trend else "",
        )
    template = "coaching/analytics/_funnel_results.html" if is_partial(request, "funnel-results") else None
    return vary_on_htmx(render(request, template or "coaching/analytics/funnel.html", context))


def waterfall(title_start: str, start: Decimal, contributions: list[Decimal], title_end: str) -> dict:
    labels = driver_labels()
    trace = {
        "type": "waterfall",
        "x": [title_start, *(labels[d] for d in DRIVERS), title_end],
        "measure": ["absolute", "relative", "relative", "relative", "relative", "total"],
        "y": [float(start), *(float(c) for c in contributions), 0],
        "text": [f"{start:,.2f}", *(f"{c:+,.2f}" for c in contributions), f"{start + sum(contributions):,.2f}"],
        "name": _("Contribution"),
    }
    return _figure([trace])


def shown(driver: str, value: Fraction | Decimal | None) -> str:
    """A driver as the page shows it, rounded once from its exact value."""
    if value is None:
        return "—"
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
    if driver == "active_rate":
        return f"{quantize(exact * 100, Decimal('0.1'))}%"
    if driver == "covered":
        return str(quantize(exact, Decimal("1") if exact == exact.to_integral_value() else Decimal("0.1")))
    return f"{quantize(exact):,}"


def driver_table(review: DriverReview) -> list[dict]:
    """One line per driver: now, previous, contribution to the change; target value and contribution to the gap."""
    target = review.target
    lines = []
    for i, driver in enumerate(DRIVERS):
        lines.append(
            {
                "driver": driver,
                "label": driver_labels()[driver],
                "now": shown(driver, review.row.now.factors[i]),
                "previous": shown(driver, review.row.previous.factors[i]),
                "change": review.row.change[i],
                "target": shown(driver, target.factors[i]) if target and target.factors else "—",
                "gap": target.contributions[i] if target and target.contributions else None,
            }
        )
    return lines


@login_required
@require_GET
def drivers_page(request):
    form = DriversForm(request.GET, user=request.user)
    if not form.is_valid() and form.region_out_of_scope():
        raise Http404
    context = {"form": form, "currency": CompanySettings.load().currency, "labels": driver_labels()}
    if form.is_valid():
        data = form.cleaned_data
        period = data["period"]
        region = data.get("region") or default_region(request.user)
        scope = {"period_start": period.start, "period_end": period.end, "region": region}
        whole = driver_review(request.user, **scope)[0]  # by=None: one row, the whole scope
        rows = driver_review(request.user, by=data["by"], **scope) if data["by"] else []
        for review in [whole, *rows]:
            review.lines = driver_table(review)
        context.update(period=period, region=region, whole=whole, rows=rows)
        context["change_chart"] = chart(
            waterfall(_("Previous period"), whole.row.previous.amount, whole.row.change, _("This period"))
        )
        if whole.target is not None and whole.target.contributions is not None:
            context["target_chart"] = chart(
                waterfall(_("Target"), whole.target.target, whole.target.contributions, _("Actual"))
            )
    template = "coaching/analytics/_drivers_results.html" if is_partial(request, "drivers-results") else None
    return vary_on_htmx(render(request, template or "coaching/analytics/drivers.html", context))
