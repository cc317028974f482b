"""URLs of the import wizard (upload -> mapping -> preview -> commit), mounted at /pipeline/import/."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
