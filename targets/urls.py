from django.urls import include, path

app_name = "targets"
urlpatterns = [
    path("", include("targets.urls_editor")),
    path("", include("targets.urls_mine")),
    path("", include("targets.urls_excel")),
    path("", include("targets.urls_attainment")),
    path("", include("targets.urls_alerts")),
]
