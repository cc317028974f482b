"""REST endpoints of alerts and notifications: the alerts in your scope (with their message and the link to
their cause), acknowledge and resolve, the alert rules (directors and admins), and your own notifications.

Alerts come from `alerts_visible_to(user)`, so one outside your scope is a 404 on every route; a refused
transition (acknowledging a resolved alert...) is a 400 with the service's message. Messages are rendered
in the request's language.
"""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api import IdFilter, ScopedViewSetMixin
from salesmgmt import fields as strict
from salesmgmt.api import api_responses
from targets.alerts import notifications as notification_services
from targets.alerts import selectors as alert_selectors
from targets.alerts import services as alert_services
from targets.alerts.messages import ALERT_RELATED, alert_link, alert_message
from targets.models import Alert, AlertKind, AlertRule, AlertSeverity, AlertState, Notification, NotificationTopic

STATE_ALL = "all"

# --- alerts ---------------------------------------------------------------------------------------


class AlertFilter(filters.FilterSet):
    state = filters.ChoiceFilter(
        choices=[*AlertState.choices, (STATE_ALL, _("All states"))],
        method="filter_state",
        help_text=_("Without it: open and acknowledged alerts."),
    )
    severity = filters.ChoiceFilter(choices=AlertSeverity.choices)
    kind = filters.ChoiceFilter(field_name="rule__kind", choices=AlertKind.choices)
    owner = IdFilter(field_name="owner", help_text=_("Owner's user id."))
    plan = IdFilter(field_name="node__plan", help_text=_("Alerts on the targets of this plan."))
    period = filters.CharFilter(field_name="period_key", help_text=_("A fiscal period such as FY2027-Q2."))

    class Meta:
        model = Alert
        fields = ["state", "severity", "kind", "owner", "plan", "period"]

    def filter_state(self, queryset, name, value):
        return queryset if value == STATE_ALL else queryset.filter(state=value)

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("state"):
            queryset = queryset.filter(state__in=alert_selectors.ACTIVE_STATES)
        return super().filter_queryset(queryset)


class AlertSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(source="rule.kind", choices=AlertKind.choices, read_only=True)
    kind_display = serializers.CharField(source="rule.get_kind_display", read_only=True)
    message = serializers.SerializerMethodField(help_text=_("What is wrong, in the request's language."))
    link = serializers.SerializerMethodField(help_text=_("The page of its cause: the deal, or the target."))
    owner_name = serializers.CharField(source="owner.__str__", read_only=True)
    owner_manager_name = serializers.CharField(source="owner_manager.__str__", read_only=True, allow_null=True)
    plan = serializers.IntegerField(source="node.plan_id", read_only=True, allow_null=True)
    params = serializers.DictField(read_only=True, help_text=_("The figures behind the message, by kind."))

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "kind_display",
            "severity",
            "state",
            "message",
            "link",
            "owner",
            "owner_name",
            "owner_manager",
            "owner_manager_name",
            "node",
            "plan",
            "opportunity",
            "period_key",
            "params",
            "first_seen",
            "last_seen",
            "opened_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_message(self, alert) -> str:
        return alert_message(alert)

    @extend_schema_field(OpenApiTypes.STR)
    def get_link(self, alert) -> str:
        request = self.context.get("request")
        return alert_link(alert, getattr(request, "user", None))


@extend_schema_view(
    list=extend_schema(
        summary=_("Alerts in your data scope (default: open and acknowledged)"),
        responses=api_responses({200: AlertSerializer(many=True)}, 400),
    ),
    retrieve=extend_schema(
        summary=_("One alert, with its message and link"), responses=api_responses({200: AlertSerializer}, 404)
    ),
)
class AlertViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts on your targets and deals, your team's as a manager, and those of everyone in your data scope."""

    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["last_seen", "first_seen", "opened_at", "severity"]

    def get_queryset(self):
        return (
            alert_selectors.alerts_visible_to(self.request.user)
            .select_related(*ALERT_RELATED)
            .order_by("-last_seen", "-id")
        )

    def _transition(self, service):
        alert = self.get_object()
        service(alert=alert, actor=self.request.user)
        return Response(self.get_serializer(self.refetch(alert)).data)

    @extend_schema(
        summary=_("Acknowledge an open alert: seen and being handled"),
        request=None,
        responses=api_responses({200: AlertSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._transition(alert_services.alert_acknowledge)

    @extend_schema(
        summary=_("Resolve an alert by hand (it re-opens if its condition still holds at the next evaluation)"),
        request=None,
        responses=api_responses({200: AlertSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._transition(alert_services.alert_resolve)


# --- rules ----------------------------------------------------------------------------------------


class IsDirectorOrAdmin(permissions.BasePermission):
    message = _("Only a director or an admin changes alert rules.")

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_director_or_above)


class AlertRuleSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=AlertKind.choices, read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = AlertRule
        fields = ["id", "kind", "kind_display", "metric", "threshold", "severity", "active"]
        read_only_fields = fields


class AlertRuleUpdateSerializer(serializers.Serializer):
    threshold = strict.DecimalField(
        max_digits=18,
        decimal_places=2,
        required=False,
        help_text=_("Pace gap: points vs time progress; coverage: multiple of the gap; big deal: amount."),
    )
    severity = strict.ChoiceField(choices=AlertSeverity.choices, required=False)
    active = strict.BooleanField(required=False)


@extend_schema_view(
    list=extend_schema(summary=_("Alert rules"), responses=api_responses({200: AlertRuleSerializer(many=True)})),
    retrieve=extend_schema(responses=api_responses({200: AlertRuleSerializer}, 404)),
)
class AlertRuleViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """When alerts fire: each kind's threshold, severity and whether it is active (directors and admins)."""

    queryset = AlertRule.objects.select_related("metric").order_by("kind", "metric_id", "id")
    serializer_class = AlertRuleSerializer
    permission_classes = [permissions.IsAuthenticated, IsDirectorOrAdmin]
    filterset_class = None
    ordering_fields = ["kind", "severity", "threshold", "active"]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(
        summary=_("Change a rule's threshold, severity or whether it is active"),
        request=AlertRuleUpdateSerializer,
        responses=api_responses({200: AlertRuleSerializer}, 400, 404),
    )
    def partial_update(self, request, pk=None):
        rule = self.get_object()
        serializer = AlertRuleUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = alert_services.alert_rule_update(rule=rule, actor=request.user, **serializer.validated_data)
        return Response(self.get_serializer(rule).data)


# --- notifications --------------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    topic = serializers.ChoiceField(choices=NotificationTopic.choices, read_only=True)
    severity = serializers.ChoiceField(
        source="alert.severity", choices=AlertSeverity.choices, read_only=True, allow_null=True
    )
    message = serializers.SerializerMethodField(help_text=_("In the request's language."))
    link = serializers.SerializerMethodField(help_text=_("The page of the alert's cause."))
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "topic", "alert", "severity", "message", "link", "created_at", "read_at", "read"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_message(self, notification) -> str:
        return alert_selectors.notification_message(notification)

    @extend_schema_field(OpenApiTypes.STR)
    def get_link(self, notification) -> str:
        return alert_selectors.notification_link(notification)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_read(self, notification) -> bool:
        return notification.read_at is not None


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class ReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text=_("How many were unread."))
    unread = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(
        summary=_("Your notifications, unread first"),
        responses=api_responses({200: NotificationSerializer(many=True)}),
    ),
)
class NotificationViewSet(ScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Your own notifications (the notification centre): nobody sees anyone else's."""

    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer
    filterset_class = None
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return alert_selectors.notifications_of(self.request.user)

    @extend_schema(
        summary=_("Mark one of your notifications read"),
        request=None,
        responses=api_responses({200: NotificationSerializer}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        notification_services.notification_mark_read(notification=notification, actor=request.user)
        return Response(self.get_serializer(notification).data)

    @extend_schema(
        summary=_("Mark all your notifications read"),
        request=None,
        responses=api_responses({200: ReadAllSerializer}, 400),
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        marked = notification_services.notifications_mark_all_read(actor=request.user)
        return Response({"marked": marked, "unread": alert_selectors.unread_count(request.user)})

    @extend_schema(
        summary=_("How many of your notifications are unread"),
        responses=api_responses({200: UnreadCountSerializer}),
    )
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": alert_selectors.unread_count(request.user)})
