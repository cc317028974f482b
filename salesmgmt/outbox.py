"""Enqueue Celery tasks through an outbox so web requests never wait on, or lose work to, the broker.

`enqueue_name(task_name, *args)` records the work in the current transaction and publishes it after commit;
a publish that fails (Redis down) leaves the row for `flush()` (beat, or `manage.py flush_outbox`).
Tasks must be idempotent: a row can be published twice if the process dies between publish and delete.
Without a broker (`CELERY_TASK_ALWAYS_EAGER`) the task runs in-process after commit; its failure is
logged and the row kept, so a bug in a background job never turns a user's save into an error page.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from salesmgmt.models import OutboxTask

log = logging.getLogger(__name__)


def task_key(name: str, args: list[object]) -> str:
    """One key per task and arguments; long arguments are hashed (never cut: two calls would collide)."""
    key = f"{name}:{json.dumps(args, sort_keys=True, default=str)}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{name[:180]}:sha256:{digest}"


def enqueue_name(name: str, *args: object, key: str | None = None) -> None:
    """Record the task registered as `name` with `args`, and publish it once the current transaction commits.

    An app enqueues its own tasks here; work for the apps above it goes through their subscriptions
    to its events (`salesmgmt.events`)."""
    args_list = list(args)
    key = key or task_key(name, args_list)
    # Upsert: a pending duplicate coalesces, but gets a new created_at so a dispatch that published the
    # older request (possibly before this change committed) does not delete this newer one.
    OutboxTask.objects.bulk_create(
        [OutboxTask(name=name, args=args_list, key=key, created_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["created_at"],
    )
    transaction.on_commit(lambda: dispatch([key]))


def dispatch(keys: list[str] | None = None, *, older_than: timedelta | None = None) -> int:
    """Publish pending rows (the given keys, or all older than `older_than`); returns how many went out."""
    rows = OutboxTask.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=keys)
    if older_than is not None:
        rows = rows.filter(created_at__lte=timezone.now() - older_than)
    sent = 0
    for row in rows.order_by("created_at", "id")[:1000]:
        try:
            publish(row)
        except Exception as exc:  # broker down, or (eager) the task itself failed: keep the row for later
            log.warning("outbox: %s not sent (%s); kept for retry", row, exc)
            OutboxTask.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1, last_error=str(exc)[:2000])
            if not current_app.conf.task_always_eager:
                break  # the broker is unreachable: don't pay the timeout once per row
            continue
        # Delete only what we published: a newer enqueue of the same key (new created_at) stays pending.
        OutboxTask.objects.filter(pk=row.pk, created_at=row.created_at).delete()
        sent += 1
    return sent


def publish(row: OutboxTask) -> None:
    """Send one pending row to Celery (run it in place when tasks are eager). `dispatch` calls it per row."""
    if current_app.conf.task_always_eager:
        current_app.tasks[row.name].apply(args=row.args, throw=True)
    else:
        current_app.send_task(row.name, args=row.args, retry=False)


def flush(older_than: timedelta = timedelta(seconds=30)) -> int:
    return dispatch(older_than=older_than)
