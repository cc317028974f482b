"""REST read of the pipeline flow (管道变化): `GET /api/review/flow/`.

The same figures as the review's flow page (`pipeline.flow.pipeline_flow`), for what the caller may see; a
team (`region`) outside the caller's scope is a 404.
"""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import CompanySettings
from crm.scopes import visible_regions
from pipeline import flow as pipeline_flow
from pipeline.models import ForecastCategory
from salesmgmt.api import api_responses, query_data

MONEY = {"max_digits": 18, "decimal_places": 2}


class FlowQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(
        required=False, help_text=_("First day of the window (its changes count). Default: 7 days before date_to.")
    )
    date_to = serializers.DateField(required=False, help_text=_("Last day of the window, included. Default: today."))
    period_start = serializers.DateField(
        required=False, help_text=_("First close date of the period's pipeline. Default: the current fiscal quarter.")
    )
    period_end = serializers.DateField(required=False, help_text=_("Last close date of the period, included."))
    region = serializers.IntegerField(
        required=False, help_text=_("A sales team (region) id: its subtree's deals only. Outside your scope: 404.")
    )
    deals_per_box = serializers.IntegerField(
        required=False, default=20, min_value=0, max_value=200, help_text=_("How many of each box's biggest deals.")
    )

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": _("The window ends before it starts.")})
        if attrs.get("period_start") and attrs.get("period_end") and attrs["period_start"] > attrs["period_end"]:
            raise serializers.ValidationError({"period_end": _("The period ends before it starts.")})
        return attrs


class CategoryFigureSerializer(serializers.Serializer):
    category = serializers.CharField(
        help_text=_("A forecast category: %(values)s.") % {"values": ", ".join(ForecastCategory.values)}
    )
    total = serializers.DecimalField(**MONEY, help_text=_("Company currency."))
    count = serializers.IntegerField()


class OldNewDecimalSerializer(serializers.Serializer):
    old = serializers.DecimalField(**MONEY, allow_null=True, help_text=_("Null: the deal did not exist yet."))
    new = serializers.DecimalField(**MONEY)


class OldNewTextSerializer(serializers.Serializer):
    old = serializers.CharField(allow_null=True)
    new = serializers.CharField(allow_null=True)


class OldNewDateSerializer(serializers.Serializer):
    old = serializers.DateField(allow_null=True)
    new = serializers.DateField(allow_null=True)


class FlowDealSerializer(serializers.Serializer):
    deal = serializers.IntegerField(help_text=_("The deal id."))
    name = serializers.CharField()
    customer = serializers.CharField()
    editable = serializers.BooleanField(help_text=_("Whether you see the deal now (not once it left your scope)."))
    entry = serializers.ChoiceField(choices=[pipeline_flow.NEW, pipeline_flow.MOVED_IN], allow_null=True)
    exit = serializers.ChoiceField(
        choices=[pipeline_flow.WON, pipeline_flow.LOST, pipeline_flow.PUSHED_OUT, pipeline_flow.MOVED_OUT],
        allow_null=True,
    )
    flow_category = serializers.CharField(help_text=_("The forecast category the deal's boxes are charged to."))
    amount = OldNewDecimalSerializer(help_text=_("Value in the company currency at the start and the end."))
    stage = OldNewTextSerializer()
    close_date = OldNewDateSerializer()
    owner = OldNewTextSerializer()
    forecast_category = OldNewTextSerializer()


class FlowBoxSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=pipeline_flow.BOXES)
    label = serializers.CharField()
    sign = serializers.IntegerField(help_text=_("+1: adds to the pipeline (and the two ends); −1: takes away."))
    total = serializers.DecimalField(**MONEY, help_text=_("Company currency; never negative (see sign)."))
    count = serializers.IntegerField(help_text=_("How many deals."))
    by_category = CategoryFigureSerializer(many=True)
    deals = FlowDealSerializer(many=True, help_text=_("The box's biggest deals (deals_per_box); none for the ends."))


class FlowSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    region = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(help_text=_("The company currency every amount is in."))
    categories = serializers.ListField(child=serializers.CharField(), help_text=_("The categories shown, in order."))
    boxes = FlowBoxSerializer(
        many=True,
        help_text=_(
            "start, new, moved_in, increased, decreased, won, lost, pushed_out, moved_out, category_in, "
            "category_out, end. start + Σ sign × total of the buckets = end, to the cent, overall and per "
            "category (with category_in − category_out, which net to zero overall)."
        ),
    )


def _change(change: pipeline_flow.DealChange) -> dict:
    def pair(values):
        return {"old": values[0], "new": values[1]}

    return {
        "deal": change.deal_id,
        "name": change.name,
        "customer": change.customer,
        "editable": change.editable,
        "entry": change.entry,
        "exit": change.exit,
        "flow_category": change.flow_category,
        "amount": pair(change.value),
        "stage": pair(change.stage),
        "close_date": pair(change.close_date),
        "owner": pair(change.owner),
        "forecast_category": pair(change.category),
    }


def _box(box: pipeline_flow.Box, categories: list[str]) -> dict:
    return {
        "key": box.key,
        "label": box.label,
        "sign": box.sign,
        "total": box.total,
        "count": box.count,
        "by_category": [
            {"category": c, "total": box.by_category[c], "count": box.count_by_category[c]}
            for c in categories
            if box.count_by_category.get(c)
        ],
        "deals": [_change(d) for d in box.deals],
    }


class FlowView(APIView):
    """The pipeline flow of a period between two dates."""

    @extend_schema(
        operation_id="review_flow",
        parameters=[FlowQuerySerializer],
        responses=api_responses({200: FlowSerializer}, 400, 404),
        description=_(
            "The open pipeline of the period (deals closing between period_start and period_end) at the start of "
            "date_from and at the end of date_to, and what moved it in between: new, moved in, amount increased, "
            "amount decreased, won, lost, pushed out, moved to another owner, per forecast category. Only the "
            "deals you may see (narrowed to a sales team with `region`)."
        ),
    )
    def get(self, request):
        query = FlowQuerySerializer(data=query_data(request))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        region = None
        if params.get("region") is not None:
            region = get_object_or_404(visible_regions(request.user), pk=params["region"])
        window = pipeline_flow.flow_window(
            today=timezone.localdate(),
            **{k: params.get(k) for k in ("date_from", "date_to", "period_start", "period_end")},
        )
        result = pipeline_flow.pipeline_flow(
            request.user, **window, region=region, deals_per_box=params["deals_per_box"]
        )
        categories = result.categories
        data = {
            **window,
            "region": region.pk if region else None,
            "currency": CompanySettings.load().currency,
            "categories": categories,
            "boxes": [_box(result.boxes[k], categories) for k in pipeline_flow.BOXES],
        }
        return Response(FlowSerializer(data).data)
