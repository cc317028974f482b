"""URLs of the alert screens and the notification centre."""

from django.urls import path

from targets.views import alerts

urlpatterns = [
    path("alerts/", alerts.alert_list, name="alert_list"),
    path("alerts/<int:pk>/<str:action>/", alerts.alert_action, name="alert_action"),
    path("alerts/rules/", alerts.alert_rules, name="alert_rules"),
    path("alerts/rules/<int:pk>/", alerts.alert_rule_edit, name="alert_rule_edit"),
    path("alerts/rules/defaults/", alerts.alert_rules_defaults, name="alert_rules_defaults"),
    path("notifications/", alerts.notification_list, name="notification_list"),
    path("notifications/<int:pk>/read/", alerts.notification_read, name="notification_read"),
    path("notifications/read-all/", alerts.notification_read_all, name="notification_read_all"),
    path("notifications/settings/", alerts.notification_settings, name="notification_settings"),
]
