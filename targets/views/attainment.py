"""The attainment leaderboard: reps in the user's scope ranked by attainment for a plan and a period."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from targets import selectors, selectors_attainment


class LeaderboardForm(forms.Form):
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=None, required=False, empty_label=None)
    period = forms.ChoiceField(label=_("Period"), choices=(), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = selectors.plans_visible_to(user).order_by("-period_start", "pk")


@login_required
@require_GET
def leaderboard(request):
    form = LeaderboardForm(request.GET or None, user=request.user)
    visible = form.fields["plan"].queryset
    raw = request.GET.get("plan", "")
    plan = visible.filter(pk=int(raw)).first() if raw.isdigit() else None
    plan = plan or visible.first()
    period, rows = "", []
    if plan is not None:
        periods = selectors_attainment.leaderboard_periods(plan)
        form.fields["period"].choices = [(p, p) for p in periods]
        if form.is_bound:
            form.is_valid()  # an invalid choice is shown on the form and replaced by the default
        period = getattr(form, "cleaned_data", {}).get("period") or (periods[0] if periods else "")
        if period:
            rows = selectors_attainment.leaderboard(request.user, plan, period)
    context = {"form": form, "plan": plan, "period": period, "rows": rows}
    return render(request, "targets/attainment/leaderboard.html", context)
