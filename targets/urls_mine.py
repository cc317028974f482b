"""URLs of "my targets": commitments, action plans, adjustments and versions."""

from django.urls import path

from targets.views import mine

urlpatterns = [
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
]
