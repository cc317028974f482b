from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from coaching.views import home as coaching_home
from salesmgmt.api import api_not_found

urlpatterns = [
    path("", coaching_home.home, name="home"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("crm/", include("crm.urls")),
    path("pipeline/", include("pipeline.urls")),
    path("targets/", include("targets.urls")),
    path("review/", include("coaching.urls")),
    path("api/", include("salesmgmt.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Anything else under /api/ (e.g. `/api/opportunities/1.5/`) is a JSON 404 in the API's error shape.
    re_path(r"^api/", api_not_found, name="api-not-found"),
]
