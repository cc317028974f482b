"""REST reads of the review's analytics: the funnel, win rate and sales cycle, and the driver diagnosis.

The same selectors as the pages (`pipeline.analytics`, `coaching.drivers`), over the deals the user sees; a
`region` he may not see is a 404, as a deal outside his scope is. Query parameters are validated by
serializers (a bad date or choice is a 400 with a message)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coaching.drivers import DriverReview, default_region, driver_review, region_in_scope, sees_only_himself
from crm.models import CompanySettings, Region, User
from pipeline.analytics import BY_OWNER, BY_REGION, Funnel, WinRateRow, funnel, previous_period, win_rates
from pipeline.models import Pipeline
from salesmgmt.api import api_responses, query_data
from salesmgmt.lib import periods
from salesmgmt.lib.drivers import DRIVERS, Drivers
from salesmgmt.lib.money import quantize

MAX_DAYS = 3 * 366
FRACTION = Decimal("0.0001")


def _scope_region(user: User, pk: int | None) -> Region | None:
    if pk is None:
        return None
    region = region_in_scope(user, pk)
    if region is None:
        raise Http404
    return region


class RangeQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text=_("Default: the start of the fiscal year of date_to."))
    date_to = serializers.DateField(required=False, help_text=_("Default: today."))
    region = serializers.IntegerField(
        required=False, help_text=_("A sales team (the credited team, 业绩归属) you see, with its subtree.")
    )

    def validate(self, attrs: dict) -> dict:
        attrs["date_to"] = attrs.get("date_to") or timezone.localdate()
        start_month = CompanySettings.load().fiscal_year_start_month
        attrs["date_from"] = (
            attrs.get("date_from") or periods.period_of(attrs["date_to"], periods.YEAR, start_month).start
        )
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_from": _("The start date is after the end date.")})
        if (attrs["date_to"] - attrs["date_from"]).days > MAX_DAYS:
            raise serializers.ValidationError({"date_from": _("Choose at most three years.")})
        return attrs


class FunnelQuerySerializer(RangeQuerySerializer):
    pipeline = serializers.IntegerField(required=False, help_text=_("A pipeline id; default: the default pipeline."))


class FunnelStageSerializer(serializers.Serializer):
    stage = serializers.IntegerField()
    name = serializers.CharField()
    order = serializers.IntegerField()
    is_won = serializers.BooleanField()
    reached = serializers.IntegerField(help_text=_("Deals of the cohort that reached the stage or went further."))
    conversion = serializers.DecimalField(
        max_digits=5, decimal_places=1, allow_null=True, help_text=_("Percent of them that reached the next stage.")
    )
    median_days = serializers.DecimalField(
        max_digits=8, decimal_places=1, allow_null=True, help_text=_("Median whole days in the stage.")
    )
    stays = serializers.IntegerField(help_text=_("Completed stays the median is over."))


class FunnelSerializer(serializers.Serializer):
    pipeline = serializers.IntegerField(allow_null=True)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    deals = serializers.IntegerField(help_text=_("Deals created in the dates (the cohort)."))
    won = serializers.IntegerField()
    lost = serializers.IntegerField()
    win_conversion = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        allow_null=True,
        help_text=_("Percent of the cohort that reached the won stage."),
    )
    stages = FunnelStageSerializer(many=True)


def funnel_data(result: Funnel, date_from: Any, date_to: Any) -> dict:
    return {
        "pipeline": result.pipeline.pk if result.pipeline else None,
        "date_from": date_from,
        "date_to": date_to,
        "deals": result.deals,
        "won": result.won,
        "lost": result.lost,
        "win_conversion": result.win_conversion,
        "stages": [
            {
                "stage": f.stage.pk,
                "name": f.stage.display_name,
                "order": f.stage.order,
                "is_won": f.stage.is_won,
                "reached": f.reached,
                "conversion": f.conversion,
                "median_days": f.median_days,
                "stays": f.stays,
            }
            for f in result.stages
        ],
    }


class FunnelView(APIView):
    """The funnel of the deals created in the dates: reached per stage, stage-to-stage conversion, median days
    in stage."""

    @extend_schema(
        summary=_("Funnel: conversion and median days per stage"),
        parameters=[FunnelQuerySerializer],
        responses=api_responses({200: FunnelSerializer}, 400, 404),
    )
    def get(self, request: Request) -> Response:
        query = FunnelQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        region = _scope_region(request.user, data.get("region"))
        pipeline = None
        if data.get("pipeline") is not None:
            pipeline = Pipeline.objects.filter(pk=data["pipeline"]).first()
            if pipeline is None:
                raise Http404
        result = funnel(
            request.user, date_from=data["date_from"], date_to=data["date_to"], region=region, pipeline=pipeline
        )
        return Response(FunnelSerializer(funnel_data(result, data["date_from"], data["date_to"])).data)


class WinRateQuerySerializer(RangeQuerySerializer):
    by = serializers.ChoiceField(choices=[BY_REGION, BY_OWNER], required=False, help_text=_("Default: region."))
    period = serializers.ChoiceField(
        choices=[periods.QUARTER, periods.MONTH, periods.WEEK, "range"],
        required=False,
        help_text=_("Fiscal periods, or 'range' for the dates as one period. Default: quarter."),
    )


class WinRateRowSerializer(serializers.Serializer):
    key = serializers.IntegerField(help_text=_("The team (region) or rep id."))
    label = serializers.CharField()
    period = serializers.CharField(help_text=_("The fiscal period's key, or 'range'."))
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    won = serializers.IntegerField()
    lost = serializers.IntegerField()
    won_amount = serializers.DecimalField(max_digits=20, decimal_places=2)
    lost_amount = serializers.DecimalField(max_digits=20, decimal_places=2)
    win_rate = serializers.DecimalField(
        max_digits=5, decimal_places=1, allow_null=True, help_text=_("Percent, by count.")
    )
    win_rate_amount = serializers.DecimalField(
        max_digits=5, decimal_places=1, allow_null=True, help_text=_("Percent, by amount.")
    )
    median_cycle_days = serializers.DecimalField(
        max_digits=8, decimal_places=1, allow_null=True, help_text=_("Created → closed, won deals.")
    )
    average_won = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)


def win_rate_data(row: WinRateRow) -> dict:
    return {
        "key": row.key,
        "label": row.label,
        "period": row.period.key if row.period.kind != "range" else "range",
        "period_start": row.period.start,
        "period_end": row.period.end,
        "won": row.won,
        "lost": row.lost,
        "won_amount": row.won_amount,
        "lost_amount": row.lost_amount,
        "win_rate": row.win_rate,
        "win_rate_amount": row.win_rate_amount,
        "median_cycle_days": row.median_cycle_days,
        "average_won": row.average_won,
    }


class WinRatesView(APIView):
    """Won, lost, win rate (count and amount), median sales cycle and average won deal per team or rep and
    period, over the deals closed in the dates. Someone who sees only his own deals gets his own row."""

    @extend_schema(
        summary=_("Win rate and sales cycle by team or rep"),
        parameters=[WinRateQuerySerializer],
        responses=api_responses({200: WinRateRowSerializer(many=True)}, 400, 404),
    )
    def get(self, request: Request) -> Response:
        query = WinRateQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        region = _scope_region(request.user, data.get("region"))
        by = BY_OWNER if sees_only_himself(request.user) else data.get("by") or BY_REGION
        period = data.get("period") or periods.QUARTER
        rows = win_rates(
            request.user,
            date_from=data["date_from"],
            date_to=data["date_to"],
            by=by,
            period=None if period == "range" else period,
            region=region,
        )
        return Response(WinRateRowSerializer([win_rate_data(r) for r in rows], many=True).data)


class DriversQuerySerializer(serializers.Serializer):
    period = serializers.CharField(
        required=False, help_text=_("A fiscal quarter or month key (FY2026-Q2, FY2026-M05); default: this quarter.")
    )
    region = serializers.IntegerField(required=False, help_text=_("A team you see; default: your topmost team."))
    by = serializers.ChoiceField(
        choices=[BY_REGION, BY_OWNER], required=False, help_text=_("Rows per team or rep; default: the whole scope.")
    )

    def validate_period(self, value: str) -> periods.Period:
        start_month = CompanySettings.load().fiscal_year_start_month
        try:
            period = periods.parse_key(value, start_month)
        except ValueError:
            raise serializers.ValidationError(_("Not a period key, e.g. FY2026-Q2.")) from None
        if period.kind not in (periods.QUARTER, periods.MONTH, periods.YEAR):
            raise serializers.ValidationError(_("Choose a year, a quarter or a month."))
        return period


class DriverValuesSerializer(serializers.Serializer):
    """The four drivers, rounded once from their exact values (their product is the amount)."""

    covered = serializers.DecimalField(max_digits=20, decimal_places=4, help_text=_("Covered customers."))
    active_rate = serializers.DecimalField(max_digits=12, decimal_places=4, help_text=_("A fraction: 0.42 is 42 %."))
    deals_per_active = serializers.DecimalField(max_digits=12, decimal_places=4)
    deal_size = serializers.DecimalField(max_digits=20, decimal_places=2)


class ContributionsSerializer(serializers.Serializer):
    """One contribution per driver (LMDI), in the company currency, to the cent."""

    covered = serializers.DecimalField(max_digits=20, decimal_places=2)
    active_rate = serializers.DecimalField(max_digits=20, decimal_places=2)
    deals_per_active = serializers.DecimalField(max_digits=20, decimal_places=2)
    deal_size = serializers.DecimalField(max_digits=20, decimal_places=2)


class DriverFactsSerializer(serializers.Serializer):
    covered = serializers.IntegerField()
    active = serializers.IntegerField()
    deals = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=20, decimal_places=2, help_text=_("Won amount (company currency)."))
    exact = serializers.BooleanField(help_text=_("Whether the four drivers multiply to the amount."))
    drivers = DriverValuesSerializer()


class TargetGapSerializer(serializers.Serializer):
    target = serializers.DecimalField(max_digits=20, decimal_places=2)
    gap = serializers.DecimalField(max_digits=20, decimal_places=2, help_text=_("Actual − target."))
    drivers = DriverValuesSerializer(allow_null=True, help_text=_("The target's drivers (see the rule)."))
    contributions = ContributionsSerializer(allow_null=True, help_text=_("They add up to the gap exactly."))
    main = serializers.ChoiceField(choices=list(DRIVERS), allow_null=True)


class DriverRowSerializer(serializers.Serializer):
    key = serializers.IntegerField(help_text=_("Team or rep id; 0 for the whole scope."))
    label = serializers.CharField()
    period = serializers.CharField()
    previous_start = serializers.DateField()
    previous_end = serializers.DateField()
    now = DriverFactsSerializer()
    previous = DriverFactsSerializer()
    change = ContributionsSerializer(help_text=_("They add up to now − previous exactly."))
    main_change = serializers.ChoiceField(choices=list(DRIVERS), allow_null=True)
    target = TargetGapSerializer(allow_null=True)


def _fraction(value: Fraction | Decimal, places: Decimal) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
    return quantize(exact, places)


def _values(factors: Any) -> dict:
    places = (FRACTION, FRACTION, FRACTION, Decimal("0.01"))
    return {d: _fraction(v, p) for d, v, p in zip(DRIVERS, factors, places, strict=True)}


def _facts(d: Drivers) -> dict:
    return {
        "covered": d.covered,
        "active": d.active,
        "deals": d.deals,
        "amount": d.amount,
        "exact": d.exact,
        "drivers": _values(d.factors),
    }


def driver_data(review: DriverReview, period: periods.Period, previous: tuple[Any, Any]) -> dict:
    target = review.target
    return {
        "key": review.row.key,
        "label": review.row.label,
        "period": period.key,
        "previous_start": previous[0],
        "previous_end": previous[1],
        "now": _facts(review.row.now),
        "previous": _facts(review.row.previous),
        "change": dict(zip(DRIVERS, review.row.change, strict=True)),
        "main_change": review.main_change,
        "target": None
        if target is None
        else {
            "target": target.target,
            "gap": target.gap,
            "drivers": _values(target.factors) if target.factors else None,
            "contributions": dict(zip(DRIVERS, target.contributions, strict=True)) if target.contributions else None,
            "main": target.main,
        },
    }


class DriversView(APIView):
    """The driver formula (业绩公式) for the period, with its change against the previous period of equal kind
    and its gap against target, each split into one exact contribution per driver (LMDI)."""

    @extend_schema(
        summary=_("Driver diagnosis: covered × active rate × deals per active × deal size"),
        parameters=[DriversQuerySerializer],
        responses=api_responses({200: DriverRowSerializer(many=True)}, 400, 404),
    )
    def get(self, request: Request) -> Response:
        query = DriversQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        user = request.user
        region = _scope_region(user, data.get("region")) or default_region(user)
        period = data.get("period")
        if period is None:
            start_month = CompanySettings.load().fiscal_year_start_month
            period = periods.period_of(timezone.localdate(), periods.QUARTER, start_month)
        by = None if sees_only_himself(user) else data.get("by")
        reviews = driver_review(user, period_start=period.start, period_end=period.end, region=region, by=by)
        previous = previous_period(period.start, period.end)
        rows = [driver_data(r, period, previous) for r in reviews]
        return Response(DriverRowSerializer(rows, many=True).data)
