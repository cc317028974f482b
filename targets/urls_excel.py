"""URLs of the Excel round trip: export a plan's tree or grid, import a filled export back."""

from django.urls import path

from targets.views import excel

urlpatterns = [
    path("plans/<int:pk>/export.xlsx", excel.plan_export, name="plan_export"),
    path("plans/<int:pk>/import/", excel.plan_import, name="plan_import"),
]
