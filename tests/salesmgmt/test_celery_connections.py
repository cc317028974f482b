"""A Celery worker keeps its database connection from task to task, by the web's rule (`salesmgmt.celery`).

Celery's Django fixup closes the connection before and after every task unless `CELERY_DB_REUSE_MAX` is set:
a new PostgreSQL backend per task, each planning its first queries with empty catalog caches (under the load
benchmark, 870 new backends a minute and a third more PostgreSQL CPU per request)."""

import time
from types import SimpleNamespace

import pytest
from celery import current_app
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from salesmgmt.celery import close_stale_connections

pytestmark = pytest.mark.django_db(transaction=True)


def worker_task(*, eager: bool = False):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def open_connection():
    connection.ensure_connection()
    return connection.connection


def run_task_signals(fixup: DjangoWorkerFixup) -> None:
    """What a worker runs around one task: Celery's fixup and our handler, before and after."""
    task = worker_task()
    fixup.on_task_prerun(sender=task)
    close_stale_connections(task=task)
    fixup.on_task_postrun(sender=task)
    close_stale_connections(task=task)


def test_the_worker_keeps_its_connection_across_tasks():
    fixup = DjangoWorkerFixup(current_app)
    assert fixup.db_reuse_max and fixup.db_reuse_max >= 10_000  # the setting reaches Celery's fixup
    before = open_connection()
    for _ in range(50):
        run_task_signals(fixup)
        assert connection.connection is before  # not closed: the same backend serves the next task
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_an_old_connection_is_closed_around_a_task_and_the_next_query_opens_one():
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("Django never closes an in-memory SQLite database (it would lose it): runs on PostgreSQL")
    before = open_connection()
    connection.close_at = time.monotonic() - 1  # older than DB_CONN_MAX_AGE
    close_stale_connections(task=worker_task())
    assert connection.connection is None
    assert open_connection() is not before


def test_an_eager_task_leaves_its_callers_connection_alone():
    before = open_connection()
    connection.close_at = time.monotonic() - 1
    close_stale_connections(task=worker_task(eager=True))
    assert connection.connection is before
