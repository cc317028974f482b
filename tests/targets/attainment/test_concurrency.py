"""Incremental recomputes under concurrency (PostgreSQL): deal moves of different reps compute side by side,
moves sharing ancestors wait for each other and lose nothing, a rebuild and an incremental recompute of one
plan never overlap, and whatever the interleaving the figures equal a full rebuild.

Each recompute runs in a thread of its own, with its own database connection (hence `transaction=True`:
what one thread writes, the others see once it commits). A thread is held at a chosen point by a
`threading.Event` it waits on; what the others do meanwhile is asked of PostgreSQL (`pg_blocking_pids`)
or seen from their own Events, never from the clock.
"""

import threading
import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from pipeline.services import opportunity_update
from salesmgmt import outbox
from targets.attainment import services
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot, LatestAttainment
from targets.tasks import recompute_for_deal
from tests.factories import make_deal
from tests.targets.attainment.test_recompute import build_plan, node, won_stage

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs several connections to one database with row locks: SQLite's test database is one connection",
    ),
    pytest.mark.django_db(transaction=True),
]

WAIT = 30  # seconds: only ever reached when something is wrong (a thread stuck behind a lock it should not wait for)
FIGURES = ("actual", "weighted_pipeline", "open_pipeline")


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


@pytest.fixture
def held(monkeypatch):
    """Changes record their background work but nothing runs it: each test runs the recomputes itself."""
    monkeypatch.setattr(outbox, "dispatch", lambda *args, **kwargs: 0)


@pytest.fixture
def plan(org, metrics, frozen, held):
    """An approved region / rep / month plan, rebuilt once before any deal exists."""
    plan = build_plan(org, metrics["won_revenue"])
    attainment_recompute(plan=plan)
    return plan


def figures(plan):
    return {
        row.node_id: tuple(getattr(row, f) for f in FIGURES) for row in LatestAttainment.objects.filter(node__plan=plan)
    }


def assert_equal_to_a_rebuild(plan):
    """The figures the recomputes left are those a full rebuild computes from the facts (it writes nothing)."""
    before = figures(plan)
    assert attainment_recompute(plan=plan) == 0
    assert figures(plan) == before


class Worker(threading.Thread):
    """Runs `work()` on a connection of its own; `pid` is that connection's backend, `ready` is set once known.
    An exception is kept in `error` (and `done` is set either way)."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.pid = None
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error = None
        self.result = None

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.ready.set()
            self.result = self.work()
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.ready.set()
            self.done.set()
            connection.close()

    def finish(self):
        self.join(WAIT)
        assert not self.is_alive(), "a recompute did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def blocked(waiter: Worker, holder: Worker) -> bool:
    """Whether `waiter` comes to wait for a lock `holder` holds (asked of PostgreSQL until it does, or WAIT)."""
    assert waiter.ready.wait(WAIT) and holder.ready.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not waiter.done.is_set():
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder.pid, waiter.pid])
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


@contextmanager
def pause_in(monkeypatch, name: str, *, after: bool = False):
    """Hold the thread that calls `services.<name>` there (before the call, or after it returned) until the
    test releases it: yields (reached, release) Events. Only the first call made outside the test's thread pauses
    (the tests start the second thread once the first is held)."""
    real = getattr(services, name)
    reached, release = threading.Event(), threading.Event()
    paused = []

    def wrapper(*args, **kwargs):
        first = not paused and threading.current_thread() is not threading.main_thread()
        if first:
            paused.append(threading.current_thread())
            if not after:
                reached.set()
                assert release.wait(WAIT)
        result = real(*args, **kwargs)
        if first and after:
            reached.set()
            assert release.wait(WAIT)
        return result

    monkeypatch.setattr(services, name, wrapper)
    try:
        yield reached, release
    finally:
        release.set()  # never leave a thread (and its locks) behind, whatever failed


@contextmanager
def pause_before_writing():
    """Hold a thread running `holding(work)` just before its first snapshot write (the figures it will write are
    computed, the rows it holds locked): yields (reached, release) Events and `holding`."""
    reached, release = threading.Event(), threading.Event()
    table = AttainmentSnapshot._meta.db_table

    def wrapper(execute, sql, params, many, context):
        if not reached.is_set() and sql.startswith(f'INSERT INTO "{table}"'):
            reached.set()
            assert release.wait(WAIT)
        return execute(sql, params, many, context)

    def work(inner):
        def run():
            with connection.execute_wrapper(wrapper):
                return inner()

        return run

    try:
        yield reached, release, work
    finally:
        release.set()


def won(org, owner, amount):
    return make_deal(owner=owner, amount=amount, stage=won_stage(org), close=date(2027, 3, 10))


def test_moves_of_different_reps_deals_compute_side_by_side(org, plan, monkeypatch):
    first, second = won(org, org.rep, "300"), won(org, org.rep_js, "40")  # both in East
    with pause_in(monkeypatch, "leaf_figures") as (computing, release):
        one = Worker(lambda: recompute_for_deal(first.pk))
        one.start()
        assert computing.wait(WAIT)  # the first holds its locks and is computing its leaves
        two = Worker(lambda: recompute_for_deal(second.pk))
        two.start()
        # The second completes while the first is held: it waited for none of its locks.
        assert two.done.wait(WAIT) and not one.done.is_set()
        assert two.finish() > 0
        release.set()
        assert one.finish() > 0
    root, east = plan.nodes.get(depth=0).pk, node(plan, region=org.east).pk
    after = figures(plan)
    assert after[root][0] == after[east][0] == Decimal("340")
    assert_equal_to_a_rebuild(plan)


def test_moves_sharing_ancestors_wait_for_each_other_and_lose_nothing(org, plan):
    first, second = won(org, org.rep, "300"), won(org, org.rep_same_team, "40")  # both in Shanghai
    with pause_before_writing() as (writing, release, holding):
        one = Worker(holding(lambda: recompute_for_deal(first.pk)))
        one.start()
        assert writing.wait(WAIT)  # the first has read the ancestors' figures and is about to write them
        two = Worker(lambda: recompute_for_deal(second.pk))
        two.start()
        # The second waits for the first: had it read the same ancestors' figures now, one of the two
        # changes would be lost when both wrote.
        assert blocked(two, one)
        release.set()
        assert one.finish() > 0 and two.finish() > 0
    after = figures(plan)
    for ancestor in (plan.nodes.get(depth=0), node(plan, region=org.east)):
        assert after[ancestor.pk][0] == Decimal("340")
    assert after[node(plan, rep=org.rep).pk][0] == Decimal("300")
    assert_equal_to_a_rebuild(plan)


@pytest.mark.parametrize("first", ["rebuild", "incremental"])
def test_a_rebuild_and_an_incremental_recompute_of_one_plan_never_overlap(org, plan, monkeypatch, first):
    deal = won(org, org.rep, "300")

    def rebuild():
        return attainment_recompute(plan=plan)

    def incremental():
        return recompute_for_deal(deal.pk)

    # Each is held where it holds its plan lock: the rebuild once it has written, the incremental while it
    # computes its leaves.
    name, after = ("plan_snapshots_upsert", True) if first == "rebuild" else ("leaf_figures", False)
    with pause_in(monkeypatch, name, after=after) as (holding, release):
        one = Worker(rebuild if first == "rebuild" else incremental)
        one.start()
        assert holding.wait(WAIT)
        two = Worker(incremental if first == "rebuild" else rebuild)
        two.start()
        assert blocked(two, one)
        release.set()
        one.finish()
        two.finish()
    assert figures(plan)[plan.nodes.get(depth=0).pk][0] == Decimal("300")
    assert_equal_to_a_rebuild(plan)


def test_crossing_moves_of_many_threads_never_deadlock_and_equal_a_rebuild(org, plan):
    """Deals handed from rep to rep in a ring, each recompute touching the leaves of two reps (and the
    ancestors of both): many threads at once, every lock taken in one order, so no deadlock."""
    reps = [org.rep, org.rep_same_team, org.rep_js, org.rep_other]
    deals = [won(org, rep, str(100 * (i + 1))) for i, rep in enumerate(reps)]
    start = threading.Barrier(len(deals))

    def hand_on(i):
        def run():
            deal = deals[i]
            start.wait(WAIT)
            for step in range(1, 4):
                owner, team = deal.owner_id, deal.region_id
                deal = opportunity_update(
                    opportunity=deal, data={"owner": reps[(i + step) % len(reps)]}, actor=org.admin
                )
                recompute_for_deal(deal.pk, previous_owner_id=owner, previous_region_id=team)

        return run

    workers = [Worker(hand_on(i)) for i in range(len(deals))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.finish()  # a deadlock would raise here (PostgreSQL aborts one of the two)
    assert figures(plan)[plan.nodes.get(depth=0).pk][0] == Decimal("1000")
    assert_equal_to_a_rebuild(plan)
