"""The targets app's HTML screens, under the `targets` namespace (`salesmgmt/urls.py` mounts them at `/targets/`)."""

from django.urls import path

from targets.views import alerts, attainment, editor, excel, mine, people

app_name = "targets"
urlpatterns = [
    # The plan editor: list, create, status, tree, grid, a node's children, edit and split.
    path("plans/", editor.plan_list, name="plan_list"),
    path("plans/new/", editor.plan_create, name="plan_create"),
    path("plans/<int:pk>/", editor.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/status/<str:action>/", editor.plan_action, name="plan_action"),
    path("plans/<int:pk>/grid/", editor.plan_grid, name="plan_grid"),
    path("plans/<int:pk>/grid/cells/<int:node_pk>/", editor.grid_cell, name="grid_cell"),
    path("plans/<int:pk>/nodes/<int:node_pk>/children/", editor.node_children, name="node_children"),
    path("plans/<int:pk>/nodes/<int:node_pk>/edit/", editor.node_edit, name="node_edit"),
    path("plans/<int:pk>/nodes/<int:node_pk>/split/", editor.node_split, name="node_split"),
    # People who change mid-year: transfers, new hires, deals moved by date.
    path("plans/<int:pk>/people/", people.people_changes, name="people_changes"),
    # "My targets": commitments, action plans, adjustments and versions.
    path("mine/", mine.my_targets, name="mine"),
    path("nodes/<int:pk>/commit/", mine.node_commit, name="node_commit"),
    path("nodes/<int:pk>/attainment/", mine.node_attainment, name="node_attainment"),
    path("nodes/<int:pk>/commitments/", mine.node_commitments, name="node_commitments"),
    path("nodes/<int:pk>/commitments/reconcile/", mine.node_reconcile, name="node_reconcile"),
    path("nodes/<int:pk>/actions/", mine.node_actions, name="node_actions"),
    path("nodes/<int:pk>/adjust/", mine.adjustment_propose, name="adjustment_propose"),
    path("actions/<int:pk>/edit/", mine.action_edit, name="action_edit"),
    path("actions/<int:pk>/status/", mine.action_status, name="action_status"),
    path("adjustments/", mine.adjustment_inbox, name="adjustment_inbox"),
    path("adjustments/<int:pk>/", mine.adjustment_detail, name="adjustment_detail"),
    path("adjustments/<int:pk>/approve/", mine.adjustment_approve, name="adjustment_approve"),
    path("adjustments/<int:pk>/reject/", mine.adjustment_reject, name="adjustment_reject"),
    path("plans/<int:pk>/versions/", mine.plan_versions, name="plan_versions"),
    path("plans/<int:pk>/compare/", mine.plan_compare, name="plan_compare"),
    # The Excel round trip: export a plan's tree or grid, import a filled export back.
    path("plans/<int:pk>/export.xlsx", excel.plan_export, name="plan_export"),
    path("plans/<int:pk>/import/", excel.plan_import, name="plan_import"),
    # The attainment screens.
    path("leaderboard/", attainment.leaderboard, name="leaderboard"),
    # The alert screens and the notification centre.
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
