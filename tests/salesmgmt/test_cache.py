"""The Redis cache of production (`salesmgmt.cache.TolerantRedisCache`, sessions `cached_db`) with Redis down:
reads miss, writes are dropped, sessions come from the database: no page, login or API call fails, and
`/healthz` still says the cache is down. (tests/integration/test_redis_outage.py kills a real Redis.)"""

import logging

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from salesmgmt import cache as tolerant

pytestmark = pytest.mark.django_db

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1
SESSIONS = "django.contrib.sessions.backends.cached_db"


def redis_cache(backend: str) -> dict:
    options = {"socket_connect_timeout": 1, "socket_timeout": 2}
    return {"default": {"BACKEND": backend, "LOCATION": DOWN, "OPTIONS": options}}


@override_settings(CACHES=redis_cache("salesmgmt.cache.TolerantRedisCache"), SESSION_ENGINE=SESSIONS)
def test_with_redis_down_a_logged_in_person_browses_logs_out_and_in_again(org, caplog):
    tolerant.TolerantRedisCache._logged_at = float("-inf")
    client = Client()
    client.force_login(org.rep)  # the session is created (its key checked against cache and DB) and saved
    with caplog.at_level(logging.WARNING, logger="salesmgmt.cache"):
        for page in ["/", "/pipeline/mine/", "/targets/mine/", "/api/opportunities/"]:
            response = client.get(page)
            assert response.status_code == 200, page
            assert response.wsgi_request.user == org.rep  # read from the database row, not logged out
    assert "Redis unreachable" in caplog.text
    assert len(caplog.records) == 1  # once per LOG_EVERY seconds, not once per call
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/api/opportunities/").status_code in (401, 403)  # logged out for real (the DB row is gone)
    org.rep.set_password("pw-test-123")
    org.rep.save()
    assert client.post("/accounts/login/", {"username": "rep", "password": "pw-test-123"}).status_code == 302
    assert client.get("/targets/mine/").status_code == 200


@override_settings(CACHES=redis_cache("salesmgmt.cache.TolerantRedisCache"))
def test_with_redis_down_reads_miss_and_writes_are_dropped():
    cache = caches["default"]
    cache.set("k", 1)
    assert cache.get("k") is None and cache.get("k", "fallback") == "fallback"
    assert cache.get_many(["k", "j"]) == {}
    assert cache.add("k", 1) is False and cache.has_key("k") is False
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]  # the keys not stored
    assert cache.touch("k") is False and cache.delete("k") is False
    cache.delete_many(["a", "b"])


@override_settings(CACHES=redis_cache("salesmgmt.cache.TolerantRedisCache"))
def test_healthz_still_reports_the_tolerant_cache_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["cache"].startswith("error: ")


@override_settings(CACHES=redis_cache("django.core.cache.backends.redis.RedisCache"), SESSION_ENGINE=SESSIONS)
def test_django_s_own_redis_cache_made_every_page_of_a_logged_in_person_a_500(org):
    """Why the tolerant cache: with Django's, the session read (a miss, then the write back) raises."""
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "x" * 32  # a login with the cache down fails already; any session cookie will do
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["_auth_user_id"] = str(org.rep.pk)
    store.create()
    client.cookies["sessionid"] = store.session_key
    assert client.get("/pipeline/mine/").status_code == 500


@override_settings(CACHES=redis_cache("salesmgmt.cache.TolerantRedisCache"))
def test_one_redis_client_serves_every_call_of_a_cache_object():
    """Django's client makes a `redis.Redis` (and its table of response callbacks) for every call; ours keeps one
    per connection pool, the pool (the connections) shared as before."""
    client = caches["default"]._cache
    first = client.get_client("k")
    assert client.get_client("j", write=True) is first
    assert first.connection_pool is client._get_connection_pool(write=False)
    from django.core.cache.backends.redis import RedisCacheClient

    plain = RedisCacheClient([DOWN])
    assert plain.get_client("k") is not plain.get_client("k")  # what Django does: a new object each call
