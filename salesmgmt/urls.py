from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from coaching.views import home as coaching_home
from salesmgmt.health import healthz

urlpatterns = [
    path("", coaching_home.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("crm/", include("crm.urls")),
    path("pipeline/", include("pipeline.urls")),
    path("targets/", include("targets.urls")),
    path("review/", include("coaching.urls")),
    path("api/", include("salesmgmt.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from the app's own static files (drf-spectacular-sidecar), no CDN; the split view serves
    # Swagger's start-up script as a file, so the page needs no inline script (Content-Security-Policy).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
