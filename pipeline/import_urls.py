"""URLs of the import wizard (upload -> mapping -> preview -> commit), mounted at /pipeline/import/."""

from django.urls import path

from pipeline import import_views

urlpatterns = [
    path("", import_views.import_start, name="import_start"),
    path("<int:pk>/", import_views.import_detail, name="import_detail"),
    path("<int:pk>/mapping/", import_views.import_mapping, name="import_mapping"),
    path("<int:pk>/preview/", import_views.import_preview, name="import_preview"),
    path("<int:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("<int:pk>/rejected/", import_views.import_rejected, name="import_rejected"),
]
