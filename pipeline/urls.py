from django.urls import include, path

from pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("mine/", views.my_pipeline, name="mine"),
    path("team/", views.team_pipeline, name="team"),
    path("team/export.csv", views.team_export, {"fmt": "csv"}, name="team_export_csv"),
    path("team/export.xlsx", views.team_export, {"fmt": "xlsx"}, name="team_export_xlsx"),
    path("deals/new/", views.deal_create, name="deal_create"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("deals/<int:pk>/edit/", views.deal_edit, name="deal_edit"),
    path("deals/<int:pk>/move/", views.deal_move, name="deal_move"),
    path("deals/<int:pk>/inline/", views.deal_inline, name="deal_inline"),
    path("deals/<int:pk>/collections/", views.deal_collection_add, name="deal_collection_add"),
    path("deals/<int:pk>/activities/", views.deal_activity_add, name="deal_activity_add"),
    path("activities/new/", views.activity_new, name="activity_new"),
    path("import/", include("pipeline.import_urls")),
]
