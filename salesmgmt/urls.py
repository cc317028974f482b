from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from coaching.views import home as coaching_home
from salesmgmt import security
from salesmgmt.api import api_not_found
from salesmgmt.health import healthz

urlpatterns = [
    path("", coaching_home.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # Django's password reset with a rate per address and per e-mail (before Django's own view of that URL).
    path("accounts/password_reset/", security.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("crm/", include("crm.urls")),
    path("pipeline/", include("pipeline.urls")),
    path("targets/", include("targets.urls")),
    path("review/", include("coaching.urls")),
    path("api/", include("salesmgmt.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from the app's own static files (drf-spectacular-sidecar), no CDN; the split view serves
    # Swagger's start-up script as a file, so the page needs no inline script (Content-Security-Policy).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Anything else under /api/ (e.g. `/api/opportunities/1.5/`) is a JSON 404 in the API's error shape.
    re_path(r"^api/", api_not_found, name="api-not-found"),
]
