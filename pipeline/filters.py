"""Query-string filters of the pipeline API (django-filter). They narrow a queryset that is
already limited to the user's data scope, so a filter can never widen what someone sees."""

import calendar
import re
from datetime import date

from django import forms
from django.core.validators import RegexValidator
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from crm.api import IdFilter, RegionSubtreeFilter
from pipeline.models import Activity, ActivityKind, Collection, ForecastCategory, Opportunity, OpportunityLine
from pipeline.serializers import DealStatus

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class MonthField(forms.CharField):
    default_validators = [RegexValidator(MONTH_RE, _("Enter a month as YYYY-MM, e.g. 2026-06."))]


class MonthFilter(filters.CharFilter):
    field_class = MonthField


class OpportunityFilter(filters.FilterSet):
    region = RegionSubtreeFilter(
        field_name="region",
        help_text=_(
            "Sales team (region) id the deal counts for, its owner's team on the close date (业绩归属); "
            "includes its sub-regions."
        ),
    )
    customer_region = RegionSubtreeFilter(
        field_name="customer__region", help_text=_("The customer's region id; includes its sub-regions.")
    )
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    customer = IdFilter(field_name="customer")
    pipeline = IdFilter(field_name="pipeline")
    stage = IdFilter(field_name="stage")
    product_line = IdFilter(method="filter_product_line", help_text=_("Deals with a line of this product line."))
    status = filters.ChoiceFilter(choices=DealStatus.choices, method="filter_status")
    forecast_category = filters.MultipleChoiceFilter(choices=ForecastCategory.choices)
    close_date = filters.DateFromToRangeFilter(
        field_name="expected_close_date",
        help_text=_("Expected close date range: close_date_after / close_date_before (inclusive)."),
    )
    close_month = MonthFilter(
        method="filter_close_month",
        help_text=_("Expected to close in this calendar month, YYYY-MM."),
    )

    class Meta:
        model = Opportunity
        fields = [
            "region",
            "customer_region",
            "owner",
            "customer",
            "pipeline",
            "stage",
            "product_line",
            "status",
            "forecast_category",
            "close_date",
            "close_month",
        ]

    def filter_product_line(self, queryset, name, value: int):
        lines = OpportunityLine.objects.filter(opportunity=OuterRef("pk"), product_line_id=value)
        return queryset.filter(Exists(lines))

    def filter_status(self, queryset, name, value: str):
        if value == DealStatus.WON:
            return queryset.won()
        if value == DealStatus.LOST:
            return queryset.filter(stage__is_lost=True)
        return queryset.open()

    def filter_close_month(self, queryset, name, value: str):
        year, month = (int(part) for part in MONTH_RE.match(value).groups())
        last = date(year, month, calendar.monthrange(year, month)[1])
        return queryset.filter(expected_close_date__range=(date(year, month, 1), last))


class CollectionFilter(filters.FilterSet):
    opportunity = IdFilter(field_name="opportunity")
    received_on = filters.DateFromToRangeFilter(help_text=_("received_on_after / received_on_before (inclusive)."))

    class Meta:
        model = Collection
        fields = ["opportunity", "received_on"]


class ActivityFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer")
    opportunity = IdFilter(field_name="opportunity")
    owner = IdFilter(field_name="owner")
    kind = filters.ChoiceFilter(choices=ActivityKind.choices)
    date = filters.DateFromToRangeFilter(help_text=_("date_after / date_before (inclusive)."))

    class Meta:
        model = Activity
        fields = ["customer", "opportunity", "owner", "kind", "date"]
