"""Admin: metrics are configured here; plans and targets are read-only (they change through the services)."""

from django.contrib import admin

from targets import models


@admin.register(models.Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_zh", "unit", "source", "is_builtin", "is_active")
    list_filter = ("unit", "source", "is_builtin", "is_active")
    search_fields = ("code", "name", "name_zh")

    def get_readonly_fields(self, request, obj=None):
        # Built-in metrics keep their meaning: attainment depends on their source and unit.
        if obj is not None and obj.is_builtin:
            return ("code", "unit", "source", "filters", "is_builtin")
        return ("is_builtin",)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.TargetPlan)
class TargetPlanAdmin(ReadOnlyAdmin):
    list_display = ("name", "metric", "period_key", "total", "status", "owner", "current_version")
    list_filter = ("status", "metric", "period_kind")
    search_fields = ("name", "period_key")
    list_select_related = ("metric", "owner")


@admin.register(models.TargetNode)
class TargetNodeAdmin(ReadOnlyAdmin):
    list_display = (
        "plan",
        "path",
        "region",
        "product_line",
        "product",
        "rep",
        "segment",
        "period_key",
        "amount",
        "owner",
        "deadline",
        "split_dimension",
    )
    list_filter = ("plan", "split_dimension", "period_kind")
    search_fields = ("path", "period_key")
    list_select_related = ("plan", "region", "product_line", "product", "rep", "owner")
    raw_id_fields = ("parent",)


@admin.register(models.AdjustmentRequest)
class AdjustmentRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "plan",
        "kind",
        "status",
        "proposer",
        "approver",
        "based_on_version",
        "resulting_version",
        "created_at",
    )
    list_filter = ("status", "kind")
    list_select_related = ("plan", "proposer", "approver")


@admin.register(models.ActionPlan)
class ActionPlanAdmin(ReadOnlyAdmin):
    list_display = ("activity", "node", "owner", "due_date", "status")
    list_filter = ("status",)
    search_fields = ("activity",)
    list_select_related = ("node", "node__plan", "owner")


@admin.register(models.AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("kind", "metric", "threshold", "severity", "active")
    list_filter = ("kind", "severity", "active")
    list_select_related = ("metric",)


@admin.register(models.Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("rule", "subject_key", "period_key", "severity", "state", "owner", "owner_manager", "last_seen")
    list_filter = ("state", "severity", "rule__kind")
    search_fields = ("subject_key", "period_key")
    list_select_related = ("rule", "rule__metric", "owner", "owner_manager")


@admin.register(models.Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("recipient", "topic", "alert", "in_app", "email", "emailed_at", "created_at", "read_at")
    list_filter = ("topic", "in_app", "email")
    search_fields = ("recipient__username",)
    list_select_related = ("recipient", "alert", "alert__rule")


@admin.register(models.NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "in_app", "email")
    list_filter = ("kind", "in_app", "email")
    search_fields = ("user__username",)
    list_select_related = ("user",)
