"""Enqueue Celery tasks through an outbox so web requests never wait on, or lose work to, the broker.

`enqueue_name(task_name, *args)` records the work in the current transaction and publishes it after commit;
a publish that fails (Redis down) leaves the row for `flush()` (beat, or `manage.py flush_outbox`).
Tasks must be idempotent: a row can be published twice if the process dies between publish and delete.
Without a broker (`CELERY_TASK_ALWAYS_EAGER`) the task runs in-process after commit; its failure is
logged and the row kept, so a bug in a background job never turns a user's save into an error page.

A task registered with `drained_together(name)` (frequent, cheaper in bulk: a deal's recompute) is not
published row by row: after a commit the outbox publishes one `salesmgmt.drain_outbox(name)`, and that drain
runs every call of `name` then pending in one go, deleting their rows in the same transaction. So calls pile
up while the worker is busy and cost one pass, not one each; a drain that dies leaves its rows for the next.

With a broker and a cache the workers share (Redis), one drain waits in the queue at a time: a commit publishes a
drain unless one is queued and not yet started (a key `add`ed to the cache, `QUEUED_SECONDS` at most). The worker,
taking a drain, first gathers: it waits until the oldest pending call is `OUTBOX_DRAIN_DELAY` seconds old (one
second by default; never longer than that), then clears the key, then selects the pending rows (`drain_queued`).
Commits made while it gathers find the key and send nothing: their calls run in this drain. A commit that found the
key committed before the key was cleared, so the drain takes its rows; a commit after that queues the next drain.
So ten writers' moves of a second cost one pass, not ten (at tier M, the worker's CPU fell from 28 to 8 ms a move,
and the pages showing attainment go stale once a second, not at every move), and a change's figures are at most
about that delay, plus the pass, old. No message waits with a countdown: a countdown message is held unacknowledged
in the worker, and the worker exited when Redis restarted under it (a kombu Redis-transport failure); a gathering
drain holds one message, for the delay at most. A drain's lost message holds the next commit up for
`QUEUED_SECONDS` at most, and `flush` sends a drain for anything left pending. Without a shared cache (a web
process's own memory, which a worker cannot clear) every commit sends a drain; the first gathers, the others find
their calls run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Min, QuerySet
from django.utils import timezone

from salesmgmt.models import OutboxTask

log = logging.getLogger(__name__)

DRAIN_TASK = "salesmgmt.drain_outbox"
DRAIN_SIZE = 200  # calls a drain runs in one transaction (it goes on while more are pending)
# Task name -> the function that runs many of its calls at once (`drained_together`).
_DRAINED: dict[str, Callable[[list[list]], object]] = {}


def drained_together(name: str) -> Callable:
    """Decorator: `fn(calls)` runs pending calls of the task registered as `name` together (`calls`: their
    argument lists, oldest first; a call enqueued twice before it ran is there once). It must give what
    running each call alone would, in any grouping, and run inside the drain's transaction (no commit of
    its own): its rows are deleted in that transaction, so a drain that fails or dies leaves them pending."""

    def register(fn: Callable[[list[list]], object]) -> Callable[[list[list]], object]:
        _DRAINED[name] = fn
        return fn

    return register


def drain(name: str, *, size: int = DRAIN_SIZE) -> int:
    """Run the pending calls of the drained-together task `name`, `size` at a time, each batch in a
    transaction that deletes its rows; returns how many calls ran. Rows another drain holds (or a change not
    yet committed) are skipped, not waited for: whoever holds them runs them, or publishes a drain after commit.
    Idempotent: a second delivery of the same drain finds nothing left, or other calls to run."""
    run = _DRAINED[name]
    done = 0
    while True:
        with transaction.atomic():
            pending = OutboxTask.objects.select_for_update(skip_locked=True).filter(name=name).order_by("id")
            rows = list(pending.values_list("id", "args")[:size])
            if rows:
                run([args for _pk, args in rows])
                OutboxTask.objects.filter(pk__in=[pk for pk, _args in rows]).delete()
        done += len(rows)
        if len(rows) < size:
            return done


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
    drained = name if name in _DRAINED else None
    transaction.on_commit(lambda: dispatch([key], drained=drained))


def dispatch(keys: list[str] | None = None, *, older_than: timedelta | None = None, drained: str | None = None) -> int:
    """Publish pending rows (the given keys, or all older than `older_than`); returns how many went out.

    `drained`: the keys are calls of that drained-together task, just committed: its drain is published (unless one
    is queued) without reading the rows back; a failure is counted on them, kept for the next drain or `flush`."""
    if drained is not None:
        try:
            publish_drain(drained)
        except Exception as exc:  # broker down, or (eager) the drain failed: the rows are kept for later
            _kept(OutboxTask.objects.filter(key__in=keys or []), f"a drain of {drained}", exc)
            return 0
        return len(keys or [])
    return _dispatch_rows(keys, older_than=older_than)


def _kept(rows: QuerySet[OutboxTask], what: object, exc: Exception) -> None:
    """A publish of `what` failed: its rows stay pending, with the attempt and the error counted on them."""
    log.warning("outbox: %s not sent (%s); kept for retry", what, exc)
    rows.update(attempts=F("attempts") + 1, last_error=str(exc)[:2000])


def _dispatch_rows(keys: list[str] | None, *, older_than: timedelta | None) -> int:
    rows = OutboxTask.objects.all()
    if keys is not None:
        rows = rows.filter(key__in=keys)
    if older_than is not None:
        rows = rows.filter(created_at__lte=timezone.now() - older_than)
    sent = 0
    drains: set[str] = set()  # names of drained-together rows whose drain was published (or ran, eager)
    for row in rows.order_by("created_at", "id")[:1000]:
        if row.name in drains:
            continue
        try:
            if row.name in _DRAINED:
                publish_drain(row.name)
            else:
                publish(row)
        except Exception as exc:  # broker down, or (eager) the task itself failed: keep the row for later
            _kept(OutboxTask.objects.filter(pk=row.pk), row, exc)
            if not current_app.conf.task_always_eager:
                break  # the broker is unreachable: don't pay the timeout once per row
            if row.name in _DRAINED:
                drains.add(row.name)  # (eager) the drain ran its calls and failed: not once more per row
            continue
        sent += 1
        if row.name in _DRAINED:
            drains.add(row.name)  # its rows stay until the drain has run them
            continue
        # Delete only what we published: a newer enqueue of the same key (new created_at) stays pending.
        OutboxTask.objects.filter(pk=row.pk, created_at=row.created_at).delete()
    return sent


def publish(row: OutboxTask) -> None:
    """Send one pending row to Celery (run it in place when tasks are eager). `dispatch` calls it per row."""
    if current_app.conf.task_always_eager:
        current_app.tasks[row.name].apply(args=row.args, throw=True)
    else:
        current_app.send_task(row.name, args=row.args, retry=False)


def _queued_key(name: str) -> str:
    return f"outbox:drain-queued:{name}"


# Seconds a queued drain's key lives: when its message is lost (Redis restarted), commits send a new one after this.
QUEUED_SECONDS = 30


def cache_shared() -> bool:
    """Whether the cache is one the web processes and the workers share (Redis), not a process's own memory."""
    return "locmem" not in str(settings.CACHES["default"]["BACKEND"]).lower()


def gather(name: str, *, sleep: Callable[[float], object] = time.sleep) -> float:
    """Wait until the oldest pending call of `name` is `OUTBOX_DRAIN_DELAY` seconds old (never longer than the
    delay; not at all when nothing is pending or the oldest is that old already): the calls committed meanwhile run
    in the same pass. Returns the seconds waited."""
    delay = settings.OUTBOX_DRAIN_DELAY
    if not delay:
        return 0.0
    oldest = OutboxTask.objects.filter(name=name).aggregate(at=Min("created_at"))["at"]
    if oldest is None:
        return 0.0
    wait = min(delay, delay - (timezone.now() - oldest).total_seconds())
    if wait <= 0:
        return 0.0
    sleep(wait)
    return wait


def drain_queued(name: str, *, sleep: Callable[[float], object] = time.sleep) -> int:
    """The worker's drain (`salesmgmt.drain_outbox`): it gathers the calls of the delay (`gather`; its key still
    set, so the commits meanwhile send nothing), then clears the queued drain's key, so a commit from now on queues
    the next drain and every commit that found it queued has committed: `drain` sees its rows."""
    gather(name, sleep=sleep)
    cache.delete(_queued_key(name))
    return drain(name)


def publish_drain(name: str) -> None:
    """Send a drain of the drained-together task `name` to Celery (run it in place when tasks are eager), unless
    one is queued and not started yet (it will run this commit's calls)."""
    if current_app.conf.task_always_eager:
        drain(name)
        return
    if not cache_shared():
        # A worker could not clear a key kept in this process's own memory: a drain per commit.
        current_app.send_task(DRAIN_TASK, args=[name], retry=False)
        return
    key = _queued_key(name)
    # `add` is false when the key is there, or when the cache cannot be reached (then it is not there: publish).
    if not cache.add(key, 1, timeout=QUEUED_SECONDS) and cache.has_key(key):
        return
    try:
        current_app.send_task(DRAIN_TASK, args=[name], retry=False)
    except Exception:
        cache.delete(key)  # not queued after all: the next commit (or flush) tries again
        raise


def flush(older_than: timedelta = timedelta(seconds=30)) -> int:
    return dispatch(older_than=older_than)
