"""Redis dies under a running app and comes back: no request fails, no work is lost, the figures catch up.

A Redis of the test's own (`redis-server --save ''` on a free port: the machine's shared one is never touched)
is the cache, the sessions' cache and Celery's broker of a gunicorn server and a Celery worker on the
PostgreSQL test database, as in production. People browse, log in and change deals (each change enqueues an
attainment recompute) before, during and after the outage. Runs in the PostgreSQL suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from crm.models import Role
from pipeline.models import Opportunity
from salesmgmt.models import OutboxTask
from targets.attainment.services import attainment_recompute
from targets.models import LatestAttainment, TargetNode
from targets.services import metric_ensure_defaults, plan_approve, plan_create, plan_submit, target_split
from tests.factories import UserFactory, make_deal
from tests.integration.serving import ROOT, Gunicorn, RedisServer, base_env, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "outage-pw-9431"


@pytest.fixture
def stack(tmp_path):
    """Redis, gunicorn and a Celery worker (solo pool) sharing that Redis; all stopped at the end."""
    if connection.vendor != "postgresql":
        pytest.skip("server and worker processes need a shared database: runs in the PostgreSQL suite")
    redis_server = RedisServer(tmp_path)
    env = base_env(
        REDIS_URL=f"{redis_server.url}/1",
        CELERY_BROKER_URL=f"{redis_server.url}/0",
        CELERY_TASK_DEFAULT_QUEUE=f"outage-{uuid.uuid4().hex[:8]}",
    )
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "salesmgmt", "worker", "--pool=solo", "-Q"]
        + [env["CELERY_TASK_DEFAULT_QUEUE"], "--without-gossip", "--without-mingle", "--without-heartbeat"]
        + ["-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = None
    try:
        server = Gunicorn(tmp_path, env, workers=2, threads=4)
        yield redis_server, server, worker, env, tmp_path / "worker.log"
    finally:
        if server is not None:
            server.stop()
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        worker_log.close()
        redis_server.stop()


class Browser:
    """One person's requests.Session; every answer is kept as (phase, method, path, status)."""

    answers: list[tuple[str, str, str, int]] = []

    def __init__(self, base: str, *, session_key: str | None = None, token: str | None = None):
        self.base, self.http = base, requests.Session()
        if session_key:
            self.http.cookies.set("sessionid", session_key, domain="127.0.0.1")
        if token:
            self.http.headers["Authorization"] = f"Token {token}"
        self.phase = "before"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.http.request(method, self.base + path, timeout=30, allow_redirects=False, **kwargs)
        self.answers.append((self.phase, method, path, response.status_code))
        return response

    def log_in(self, username: str) -> requests.Response:
        form = self.call("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        return self.call(
            "POST",
            "/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": self.base + "/accounts/login/"},
        )


def session_key_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def won_plus(browser: Browser, deal: Opportunity, increment: Decimal, won_stage) -> Decimal:
    """Add `increment` to a deal through the API and mark it won (two writes, each enqueuing a recompute)."""
    url = f"/api/opportunities/{deal.pk}/"
    data = browser.call("GET", url).json()
    amount = Decimal(data["amount"]) + increment
    patched = browser.call("PATCH", url, json={"amount": str(amount), "version": data["version"]})
    assert patched.status_code == 200, patched.text[:500]
    if data["stage"] != won_stage.pk:
        body = {"stage": won_stage.pk, "evidence": "Signed", "version": patched.json()["version"]}
        moved = browser.call("POST", url + "move-stage/", json=body)
        assert moved.status_code == 200, moved.text[:500]
    return amount


PAGES = ["/", "/pipeline/mine/", "/targets/mine/", "/api/opportunities/", "/api/target-nodes/", "/api/alerts/"]


def browse(browser: Browser) -> None:
    """Pages and API lists, as the person logged in (a 302 would be to the login page: a lost session)."""
    for page in PAGES:
        response = browser.call("GET", page)
        assert response.status_code == 200, (browser.phase, page, response.status_code, response.text[:300])


def figures(plan):
    rows = LatestAttainment.objects.filter(node__plan=plan)
    return sorted(rows.values_list("node_id", "actual", "target", "weighted_pipeline", "open_pipeline"))


@pytest.mark.django_db(transaction=True)
def test_redis_killed_and_restarted_costs_no_request_and_no_work(org, stack):
    redis_server, server, worker, env, worker_log = stack
    Browser.answers = []
    metrics = {m.code: m for m in metric_ensure_defaults()}
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key=f"FY{timezone.localdate().year}",
        total=Decimal("900000"),
        region=org.east,
        actor=org.manager,
    )
    target_split(node=plan.nodes.get(), dimension="rep", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.manager)
    plan_approve(plan=plan, actor=UserFactory(username="boss", role=Role.DIRECTOR, region=org.hq))
    reps = [org.rep, org.rep_same_team, org.rep_js]
    deals = {rep.pk: [make_deal(owner=rep, amount="1000.00", close=None) for _ in range(3)] for rep in reps}
    won = next(s for s in org.stages if s.is_won)
    # The rep logs in through the form during the outage: a real password (the suite's hasher is MD5).
    hasher = PBKDF2PasswordHasher()
    org.rep.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    org.rep.save(update_fields=["password"])

    manager = Browser(server.url, session_key=session_key_of(org.manager))
    api = {rep.pk: Browser(server.url, token=Token.objects.create(user=rep).key) for rep in reps}
    expected = {rep.pk: Decimal(0) for rep in reps}

    # Before: everything answers, the worker computes.
    browse(manager)
    expected[org.rep.pk] += won_plus(api[org.rep.pk], deals[org.rep.pk][0], Decimal("10.01"), won)

    # Redis dies (SIGKILL: no shutdown, everything in it lost: cached sessions, queued messages).
    redis_server.kill()
    for browser in [manager, *api.values()]:
        browser.phase = "outage"
    browse(manager)
    rep_page = Browser(server.url)
    rep_page.phase = "outage"
    logged_in = rep_page.log_in(org.rep.username)
    assert logged_in.status_code == 302, logged_in.text[:2000]  # to the home page: the session is in the DB
    browse(rep_page)
    for rep in reps:
        expected[rep.pk] += won_plus(api[rep.pk], deals[rep.pk][1], Decimal("200.02"), won)
    health = manager.call("GET", "/healthz")
    assert health.status_code == 503 and health.json()["cache"].startswith("error")  # the one 5xx, by design
    pending = OutboxTask.objects.count()
    assert pending > 0  # the work the changes need is kept
    assert Opportunity.objects.filter(pk=deals[org.rep_js.pk][1].pk, stage=won).exists()  # the changes are saved

    # Redis is back (empty): the requests go on, beat's flush (here the command) republishes the kept work.
    redis_server.start()
    back = time.monotonic()
    for browser in [manager, rep_page, *api.values()]:
        browser.phase = "after"
    browse(manager)
    browse(rep_page)
    for rep in reps:
        expected[rep.pk] += won_plus(api[rep.pk], deals[rep.pk][2], Decimal("3000.03"), won)
    flushed = subprocess.run(
        [sys.executable, "manage.py", "flush_outbox"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert flushed.returncode == 0, flushed.stderr

    leaves = {rep.pk: TargetNode.objects.get(plan=plan, rep=rep) for rep in reps}

    def caught_up() -> bool:
        assert worker.poll() is None, f"the worker exited ({worker.returncode}):\n{worker_log.read_text()[-3000:]}"
        actual = dict(LatestAttainment.objects.filter(node__in=leaves.values()).values_list("node__rep", "actual"))
        return not OutboxTask.objects.exists() and actual == expected

    wait_until(caught_up, f"the work was not caught up: {list(OutboxTask.objects.values('name', 'attempts'))}", 120)
    catch_up = time.monotonic() - back
    before = figures(plan)
    assert attainment_recompute(plan=plan) == 0  # the incremental figures equal a full rebuild
    assert figures(plan) == before

    failures = [a for a in Browser.answers if a[3] >= 500 and a[2] != "/healthz"]
    assert not failures, f"{failures}\n{server.text()[-5000:]}"
    logged = [s for s in server.statuses() if s[2] >= 500 and s[1] != "/healthz"]
    assert not logged, server.text()[-5000:]
    by_phase: dict[str, int] = {}
    for phase, *_rest in Browser.answers:
        by_phase[phase] = by_phase.get(phase, 0) + 1
    print(
        f"\nrequests by phase {by_phase}, outbox rows kept during the outage: {pending}; "
        f"caught up {catch_up:.1f} s after Redis came back"
    )
