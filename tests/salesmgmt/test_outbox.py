"""The outbox: work is published after commit, survives a broker outage, and is sent once it's back."""

import threading
from datetime import timedelta

import pytest
from celery import current_app, shared_task
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from kombu.exceptions import OperationalError

from salesmgmt import outbox
from salesmgmt.models import OutboxTask
from salesmgmt.tasks import drain_outbox

CALLS: list = []


@shared_task(name="tests.record")
def record(value):
    CALLS.append(value)


@pytest.fixture(autouse=True)
def _reset(settings):
    CALLS.clear()
    settings.OUTBOX_DRAIN_DELAY = 0  # a drain runs what is pending at once; the gathering's own tests set a delay


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
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
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


# --- calls drained together ------------------------------------------------------------------------

BATCHES: list = []


@outbox.drained_together("tests.batched")
def run_batched(calls):
    if any(args == ["boom"] for args in calls):
        raise ValueError("bug in a batch")
    BATCHES.append(sorted(args[0] for args in calls))


SLOW = {"inside": threading.Event(), "release": threading.Event()}


@outbox.drained_together("tests.slow")
def run_slow(calls):
    """As `run_batched`, but a batch with 12 in it holds its rows until released."""
    if [12] in calls:
        SLOW["inside"].set()
        SLOW["release"].wait(30)
    BATCHES.append(sorted(args[0] for args in calls))


@pytest.fixture
def batches():
    BATCHES.clear()
    return BATCHES


@pytest.fixture
def broker_up(monkeypatch):
    """A broker that records what is sent; no worker runs it."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
    monkeypatch.setattr(outbox, "cache_shared", lambda: True)  # the drains run in this process: its cache is theirs
    return sent


@pytest.mark.django_db(transaction=True)
def test_calls_drained_together_wait_for_one_drain_that_runs_them_all(batches, broker_up):
    for value in (1, 2, 3):
        with transaction.atomic():  # three requests, each committing a change
            outbox.enqueue_name("tests.batched", value)
    # The first commit queued a drain, not the call; the next two found it queued (not started) and sent nothing:
    # the calls stay until that drain runs them all.
    assert broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])]
    assert OutboxTask.objects.count() == 3
    assert drain_outbox("tests.batched") == 3
    assert batches == [[1, 2, 3]] and not OutboxTask.objects.exists()
    # The drain delivered twice: nothing left, nothing runs.
    assert drain_outbox("tests.batched") == 0
    assert batches == [[1, 2, 3]]
    # The drain has started: the next commit queues the next drain, which runs it.
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 4)
    assert broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])] * 2
    assert drain_outbox("tests.batched") == 1 and batches == [[1, 2, 3], [4]]


@pytest.mark.django_db(transaction=True)
def test_a_commit_during_a_drain_queues_the_next_one(batches, broker_up):
    """A commit made while a drain runs (its key cleared as it started) queues a new drain: the running one may
    have selected its rows before this commit, and no change waits for a drain that never comes."""
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 1)

    cache.clear()  # the queued drain's key gone, as `drain_queued` clears it when the worker starts the drain
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 2)  # committed after the drain started
    assert broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])] * 2
    assert drain_outbox("tests.batched") == 2 and batches == [[1, 2]]


@pytest.mark.django_db(transaction=True)
def test_a_lost_queued_drain_holds_commits_up_for_its_key_life_only(batches, broker_up):
    """A queued drain whose message was lost (its key still there) keeps commits from sending until the key
    expires (`QUEUED_SECONDS`); the first commit after that queues a drain that runs them all."""
    import time

    import time_machine

    with time_machine.travel(time.time(), tick=False) as clock:
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", 1)
        broker_up.clear()  # the message is lost
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", 2)
        assert broker_up == []
        clock.shift(outbox.QUEUED_SECONDS + 1)
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", 3)
        assert broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])]
    assert drain_outbox("tests.batched") == 3 and batches == [[1, 2, 3]]


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_drain_runs_after_commit(batches):
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 4)
        outbox.enqueue_name("tests.batched", 5)
        outbox.enqueue_name("tests.batched", 4)  # the same call twice: once
        assert batches == []
    assert batches == [[4, 5]] and not OutboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_drain_runs_its_calls_in_batches_of_its_size(batches, broker_up):
    for value in range(5):
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", value)
    assert outbox.drain("tests.batched", size=2) == 5
    assert batches == [[0, 1], [2, 3], [4]]


@pytest.mark.django_db(transaction=True)
def test_a_failing_drain_leaves_its_calls_for_the_next(batches, broker_up):
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 6)
        outbox.enqueue_name("tests.batched", "boom")
    with pytest.raises(ValueError):
        outbox.drain("tests.batched")
    assert OutboxTask.objects.count() == 2 and batches == []  # rolled back: nothing lost
    OutboxTask.objects.filter(args=["boom"]).delete()  # the bug fixed
    assert outbox.drain("tests.batched") == 1
    assert batches == [[6]]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_flush_sends_one_drain_for_all_pending_calls(batches, broker_down, monkeypatch):
    for value in (7, 8):
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", value)
    assert OutboxTask.objects.filter(attempts=1).count() == 2
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
    assert outbox.flush(older_than=timedelta(0)) == 1
    assert sent == [(outbox.DRAIN_TASK, ["tests.batched"])]
    assert OutboxTask.objects.count() == 2  # until the drain runs them
    assert outbox.drain("tests.batched") == 2 and batches == [[7, 8]]


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_split_the_calls_and_never_wait_for_each_other(batches, broker_up):
    """PostgreSQL: a drain takes its rows FOR UPDATE SKIP LOCKED, so a second drain running meanwhile (another
    worker, or the same message delivered twice) leaves the first one's calls alone instead of waiting for them
    or running them twice; the calls that came later are its own."""
    from django.db import connection as main

    if main.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    inside, release = SLOW["inside"], SLOW["release"]
    inside.clear()
    release.clear()
    with transaction.atomic():
        outbox.enqueue_name("tests.slow", 12)
        outbox.enqueue_name("tests.slow", 13)
    results = []

    def first_drain():
        from django.db import connection

        try:
            results.append(outbox.drain("tests.slow"))
        finally:
            connection.close()

    thread = threading.Thread(target=first_drain)
    thread.start()
    try:
        assert inside.wait(30)
        with transaction.atomic():
            outbox.enqueue_name("tests.slow", 14)  # a change committed while the first drain runs
        with main.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting for the first drain's rows would fail here
        assert outbox.drain("tests.slow") == 1
        assert batches == [[14]]
    finally:
        release.set()
        thread.join(30)
    assert results == [2]
    assert batches == [[14], [12, 13]]
    assert not OutboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_drain_gathers_the_calls_of_its_delay_and_runs_them_in_one_pass(batches, broker_up, settings):
    """The worker's drain waits until the oldest pending call is OUTBOX_DRAIN_DELAY old; the commits meanwhile find
    it queued and send nothing, and it runs them with the first. The first commit after it started queues the next
    drain, which waits for its own calls: no call waits for a drain that never comes."""
    import time

    import time_machine

    settings.OUTBOX_DRAIN_DELAY = 1.5
    with time_machine.travel(time.time(), tick=False) as clock:
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", 1)
        clock.shift(0.4)
        waits = []

        def meanwhile(seconds):  # what happens while the worker gathers: two more commits
            waits.append(seconds)
            for value in (2, 3):
                with transaction.atomic():
                    outbox.enqueue_name("tests.batched", value)
            clock.shift(seconds)

        assert outbox.drain_queued("tests.batched", sleep=meanwhile) == 3
        assert waits == [pytest.approx(1.1)]  # until the first call was 1.5 s old
        assert batches == [[1, 2, 3]] and broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])]
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", 4)
        assert broker_up == [(outbox.DRAIN_TASK, ["tests.batched"])] * 2  # the drain had started: a new one
        clock.shift(2)  # the worker was busy: the call is older than the delay already, no wait
        assert outbox.drain_queued("tests.batched", sleep=waits.append) == 1
        assert waits == [pytest.approx(1.1)] and batches == [[1, 2, 3], [4]]
        # Nothing pending (a drain delivered twice): no wait either.
        assert outbox.drain_queued("tests.batched", sleep=waits.append) == 0 and len(waits) == 1


def test_a_gathering_never_waits_longer_than_the_delay(settings, monkeypatch):
    """A call stamped in the future by a web process whose clock runs ahead holds the drain for the delay at most."""
    from datetime import timedelta

    from django.db.models import QuerySet
    from django.utils import timezone

    settings.OUTBOX_DRAIN_DELAY = 1.0
    monkeypatch.setattr(QuerySet, "aggregate", lambda self, **kw: {"at": timezone.now() + timedelta(minutes=5)})
    waits = []
    assert outbox.gather("tests.batched", sleep=waits.append) == 1.0
    assert waits == [1.0]


@pytest.mark.django_db(transaction=True)
def test_a_drain_not_sent_is_not_taken_as_scheduled(batches, broker_down, monkeypatch):
    """A failed publish leaves the drain unscheduled: the next commit (or flush) sends one."""
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 1)
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
    with transaction.atomic():
        outbox.enqueue_name("tests.batched", 2)
    assert sent == [(outbox.DRAIN_TASK, ["tests.batched"])]
    assert outbox.drain("tests.batched") == 2 and batches == [[1, 2]]


@pytest.mark.django_db(transaction=True)
def test_without_a_shared_cache_every_commit_sends_a_drain(batches, monkeypatch):
    """A key in a web process's own memory (no Redis cache) could never be cleared by the worker's drain: each
    commit then sends a drain, as before drains were queued one at a time."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
    monkeypatch.setattr(outbox, "cache_shared", lambda: False)  # the cache in each process's own memory
    for value in (1, 2, 3):
        with transaction.atomic():
            outbox.enqueue_name("tests.batched", value)
    assert sent == [(outbox.DRAIN_TASK, ["tests.batched"])] * 3
    assert drain_outbox("tests.batched") == 3 and batches == [[1, 2, 3]]
