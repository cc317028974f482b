"""Twenty people edit one target and one deal at the same moment, through the real HTTP API of a real server.

gunicorn (production's settings, with 2 processes × 10 threads: twenty requests at once) serves the PostgreSQL
test database; twenty client threads each add a known amount to a draft plan's total (its root target) and to a
deal, with the `version` they read, and read again and retry on 409. Meanwhile another client moves the deal
through its stages to won. Background work runs in the server's request threads (no broker: eager), so the deal's
attainment recompute and alert evaluation run concurrently too. Runs in the PostgreSQL suite (`make test-postgres`).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token

from crm.models import Role
from pipeline.models import Opportunity
from salesmgmt.models import OutboxTask
from targets.alerts.rules import ensure_default_rules
from targets.attainment.services import attainment_recompute
from targets.models import Alert, LatestAttainment, TargetNode, TargetPlan
from targets.services import metric_ensure_defaults, plan_approve, plan_create, plan_submit, target_split
from tests.factories import UserFactory, make_deal
from tests.integration.serving import Gunicorn, base_env

pytestmark = pytest.mark.integration

CLIENTS = 20
ATTEMPTS = 400  # per client and resource: a client that never gets through fails the test, it does not hang it


@pytest.fixture
def server(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a server process needs a shared database: runs in the PostgreSQL suite")
    served = Gunicorn(tmp_path, base_env(), workers=2, threads=CLIENTS // 2)
    yield served
    served.stop()


class Tally:
    """Every answer the clients got, by resource and status; the bodies of the refusals."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.refusals: list[tuple[str, int, object]] = []
        self.accepted: dict[str, list[Decimal]] = {"node": [], "deal": []}

    def record(self, what: str, response: requests.Response) -> None:
        with self.lock:
            self.statuses[(what, response.status_code)] += 1
            if response.status_code != 200:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text[:500]
                self.refusals.append((what, response.status_code, body))


def add_until_accepted(session, tally, what, url, increment, body_of, *, step_of=None):
    """Read, add `increment`, write with the version read; on 409 read again (after a short random pause)."""
    for _ in range(ATTEMPTS):
        current = session.get(url, timeout=60)
        assert current.status_code == 200, current.text[:500]
        data = current.json()
        response = session.patch(url, json=body_of(data, increment), timeout=60)
        tally.record(what, response)
        if response.status_code == 200:
            with tally.lock:
                tally.accepted[what].append(increment)
            return
        if response.status_code != 409:
            return  # recorded: the test fails on it
        threading.Event().wait(random.uniform(0, 0.05))
    raise AssertionError(f"{what}: {increment} not accepted in {ATTEMPTS} attempts")


def move_until_accepted(session, tally, url, stage_id):
    for _ in range(ATTEMPTS):
        version = session.get(url, timeout=60).json()["version"]
        response = session.post(
            url + "move-stage/", json={"stage": stage_id, "evidence": "Signed", "version": version}, timeout=60
        )
        tally.record("stage", response)
        if response.status_code != 409:
            return
        threading.Event().wait(random.uniform(0, 0.05))
    raise AssertionError(f"the move to stage {stage_id} was not accepted in {ATTEMPTS} attempts")


def run_clients(client, count: int = CLIENTS, *, timeout: float = 240) -> tuple[list[BaseException], bool]:
    """`client(i)` for i in range(count), each in its own thread, all at once: the exceptions they raised, and
    whether one is still running after `timeout` seconds."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            client(i)
        except BaseException as exc:  # reported by the caller, with the server's log
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors, any(t.is_alive() for t in threads)


def session_for(user) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
    return session


def plan_of_reps(org, metric, total: str, year: int) -> TargetPlan:
    plan = plan_create(metric=metric, period_key=f"FY{year}", total=Decimal(total), region=org.east, actor=org.manager)
    target_split(node=plan.nodes.get(), dimension="rep", method="equal", actor=org.manager)
    return plan


def assert_sums_hold(plan: TargetPlan) -> None:
    """Every target with parts equals the sum of its parts, to the cent; the root is the plan total."""
    nodes = {n.pk: n for n in TargetNode.objects.filter(plan=plan)}
    parts: dict[int, Decimal] = {}
    for node in nodes.values():
        if node.parent_id:
            parts[node.parent_id] = parts.get(node.parent_id, Decimal(0)) + node.amount
    assert parts, "the plan has no parts"
    for parent_id, total in parts.items():
        assert nodes[parent_id].amount == total, (nodes[parent_id], total)
    root = next(n for n in nodes.values() if n.parent_id is None)
    assert TargetPlan.objects.get(pk=plan.pk).total == root.amount


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_editors_lose_no_update(org, server):
    metrics = {m.code: m for m in metric_ensure_defaults()}
    ensure_default_rules()
    # A draft plan whose total (the root target) everyone edits; its reps' parts follow in proportion.
    year = timezone.localdate().year
    draft = plan_of_reps(org, metrics["won_revenue"], "300000.00", year + 1)
    root = draft.nodes.get(parent=None)
    # An approved plan the deal counts for once won: its attainment is recomputed at every accepted change.
    approved = plan_of_reps(org, metrics["won_revenue"], "500000.00", year)
    plan_submit(plan=approved, actor=org.manager)
    plan_approve(plan=approved, actor=UserFactory(username="boss", role=Role.DIRECTOR, region=org.hq))
    deal = make_deal(owner=org.rep, amount="1000.00", close=None)
    leaf = TargetNode.objects.get(plan=approved, rep=org.rep)
    start_total, start_amount = root.amount, deal.amount

    # Client i adds 1000 × (i+1) + (i+1) cents: every accepted increment shows in the cents of the sum.
    increments = [Decimal(1000 * (i + 1)) + Decimal(i + 1) / 100 for i in range(CLIENTS)]
    deal_editors = [org.rep, org.manager, org.director]
    node_url = f"{server.url}/api/target-nodes/{root.pk}/"
    deal_url = f"{server.url}/api/opportunities/{deal.pk}/"
    tally = Tally()

    def node_body(data, increment):
        return {"amount": str(Decimal(data["amount"]) + increment), "version": data["version"]}

    def deal_body(data, increment):
        return {"amount": str(Decimal(data["amount"]) + increment), "version": data["version"]}

    # The sessions are made here: a client thread touches no database but through the server.
    sessions = [(session_for(org.director), session_for(deal_editors[i % 3])) for i in range(CLIENTS)]
    mover_session = session_for(org.manager)

    def client(i: int) -> None:
        node_session, deal_session = sessions[i]
        barrier.wait()
        edits = [
            (node_session, "node", node_url, node_body),
            (deal_session, "deal", deal_url, deal_body),
        ]
        for session, what, url, body in edits[:: 1 if i % 2 else -1]:  # half the clients start with the deal
            add_until_accepted(session, tally, what, url, increments[i], body)

    def mover() -> None:
        session = mover_session
        barrier.wait()
        for stage in [s for s in org.stages if not s.is_lost and not s.is_won][1:] + [
            next(s for s in org.stages if s.is_won)
        ]:
            move_until_accepted(session, tally, deal_url, stage.pk)

    barrier = threading.Barrier(CLIENTS + 1)
    errors: list[BaseException] = []

    def run(target, *args):
        try:
            target(*args)
        except BaseException as exc:  # reported below, with the server's log
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(client, i)) for i in range(CLIENTS)]
    threads.append(threading.Thread(target=run, args=(mover,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    log = server.text()
    assert not any(t.is_alive() for t in threads), f"a client is stuck: {tally.statuses}\n{log[-5000:]}"
    assert not errors, f"{errors}\n{log[-5000:]}"

    made = sum(tally.statuses.values())
    conflicts = sum(n for (_what, status), n in tally.statuses.items() if status == 409)
    print(
        f"\nconcurrent writes: {made} made, {made - conflicts} accepted, {conflicts} answered 409; "
        f"by resource and status: {dict(sorted(tally.statuses.items()))}"
    )
    # Every refusal is a 409 with a message for the user; no 500, no other error.
    assert {status for (_what, status) in tally.statuses} <= {200, 409}, tally.refusals[:5]
    for _what, _status, body in tally.refusals:
        assert isinstance(body, dict) and body.get("detail"), body
    assert conflicts > 0, "the clients never collided: this test proves nothing"
    # The server agrees (its access log), and it never met a deadlock or an error.
    assert not [s for s in server.statuses() if s[2] >= 500], log[-5000:]
    assert "deadlock" not in log.lower(), log[-5000:]
    assert "Traceback" not in log, log[-5000:]

    # Every accepted change is there exactly once.
    assert sorted(tally.accepted["node"]) == sorted(increments)
    assert sorted(tally.accepted["deal"]) == sorted(increments)
    root.refresh_from_db()
    deal = Opportunity.objects.select_related("stage").get(pk=deal.pk)
    assert root.amount == start_total + sum(increments)
    assert deal.amount == start_amount + sum(increments)
    assert deal.stage.is_won
    assert_sums_hold(draft)
    assert_sums_hold(approved)
    print(f"final: plan total {root.amount} (start {start_total}), deal {deal.amount} (start {start_amount})")

    # The background work of every change ran (nothing left failed in the outbox), and the incremental
    # figures equal a full rebuild: rebuilding the plan from the facts writes nothing.
    assert not OutboxTask.objects.exists(), list(OutboxTask.objects.values("name", "attempts", "last_error"))
    assert LatestAttainment.objects.get(node=leaf).actual == deal.amount

    def figures():
        rows = LatestAttainment.objects.filter(node__plan=approved)
        return sorted(rows.values_list("node_id", "actual", "target", "weighted_pipeline", "open_pipeline"))

    before = figures()
    assert attainment_recompute(plan=approved) == 0
    assert figures() == before
    # One alert per (rule, subject, period), however many evaluations ran at once.
    duplicates = (
        Alert.objects.values("rule", "subject_key", "period_key").annotate(n=Count("id")).filter(n__gt=1).order_by()
    )
    assert not duplicates.exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_editors_of_sibling_targets_keep_the_parts_adding_up(org, server):
    """Editing a part with `rebalance` moves its siblings too: twenty people editing the three parts of one
    target at once (each takes from the others) never deadlock, never get a 500, never leave the parts
    adding up to anything but their parent."""
    metrics = {m.code: m for m in metric_ensure_defaults()}
    plan = plan_of_reps(org, metrics["won_revenue"], "300000.00", timezone.localdate().year + 1)
    root = plan.nodes.get(parent=None)
    parts = list(TargetNode.objects.filter(parent=root).order_by("pk"))
    assert len(parts) == 3
    sessions = [session_for(org.director) for _ in range(CLIENTS)]
    tally = Tally()
    barrier = threading.Barrier(CLIENTS)

    def body(data, increment):
        return {"amount": str(Decimal(data["amount"]) + increment), "version": data["version"], "rebalance": True}

    def client(i: int) -> None:
        url = f"{server.url}/api/target-nodes/{parts[i % 3].pk}/"
        barrier.wait()
        add_until_accepted(sessions[i], tally, "node", url, Decimal(i + 1) + Decimal(i + 1) / 100, body)

    errors, stuck = run_clients(client)
    log = server.text()
    assert not stuck, f"a client is stuck: {tally.statuses}\n{log[-5000:]}"
    print(f"\nconcurrent edits of sibling targets: {dict(tally.statuses)}")
    assert not errors, f"{errors}\n{log[-5000:]}"
    assert {status for (_what, status) in tally.statuses} <= {200, 409}, (tally.refusals[:5], log[-5000:])
    for _what, _status, refusal in tally.refusals:
        assert isinstance(refusal, dict) and refusal.get("detail"), refusal
    assert "deadlock" not in log.lower(), log[-5000:]
    assert len(tally.accepted["node"]) == CLIENTS
    root.refresh_from_db()
    assert root.amount == Decimal("300000.00")  # the parts moved among themselves
    assert_sums_hold(plan)


@pytest.mark.django_db(transaction=True)
def test_twenty_people_moving_one_deal_at_once_get_one_move_and_409s(org, server):
    """Twenty clients move one deal to its next stage from the same version at the same moment, three stages
    running: each time exactly one move is accepted and the others are told someone else changed the deal (409),
    never a 500. (A locking read joining the deal's stage found no deal once the winner had moved it.)"""
    deal = make_deal(owner=org.rep, amount="1000.00", close=None)
    url = f"{server.url}/api/opportunities/{deal.pk}/"
    sessions = [session_for([org.rep, org.manager, org.director][i % 3]) for i in range(CLIENTS)]
    stages = [s for s in org.stages if not s.is_lost and not s.is_won][1:4]
    assert len(stages) == 3
    changes_before = deal.history.filter(field="stage").count()
    for stage in stages:
        version = sessions[0].get(url, timeout=60).json()["version"]
        tally = Tally()
        barrier = threading.Barrier(CLIENTS)

        def client(i: int, stage=stage, version=version, tally=tally, barrier=barrier) -> None:
            barrier.wait()
            body = {"stage": stage.pk, "evidence": "Signed", "version": version}
            tally.record("stage", sessions[i].post(url + "move-stage/", json=body, timeout=60))

        errors, stuck = run_clients(client, timeout=120)
        log = server.text()
        assert not errors and not stuck, f"{errors}\n{log[-5000:]}"
        assert tally.statuses == {("stage", 200): 1, ("stage", 409): CLIENTS - 1}, (tally.refusals[:3], log[-3000:])
        assert all(isinstance(body, dict) and body.get("code") == "conflict" for _w, _s, body in tally.refusals)
        assert Opportunity.objects.get(pk=deal.pk).stage_id == stage.pk
    assert "Traceback" not in server.text()
    assert deal.history.filter(field="stage").count() == changes_before + len(stages)  # one change per round
