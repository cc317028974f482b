"""Forms of the pipeline screens. They check shape and scope (choices come from visible querysets);
the business rules (evidence, lost reason, probability reason, version) live in the services."""

import re
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.forms import (
    SelectChoiceField,
    region_choices,
    scoped_customer_field,
    scoped_region_field,
    scoped_user_field,
)
from crm.models import CompanySettings, Currency, ProductLine
from crm.scopes import visible_regions
from pipeline.models import ActivityKind, ForecastCategory, Pipeline, Stage
from pipeline.selectors import STATUS_CHOICES, STATUS_OPEN
from pipeline.services import EDITABLE_FIELDS, opportunity_in_closed_period
from salesmgmt.lib.money import quantize, to_decimal

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class MoneyField(forms.DecimalField):
    """A Decimal amount that also accepts '1,234.50' or '¥ 12 000' as people type them."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            value = to_decimal(value)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(str(value))

    def clean(self, value):
        value = super().clean(value)
        # Validated to at most 2 places above; quantized so history and messages read "1200.00".
        return None if value is None else quantize(value)


class PipelineChoiceField(SelectChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class StageChoiceField(SelectChoiceField):
    """Stages of the default pipeline by name; those of other pipelines prefixed with their pipeline."""

    def label_from_instance(self, obj):
        if obj.pipeline.is_default:
            return obj.display_name
        return f"{obj.pipeline.display_name} · {obj.display_name}"


class DealCreateForm(forms.Form):
    """A deal in a few fields: name, customer, amount, close date; the rest has defaults."""

    name = forms.CharField(label=_("Deal name"), max_length=200)
    customer = forms.Field()
    amount = MoneyField(label=_("Amount"))
    currency = SelectChoiceField(label=_("Currency"), queryset=Currency.objects.all(), empty_label=None)
    expected_close_date = forms.DateField(label=_("Expected close date"), widget=DATE)
    product_line = SelectChoiceField(
        label=_("Product line"), queryset=ProductLine.objects.all(), required=False, empty_label=_("(optional)")
    )
    pipeline = PipelineChoiceField(
        label=_("Pipeline"), queryset=Pipeline.objects.all(), required=False, empty_label=_("Default pipeline")
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"] = scoped_customer_field(user, label=_("Customer"))
        self.fields["currency"].initial = CompanySettings.load().currency
        self.several_pipelines = Pipeline.objects.count() > 1
        if not self.several_pipelines:
            del self.fields["pipeline"]


class DealEditForm(forms.Form):
    """The deal's fields with the version it was loaded at (optimistic locking)."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    name = forms.CharField(label=_("Deal name"), max_length=200)
    customer = forms.Field()
    owner = forms.Field()
    amount = MoneyField(label=_("Amount"))
    currency = SelectChoiceField(label=_("Currency"), queryset=Currency.objects.all(), empty_label=None)
    expected_close_date = forms.DateField(label=_("Expected close date"), widget=DATE)
    probability = forms.IntegerField(label=_("Probability %"), min_value=0, max_value=100)
    probability_reason = forms.CharField(
        label=_("Reason for probability override"),
        max_length=200,
        required=False,
        help_text=_("Needed when the probability differs from the stage's."),
    )
    forecast_category = forms.ChoiceField(label=_("Forecast category"), choices=ForecastCategory.choices)
    next_step = forms.CharField(label=_("Next step"), max_length=200, required=False)
    next_step_date = forms.DateField(label=_("Next step date"), required=False, widget=DATE)
    star_rating = forms.TypedChoiceField(
        label=_("Star rating"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *((i, "★" * i) for i in range(1, 6))],
    )
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=200,
        required=False,
        help_text=_("The deal was won in a closed period: its figures were reported already. Say why they change."),
    )

    # Lost reason is asked for by the move to the lost stage, not edited here.
    FIELDS = tuple(f for f in EDITABLE_FIELDS if f != "lost_reason")

    def __init__(self, *args, user, deal, **kwargs):
        kwargs.setdefault(
            "initial",
            {"version": deal.version, **{f: getattr(deal, f) for f in self.FIELDS}},
        )
        super().__init__(*args, **kwargs)
        self.fields["customer"] = scoped_customer_field(user, label=_("Customer"))
        self.fields["owner"] = scoped_user_field(user, label=_("Owner"))
        if not opportunity_in_closed_period(deal):
            del self.fields["reason"]  # asked only where the service asks for it

    def changes(self) -> dict:
        return {f: self.cleaned_data[f] for f in self.FIELDS}


class MoveStageForm(forms.Form):
    """What a stage move asks for: evidence when the stage requires it, a reason when lost."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    evidence = forms.CharField(label=_("Evidence"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    lost_reason = forms.CharField(label=_("Why was it lost?"), max_length=200, required=False)
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=200,
        required=False,
        help_text=_("The deal was won in a closed period: its figures were reported already. Say why they change."),
    )

    def __init__(self, *args, stage: Stage, deal=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage
        if deal is None or not opportunity_in_closed_period(deal):
            del self.fields["reason"]
        if stage.evidence_required:
            self.fields["evidence"].label = stage.evidence_required
            self.fields["evidence"].help_text = _("Milestone evidence required to enter this stage.")
        else:
            del self.fields["evidence"]
        if not stage.is_lost:
            del self.fields["lost_reason"]

    @property
    def asks_something(self) -> bool:
        return "evidence" in self.fields or "lost_reason" in self.fields or "reason" in self.fields


class CollectionForm(forms.Form):
    received_on = forms.DateField(label=_("Received on"), widget=DATE, initial=timezone.localdate)
    amount = MoneyField(label=_("Amount"))
    currency = SelectChoiceField(
        label=_("Currency"), queryset=Currency.objects.all(), required=False, empty_label=_("Deal currency")
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ActivityKind.choices, initial=ActivityKind.VISIT)
    date = forms.DateField(label=_("Date"), widget=DATE, initial=timezone.localdate)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MonthField(forms.CharField):
    """'YYYY-MM' (what <input type=month> sends) -> the first day of that month."""

    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        match = re.fullmatch(r"(\d{4})-(\d{1,2})", value.strip())
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValidationError(_("Enter a month as YYYY-MM."), code="invalid")
        return date(int(match[1]), int(match[2]), 1)


ORDER_CHOICES = [
    ("close", _("Close date")),
    ("-amount", _("Amount, largest first")),
    ("stage", _("Stage")),
    ("owner", _("Owner")),
    ("-updated", _("Recently changed")),
]


class TeamFilterForm(forms.Form):
    """GET filters of the team pipeline. Region and rep choices are the user's scope only."""

    region = forms.Field(required=False)
    owner = forms.Field(required=False)
    customer_region = forms.Field(required=False)
    product_line = SelectChoiceField(
        label=_("Product line"), queryset=ProductLine.objects.all(), required=False, empty_label=_("All product lines")
    )
    stage = forms.Field(required=False)
    close_month = MonthField(label=_("Close month"), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False, initial=STATUS_OPEN)
    order = forms.ChoiceField(label=_("Sort by"), choices=ORDER_CHOICES, required=False, initial="close")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        visible = visible_regions(user)  # built once for the choices and both fields' validation
        regions = region_choices(user, regions=visible)  # one query for both region selects
        self.fields["region"] = scoped_region_field(
            user,
            choices=regions,
            regions=visible,
            label=_("Sales team"),
            required=False,
            empty_label=_("All teams"),
            help_text=_("The team a deal counts for: its owner’s team on the close date (业绩归属)."),
        )
        self.fields["owner"] = scoped_user_field(user, label=_("Rep"), required=False, empty_label=_("All reps"))
        self.fields["customer_region"] = scoped_region_field(
            user,
            choices=regions,
            regions=visible,
            label=_("Customer region"),
            required=False,
            empty_label=_("All customer regions"),
        )
        self.fields["stage"] = StageChoiceField(
            label=_("Stage"),
            queryset=Stage.objects.select_related("pipeline").order_by("-pipeline__is_default", "pipeline_id", "order"),
            required=False,
            empty_label=_("All stages"),
        )


class DealInlineForm(forms.Form):
    """The few fields a review meeting edits on a deal's row (next step and its date, close date, amount,
    forecast category), with the version the row was loaded at (the service's conflict check)."""

    FIELDS = ("next_step", "next_step_date", "expected_close_date", "amount", "forecast_category")

    version = forms.IntegerField(widget=forms.HiddenInput)
    next_step = forms.CharField(label=_("Next step"), max_length=200, required=False)
    next_step_date = forms.DateField(label=_("Next step date"), required=False, widget=DATE)
    expected_close_date = forms.DateField(label=_("Expected close date"), widget=DATE)
    amount = MoneyField(label=_("Amount"))
    forecast_category = forms.ChoiceField(label=_("Forecast category"), choices=ForecastCategory.choices)
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=200,
        required=False,
        help_text=_("The deal was won in a closed period: its figures were reported already. Say why they change."),
    )

    def __init__(self, *args, deal, **kwargs):
        kwargs.setdefault("initial", {"version": deal.version, **{f: getattr(deal, f) for f in self.FIELDS}})
        super().__init__(*args, **kwargs)
        self.deal = deal
        if not opportunity_in_closed_period(deal):
            del self.fields["reason"]

    def changes(self) -> dict:
        """Only what differs from the deal as loaded: the service writes history for these alone."""
        return {f: self.cleaned_data[f] for f in self.FIELDS if self.cleaned_data[f] != getattr(self.deal, f)}
