"""REST endpoints of the review meetings (/api/review/meetings/) and their action items
(/api/review/action-items/): scoped as the pages are (a manager his teams' and sub-teams', a rep only the items he
owns, a director all; anything else is a 404), planning, editing and holding a meeting, and the items' 3定."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from coaching import selectors, services
from coaching.models import ActionItem, ActionItemStatus, Meeting, MeetingStatus
from crm.api import IdFilter, ScopedViewSetMixin
from crm.scopes import visible_users
from pipeline.selectors import deals_visible
from salesmgmt import fields as strict
from salesmgmt.api import VisiblePrimaryKeyRelatedField, api_responses
from targets.alerts.selectors import alerts_visible_to
from targets.planning.selectors import nodes_visible_to

# --- meetings -------------------------------------------------------------------------------------


class MeetingSerializer(serializers.ModelSerializer):
    region_name = serializers.CharField(source="region.name", read_only=True)
    attendees = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Meeting
        fields = [
            "id",
            "region",
            "region_name",
            "week",
            "title",
            "attendees",
            "agenda",
            "minutes",
            "status",
            "held_at",
            "held_by",
            "created_at",
        ]
        read_only_fields = fields


class MeetingDetailSerializer(MeetingSerializer):
    shown = serializers.SerializerMethodField(
        help_text=_(
            "What the meeting shows: `review` (the review's snapshot), `forecast`, `items` (`carried`, `new`), "
            "`attendees`, `previous` and `deltas`. Frozen once the meeting is held."
        )
    )

    class Meta(MeetingSerializer.Meta):
        fields = [*MeetingSerializer.Meta.fields, "shown"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_shown(self, meeting) -> dict:
        return selectors.meeting_data(self.context["request"].user, meeting)


def _members(user):
    return visible_users(user) if user is not None else visible_users(None)


class MeetingCreateSerializer(serializers.Serializer):
    team = VisiblePrimaryKeyRelatedField(scope=selectors.teams_for, help_text=_("The team's region id."))
    week = strict.DateField(help_text=_("Any day of the week; the meeting takes its Monday."))
    title = strict.CharField(required=False, allow_blank=True, default="", max_length=200)
    agenda = strict.CharField(required=False, allow_blank=True, default="")
    attendees = VisiblePrimaryKeyRelatedField(
        scope=_members, many=True, required=False, help_text=_("User ids; default: the whole team.")
    )


class MeetingUpdateSerializer(serializers.Serializer):
    title = strict.CharField(required=False, max_length=200)
    agenda = strict.CharField(required=False, allow_blank=True)
    minutes = strict.CharField(required=False, allow_blank=True)
    attendees = VisiblePrimaryKeyRelatedField(scope=_members, many=True, required=False)


class MeetingFilter(filters.FilterSet):
    region = IdFilter(field_name="region", help_text=_("The team's region id."))
    status = filters.ChoiceFilter(choices=MeetingStatus.choices)
    week = filters.DateFilter(field_name="week", help_text=_("The Monday of the meeting's week."))

    class Meta:
        model = Meeting
        fields = ["region", "status", "week"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Review meetings of your teams, newest week first"),
        responses=api_responses({200: MeetingSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(
        summary=_("One meeting with what it shows (frozen once held)"),
        responses=api_responses({200: MeetingDetailSerializer}, 404),
    ),
)
class MeetingViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The weekly review meetings (周例会) of the teams you run."""

    queryset = Meeting.objects.none()
    serializer_class = MeetingSerializer
    filterset_class = MeetingFilter
    ordering_fields = ["week", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (
            selectors.meetings_visible_to(self.request.user)
            .select_related("region")
            .prefetch_related("attendees")
            .order_by("-week", "region_id")
        )

    def get_serializer_class(self):
        return MeetingDetailSerializer if self.action == "retrieve" else MeetingSerializer

    @extend_schema(
        summary=_("Plan a team's meeting for a week (one per team and week)"),
        request=MeetingCreateSerializer,
        responses=api_responses({201: MeetingSerializer}, 400),
    )
    def create(self, request):
        body = MeetingCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        meeting = services.meeting_create(actor=request.user, **data)
        return Response(MeetingSerializer(self.refetch(meeting)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Change a planned meeting's title, agenda, minutes or attendees (refused once held)"),
        request=MeetingUpdateSerializer,
        responses=api_responses({200: MeetingSerializer}, 400, 404),
    )
    def partial_update(self, request, pk=None):
        meeting = self.get_object()
        body = MeetingUpdateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        meeting = services.meeting_update(actor=request.user, meeting=meeting, **body.validated_data)
        return Response(MeetingSerializer(self.refetch(meeting)).data)

    @extend_schema(
        summary=_("Hold the meeting: freeze its figures, its forecast and its items' state"),
        request=None,
        responses=api_responses({200: MeetingSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def hold(self, request, pk=None):
        meeting = services.meeting_hold(actor=request.user, meeting=self.get_object())
        return Response(MeetingSerializer(self.refetch(meeting)).data)


# --- action items ---------------------------------------------------------------------------------


class ActionItemSerializer(serializers.ModelSerializer):
    owner_name = serializers.CharField(source="owner.__str__", read_only=True)

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "region",
            "meeting",
            "closed_in",
            "what",
            "owner",
            "owner_name",
            "due_date",
            "status",
            "node",
            "opportunity",
            "alert",
            "notes",
            "created_at",
            "closed_at",
        ]
        read_only_fields = fields


class ActionItemCreateSerializer(serializers.Serializer):
    meeting = VisiblePrimaryKeyRelatedField(scope=selectors.meetings_visible_to, help_text=_("A planned meeting."))
    what = strict.CharField(max_length=300)
    owner = VisiblePrimaryKeyRelatedField(scope=_members, help_text=_("A member of the meeting's team."))
    due_date = strict.DateField()
    node = VisiblePrimaryKeyRelatedField(scope=nodes_visible_to, required=False, allow_null=True)
    opportunity = VisiblePrimaryKeyRelatedField(scope=deals_visible, required=False, allow_null=True)
    alert = VisiblePrimaryKeyRelatedField(scope=alerts_visible_to, required=False, allow_null=True)
    notes = strict.CharField(required=False, allow_blank=True, default="")


class ActionItemUpdateSerializer(serializers.Serializer):
    status = strict.ChoiceField(choices=ActionItemStatus.choices)
    notes = strict.CharField(required=False, allow_blank=True)
    meeting = VisiblePrimaryKeyRelatedField(
        scope=selectors.meetings_visible_to,
        required=False,
        allow_null=True,
        help_text=_("The planned meeting it is closed in; empty between meetings."),
    )


class ActionItemFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ActionItemStatus.choices)
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    region = IdFilter(field_name="region", help_text=_("The team's region id."))
    meeting = IdFilter(field_name="meeting", help_text=_("The meeting it was created in."))

    class Meta:
        model = ActionItem
        fields = ["status", "owner", "region", "meeting"]


@extend_schema_view(
    list=extend_schema(
        summary=_("Action items: yours, and your teams' as a manager"),
        responses=api_responses({200: ActionItemSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(summary=_("One action item"), responses=api_responses({200: ActionItemSerializer}, 404)),
)
class ActionItemViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Action items of the review meetings (what / who / by when)."""

    queryset = ActionItem.objects.none()
    serializer_class = ActionItemSerializer
    filterset_class = ActionItemFilter
    ordering_fields = ["due_date", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.items_visible_to(self.request.user).select_related("owner").order_by("due_date", "id")

    @extend_schema(
        summary=_("Add an action item to a planned meeting"),
        request=ActionItemCreateSerializer,
        responses=api_responses({201: ActionItemSerializer}, 400),
    )
    def create(self, request):
        body = ActionItemCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        item = services.action_item_create(actor=request.user, **body.validated_data)
        return Response(self.get_serializer(self.refetch(item)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Close (done), drop or reopen an item, in a planned meeting of its team or between meetings"),
        request=ActionItemUpdateSerializer,
        responses=api_responses({200: ActionItemSerializer}, 400, 404),
    )
    def partial_update(self, request, pk=None):
        item = self.get_object()
        body = ActionItemUpdateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        item = services.action_item_set_status(
            actor=request.user,
            item=item,
            status=data["status"],
            meeting=data.get("meeting"),
            notes=data.get("notes"),
        )
        return Response(self.get_serializer(self.refetch(item)).data)
