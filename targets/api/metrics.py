"""REST endpoints of metrics (指标): what a target plan measures. Read-only: admins define metrics in
Django admin. Like the product catalogue, every signed-in user reads them all (a plan's `metric` is
one of them, and creating a plan needs an active one: `?is_active=true`)."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from crm.api import ScopedViewSetMixin
from salesmgmt.api import api_responses
from targets.models import Metric, MetricSource, MetricUnit


class MetricSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True, help_text=_("The name in the request's language."))
    filters = serializers.DictField(
        read_only=True, help_text=_('How an admin-defined metric narrows its source, e.g. {"product_line": 3}.')
    )

    class Meta:
        model = Metric
        fields = [
            "id",
            "code",
            "name",
            "name_zh",
            "display_name",
            "unit",
            "source",
            "filters",
            "is_builtin",
            "is_active",
        ]
        read_only_fields = fields


class MetricFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()
    unit = filters.ChoiceFilter(choices=MetricUnit.choices)
    source = filters.ChoiceFilter(choices=MetricSource.choices)

    class Meta:
        model = Metric
        fields = ["is_active", "unit", "source"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Metrics a target plan can measure"), responses=api_responses({200: MetricSerializer})
    ),
    retrieve=extend_schema(responses=api_responses({200: MetricSerializer}, 404)),
)
class MetricViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Signed revenue, collections, new customers, gross margin... and the metrics an admin defined."""

    queryset = Metric.objects.order_by("-is_builtin", "name", "pk")
    serializer_class = MetricSerializer
    filterset_class = MetricFilter
    ordering_fields = ["name", "code"]
