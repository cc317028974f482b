"""`/healthz`: is this web process able to serve? For a load balancer, systemd's watchdog scripts and monitoring.

It checks what a request needs: the database (one `SELECT 1`), the cache when it is Redis (a write and a read),
and the Celery broker when one is configured (a connection). It also says how much background work waits in the
outbox and how old the oldest piece is: work recorded while the broker was down, sent again by beat's
`flush_outbox` (a backlog that keeps growing means no worker or no beat). 200 when every check passes, else 503
with the failing check named. No login, no session, no database write; nothing secret in the answer.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Min
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from salesmgmt.models import OutboxTask


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _cache() -> str:
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        return "local"
    key = "healthz:probe"
    value = str(time.monotonic())
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was written")
    return "ok"


def _broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"
    from salesmgmt.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}


@never_cache
@require_GET
def healthz(request):
    body: dict[str, object] = {}
    healthy = True
    for name, check in CHECKS.items():
        try:
            body[name] = check()
        except Exception as exc:  # every failure is a finding, not a 500
            healthy = False
            body[name] = f"error: {type(exc).__name__}"
    if body.get("database") == "ok":
        backlog = OutboxTask.objects.aggregate(count=Count("id"), oldest=Min("created_at"))
        age = (timezone.now() - backlog["oldest"]).total_seconds() if backlog["oldest"] else 0.0
        body["outbox"] = {"pending": backlog["count"], "oldest_seconds": round(age, 1)}
    body["status"] = "ok" if healthy else "error"
    return JsonResponse(body, status=200 if healthy else 503)
