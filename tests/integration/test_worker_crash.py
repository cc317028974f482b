"""A worker killed in the middle of `targets.recompute_plan` loses no work: another run of it finishes.

Real Redis and real worker processes, killed with SIGKILL while the recompute's transaction is open
(tests/integration/slow_recompute.py holds it open). Runs where the database is PostgreSQL and Redis
answers on 127.0.0.1:6379, as in CI's PostgreSQL run.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from celery import current_app
from django.db import connection
from django.utils import timezone

from crm.models import Role
from targets.models import AttainmentSnapshot, TargetNode
from targets.services import metric_ensure_defaults, plan_approve, plan_create, plan_submit, target_split
from tests.factories import UserFactory, make_deal
from tests.integration import PRODUCTION_LIKE_SECRET_KEY
from tests.integration.test_celery_worker import redis_up, use_broker

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/13"  # a database of its own: these workers restore unacked messages early

pytestmark = pytest.mark.integration


class Workers:
    """Starts worker processes on one fresh queue; every one still running is killed at the end."""

    def __init__(self, tmp_path: Path, queue: str):
        self.tmp_path, self.queue, self.procs = tmp_path, queue, []
        self.log = tmp_path / "recompute.log"
        db = connection.settings_dict
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("TESTING",)},
            "SECRET_KEY": PRODUCTION_LIKE_SECRET_KEY,  # a worker with DEBUG off refuses the development key
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": BROKER,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "SLOW_RECOMPUTE_LOG": str(self.log),
        }

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        output = open(self.tmp_path / f"worker-{len(self.procs)}.out", "w")  # noqa: SIM115 (closed with the worker)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "salesmgmt", "worker", "-I", "tests.integration.slow_recompute"]
            + ["-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
            + list(args),
            cwd=ROOT,
            env={**self.env, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool children can be killed with it
        )
        proc.output = output
        self.procs.append(proc)
        return proc

    def lines(self, prefix: str) -> list[list[str]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split()[1:] for line in text.splitlines() if line.startswith(prefix + " ")]

    def wait_for(self, condition, what: str, seconds: float = 30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{what} within {seconds} s\n{self.outputs()}")

    def outputs(self) -> str:
        return "\n".join(
            f"--- worker {i}:\n" + Path(proc.output.name).read_text()[-3000:] for i, proc in enumerate(self.procs)
        )

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # a warm shutdown puts back what it had reserved
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            proc.output.close()


@pytest.fixture
def workers(monkeypatch, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a shared database: runs in the PostgreSQL suite")
    if not redis_up():
        pytest.fail("Redis is not answering on 127.0.0.1:6379")
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    for key, value in {"broker_url": BROKER, "task_always_eager": False, "task_default_queue": queue}.items():
        monkeypatch.setitem(current_app.conf, key, value)
    use_broker(BROKER)
    started = Workers(tmp_path, queue)
    yield started
    started.close()
    client = redis.Redis.from_url(BROKER)
    for key in client.scan_iter(f"*{queue}*"):  # the queue (and its priority lists) and its bindings
        client.delete(key)
    for tag, message in client.hgetall("unacked").items():  # taken by a killed worker, never put back
        if json.loads(message)[2] == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    current_app._pool = None
    current_app.amqp._producer_pool = None


def approved_plan_with_a_won_deal(org):
    """A plan approved while a won deal of 4321 counts for the rep: the approval publishes
    `targets.recompute_plan` to the queue, and nothing has computed the figures yet."""
    metrics = {m.code: m for m in metric_ensure_defaults()}
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key=f"FY{timezone.localdate().year}",
        total=Decimal("300000"),
        region=org.east,
        actor=org.manager,
    )
    target_split(node=plan.nodes.get(), dimension="rep", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    won = next(s for s in org.stages if s.is_won)
    current_app.conf.task_always_eager = True  # the deal's own recompute in-process: no approved plan yet
    make_deal(owner=org.rep, amount="4321", stage=won, close=None)
    current_app.conf.task_always_eager = False
    plan_approve(plan=plan, actor=UserFactory(username="boss", role=Role.DIRECTOR, region=org.hq))
    assert not AttainmentSnapshot.objects.filter(node__plan=plan).exists()
    return plan, TargetNode.objects.get(plan=plan, rep=org.rep)


def figures(plan) -> list:
    return list(
        AttainmentSnapshot.objects.filter(node__plan=plan)
        .order_by("node_id", "as_of")
        .values_list("node_id", "as_of", "actual", "target", "weighted_pipeline", "open_pipeline", "computed_at")
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_recompute_is_made_good_by_the_next_worker(org, workers):
    plan, leaf = approved_plan_with_a_won_deal(org)

    first = workers.start("--pool=solo", CELERY_VISIBILITY_TIMEOUT="5", CELERY_UNACKED_RESTORE_INTERVAL="1")
    workers.wait_for(lambda: workers.lines("computed"), "the first worker did not start the recompute")
    first.send_signal(signal.SIGKILL)  # in the middle of the recompute's transaction
    first.wait(timeout=10)
    assert not AttainmentSnapshot.objects.filter(node__plan=plan).exists()  # its writes were rolled back

    started = time.monotonic()
    workers.start("--pool=solo", CELERY_VISIBILITY_TIMEOUT="5", CELERY_UNACKED_RESTORE_INTERVAL="1")
    workers.wait_for(lambda: workers.lines("committed"), "the killed recompute was not run again", seconds=40)
    # Redelivered once the message is 5 s old, not after Redis's default hour.
    assert time.monotonic() - started < 40
    assert AttainmentSnapshot.objects.get(node=leaf).actual == Decimal("4321")
    assert AttainmentSnapshot.objects.get(node=plan.nodes.get(parent=None)).actual == Decimal("4321")

    # Delivered twice (the second time the whole of it): a third run changes nothing.
    before = figures(plan)
    current_app.send_task("targets.recompute_plan", args=[plan.pk])
    (_, written), *_ = workers.wait_for(
        lambda: workers.lines("committed")[1:], "the repeated recompute did not finish", seconds=20
    )
    assert written == "0"
    assert figures(plan) == before


@pytest.mark.django_db(transaction=True)
def test_a_pool_child_killed_mid_recompute_puts_the_task_back_at_once(org, workers):
    plan, leaf = approved_plan_with_a_won_deal(org)

    parent = workers.start("--pool=prefork", "--concurrency=1")  # Redis's visibility timeout as configured
    ((child, _),) = workers.wait_for(lambda: workers.lines("computed"), "the worker did not start the recompute")
    assert int(child) != parent.pid
    os.kill(int(child), signal.SIGKILL)  # the pool child dies (OOM killer, say); its parent lives on

    # task_reject_on_worker_lost: the message goes back to the queue, a new child runs it.
    workers.wait_for(lambda: workers.lines("committed"), "the task of the killed child was not run again", seconds=20)
    assert len(workers.lines("computed")) == 2
    assert AttainmentSnapshot.objects.get(node=leaf).actual == Decimal("4321")
    assert parent.poll() is None
