"""The pipeline flow of the review (管道变化) and the deals at risk.

/review/flow/: the flow of a period's open pipeline between two dates, per forecast category, as a table and a
waterfall; every box drills down (htmx) to its deals with what changed. /review/at-risk/: open deals stuck,
overdue, idle or moved back. Both read `pipeline.flow` for what the user may see; a deal's row is edited in
place through `pipeline:deal_inline`.
"""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from coaching import selectors as coaching_selectors
from crm.forms import scoped_region_field
from crm.models import CompanySettings
from pipeline import flow as pipeline_flow
from pipeline.models import ForecastCategory
from salesmgmt.charts import chart_html
from salesmgmt.views import filter_form, page_query, vary_on_htmx

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DRILL_PAGE = 50
AT_RISK_PAGE = 50
# The flow's table, top to bottom: start, what flows in, what flows out, the category moves, end.
ROWS = (
    pipeline_flow.START,
    *pipeline_flow.INFLOWS,
    *pipeline_flow.OUTFLOWS,
    pipeline_flow.CATEGORY_IN,
    pipeline_flow.CATEGORY_OUT,
    pipeline_flow.END,
)


class FlowFilterForm(forms.Form):
    """The flow's window, period and team. Empty: since the team's last review meeting (else the last 7 days), the
    current fiscal quarter, all one sees."""

    date_from = forms.DateField(label=gettext_lazy("Changes from"), required=False, widget=DATE)
    date_to = forms.DateField(label=gettext_lazy("to"), required=False, widget=DATE)
    period_start = forms.DateField(label=gettext_lazy("Period from"), required=False, widget=DATE)
    period_end = forms.DateField(label=gettext_lazy("Period to"), required=False, widget=DATE)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"] = scoped_region_field(user, label=gettext_lazy("Sales team"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The window ends before it starts."))
        if data.get("period_start") and data.get("period_end") and data["period_start"] > data["period_end"]:
            self.add_error("period_end", _("The period ends before it starts."))
        return data


def flow_arguments(data: dict, *, today: date) -> dict:
    """The flow's keyword arguments from a filter form's cleaned data, with the defaults filled in."""
    fields = ("date_from", "date_to", "period_start", "period_end")
    window = pipeline_flow.flow_window(today=today, **{f: data.get(f) for f in fields})
    return {**window, "region": data.get("region")}


def _waterfall(flow: pipeline_flow.Flow) -> str:
    """Start, each bucket, end: one waterfall trace, as a chart div that expects plotly.js on the page."""
    from plotly import graph_objects as go

    boxes = [flow.start, *flow.buckets, flow.end]
    measure = ["absolute", *(["relative"] * len(flow.buckets)), "total"]
    values = [float(b.total * b.sign) if b.key != pipeline_flow.END else float(b.total) for b in boxes]
    figure = go.Figure(
        go.Waterfall(
            x=[b.label for b in boxes],
            y=values,
            measure=measure,
            name=_("Open pipeline"),
            text=[f"{b.total:,.2f}" for b in boxes],
            textposition="outside",
            connector={"line": {"dash": "dot"}},
        )
    )
    figure.update_layout(
        template="plotly_white",
        margin={"l": 40, "r": 10, "t": 20, "b": 80},
        height=380,
        showlegend=False,
    )
    return chart_html(figure)


def _table(flow: pipeline_flow.Flow) -> tuple[list[str], list[dict]]:
    categories = flow.categories
    rows = []
    for key in ROWS:
        box = flow.boxes[key]
        rows.append(
            {
                "box": box,
                "cells": [(c, box.by_category.get(c), box.count_by_category.get(c, 0)) for c in categories],
            }
        )
    return categories, rows


def _drill_query(arguments: dict) -> str:
    """The query string of a drill-down: the window, period and team the page resolved (defaults included)."""
    query = QueryDict(mutable=True)
    for name in ("date_from", "date_to", "period_start", "period_end"):
        query[name] = arguments[name].isoformat()
    if arguments["region"] is not None:
        query["region"] = arguments["region"].pk
    return query.urlencode()


@login_required
@require_GET
def flow(request):
    form, data = filter_form(FlowFilterForm, request)
    today = timezone.localdate()
    # Without a start, the window opens on the day of the team's last review meeting ("since the last meeting"),
    # else a week before its end.
    since_meeting = None
    if not data.get("date_from"):
        team = data.get("region") or coaching_selectors.default_team(request.user)
        since_meeting = coaching_selectors.last_meeting_day(request.user, team)
        if since_meeting is not None and since_meeting <= (data.get("date_to") or today):
            data = {**data, "date_from": since_meeting}
        else:
            since_meeting = None
    arguments = flow_arguments(data, today=today)
    result = pipeline_flow.pipeline_flow(request.user, **arguments, deals_per_box=0)
    categories, rows = _table(result)
    context = {
        "form": form,
        "flow": result,
        "arguments": arguments,
        "categories": categories,
        "category_labels": dict(ForecastCategory.choices),
        "rows": rows,
        "chart": _waterfall(result),
        "drill_query": _drill_query(arguments),
        "balanced": result.computed_end() == result.end.total,
        "since_meeting": since_meeting,
    }
    return vary_on_htmx(render(request, "coaching/flow/flow.html", context))


@login_required
@require_GET
def flow_box(request):
    """One box's deals (htmx drill-down), optionally of one category, page by page."""
    box = request.GET.get("box", "")
    category = request.GET.get("category") or None
    if box not in pipeline_flow.BOXES or (category is not None and category not in ForecastCategory.values):
        raise Http404
    form, data = filter_form(FlowFilterForm, request)
    arguments = flow_arguments(data, today=timezone.localdate())
    page = max(int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1, 1)
    deals = pipeline_flow.flow_deals(
        request.user, box=box, category=category, **arguments, limit=DRILL_PAGE + 1, offset=(page - 1) * DRILL_PAGE
    )
    query = request.GET.copy()
    query["page"] = page + 1
    context = {
        "box": box,
        "label": pipeline_flow.LABELS[box],
        "category": category,
        "category_label": dict(ForecastCategory.choices).get(category or "", ""),
        "deals": deals[:DRILL_PAGE],
        "next_query": query.urlencode() if len(deals) > DRILL_PAGE else "",
        "page": page,
        "cols": 8,
    }
    return render(request, "coaching/flow/_box.html", context)


class AtRiskFilterForm(forms.Form):
    idle_days = forms.IntegerField(
        label=gettext_lazy("No activity for (days)"), min_value=1, max_value=365, required=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"] = scoped_region_field(user, label=gettext_lazy("Sales team"), required=False)


@login_required
@require_GET
def at_risk(request):
    form, data = filter_form(AtRiskFilterForm, request)
    deals = pipeline_flow.at_risk_deals(
        request.user,
        today=timezone.localdate(),
        region=data.get("region"),
        idle_days=data.get("idle_days") or pipeline_flow.IDLE_DAYS,
    )
    counts = pipeline_flow.risk_counts(deals)
    paginator = Paginator(deals, AT_RISK_PAGE)
    paginator.count = counts["all"]  # counted by the aggregate already
    page = paginator.get_page(request.GET.get("page"))
    rows = [(deal, [pipeline_flow.RISK_LABELS[k] for k in pipeline_flow.risk_reasons(deal)]) for deal in page]
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "counts": [(pipeline_flow.RISK_LABELS[k], counts[k]) for k in pipeline_flow.RISK_LABELS],
        "total": counts["all"],
        "query": page_query(request),
        "idle_days": data.get("idle_days") or pipeline_flow.IDLE_DAYS,
        "currency": CompanySettings.load().currency,
        "cols": 8,
    }
    return vary_on_htmx(render(request, "coaching/flow/at_risk.html", context))
