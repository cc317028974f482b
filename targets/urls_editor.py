from django.urls import path

from targets.views import editor

urlpatterns = [
    path("plans/", editor.plan_list, name="plan_list"),
    path("plans/new/", editor.plan_create, name="plan_create"),
    path("plans/<int:pk>/", editor.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/status/<str:action>/", editor.plan_action, name="plan_action"),
    path("plans/<int:pk>/grid/", editor.plan_grid, name="plan_grid"),
    path("plans/<int:pk>/grid/cells/<int:node_pk>/", editor.grid_cell, name="grid_cell"),
    path("plans/<int:pk>/nodes/<int:node_pk>/children/", editor.node_children, name="node_children"),
    path("plans/<int:pk>/nodes/<int:node_pk>/edit/", editor.node_edit, name="node_edit"),
    path("plans/<int:pk>/nodes/<int:node_pk>/split/", editor.node_split, name="node_split"),
]
