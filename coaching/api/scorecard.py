"""REST endpoints of the scorecard (/api/review/scorecard/): the ranking of a role's people in a period with each
score's breakdown, scoped (a rep himself, a manager his team, a director everybody), and the configuration
(GET; PUT by managers, directors and admins). Score = Σ weight × min(actual ÷ target, cap): see
`coaching.scorecard`."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from coaching import scorecard as selectors
from coaching.scorecard_services import scorecard_config_save
from crm.models import Role
from salesmgmt import fields as strict
from salesmgmt.api import api_responses, query_data


class ComponentSerializer(serializers.Serializer):
    metric = serializers.IntegerField(source="item.metric_id")
    metric_name = serializers.CharField(source="item.metric.display_name")
    weight = serializers.DecimalField(source="item.weight", max_digits=7, decimal_places=2)
    cap = serializers.DecimalField(source="item.cap", max_digits=6, decimal_places=2)
    actual = serializers.DecimalField(max_digits=18, decimal_places=2)
    target = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    from_targets = serializers.BooleanField(help_text=_("Figures of the person's own target (else a count)."))
    ratio_pct = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    capped = serializers.BooleanField(source="is_capped")
    points = serializers.DecimalField(source="points_shown", max_digits=12, decimal_places=1)


class RowSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user.pk")
    name = serializers.SerializerMethodField()
    rank = serializers.IntegerField()
    score = serializers.DecimalField(max_digits=12, decimal_places=1)
    components = ComponentSerializer(many=True)

    def get_name(self, row) -> str:
        return row.user.get_full_name() or row.user.username


class ItemSerializer(serializers.Serializer):
    metric = strict.IntegerField()
    weight = strict.DecimalField(max_digits=7, decimal_places=2, min_value=0)
    cap = strict.DecimalField(max_digits=6, decimal_places=2, default="1.20")
    target = strict.DecimalField(max_digits=18, decimal_places=2, allow_null=True, required=False)


class ConfigSerializer(serializers.Serializer):
    role = strict.ChoiceField(choices=Role.choices)
    period_key = strict.CharField(max_length=16)
    items = ItemSerializer(many=True)


class QuerySerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, default=Role.REP)
    period_key = serializers.CharField(max_length=16)


PARAMS = [
    OpenApiParameter("period_key", str, required=True, description=_("e.g. FY2027-Q1")),
    OpenApiParameter("role", str, description=_("The role scored (default: rep).")),
]


def _config_data(config, *, role: str, period_key: str) -> dict:
    """The configuration as the API shows it; none saved yet is an empty one (no items: nobody is scored)."""
    if config is None:
        return ConfigSerializer({"role": role, "period_key": period_key, "items": []}).data
    items = [{"metric": i.metric_id, "weight": i.weight, "cap": i.cap, "target": i.target} for i in config.items.all()]
    return ConfigSerializer({"role": config.role, "period_key": config.period_key, "items": items}).data


class ScorecardViewSet(viewsets.ViewSet):
    """The scorecard of the people in your data scope."""

    def _query(self, data) -> dict:
        query = QuerySerializer(data=data)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @extend_schema(
        summary=_("Scores of a role's people in a period, ranked, with their breakdown"),
        parameters=PARAMS,
        responses=api_responses({200: RowSerializer(many=True)}, 400),
    )
    def list(self, request):
        q = self._query(query_data(request))
        card = selectors.scorecard(request.user, role=q["role"], period_key=q["period_key"])
        return Response(RowSerializer(card.rows, many=True).data)

    @extend_schema(
        summary=_("The scorecard's configuration (weights, caps, default targets)"),
        parameters=PARAMS,
        request=ConfigSerializer,
        responses=api_responses({200: ConfigSerializer}, 400, 403),
    )
    @action(detail=False, methods=["get", "put"])
    def config(self, request):
        if request.method == "GET":
            q = self._query(query_data(request))
            config = selectors.config_for(q["role"], q["period_key"])
            return Response(_config_data(config, role=q["role"], period_key=q["period_key"]))
        if not selectors.can_edit(request.user):
            raise exceptions.PermissionDenied(_("Only managers, directors and admins configure the scorecard."))
        body = ConfigSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            config = scorecard_config_save(
                role=data["role"], period_key=data["period_key"], items=list(data["items"]), actor=request.user
            )
        except ValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        return Response(_config_data(config, role=config.role, period_key=config.period_key))
