"""The scope pickers of the funnel and driver pages: a team among the user's regions (none for someone who sees
only his own deals), dates or a period, and how to group. Shape and scope only; the figures are selectors'."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from coaching.drivers import sees_only_himself
from crm.forms import scoped_region_field
from crm.models import CompanySettings, User
from pipeline.analytics import BY_OWNER, BY_REGION
from salesmgmt.lib import periods

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
MAX_DAYS = 3 * 366  # a bounded range: at most ~3 years of weeks or months per chart

BY_CHOICES = [("", _("Whole scope")), (BY_REGION, _("By team")), (BY_OWNER, _("By rep"))]
PERIOD_CHOICES = [(periods.QUARTER, _("Quarter")), (periods.MONTH, _("Month")), (periods.WEEK, _("Week"))]


class ScopeForm(forms.Form):
    region = forms.Field(required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if sees_only_himself(user):
            del self.fields["region"]
        else:
            self.fields["region"] = scoped_region_field(
                user,
                label=_("Sales team"),
                required=False,
                empty_label=_("All my teams"),
                help_text=_("The team a deal counts for: its owner’s team on the close date (业绩归属)."),
            )
        if "by" in self.fields and sees_only_himself(user):
            del self.fields["by"]  # his own figures only: nothing to group

    def region_out_of_scope(self) -> bool:
        """A region was asked for that the user may not see (the page answers 404, as for another team's deal)."""
        asked = str(self.data.get("region") or "") if self.is_bound else ""
        return asked.isdigit() and "region" in self.errors


class FunnelForm(ScopeForm):
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE)
    by = forms.ChoiceField(label=_("Win rate by"), choices=BY_CHOICES[1:], required=False)
    period = forms.ChoiceField(label=_("Per"), choices=PERIOD_CHOICES, required=False)

    def clean(self) -> dict:
        data = super().clean() or {}
        today = timezone.localdate()
        start_month = CompanySettings.load().fiscal_year_start_month
        data["date_to"] = data.get("date_to") or today
        data["date_from"] = data.get("date_from") or periods.period_of(data["date_to"], periods.YEAR, start_month).start
        if data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The start date is after the end date."))
        if (data["date_to"] - data["date_from"]).days > MAX_DAYS:
            raise forms.ValidationError(_("Choose at most three years."))
        data["by"] = BY_OWNER if sees_only_himself(self.user) else data.get("by") or BY_REGION
        data["period"] = data.get("period") or periods.QUARTER
        return data


def recent_periods(today: date, count: int = 8) -> list[periods.Period]:
    """The current quarter and month and the ones before them, newest first."""
    start_month = CompanySettings.load().fiscal_year_start_month
    result: list[periods.Period] = []
    for kind in (periods.QUARTER, periods.MONTH):
        day = today
        for _n in range(count):
            p = periods.period_of(day, kind, start_month)
            result.append(p)
            day = p.start - timedelta(days=1)
    return result


class DriversForm(ScopeForm):
    period = forms.ChoiceField(label=_("Period"), required=False)
    by = forms.ChoiceField(label=_("Show"), choices=BY_CHOICES, required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.periods = {p.key: p for p in recent_periods(timezone.localdate())}
        self.fields["period"].choices = [(key, key) for key in self.periods]

    def clean(self) -> dict:
        data = super().clean() or {}
        data["period"] = self.periods.get(data.get("period") or "") or next(iter(self.periods.values()))
        data["by"] = data.get("by") or None
        return data
