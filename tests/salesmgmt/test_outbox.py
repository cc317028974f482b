"""The outbox: work is published after commit, survives a broker outage, and is sent once it's back."""

from datetime import timedelta

import pytest
from celery import current_app, shared_task
from django.core.management import call_command
from django.db import transaction
from kombu.exceptions import OperationalError

from salesmgmt import outbox
from salesmgmt.models import OutboxTask

CALLS: list = []


@shared_task(name="tests.record")
def record(value):
    CALLS.append(value)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


@pytest.fixture
def broker_down(monkeypatch):
    """A real broker configuration whose publish fails as Redis does when it is stopped."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refuse)


@pytest.mark.django_db(transaction=True)
def test_task_runs_after_commit_and_row_is_gone():
    with transaction.atomic():
        outbox.enqueue_name(record.name, 7)
        assert CALLS == [] and OutboxTask.objects.count() == 1  # nothing runs before commit
    assert CALLS == [7]
    assert OutboxTask.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_enqueues_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue_name(record.name, 8)
        raise RuntimeError("the change failed")
    assert CALLS == [] and OutboxTask.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_duplicates_coalesce_into_one_run():
    with transaction.atomic():
        outbox.enqueue_name(record.name, 9)
        outbox.enqueue_name(record.name, 9)
    assert CALLS == [9]


@pytest.mark.django_db(transaction=True)
def test_broker_down_keeps_the_work_and_flush_sends_it_later(broker_down, monkeypatch):
    with transaction.atomic():
        outbox.enqueue_name(record.name, 10)  # the caller's transaction commits normally
    row = OutboxTask.objects.get()
    assert row.attempts == 1 and "Connection refused" in row.last_error

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry: sent.append((name, args)))
    assert outbox.flush(older_than=timedelta(0)) == 1
    assert sent == [("tests.record", [10])]
    assert not OutboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_failing_eager_task_does_not_break_the_caller(monkeypatch):
    @shared_task(name="tests.explode")
    def explode():
        raise ValueError("bug in a background job")

    with transaction.atomic():
        outbox.enqueue_name(explode.name)
    row = OutboxTask.objects.get()
    assert "bug in a background job" in row.last_error
    call_command("flush_outbox")  # still failing: kept, attempts counted
    assert OutboxTask.objects.get().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_work_enqueued_while_publishing_is_not_lost(monkeypatch):
    """A change that commits between publish and delete of the same key must be published again."""
    published = []

    def publish_and_race(row):
        published.append(row.args)
        if len(published) == 1:
            outbox.enqueue_name(record.name, 11)  # another request's change, same key, arrives now

    monkeypatch.setattr(outbox, "publish", publish_and_race)
    with transaction.atomic():
        outbox.enqueue_name(record.name, 11)
    assert published == [[11], [11]]
    assert not OutboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_long_arguments_never_share_a_key():
    # Two calls whose arguments differ only after the first 255 characters of their key: both run.
    first, second = list(range(100)) + [1], list(range(100)) + [2]
    assert outbox.task_key("tests.record", [first]) != outbox.task_key("tests.record", [second])
    assert all(len(outbox.task_key("tests.record", [v])) <= 255 for v in (first, second))
    with transaction.atomic():
        outbox.enqueue_name(record.name, first)
        outbox.enqueue_name(record.name, second)
        outbox.enqueue_name(record.name, second)
    assert [first, second] == CALLS
