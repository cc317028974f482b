"""The leaderboard's filter: a plan the user may see and one of that plan's periods.

The period choices are always the chosen plan's: a period left over from the plan chosen before (the
select is redrawn by htmx when the plan changes, but a page submitted without it still sends the old
one) falls back to the plan's current period instead of failing. Which plan and period a page opens on
is a read, decided in `targets.attainment.selectors`.
"""

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from targets.attainment import selectors as selectors_attainment
from targets.planning.selectors import plans_visible_to


class LeaderboardForm(forms.Form):
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=None, required=False, empty_label=None)
    period = forms.ChoiceField(label=_("Period"), choices=(), required=False)

    def __init__(self, data=None, *, user, today: date, **kwargs):
        super().__init__(data, **kwargs)
        plans = plans_visible_to(user).order_by("-period_start", "pk")
        self.fields["plan"].queryset = plans
        plans = list(plans)
        raw_plan = str(self.data.get("plan", "")).strip() if self.is_bound else ""
        chosen = next((p for p in plans if str(p.pk) == raw_plan), None)
        self.unknown_plan = bool(raw_plan) and chosen is None
        self.plan = chosen or selectors_attainment.leaderboard_default_plan(plans, today)
        periods = selectors_attainment.leaderboard_periods(self.plan) if self.plan is not None else []
        self.fields["period"].choices = [(p.key, p.key) for p in periods]
        keys = {p.key for p in periods}
        raw_period = str(self.data.get("period", "")).strip() if self.is_bound else ""
        self.period = (
            raw_period if raw_period in keys else selectors_attainment.leaderboard_default_period(periods, today)
        )
        if self.is_bound:
            # The select shows what the page shows: the plan and period actually ranked.
            self.data = self.data.copy()
            self.data["plan"] = "" if self.plan is None else str(self.plan.pk)
            self.data["period"] = self.period
        else:
            self.initial = {"plan": self.plan, "period": self.period}

    def clean(self):
        cleaned = super().clean()
        if self.unknown_plan:
            self.add_error("plan", _("That plan is not available to you; the plan in force is shown instead."))
        return cleaned
