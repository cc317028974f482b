"""The scorecard page's forms: which scorecard to show, and its configuration (a row per measure)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Role
from targets.models import Metric

ITEM_ROWS = 8  # measures a scorecard holds on the page


class ScorecardPickForm(forms.Form):
    period_key = forms.CharField(label=_("Period"), max_length=16, required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, required=False)


class ScorecardConfigForm(forms.Form):
    """Role and period, then up to `ITEM_ROWS` rows of (metric, weight, cap, default target); empty rows skipped."""

    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    period_key = forms.CharField(label=_("Period"), max_length=16, help_text=_("e.g. FY2027-Q1 or FY2027"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        metrics = Metric.objects.filter(is_active=True)
        for i in range(ITEM_ROWS):
            self.fields[f"metric_{i}"] = forms.ModelChoiceField(label=_("Measure"), queryset=metrics, required=False)
            self.fields[f"weight_{i}"] = forms.DecimalField(
                label=_("Weight (points)"), required=False, min_value=0, max_digits=7, decimal_places=2
            )
            self.fields[f"cap_{i}"] = forms.DecimalField(
                label=_("Cap (1.20 = 120 %)"), required=False, min_value=0, max_digits=6, decimal_places=2
            )
            self.fields[f"target_{i}"] = forms.DecimalField(
                label=_("Default target"), required=False, min_value=0, max_digits=18, decimal_places=2
            )

    @property
    def rows(self) -> list[tuple]:
        return [
            (self[f"metric_{i}"], self[f"weight_{i}"], self[f"cap_{i}"], self[f"target_{i}"]) for i in range(ITEM_ROWS)
        ]

    def items(self) -> list[dict]:
        data = self.cleaned_data
        result = []
        for i in range(ITEM_ROWS):
            metric = data.get(f"metric_{i}")
            if metric is None:
                continue
            weight = data.get(f"weight_{i}")
            if weight is None:
                self.add_error(f"weight_{i}", _("Give the measure a weight."))
                continue
            cap = data.get(f"cap_{i}")
            result.append(
                {
                    "metric": metric,
                    "weight": weight,
                    "cap": cap if cap is not None else "1.20",
                    "target": data.get(f"target_{i}"),
                }
            )
        return result


def config_initial(config) -> dict:
    initial: dict = {"role": config.role, "period_key": config.period_key}
    for i, item in enumerate(config.items.all()[:ITEM_ROWS]):
        initial.update(
            {
                f"metric_{i}": item.metric_id,
                f"weight_{i}": item.weight,
                f"cap_{i}": item.cap,
                f"target_{i}": item.target,
            }
        )
    return initial
