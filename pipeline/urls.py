from django.urls import include, path

from pipeline import views

app_name = "pipeline"
urlpatterns = [
    path("mine/", views.my_pipeline, name="mine"),
    path("team/", views.team_pipeline, name="team"),
    path("import/", include("pipeline.import_urls")),
]
