"""How fresh attainment is after a deal move, and what the worker spends per move, with a real Celery worker.

Not a `bench_<topic>` (it needs Redis and starts a worker): run it by hand on a kept tier-M database
(`bench.bench_write_cost` generates one), e.g.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/salesmgmt_x REDIS_URL=redis://127.0.0.1:6379/14 \\
        python -m bench.write_freshness 1.0 40

Starts the project's worker (prefork, one child, as the load benchmark runs it) on a queue of its own with
OUTBOX_DRAIN_DELAY as given, then moves MOVES deals of ten teams one stage on, one every `INTERVAL` seconds (ten
writers' pace), each in a transaction of its own as a request commits it, its outbox dispatch publishing the
drain. A move's figures are current once its outbox row is gone: the drain deletes it in the transaction that
writes the figures. Reported: the lag from each commit to that (p50, p95, max), the drains and alert evaluations
the worker ran, and the worker's CPU (its processes in /proc) per move.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.1  # seconds between two moves


def main(delay: float, moves: int) -> None:
    redis = os.environ["REDIS_URL"]
    queue = f"bench-fresh-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        CELERY_BROKER_URL=redis, CELERY_TASK_DEFAULT_QUEUE=queue, OUTBOX_DRAIN_DELAY=str(delay), LOG_LEVEL="WARNING"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")
    import django

    django.setup()
    from django.db import transaction

    from bench import loadstats
    from bench.bench_write_cost import writers
    from pipeline.models import Opportunity, Stage
    from pipeline.services import opportunity_move_stage
    from salesmgmt.models import OutboxTask

    stage_of = {(s.pipeline_id, s.order): s for s in Stage.objects.all()}
    pairs = writers(moves)
    log = (ROOT / "bench" / "out").joinpath("write_freshness_worker.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "celery", "-A", "salesmgmt", "worker", "--pool=prefork", "--concurrency=1", "-Q", queue,
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip
    with log.open("w") as out:
        worker = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(8)  # the worker starts (imports Django, forks its child)
        before = loadstats.cpu_ticks(procs := loadstats.read_procs(), loadstats.tree(procs, worker.pid))
        committed: dict[int, float] = {}
        current: dict[int, float] = {}
        done = threading.Event()

        def watch() -> None:
            from django.db import connection

            try:
                while not done.is_set() or len(current) < len(committed):
                    waiting = set(
                        OutboxTask.objects.filter(name="targets.recompute_for_deal").values_list("args__0", flat=True)
                    )
                    now = time.perf_counter()
                    for deal_id in list(committed):
                        if deal_id not in current and deal_id not in waiting:
                            current[deal_id] = now
                    time.sleep(0.02)
            finally:
                connection.close()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        for k, (manager, deal_id) in enumerate(pairs):
            time.sleep(max(0.0, started + k * INTERVAL - time.perf_counter()))
            deal = Opportunity.objects.select_related("stage").get(pk=deal_id)
            with transaction.atomic():
                opportunity_move_stage(
                    opportunity=deal,
                    stage=stage_of[deal.pipeline_id, deal.stage.order + 1],
                    actor=manager,
                    evidence="bench-freshness",
                )
            committed[deal_id] = time.perf_counter()
        done.set()
        watcher.join(timeout=120)
        time.sleep(3)  # the alert evaluations the last drain enqueued
        after = loadstats.cpu_ticks(procs := loadstats.read_procs(), loadstats.tree(procs, worker.pid))
    finally:
        worker.terminate()
        worker.wait(30)
    lags = sorted(current[d] - committed[d] for d in current)
    text = log.read_text()
    succeeded = {
        name: sum(1 for line in text.splitlines() if f"Task {name}[" in line and "succeeded" in line)
        for name in ("salesmgmt.drain_outbox", "targets.evaluate_alerts")
    }
    cpu = (after - before) / os.sysconf("SC_CLK_TCK")
    p95 = lags[max(0, round(0.95 * len(lags)) - 1)]
    print(
        f"OUTBOX_DRAIN_DELAY={delay:g}: {len(pairs)} moves, {len(lags)} current; lag commit -> figures current: "
        f"p50 {statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s; worker ran {succeeded}; "
        f"worker CPU {cpu:.2f} s = {cpu / len(pairs) * 1000:.1f} ms a move"
    )


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
