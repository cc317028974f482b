"""The attainment leaderboard: reps in the user's scope ranked by attainment for a plan and a period."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from salesmgmt.views import is_partial, vary_on_htmx
from targets.attainment import selectors as selectors_attainment
from targets.forms.attainment import LeaderboardForm

# The id of the period select's wrapper, redrawn by htmx when the plan changes.
LEADERBOARD_PERIOD = "leaderboard-period"


@login_required
@require_GET
def leaderboard(request):
    """The plan in force and its current period unless chosen; a period of another plan falls back to
    the chosen plan's current one. The htmx request of the plan select gets only the period select."""
    form = LeaderboardForm(request.GET or None, user=request.user, today=timezone.localdate())
    if form.is_bound:
        form.is_valid()  # a plan the user may not see is reported on the form; the default is shown
    if is_partial(request, LEADERBOARD_PERIOD):
        return vary_on_htmx(render(request, "targets/attainment/_leaderboard_period.html", {"form": form}))
    rows = selectors_attainment.leaderboard(request.user, form.plan, form.period) if form.period else []
    context = {"form": form, "plan": form.plan, "period": form.period, "rows": rows}
    return vary_on_htmx(render(request, "targets/attainment/leaderboard.html", context))
