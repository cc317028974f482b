"""Admin: metrics are configured here; plans and targets are read-only (they change through the services)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from salesmgmt.admin import ReadOnlyAdmin
from targets import models

# What decides a metric's figures: fixed once a plan measures with it (its snapshots were counted so).
METRIC_FIGURE_FIELDS = ("code", "unit", "source", "filters", "is_builtin")


@admin.register(models.Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_zh", "unit", "source", "is_builtin", "is_active")
    list_filter = ("unit", "source", "is_builtin", "is_active")
    search_fields = ("code", "name", "name_zh")

    def get_readonly_fields(self, request, obj=None):
        # Built-in metrics, and any a plan measures with, keep their meaning: attainment depends on their
        # source, filters and unit.
        if obj is not None and (obj.is_builtin or obj.plans.exists()):
            return METRIC_FIGURE_FIELDS
        return ("is_builtin",)


def _plan_note(plan_id) -> str:
    return format_html(
        '{} <a href="{}">{}</a>',
        _(
            "Plans and targets change in the plan editor (splits, amounts, owners, submit and approve) and by "
            "adjustments, never here: there each change is checked, versioned, audited and counted again in "
            "attainment."
        ),
        reverse("targets:plan_detail", args=[plan_id]),
        _("Open the plan"),
    )


@admin.register(models.TargetPlan)
class TargetPlanAdmin(ReadOnlyAdmin):
    list_display = ("name", "metric", "period_key", "total", "status", "owner", "current_version")
    list_filter = ("status", "metric", "period_kind")
    search_fields = ("name", "period_key")
    list_select_related = ("metric", "owner")

    def service_note(self, obj):
        return _plan_note(obj.pk) if obj is not None else ""


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

    def service_note(self, obj):
        return _plan_note(obj.plan_id) if obj is not None else ""


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
