"""`/healthz`: what a load balancer and monitoring read. 200 only when the database, the cache and the broker answer;
the outbox backlog as it is in the table; no login needed and nothing written."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from salesmgmt.models import OutboxTask

pytestmark = pytest.mark.django_db


def test_healthy_without_login_and_says_what_it_checked(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["cache"] == "local" and body["broker"] == "eager"  # the test settings: no Redis, no broker
    assert body["outbox"] == {"pending": 0, "oldest_seconds": 0.0}
    assert "no-cache" in response["Cache-Control"] and "max-age=0" in response["Cache-Control"]


def test_reports_the_outbox_backlog_and_its_age(client):
    now = timezone.now()
    OutboxTask.objects.create(name="a", key="a", created_at=now - timedelta(minutes=5))
    OutboxTask.objects.create(name="b", key="b", created_at=now - timedelta(minutes=1))
    outbox = client.get("/healthz").json()["outbox"]
    assert outbox["pending"] == 2
    assert 299 <= outbox["oldest_seconds"] <= 360


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
def test_unreachable_broker_is_a_503_naming_it(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["broker"].startswith("error: ") and body["database"] == "ok"


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
)
def test_unreachable_redis_cache_is_a_503_naming_it(client):
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["cache"].startswith("error: ")


def test_only_get(client):
    assert client.post("/healthz").status_code == 405


def test_api_docs_are_served_from_the_app_not_a_cdn(client):
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "<script>" not in html  # Swagger's start-up script is a file of its own (no inline script)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    redoc = client.get("/api/redoc/").content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/" in redoc and "cdn" not in redoc.lower()
