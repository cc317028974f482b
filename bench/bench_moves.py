"""Deal moves under concurrency: CLIENTS clients, each moving open deals of reps of its own one stage on,
all at once (the Performance issue measured 21 writes/s and a p95 of 682 ms with 10 clients, every move's
recompute queueing on the plan's row lock).

The company is `bench.bigco` at SCALE (0.1: 500 reps, 60,000 deals, a 12,000-leaf plan), its plan built
once. Each client is a process with a database connection of its own (as gunicorn's workers and Celery's
are; threads of one process would queue on its GIL instead) and moves MOVES deals, each of another rep;
no two clients share a rep. A write is what a deal move costs with a worker behind it: the move's own
transaction (`opportunity_move_stage`, outbox dispatch held back) and then its recompute
(`targets.tasks.recompute_for_deal` with the arguments the move enqueued), as the worker runs it; alert
evaluation, which the recompute enqueues, is not run. Reported: writes per second over the whole run, the
p50 / p95 of a write and of its recompute alone, how many clients wait for a lock on average (sampled from
pg_stat_activity; divided by the writes per second, the time a write waits for locks, by Little's law); then
the figures must equal a full rebuild (which writes nothing when they do).

On a machine whose cores the clients saturate, writes per second measure the CPU, not the locks: the lock
waits show what the locks cost (with the plan's row lock, 7 of 10 clients waited for it).
"""

from __future__ import annotations

import random
import statistics
import threading
import time

from bench import Timing, held_dispatch

SCALE = 0.1
CLIENTS = 10
MOVES = 20  # per client
WRITE_P95 = 0.2  # seconds: the goal for writes under load


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def run() -> list[Timing]:
    from bench import bigco
    from targets.attainment.services import attainment_recompute

    company = bigco.generate(SCALE)
    plan, today = company.plan, company.today
    attainment_recompute(plan=plan, as_of=today)
    batches = _deals(company, plan, today)
    timings = _moves(company, batches)
    started = time.perf_counter()
    rewritten = attainment_recompute(plan=plan, as_of=today)
    check = Timing(
        name="deal moves: figures == a full rebuild afterwards",
        seconds=time.perf_counter() - started,
        note="the rebuild wrote nothing: every node equals the facts",
    )
    if rewritten:
        check.goal = 0.0  # flag it in the table
        check.note = f"NOT EQUAL: the rebuild rewrote {rewritten:,} nodes"
    return [*timings, check]


def _deals(company, plan, today) -> list[list[int]]:
    """CLIENTS lists of MOVES open deals (stage before the last open one, counting in the plan's year), each
    of another rep; no rep in two lists."""
    from pipeline.models import Opportunity

    movable = company.open_stage_ids[:-1]  # one stage on stays open
    first_of_owner: dict[int, int] = {}
    for deal_id, owner_id in (
        Opportunity.objects.filter(stage_id__in=movable, expected_close_date__range=(today, plan.period_end))
        .order_by("id")
        .values_list("id", "owner_id")
    ):
        first_of_owner.setdefault(owner_id, deal_id)
    wanted = CLIENTS * MOVES
    if len(first_of_owner) < wanted:
        raise RuntimeError(f"{len(first_of_owner)} reps with a movable deal; {wanted} needed (raise SCALE)")
    chosen = random.Random(11).sample(sorted(first_of_owner.values()), wanted)
    return [chosen[i::CLIENTS] for i in range(CLIENTS)]


def _client(deal_ids: list[int], following: dict[int, int], start, results) -> None:
    """One client (a process of its own, with its own connection): move each deal one stage on, then run the
    recompute the move enqueued; puts (seconds of each write, seconds of each recompute) or an error."""
    from django.db import connection

    from pipeline.models import Opportunity, Stage
    from pipeline.services import opportunity_move_stage
    from salesmgmt.models import OutboxTask
    from targets.tasks import recompute_for_deal

    writes, recomputes = [], []
    try:
        deals = Opportunity.objects.select_related("owner").in_bulk(deal_ids)
        stages = Stage.objects.in_bulk(following.values())
        with held_dispatch():
            start.wait()
            for deal in (deals[pk] for pk in deal_ids):
                began = time.perf_counter()
                stage = stages[following[deal.stage_id]]
                opportunity_move_stage(opportunity=deal, stage=stage, actor=deal.owner, evidence="bench")
                # The task exactly as the move enqueued it (held back: the worker's part is run here).
                task = OutboxTask.objects.get(name="targets.recompute_for_deal", args__0=deal.pk)
                computing = time.perf_counter()
                recompute_for_deal(*task.args)
                done = time.perf_counter()
                task.delete()
                writes.append(done - began)
                recomputes.append(done - computing)
        results.put((writes, recomputes))
    except BaseException as error:  # reported by the parent
        results.put(repr(error))
        start.abort()
    finally:
        connection.close()


class _LockWaits(threading.Thread):
    """Samples how many of the clients' sessions wait for a lock (pg_stat_activity), until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.wait(0.01):
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                    self.samples.append(cursor.fetchone()[0])
        finally:
            connection.close()


def _moves(company, batches: list[list[int]]) -> list[Timing]:
    """Run the clients at once (processes: threads of one process would queue on its GIL, not on the
    database's locks) and time them."""
    import multiprocessing

    from django.db import connections

    following = dict(zip(company.open_stage_ids, company.open_stage_ids[1:], strict=False))
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(len(batches) + 1), context.Queue()
    connections.close_all()  # a forked client opens its own
    clients = [context.Process(target=_client, args=(b, following, start, results)) for b in batches]
    for client in clients:
        client.start()
    waits = _LockWaits()
    waits.start()
    start.wait()
    began = time.perf_counter()
    outcomes = [results.get() for _ in clients]
    elapsed = time.perf_counter() - began
    waits.stop.set()
    waits.join()
    for client in clients:
        client.join()
    failed = [o for o in outcomes if isinstance(o, str)]
    if failed:
        raise RuntimeError(f"{len(failed)} clients failed, e.g. {failed[0]}")
    writes = [x for w, _r in outcomes for x in w]
    recomputes = [x for _w, r in outcomes for x in r]
    per_second = len(writes) / elapsed
    write_p95, recompute_p95 = _p95(writes), _p95(recomputes)
    waiting = statistics.mean(waits.samples) if waits.samples else 0.0
    return [
        Timing(
            name=f"deal moves: {len(batches)} clients x {MOVES} moves one stage on (p95 of a write)",
            seconds=write_p95,
            goal=WRITE_P95,
            note=(
                f"{per_second:.1f} writes/s; a write (move + its recompute): p50 "
                f"{statistics.median(writes) * 1000:.0f} ms, p95 {write_p95 * 1000:.0f} ms, "
                f"max {max(writes) * 1000:.0f} ms; {len(writes)} moves in {elapsed:.1f} s"
            ),
            extra={"writes_per_second": per_second, "writes": writes},
        ),
        Timing(
            name="deal moves: the recompute alone (p95)",
            seconds=recompute_p95,
            note=(
                f"recompute_for_deal: p50 {statistics.median(recomputes) * 1000:.0f} ms, "
                f"p95 {recompute_p95 * 1000:.0f} ms, max {max(recomputes) * 1000:.0f} ms; "
                f"clients waiting for a lock: {waiting:.2f} on average ({len(waits.samples)} samples), "
                f"so a write waits {waiting / per_second * 1000:.0f} ms for locks (waiters / writes per second)"
            ),
            extra={"recomputes": recomputes, "lock_waiters": waiting},
        ),
    ]
