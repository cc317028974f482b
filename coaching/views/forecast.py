"""The forecast call (/review/forecast/): a rep's forecast per period prefilled from his deals, a manager's
roll-up of his team with his own number upward, a director's view of the regions' submissions, and after
the period the accuracy week by week (table and chart)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from coaching import selectors, services
from coaching.forms import ForecastForm, TeamForecastForm, ViewForm
from crm.forms import add_service_errors
from salesmgmt.charts import chart_html
from salesmgmt.views import safe_next_url


def accuracy_chart(acc: selectors.Accuracy) -> str:
    """Commit and best case ÷ actual per week of the period (the team's, or the rep's own): one trace per series."""
    from plotly import graph_objects as go

    row = acc.team or (acc.reps[0] if acc.reps else None)
    if row is None:
        return ""
    weeks = [w.isoformat() for w in acc.weeks]
    figure = go.Figure(
        [
            go.Scatter(
                x=weeks,
                y=[None if c.commit_pct is None else float(c.commit_pct) for c in row.cells],
                name=_("Commit ÷ actual %"),
                mode="lines+markers",
            ),
            go.Scatter(
                x=weeks,
                y=[None if c.best_case_pct is None else float(c.best_case_pct) for c in row.cells],
                name=_("Best case ÷ actual %"),
                mode="lines+markers",
            ),
            go.Scatter(x=weeks, y=[100.0] * len(weeks), name=_("Actual"), mode="lines", line={"dash": "dot"}),
        ]
    )
    figure.update_layout(
        template="plotly_white",
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        height=300,
        yaxis={"ticksuffix": "%", "rangemode": "tozero"},
        xaxis={"type": "date"},
        legend={"orientation": "h", "y": -0.2},
    )
    return chart_html(figure)


def _page(request, *, rep_form=None, team_form=None, status=200):
    user, today = request.user, timezone.localdate()
    view = ViewForm(request.GET or None, user=user)
    view.is_valid() if view.is_bound else None
    chosen = view.cleaned_data if view.is_bound else {}
    if request.GET.get("team") and not chosen.get("team"):
        raise Http404(_("Unknown team."))
    period = chosen.get("period") or selectors.current_period(today)
    week = selectors.week_of(chosen.get("week") or today)
    team = chosen.get("team") or selectors.default_team(user)
    figures = selectors.prefill(user, period)
    context = {
        "periods": selectors.forecast_periods(today),
        "period": period,
        "week": week,
        "team": team,
        "teams": selectors.teams_for(user).order_by("path"),
        "figures": figures,
        "history": selectors.submission_history(user, owner=user, period_key=period.key)[:20],
        "rep_form": rep_form
        or ForecastForm(initial={"period": period.key, "commit": figures.commit, "best_case": figures.best_case}),
        "ended": period.end < today,
    }
    if team is not None:
        roll = selectors.rollup(user, team, period, week)
        context["rollup"] = roll
        context["team_form"] = team_form or TeamForecastForm(
            user=user,
            initial={"period": period.key, "team": team.pk, "commit": roll.commit, "best_case": roll.best_case},
        )
    if context["ended"]:
        acc = selectors.accuracy(user, period, team=team)
        context["accuracy"] = acc
        context["accuracy_chart"] = accuracy_chart(acc)
    return render(request, "coaching/forecast/page.html", context, status=status)


@login_required
def forecast(request):
    return _page(request)


@login_required
@require_POST
def forecast_submit(request):
    form = ForecastForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.forecast_submit(
                actor=request.user,
                period=data["period"],
                commit=data["commit"],
                best_case=data["best_case"],
                note=data["note"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Forecast submitted."))
            return redirect(f"{reverse('coaching:forecast')}?period={data['period'].key}")
    return _page(request, rep_form=form, status=400)


@login_required
@require_POST
def forecast_team_submit(request):
    form = TeamForecastForm(request.POST, user=request.user)
    if not request.user.is_manager_or_above:
        raise Http404(_("Unknown team."))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.forecast_team_submit(
                actor=request.user,
                team=data["team"],
                period=data["period"],
                commit=data["commit"],
                best_case=data["best_case"],
                note=data["note"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Team forecast submitted."))
            default = f"{reverse('coaching:forecast')}?period={data['period'].key}&team={data['team'].pk}"
            return redirect(safe_next_url(request, default))
    return _page(request, team_form=form, status=400)
