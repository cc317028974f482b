"""REST endpoints of the forecast call (/api/review/forecasts/): the submissions in your scope (a rep his own,
a manager his teams', a director all), submitting a rep's or a team's forecast (a new dated row each time),
the prefill of a period from your deals, a team's roll-up and the forecast accuracy of a period."""

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from coaching import selectors, services
from coaching.models import ForecastLevel, ForecastSubmission
from crm.api import IdFilter, ScopedViewSetMixin
from salesmgmt import fields as strict
from salesmgmt.api import VisibleIdQueryField, VisiblePrimaryKeyRelatedField, api_responses, query_data

MONEY = {"max_digits": 18, "decimal_places": 2}


class ForecastSubmissionSerializer(serializers.ModelSerializer):
    owner_name = serializers.CharField(source="owner.__str__", read_only=True)
    region_name = serializers.CharField(source="region.name", read_only=True)
    adjustment = serializers.DecimalField(
        read_only=True, allow_null=True, help_text=_("Team forecasts: commit minus the reps' roll-up."), **MONEY
    )

    class Meta:
        model = ForecastSubmission
        fields = [
            "id",
            "level",
            "owner",
            "owner_name",
            "region",
            "region_name",
            "period_key",
            "period_start",
            "period_end",
            "week",
            "commit",
            "best_case",
            "won",
            "deals_commit",
            "deals_best_case",
            "rollup_commit",
            "rollup_best_case",
            "adjustment",
            "note",
            "submitted_by",
            "submitted_at",
        ]
        read_only_fields = fields


class PeriodField(strict.CharField):
    """A month or quarter key (FY2026-M06, FY2026-Q2), validated into its period."""

    def to_internal_value(self, data):
        key = super().to_internal_value(data)
        try:
            return selectors.forecast_period(key)
        except ValueError:
            raise serializers.ValidationError(_("Not a month or quarter key, e.g. FY2026-M06 or FY2026-Q2."))


class ForecastCreateSerializer(serializers.Serializer):
    level = strict.ChoiceField(choices=ForecastLevel.choices, default=ForecastLevel.REP)
    period = PeriodField(help_text=_("A month or quarter key, e.g. FY2026-M06 or FY2026-Q2."))
    commit = strict.DecimalField(min_value=0, **MONEY)
    best_case = strict.DecimalField(min_value=0, **MONEY)
    note = strict.CharField(required=False, allow_blank=True, default="")
    team = VisiblePrimaryKeyRelatedField(
        scope=selectors.teams_for, required=False, allow_null=True, help_text=_("Team forecasts: the team's region.")
    )

    def validate(self, attrs):
        if attrs["level"] == ForecastLevel.TEAM and not attrs.get("team"):
            raise serializers.ValidationError({"team": _("A team forecast names its team.")})
        return attrs


class DealFiguresSerializer(serializers.Serializer):
    won = serializers.DecimalField(read_only=True, **MONEY)
    commit = serializers.DecimalField(read_only=True, **MONEY)
    best_case = serializers.DecimalField(read_only=True, **MONEY)


class PrefillSerializer(serializers.Serializer):
    period = serializers.CharField(read_only=True)
    figures = DealFiguresSerializer(read_only=True)


class RollupRepSerializer(serializers.Serializer):
    rep = serializers.IntegerField(source="rep.pk", read_only=True)
    rep_name = serializers.CharField(source="rep.__str__", read_only=True)
    latest = ForecastSubmissionSerializer(read_only=True, allow_null=True)
    submitted_this_week = serializers.BooleanField(read_only=True)
    deals = DealFiguresSerializer(read_only=True)


class RollupTeamSerializer(serializers.Serializer):
    region = serializers.IntegerField(source="region.pk", read_only=True)
    region_name = serializers.CharField(source="region.name", read_only=True)
    latest = ForecastSubmissionSerializer(read_only=True, allow_null=True)
    submitted_this_week = serializers.BooleanField(read_only=True)


class RollupSerializer(serializers.Serializer):
    team = serializers.IntegerField(source="team.pk", read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    period = serializers.CharField(source="period.key", read_only=True)
    week = serializers.DateField(read_only=True)
    reps = RollupRepSerializer(many=True, read_only=True)
    teams = RollupTeamSerializer(many=True, read_only=True, help_text=_("The sub-regions' own submissions."))
    commit = serializers.DecimalField(read_only=True, help_text=_("Σ the reps' latest commit."), **MONEY)
    best_case = serializers.DecimalField(read_only=True, help_text=_("Σ the reps' latest best case."), **MONEY)
    deals = DealFiguresSerializer(read_only=True)
    team_latest = ForecastSubmissionSerializer(read_only=True, allow_null=True)


class AccuracyCellSerializer(serializers.Serializer):
    week = serializers.DateField(read_only=True)
    commit = serializers.DecimalField(read_only=True, allow_null=True, **MONEY)
    best_case = serializers.DecimalField(read_only=True, allow_null=True, **MONEY)
    actual = serializers.DecimalField(read_only=True, **MONEY)
    commit_pct = serializers.DecimalField(read_only=True, allow_null=True, max_digits=12, decimal_places=1)
    best_case_pct = serializers.DecimalField(read_only=True, allow_null=True, max_digits=12, decimal_places=1)


class AccuracyRowSerializer(serializers.Serializer):
    key = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    actual = serializers.DecimalField(read_only=True, **MONEY)
    cells = AccuracyCellSerializer(many=True, read_only=True)


class AccuracySerializer(serializers.Serializer):
    period = serializers.CharField(source="period.key", read_only=True)
    weeks = serializers.ListField(child=serializers.DateField(), read_only=True)
    reps = AccuracyRowSerializer(many=True, read_only=True)
    team = AccuracyRowSerializer(read_only=True, allow_null=True)


class ForecastFilter(filters.FilterSet):
    period = filters.CharFilter(field_name="period_key", help_text=_("A period key such as FY2026-M06."))
    level = filters.ChoiceFilter(choices=ForecastLevel.choices)
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    region = IdFilter(field_name="region", help_text=_("The team's region id."))
    week = filters.DateFilter(field_name="week", help_text=_("The Monday of the week of submission."))

    class Meta:
        model = ForecastSubmission
        fields = ["period", "level", "owner", "region", "week"]


PERIOD = OpenApiParameter("period", OpenApiTypes.STR, description=_("Month or quarter key; default this month."))
TEAM = OpenApiParameter("team", OpenApiTypes.INT, description=_("The team's region id; default your team."))
WEEK = OpenApiParameter("week", OpenApiTypes.DATE, description=_("Any day of the week; default this week."))


class QuerySerializer(serializers.Serializer):
    period = PeriodField(required=False)
    team = VisibleIdQueryField(scope=selectors.teams_for, required=False)
    week = serializers.DateField(required=False)


@extend_schema_view(
    list=extend_schema(
        summary=_("Forecast submissions in your scope, newest first"),
        responses=api_responses({200: ForecastSubmissionSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(
        summary=_("One forecast submission"), responses=api_responses({200: ForecastSubmissionSerializer}, 404)
    ),
)
class ForecastViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The forecast call: each submission is a dated row, never changed."""

    queryset = ForecastSubmission.objects.none()
    serializer_class = ForecastSubmissionSerializer
    filterset_class = ForecastFilter
    ordering_fields = ["submitted_at", "week", "commit"]

    def get_queryset(self):
        return (
            selectors.forecasts_visible_to(self.request.user)
            .select_related("owner", "region")
            .order_by("-submitted_at", "-id")
        )

    def _query(self):
        query = QuerySerializer(data=query_data(self.request), context=self.get_serializer_context())
        query.is_valid(raise_exception=True)
        today = timezone.localdate()
        data = query.validated_data
        period = data.get("period") or selectors.current_period(today)
        return period, data.get("team"), selectors.week_of(data.get("week") or today)

    @extend_schema(
        summary=_(
            "Submit a forecast: your own (level rep) or your team's (level team, with a note when it differs "
            "from the reps' roll-up)"
        ),
        request=ForecastCreateSerializer,
        responses=api_responses({201: ForecastSubmissionSerializer}, 400),
    )
    def create(self, request):
        body = ForecastCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        amounts = {"period": data["period"], "commit": data["commit"], "best_case": data["best_case"]}
        if data["level"] == ForecastLevel.TEAM:
            submission = services.forecast_team_submit(
                actor=request.user, team=data["team"], note=data["note"], **amounts
            )
        else:
            submission = services.forecast_submit(actor=request.user, note=data["note"], **amounts)
        return Response(self.get_serializer(self.refetch(submission)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Your deal-based forecast of a period: won, commit and best case (the form's prefill)"),
        parameters=[PERIOD],
        responses=api_responses({200: PrefillSerializer}, 400),
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def prefill(self, request):
        period, _team, _week = self._query()
        figures = selectors.prefill(request.user, period)
        return Response(PrefillSerializer({"period": period.key, "figures": figures}).data)

    @extend_schema(
        summary=_("A team's roll-up as of a week: each rep's latest submission beside his deal-based figures"),
        parameters=[PERIOD, TEAM, WEEK],
        responses=api_responses({200: RollupSerializer}, 400, 404),
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def rollup(self, request):
        period, team, week = self._query()
        team = team or selectors.default_team(request.user)
        if team is None:
            raise ValidationError({"team": _("You run no team.")})
        return Response(RollupSerializer(selectors.rollup(request.user, team, period, week)).data)

    @extend_schema(
        summary=_("Forecast accuracy of a period, week by week: per rep of a team (or yours alone) and the team's"),
        parameters=[PERIOD, TEAM],
        responses=api_responses({200: AccuracySerializer}, 400),
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def accuracy(self, request):
        period, team, _week = self._query()
        return Response(AccuracySerializer(selectors.accuracy(request.user, period, team=team)).data)
