"""End to end with the real services: Redis as the broker and a real Celery worker process.

A deal marked won through the API shows in attainment within seconds. Runs where the database is
PostgreSQL (a worker process cannot share SQLite's in-memory test database) and Redis answers on
127.0.0.1:6379 — as in CI's PostgreSQL run.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Role
from pipeline.models import Opportunity
from targets.models import AttainmentSnapshot, TargetNode
from targets.services import metric_ensure_defaults, plan_approve, plan_create, plan_submit, target_split
from tests.factories import UserFactory, make_deal
from tests.integration import PRODUCTION_LIKE_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
REDIS = ("127.0.0.1", 6379)

pytestmark = pytest.mark.integration


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping the connections cached for the old one."""
    current_app.conf.broker_url = url
    current_app._pool = None
    current_app.amqp._producer_pool = None


def redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def broker(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a shared database: runs in the PostgreSQL suite")
    if not redis_up():
        pytest.fail("Redis is not answering on 127.0.0.1:6379")
    url, queue = "redis://127.0.0.1:6379/14", f"it-{uuid.uuid4().hex[:8]}"
    for key, value in {"broker_url": url, "task_always_eager": False, "task_default_queue": queue}.items():
        monkeypatch.setitem(current_app.conf, key, value)
    use_broker(url)
    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TESTING",)},
        "SECRET_KEY": PRODUCTION_LIKE_SECRET_KEY,  # a worker with DEBUG off refuses the development key
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "salesmgmt",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
    current_app._pool = None
    current_app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_deal_won_through_the_api_shows_in_attainment_within_seconds(org, api, broker):
    metrics = {m.code: m for m in metric_ensure_defaults()}
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2026", total=Decimal("300000"), region=org.east, actor=org.manager
    )
    root = plan.nodes.get()
    target_split(node=root, dimension="rep", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    deal = make_deal(owner=org.rep, amount="4321", close=None)
    current_app.conf.task_always_eager = True  # approval's recompute in-process: the starting point
    plan_approve(plan=plan, actor=UserFactory(username="boss", role=Role.DIRECTOR, region=org.hq))
    current_app.conf.task_always_eager = False
    leaf = TargetNode.objects.get(plan=plan, rep=org.rep)
    before = AttainmentSnapshot.objects.filter(node=leaf).values_list("actual", flat=True).first() or Decimal(0)

    won = next(s for s in org.stages if s.is_won)
    with CaptureQueriesContext(connection) as request_queries:
        response = api(org.rep).post(
            f"/api/opportunities/{deal.pk}/move-stage/",
            {"stage": won.pk, "evidence": "Contract signed", "version": Opportunity.objects.get(pk=deal.pk).version},
            format="json",
        )
    assert response.status_code == 200, response.content
    # The request only publishes; the worker computes: nothing of attainment is written by the request.
    written = [
        q["sql"] for q in request_queries if "attainment" in q["sql"].lower() and not q["sql"].startswith("SELECT")
    ]
    assert written == []

    deadline = time.monotonic() + 30
    actual = before
    while time.monotonic() < deadline:
        actual = AttainmentSnapshot.objects.filter(node=leaf).values_list("actual", flat=True).first() or Decimal(0)
        if actual == before + Decimal("4321"):
            break
        assert broker.poll() is None, broker.stdout.read()
        time.sleep(0.3)
    assert actual == before + Decimal("4321"), "the worker did not recompute the rep's attainment in 30 s"
    for node in (root,):  # the roll-up follows
        assert AttainmentSnapshot.objects.get(node=node).actual >= Decimal("4321")


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_request_succeeds_and_the_work_is_caught_up(org, api, broker):
    from django.core.management import call_command

    from salesmgmt.models import OutboxTask

    metrics = {m.code: m for m in metric_ensure_defaults()}
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2026", total=Decimal("300000"), region=org.east, actor=org.manager
    )
    target_split(node=plan.nodes.get(), dimension="rep", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    deal = make_deal(owner=org.rep, amount="777", close=None)
    current_app.conf.task_always_eager = True
    plan_approve(plan=plan, actor=UserFactory(username="boss", role=Role.DIRECTOR, region=org.hq))
    current_app.conf.task_always_eager = False
    leaf = TargetNode.objects.get(plan=plan, rep=org.rep)
    before = AttainmentSnapshot.objects.get(node=leaf).actual

    # The deal's creation queued a drain: the worker runs it before the outage (a drain still queued when the
    # broker goes down takes the move's change itself, and the move then publishes nothing).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and OutboxTask.objects.filter(name="targets.recompute_for_deal").exists():
        time.sleep(0.1)
    assert not OutboxTask.objects.filter(name="targets.recompute_for_deal").exists()

    real_broker = current_app.conf.broker_url
    use_broker("redis://127.0.0.1:6399/14")  # nothing listens there: Redis is down
    won = next(s for s in org.stages if s.is_won)
    response = api(org.rep).post(
        f"/api/opportunities/{deal.pk}/move-stage/",
        {"stage": won.pk, "evidence": "Signed", "version": Opportunity.objects.get(pk=deal.pk).version},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert Opportunity.objects.get(pk=deal.pk).stage == won  # the user's change is saved
    pending = OutboxTask.objects.get(name="targets.recompute_for_deal")
    assert pending.attempts == 1 and pending.last_error

    use_broker(real_broker)  # Redis is back
    call_command("flush_outbox")
    # The deal recomputes are drained together: the worker's drain runs the pending row and deletes it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and OutboxTask.objects.filter(name="targets.recompute_for_deal").exists():
        time.sleep(0.3)
    assert not OutboxTask.objects.filter(name="targets.recompute_for_deal").exists()
    while time.monotonic() < deadline and AttainmentSnapshot.objects.get(node=leaf).actual != before + 777:
        time.sleep(0.3)
    assert AttainmentSnapshot.objects.get(node=leaf).actual == before + 777
