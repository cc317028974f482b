"""REST endpoints of the 1:1 coaching sessions (/api/review/coaching-sessions/) and their commitments
(/api/review/commitments/): scoped as the pages are (a rep his own sessions, a manager his teams' and sub-teams', a
director all; anything else is a 404), recording, editing until acknowledged, the follow-up of earlier commitments
and the rep's acknowledgement."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from coaching import session_selectors as selectors
from coaching import session_services as services
from coaching.models import ActionItemStatus, CoachingFocus, CoachingSession, Commitment
from crm.api import IdFilter, ScopedViewSetMixin
from crm.scopes import visible_users
from pipeline.selectors import deals_visible
from salesmgmt import fields as strict
from salesmgmt.api import VisiblePrimaryKeyRelatedField, api_responses
from targets.planning.selectors import nodes_visible_to


class CommitmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Commitment
        fields = ["id", "session", "rep", "what", "due_date", "status", "follow_up", "reviewed_in", "created_at"]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    rep_name = serializers.CharField(source="rep.__str__", read_only=True)
    manager_name = serializers.CharField(source="manager.__str__", read_only=True)

    class Meta:
        model = CoachingSession
        fields = [
            "id",
            "manager",
            "manager_name",
            "rep",
            "rep_name",
            "region",
            "date",
            "focus_kind",
            "focus",
            "node",
            "opportunity",
            "observations",
            "acknowledged_at",
            "created_at",
        ]
        read_only_fields = fields


class SessionDetailSerializer(SessionSerializer):
    commitments = CommitmentSerializer(many=True, read_only=True, help_text=_("The commitments agreed."))
    follow_ups = serializers.SerializerMethodField(
        help_text=_("The rep's earlier commitments this session follows up (open, or followed up here).")
    )

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "commitments", "follow_ups"]
        read_only_fields = fields

    @extend_schema_field(CommitmentSerializer(many=True))
    def get_follow_ups(self, session) -> list:
        return CommitmentSerializer(selectors.follow_ups(session), many=True).data


class NewCommitmentSerializer(serializers.Serializer):
    what = strict.CharField(max_length=300)
    due_date = strict.DateField()


class SessionFieldsSerializer(serializers.Serializer):
    date = strict.DateField()
    focus_kind = strict.ChoiceField(choices=CoachingFocus.choices)
    focus = strict.CharField(max_length=300)
    observations = strict.CharField(required=False, allow_blank=True, default="")
    node = VisiblePrimaryKeyRelatedField(scope=nodes_visible_to, required=False, allow_null=True, default=None)
    opportunity = VisiblePrimaryKeyRelatedField(scope=deals_visible, required=False, allow_null=True, default=None)


class SessionCreateSerializer(SessionFieldsSerializer):
    rep = VisiblePrimaryKeyRelatedField(scope=visible_users, help_text=_("A rep of one of your teams."))
    commitments = NewCommitmentSerializer(many=True, required=False, default=list)


class FollowUpSerializer(serializers.Serializer):
    commitment = strict.IntegerField(help_text=_("An earlier open commitment of the session's rep."))
    status = strict.ChoiceField(choices=ActionItemStatus.choices)
    note = strict.CharField(required=False, allow_blank=True, default="")


class SessionFilter(filters.FilterSet):
    rep = IdFilter(field_name="rep", help_text=_("The rep's user id."))
    region = IdFilter(field_name="region", help_text=_("The team's region id."))

    class Meta:
        model = CoachingSession
        fields = ["rep", "region"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Coaching sessions: your own as a rep, your teams' as a manager"),
        responses=api_responses({200: SessionSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(
        summary=_("One coaching session with its commitments and follow-ups"),
        responses=api_responses({200: SessionDetailSerializer}, 404),
    ),
)
class SessionViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """1:1 coaching sessions (辅导) between a manager and a rep."""

    queryset = CoachingSession.objects.none()
    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    ordering_fields = ["date", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        qs = selectors.sessions_visible_to(self.request.user).select_related("rep", "manager")
        if self.action == "retrieve":
            qs = qs.prefetch_related("commitments")
        return qs.order_by("-date", "-id")

    def get_serializer_class(self):
        return SessionDetailSerializer if self.action == "retrieve" else SessionSerializer

    @extend_schema(
        summary=_("Record a 1:1 with a rep of your teams, with the commitments agreed"),
        request=SessionCreateSerializer,
        responses=api_responses({201: SessionDetailSerializer}, 400),
    )
    def create(self, request):
        body = SessionCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data["commitments"] = [services.NewCommitment(c["what"], c["due_date"]) for c in data["commitments"]]
        session = services.coaching_session_create(actor=request.user, **data)
        return Response(self._detail(session), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Change a session until the rep has acknowledged it"),
        request=SessionFieldsSerializer,
        responses=api_responses({200: SessionDetailSerializer}, 400, 404),
    )
    def partial_update(self, request, pk=None):
        session = self.get_object()
        body = SessionFieldsSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        session = services.coaching_session_update(actor=request.user, session=session, **body.validated_data)
        return Response(self._detail(session))

    @extend_schema(
        summary=_("The rep acknowledges his session (stamped once; the session is then frozen)"),
        request=None,
        responses=api_responses({200: SessionDetailSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        session = services.coaching_session_acknowledge(actor=request.user, session=self.get_object())
        return Response(self._detail(session))

    @extend_schema(
        summary=_("Follow up one of the rep's earlier commitments in this session: done, dropped or kept open"),
        request=FollowUpSerializer,
        responses=api_responses({200: CommitmentSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"], url_path="follow-up")
    def follow_up(self, request, pk=None):
        session = self.get_object()
        body = FollowUpSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        commitment = selectors.follow_ups(session).filter(pk=data["commitment"]).first()
        if commitment is None:
            raise serializers.ValidationError({"commitment": [_("This commitment is not followed up here.")]})
        commitment = services.commitment_follow_up(
            actor=request.user, session=session, commitment=commitment, status=data["status"], note=data["note"]
        )
        return Response(CommitmentSerializer(commitment).data)

    def _detail(self, session):
        fresh = self.get_queryset().prefetch_related("commitments").get(pk=session.pk)
        return SessionDetailSerializer(fresh, context=self.get_serializer_context()).data


class CommitmentCreateSerializer(serializers.Serializer):
    session = VisiblePrimaryKeyRelatedField(
        scope=selectors.sessions_managed_by, help_text=_("A session of your teams not yet acknowledged.")
    )
    what = strict.CharField(max_length=300)
    due_date = strict.DateField()


class CommitmentFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ActionItemStatus.choices)
    rep = IdFilter(field_name="rep", help_text=_("The rep's user id."))
    session = IdFilter(field_name="session", help_text=_("The session it was agreed in."))

    class Meta:
        model = Commitment
        fields = ["status", "rep", "session"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Commitments of the coaching sessions you see, the soonest due first"),
        responses=api_responses({200: CommitmentSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(summary=_("One commitment"), responses=api_responses({200: CommitmentSerializer}, 404)),
)
class CommitmentViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Commitments agreed in 1:1 coaching sessions (what, by when)."""

    queryset = Commitment.objects.none()
    serializer_class = CommitmentSerializer
    filterset_class = CommitmentFilter
    ordering_fields = ["due_date", "created_at"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        return selectors.commitments_visible_to(self.request.user).order_by("due_date", "id")

    @extend_schema(
        summary=_("Add a commitment to a session not yet acknowledged"),
        request=CommitmentCreateSerializer,
        responses=api_responses({201: CommitmentSerializer}, 400),
    )
    def create(self, request):
        body = CommitmentCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        commitment = services.commitment_add(actor=request.user, **body.validated_data)
        return Response(CommitmentSerializer(commitment).data, status=status.HTTP_201_CREATED)
