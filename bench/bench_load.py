"""Load at tier M (issue 12): the big company served by gunicorn on PostgreSQL, under 50 readers and 10
writers from locust, and single requests of every page and API list the issue names.

In one run:

a. the company of `bench.bigco` at scale BENCH_LOAD_SCALE (default 1: 5,000 reps in 6 region levels,
   600,000 deals, 3,000,000 stage changes, a 120,000-leaf plan), reused when this database has it already
   (`make bench` runs bench_attainment first), with its attainment built once (the attainment API reads
   the stored figures). Who is measured: the director; MANAGERS managers of the regions closest to 50
   reps; REPS reps spread over the company; WRITERS team managers for the writes. They log in with
   sessions made here (the readers) or API tokens (the writers): no password is hashed.
b. single requests, server time: each page through the Django test client in this process (middleware,
   templates, the queries), the median of RUNS after a warm-up, with the query count of that run, for a
   50-rep manager (goal <= 150 ms) and the director (<= 300 ms), rendered afresh (the page cache off) after changes
   in MOVED_TEAMS teams each time (their kept subtree totals recounted, crm/rollup.py); then the three slowest
   statements seen.
c. load: the production stack on 127.0.0.1: gunicorn with production's settings (salesmgmt/gunicorn.py: no keep-alive,
   start-up objects frozen out of the collector's scans; 3 workers x 4 threads, DEBUG=0, static files by whitenoise
   after collectstatic; the environment's DB_CONN_MAX_AGE is passed on, else the settings' default of persistent
   connections), Redis at BENCH_REDIS_URL (default redis://127.0.0.1:6379/12) as the cache, the sessions' cache
   and Celery's broker, on a queue of this run's own, and a Celery worker of the project's app (prefork,
   CELERY_CONCURRENCY children) running the background work a move enqueues (the attainment recompute, the
   alerts), with Celery beat beside it as the Procfile runs it; and locust headless for BENCH_LOAD_SECONDS
   (default 60) against it only: READERS readers over the mix (team pipeline, my pipeline, a deal page, the deal
   API list, the attainment API, the home page, the weekly review; bench/locustfile.py) and WRITERS writers
   moving their team's open deals one stage on through the API, each waiting WAIT seconds (uniform) between
   requests. The first BENCH_LOAD_WARMUP seconds (default WARMUP) are a warm-up, outside the figures (a server
   just started renders every page: its first half minute ran at half the steady rate, p95 2-3 s); what it saw is
   printed in the throughput's note, and its failures count as errors. With think times the 60 users could make
   about 60 / (0.5 s + response time) requests a second: ~90 at the goals' response times, so the goal of 60
   req/s is within reach only when responses are fast; when they are slow the users wait on the server and the
   throughput is what it sustains. Figures: throughput, p50/p95/p99 of reads and of writes (from locust's JSON
   stats, reset as the warm-up ends), errors (any status but 200, a redirect to the login page included),
   deadlocks (pg_stat_database).
d. CPU seconds during the load of PostgreSQL (every process named postgres, with the backends that
   ended: the server's other databases too), gunicorn (master and workers), the Celery worker, locust, and
   the rest of the machine (other work on it), read from /proc as the warm-up ends and after; gunicorn's by route
   and by persona, the
   ROUTES_SHOWN costliest (each request's thread CPU, recorded by bench/gunicorn_cpu.py). Then the queue drains (the
   writes' background work still pending when the load ended: its time and CPU are printed too), and the
   plan's figures must equal a full rebuild (which then writes nothing).
e. the three slowest kinds of statement during the load: pg_stat_activity of the benchmark's database
   sampled every SAMPLE_INTERVAL seconds (pg_stat_statements needs shared_preload_libraries and a
   restart), each statement at the longest it was seen running (a lower bound, within the interval).

Files of the last run (locust's config and stats, its log, gunicorn's and the worker's logs, the slow statements
in full) are in bench/out/load/.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench import Timing, loadstats

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "load"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"

MANAGERS = 5  # accounts of the 50-rep managers the manager readers use
TEAM_SIZE = 50  # reps in a manager's region
REPS = 20  # rep accounts
WRITERS = 10  # writer users, each a different team's manager
READERS = {"manager": 20, "director": 5, "rep": 25}  # reader users by persona (50)
WAIT = (0.0, 1.0)  # seconds between a user's requests, uniform
DEALS_SAMPLE = 100  # deals a reader opens pages of
RUNS = 5
MOVED_TEAMS = 7  # teams changed before each single request rendered afresh (~ a second of the writers' moves)
SAMPLE_INTERVAL = 0.05  # seconds between samples of pg_stat_activity
SPAWN_RATE = 30  # users started a second
# The worker's children: one beside the web on these 2 cores (a move's recompute waits in the queue meanwhile,
# and the pending deal changes are drained together: see `salesmgmt.outbox`).
CELERY_CONCURRENCY = int(os.environ.get("CELERY_CONCURRENCY") or 1)
DRAIN_TIMEOUT = 300  # seconds the queue may take to drain after the load

# gunicorn's processes and threads each: the 3 x 4 unless BENCH_WEB_WORKERS, BENCH_WEB_THREADS name others
# to compare (0: production's default, salesmgmt/gunicorn.py). The shapes compared on 2026-12-07 moved nothing beyond
# the machine's own variation (the README's "Under load at tier M"), so the figures stay comparable with the issue's.
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS") or 3)
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS") or 4)


def web_shape() -> tuple[int, int]:
    """The gunicorn processes and threads each the load runs with (0 of either: production's default)."""
    from salesmgmt import gunicorn as production

    return WEB_WORKERS or production.workers, WEB_THREADS or production.threads


WARM_FILE = "warmup.json"  # what the warm-up saw, written by the locustfile as it ends
REQUEST_CPU = "request_cpu"  # files (one a worker) of each request's CPU, in OUT: bench/gunicorn_cpu.py
ROUTES_SHOWN = 10  # routes in the CPU-by-route rows
SINGLE_GOALS = {"manager": 0.150, "director": 0.300}
THROUGHPUT_GOAL = 60.0  # requests a second
READ_P95_GOAL = 0.300
WRITE_P95_GOAL = 0.200
# Seconds of load before the measured window (BENCH_LOAD_WARMUP): a server just started renders every page (the
# cache is empty) and its first minute is no steady state. What the warm-up saw is printed beside the figures.
WARMUP = 30
# Seconds between the starts of a user's requests in the run the p95 goals are measured in (BENCH_LOAD_PACE): 60
# users starting one every 0.95 s ask for 63 requests a second, the goal's 60 and a twentieth more. A second run,
# users thinking WAIT seconds between requests, pushes the server to what it sustains (the "saturation" rows).
PACE = 0.95


def run() -> list[Timing]:
    scale = float(os.environ.get("BENCH_LOAD_SCALE") or 1.0)
    seconds = int(os.environ.get("BENCH_LOAD_SECONDS") or 60)
    warmup = int(os.environ.get("BENCH_LOAD_WARMUP") or WARMUP)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    timings, company = prepare(scale)
    people = choose_people(company)
    # Static files as production serves them (whitenoise, hashed names): before any page is rendered.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=_server_env(), check=True
    )
    single, statements = single_requests(company, people)
    timings += single
    known = [sql for _seconds, sql, _where in statements]
    pace = float(os.environ.get("BENCH_LOAD_PACE") or PACE)
    timings += load(company, people, seconds, warmup=warmup, pace=pace, known=known)
    # Its files kept apart from the saturation run's, which follows.
    shutil.move(OUT, OUT.with_name("load-paced"))
    OUT.mkdir(parents=True)
    shutil.move(OUT.with_name("load-paced"), OUT / "paced")
    timings += saturation(load(company, people, seconds, warmup=warmup, known=known))
    return timings


def saturation(timings: list[Timing]) -> list[Timing]:
    """The timings of the run where users think 0-1 s (WAIT) and the server is the limit, as "saturation:" rows:
    its throughput is the capacity (the goal of 60 req/s), its percentiles those of a saturated machine (no goal:
    the p95 goals are the paced run's)."""
    shown = []
    for t in timings:
        name = t.name.replace("load:", "saturation:", 1)
        goal = None if t.name in ("load: reads p95", "load: writes p95") else t.goal
        shown.append(dataclasses.replace(t, name=name, goal=goal))
    return shown


# --- a. the company and the people ---------------------------------------------------------------


def prepare(scale: float) -> tuple[list[Timing], dict]:
    from django.utils import timezone

    from bench import bigco
    from crm.models import User
    from pipeline.models import Stage
    from targets.attainment.services import attainment_recompute
    from targets.models import LatestAttainment, TargetPlan

    timings = []
    if not User.objects.filter(username="bc-m0").exists():
        started = time.perf_counter()
        generated = bigco.generate(scale)
        counts = generated.counts
        timings.append(
            Timing(
                name=(
                    f"load: bigco at scale {scale:g}: {counts['reps']:,} reps, {counts['opportunities']:,} deals, "
                    f"{counts['stage changes']:,} stage changes, {counts['target leaves']:,} leaves"
                ),
                seconds=time.perf_counter() - started,
                note="generated with COPY; no goal",
            )
        )
    else:
        print("bench_load: the big company is in this database already; reusing it.", flush=True)
    plan = TargetPlan.objects.filter(name__startswith="BigCo signed revenue").latest("pk")
    if not LatestAttainment.objects.filter(node__plan=plan).exists():
        started = time.perf_counter()
        written = attainment_recompute(plan=plan, as_of=timezone.localdate())
        timings.append(
            Timing(
                name="load: attainment of the plan, first build",
                seconds=time.perf_counter() - started,
                note=f"{written:,} nodes; what the attainment API reads; no goal",
            )
        )
    stages = Stage.objects.filter(pipeline__name="BigCo sales", is_lost=False).order_by("order")
    company = {"plan": plan, "stages": {s.order: s.pk for s in stages}, "won": max(s.order for s in stages)}
    return timings, company


def spread(items: list, n: int) -> list:
    """n items evenly spaced over the list (all of them when there are no more than n)."""
    if len(items) <= n:
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def choose_people(company) -> dict:
    from crm.models import Region, Role, User

    regions = list(Region.objects.filter(manager__username__startswith="bc-m").values("id", "path", "manager_id"))
    reps_by_team = Counter(
        User.objects.filter(role=Role.REP, username__startswith="bc-r").values_list("region__path", flat=True)
    )
    size = {r["id"]: sum(n for path, n in reps_by_team.items() if path.startswith(r["path"])) for r in regions}
    # The regions closest to TEAM_SIZE reps (exactly 50 at scale 1), spread over the company.
    nearest = min(abs(size[r["id"]] - TEAM_SIZE) for r in regions)
    regions.sort(key=lambda r: r["id"])
    managed = spread([r for r in regions if abs(size[r["id"]] - TEAM_SIZE) == nearest], MANAGERS)
    teams = spread([r for r in regions if r["path"] in reps_by_team], WRITERS)
    users = User.objects.in_bulk([r["manager_id"] for r in managed + teams])
    return {
        "director": User.objects.get(username="bc-m0"),
        "managers": [users[r["manager_id"]] for r in managed],
        "manager_reps": size[managed[0]["id"]],
        "reps": spread(list(User.objects.filter(role=Role.REP, username__startswith="bc-r").order_by("id")), REPS),
        "writers": [(users[r["manager_id"]], r["id"]) for r in teams],
    }


def _session(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _deals(user, n: int = DEALS_SAMPLE) -> list[int]:
    """Deals `user` sees, the latest closing first (mostly open ones), a sample of n."""
    from pipeline.models import Opportunity

    latest = Opportunity.objects.visible_to(user).order_by("-expected_close_date")
    ids = list(latest.values_list("id", flat=True)[: n * 3])
    return random.Random(user.pk).sample(ids, min(n, len(ids)))


def _node(plan, user) -> int:
    """The target node a user's attainment view starts at: the root, the user's region, or the rep's own."""
    from crm.models import Role
    from targets.models import TargetNode

    nodes = TargetNode.objects.filter(plan=plan).order_by("depth", "pk")
    if user.role == Role.REP:
        return nodes.filter(rep=user).values_list("pk", flat=True)[0]
    if user.username == "bc-m0":
        return nodes.values_list("pk", flat=True)[0]
    return nodes.filter(region_id=user.region_id, rep__isnull=True).values_list("pk", flat=True)[0]


def _account(plan, user) -> dict:
    from django.utils.crypto import get_random_string

    return {
        "user": user.username,
        "session": _session(user),
        "csrf": get_random_string(32),  # the CSRF cookie (a secret) a browser holds after its first page
        "deals": _deals(user),
        "node": _node(plan, user),
    }


def load_config(company, people, warmup: int = 0, pace: float | None = None) -> dict:
    from django.conf import settings
    from rest_framework.authtoken.models import Token

    from pipeline.models import Opportunity

    plan, won = company["plan"], company["won"]
    writers = []
    for manager, team in people["writers"]:
        deals = (
            Opportunity.objects.filter(region_id=team, stage__is_won=False, stage__is_lost=False)
            .order_by("id")
            .values("id", "version", "stage__order")
        )
        writers.append(
            {
                "user": manager.username,
                "token": Token.objects.get_or_create(user=manager)[0].key,
                "deals": [{"id": d["id"], "version": d["version"], "order": d["stage__order"]} for d in deals],
            }
        )
    personas = {"manager": people["managers"], "director": [people["director"]], "rep": people["reps"]}
    return {
        "cookie": settings.SESSION_COOKIE_NAME,
        "wait": list(WAIT),
        "stages": {str(order): pk for order, pk in company["stages"].items()},
        "won": won,
        "readers": {
            persona: {"users": READERS[persona], "accounts": [_account(plan, u) for u in users]}
            for persona, users in personas.items()
        },
        "writers": {"users": WRITERS, "accounts": writers},
        "stopped_file": str(OUT / "stopped"),
        "warmup": warmup,
        "warm_file": str(OUT / WARM_FILE),
        "pace": pace or 0,
    }


# --- b. single requests --------------------------------------------------------------------------

PAGES = (
    ("team pipeline", "/pipeline/team/"),
    ("my pipeline", "/pipeline/mine/"),
    ("deal page", "/pipeline/deals/{deal}/"),
    ("deal API list", "/api/opportunities/"),
    ("attainment API", "/api/attainment/?node={node}"),
    ("plan editor root", "/targets/plans/{plan}/"),
    ("plan grid, default entry", "/targets/plans/{plan}/grid/"),
    ("alerts page", "/targets/alerts/"),
    ("home page", "/"),
    ("weekly review", "/review/"),
    ("my targets", "/targets/mine/"),
)


def single_requests(company, people) -> tuple[list[Timing], list[tuple[float, str, str]]]:
    """The single-request timings, and every statement they ran (seconds, SQL, which page)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from crm.models import Role, User
    from crm.scopes import region_keys
    from salesmgmt import freshness

    plan = company["plan"]
    teams = sorted(set(User.objects.filter(role=Role.REP).values_list("region__path", flat=True)))
    personas = (
        ("manager", people["managers"][0], f"{people['manager_reps']}-rep manager"),
        ("director", people["director"], "director"),
    )
    # As `make test` and bench_grid render: no collectstatic manifest needed in this process.
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    storages = {**settings.STORAGES, "staticfiles": static}
    timings, statements = [], []
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=storages):
        for persona, user, label in personas:
            client = Client()
            client.force_login(user)
            values = {"plan": plan.pk, "deal": _deals(user, 1)[0], "node": _node(plan, user)}
            for page, pattern in PAGES:
                url = pattern.format(**values)
                response = client.get(url)  # warm-up: templates compiled, caches filled
                assert response.status_code == 200, (url, label, response.status_code)
                runs = []
                # The goal is for the page rendered afresh (as after every change to what it shows), each time
                # after changes in MOVED_TEAMS teams (what ten writers move between two of a reader's requests):
                # their regions' kept totals (crm/rollup.py) are recounted, the others' are read...
                with override_settings(PAGE_CACHE=False):
                    for _run in range(RUNS):
                        freshness.changed(region_keys(*random.sample(teams, MOVED_TEAMS)))
                        with CaptureQueriesContext(connection) as captured:
                            started = time.perf_counter()
                            response = client.get(url)
                            elapsed = time.perf_counter() - started
                        assert response.status_code == 200, (url, label, response.status_code)
                        runs.append((elapsed, len(captured), captured.captured_queries))
                        statements += [
                            (float(q["time"]), q["sql"], f"{page}, {label}") for q in captured.captured_queries
                        ]
                # ... and, noted beside it, served from the cache (salesmgmt/freshness.py) while nothing changed.
                cached = []
                for _run in range(RUNS):
                    with CaptureQueriesContext(connection) as captured:
                        started = time.perf_counter()
                        client.get(url)
                        cached.append((time.perf_counter() - started, len(captured)))
                elapsed, queries, _captured = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
                hit, hit_queries = sorted(cached)[len(cached) // 2]
                timings.append(
                    Timing(
                        name=f"single: {page}, {label}",
                        seconds=elapsed,
                        queries=queries,
                        goal=SINGLE_GOALS[persona],
                        note=f"{url}; rendered after changes in {MOVED_TEAMS} teams, median of {RUNS}: "
                        + ", ".join(f"{r[0]:.3f}" for r in runs)
                        + f" s; from the cache {hit:.3f} s, {hit_queries} queries",
                    )
                )
    seen = set()
    with (OUT / "single_slow_statements.sql").open("w") as f:
        for seconds, sql, where in sorted(statements, key=lambda s: s[0], reverse=True):
            shape = loadstats.normalize_sql(sql)
            if shape in seen:
                continue
            seen.add(shape)
            f.write(f"-- #{len(seen)}: {seconds * 1000:,.0f} ms ({where})\n{sql.strip()};\n\n")
            timings.append(
                Timing(
                    name=f"single: slowest statement #{len(seen)} ({where})",
                    seconds=seconds,
                    note=loadstats.short_sql(sql),
                    extra={"sql": sql},
                )
            )
            if len(seen) == 3:
                break
    return timings, statements


def _seen(q) -> str:
    return f"{q.statements} seen ({q.locked} waiting for a lock), {q.total:.1f} s in all"


# --- c. load --------------------------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    """The environment of gunicorn and the Celery worker: production settings, Redis as cache and broker."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("TESTING",)}
    redis = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/12"
    env.update(
        DJANGO_SETTINGS_MODULE="salesmgmt.settings",
        DEBUG="0",
        DATABASE_URL=os.environ["DATABASE_URL"],
        SECRET_KEY=settings.SECRET_KEY,  # the sessions made here are signed with it
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        CELERY_TASK_DEFAULT_QUEUE=QUEUE,
    )
    return env


QUEUE = f"bench-load-{uuid.uuid4().hex[:8]}"  # this run's own queue: nothing else takes its tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: subprocess.Popen, port: int, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _worker(env: dict[str, str], log) -> subprocess.Popen:
    """The project's Celery worker on this run's queue, as production runs it (prefork, acks late)."""
    command = [
        sys.executable, "-m", "celery", "-A", "salesmgmt", "worker", "--pool=prefork",
        f"--concurrency={CELERY_CONCURRENCY}", "-Q", QUEUE, "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-l", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _beat(env: dict[str, str], log) -> subprocess.Popen:
    """Celery beat, as the Procfile runs it (its periodic jobs go to this run's queue too)."""
    command = [
        sys.executable, "-m", "celery", "-A", "salesmgmt", "beat", "-l", "warning",
        "--schedule", str(OUT / "celerybeat-schedule"),
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _redis(env: dict[str, str]):
    import redis

    return redis.Redis.from_url(env["CELERY_BROKER_URL"])


def queued_messages(client) -> int:
    """Messages of this run's queue waiting or taken by the worker and not yet acknowledged (Redis transport)."""
    waiting = client.llen(QUEUE)
    unacked = sum(1 for raw in client.hvals("unacked") if json.loads(raw)[-1] == QUEUE)
    return waiting + unacked


def drained(queued, pending, *, timeout: float, interval: float = 0.5, clock=time.monotonic, sleep=time.sleep) -> bool:
    """Wait until nothing is queued (`queued()`) or pending in the outbox (`pending()`) three checks in a row
    (a running task may enqueue more); False when `timeout` seconds pass first."""
    deadline, quiet = clock() + timeout, 0
    while clock() < deadline:
        quiet = quiet + 1 if queued() == 0 and pending() == 0 else 0
        if quiet == 3:
            return True
        sleep(interval)
    return False


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the master (a graceful stop of its workers), SIGKILL to its process group if it lingers."""
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=35)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


class Sampler(threading.Thread):
    """Samples the statements running in the benchmark's database (its own connection, autocommit)."""

    SQL = """
        SELECT pid, query_start, extract(epoch FROM clock_timestamp() - query_start)::float,
               datname = current_database(), query, wait_event_type = 'Lock'
        FROM pg_stat_activity
        WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
    """

    def __init__(self, interval: float = SAMPLE_INTERVAL):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.seen: list = []  # ((pid, query_start), seconds running, sql, waiting for a lock)
        self.rounds = self.ours = self.others = 0
        self.error: Exception | None = None

    def run(self) -> None:
        import psycopg
        from django.db import connection

        try:
            db = connection.settings_dict
            params = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"]}
            params.update(host=db["HOST"], port=db["PORT"])
            with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
                while not self.stopping.wait(self.interval):
                    self.rounds += 1
                    for pid, start, seconds, ours, sql, locked in conn.execute(self.SQL).fetchall():
                        if not ours:
                            self.others += 1
                            continue
                        self.ours += 1
                        self.seen.append(((pid, start), seconds, sql, bool(locked)))
        except Exception as exc:  # reported beside the figures; the load goes on without it
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def _snapshot(server_pid: int, worker_pid: int) -> dict[str, int]:
    procs = loadstats.read_procs()
    with open("/proc/stat") as f:
        machine = loadstats.machine_busy_ticks(f.read())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust, once it has ended and been waited for
    me = resource.getrusage(resource.RUSAGE_SELF)  # this process: the sampler of pg_stat_activity
    return {
        "postgres": loadstats.cpu_ticks(procs, loadstats.named(procs, "postgres")),
        "gunicorn": loadstats.cpu_ticks(procs, loadstats.tree(procs, server_pid)),
        "celery": loadstats.cpu_ticks(procs, loadstats.tree(procs, worker_pid)),
        "locust": round((children.ru_utime + children.ru_stime) * os.sysconf("SC_CLK_TCK")),
        "sampler": round((me.ru_utime + me.ru_stime) * os.sysconf("SC_CLK_TCK")),
        "machine": machine,
    }


def _deadlocks() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


# The machine's speed during a run, timed before the servers start and after they stop (the best of three each):
# the CPU seconds of a fixed piece of pure Python, 2,000,000 additions (arithmetic in the processor's own cache), and
# of a walk over 200,000 small dicts in random order with a JSON round trip of 50,000 (memory, as Django's work is).
# The VM shares its cores and their caches with neighbours: the same requests cost 18 ms of CPU one hour and 38 ms
# the next, and the p95 follows. On 2026-12-07 the additions ran at their fastest (0.07-0.08 s) while the requests
# cost twice their best: the walk is the closer measure (0.38-0.41 s then).
def reference_work() -> tuple[float, float]:
    rows = [{"id": i, "name": f"deal {i}", "amount": i * 1.5, "tags": [i % 7, i % 11]} for i in range(200_000)]
    order = list(range(len(rows)))
    random.Random(1).shuffle(order)
    best_loop = best_walk = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i
        best_loop = min(best_loop, time.process_time() - started)
        started = time.process_time()
        for i in order:
            total += rows[i]["id"] + len(rows[i]["tags"])
        json.loads(json.dumps(rows[:50_000]))
        best_walk = min(best_walk, time.process_time() - started)
    return best_loop, best_walk


def machine_speed(before: tuple[float, float], after: tuple[float, float]) -> Timing:
    walk = (before[1] + after[1]) / 2
    return Timing(
        name="load: machine speed, reference work",
        seconds=walk,
        note=(
            f"CPU seconds of fixed pure-Python work before the run and after it: a walk over 200,000 dicts "
            f"{before[1]:.3f} / {after[1]:.3f} s (0.38-0.41 s on 2026-12-07, when requests cost 31-38 ms), "
            f"2,000,000 additions {before[0]:.3f} / {after[0]:.3f} s; no goal"
        ),
    )


def load(
    company, people, seconds: int, *, warmup: int = 0, pace: float | None = None, known: list[str] | None = None
) -> list[Timing]:
    """The load run: `warmup` seconds, then the `seconds` measured; each user starts a request every `pace` seconds,
    or (None) thinks WAIT seconds between them; `known`: statements in full (the single requests') to complete
    sampled ones with."""
    config = load_config(company, people, warmup, pace)
    (OUT / "config.json").write_text(json.dumps(config, indent=1))
    env = _server_env()
    port = _free_port()
    users = sum(READERS.values()) + WRITERS
    locust = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", f"http://127.0.0.1:{port}",
        "-u", str(users), "-r", str(SPAWN_RATE), "--run-time", f"{warmup + seconds}s", "--reset-stats",
        "--stop-timeout", "30",
        "--json-file", str(OUT / "locust"), "--csv", str(OUT / "locust"), "--only-summary",
    ]  # fmt: skip
    gunicorn_log = OUT / "gunicorn.log"
    load_average = os.getloadavg()
    speed_before = reference_work()
    # Production's settings (salesmgmt.gunicorn: no keep-alive, the collector's frozen start-up objects), with the
    # processes and threads of web_shape(); bench.gunicorn_cpu adds a record of each request's CPU.
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:bench.gunicorn_cpu", "salesmgmt.wsgi"]
    for old in OUT.glob(f"{REQUEST_CPU}.*"):
        old.unlink()
    workers, threads = web_shape()
    env = {
        **env,
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
        "LOG_LEVEL": "warning",
        "BENCH_REQUEST_CPU": str(OUT / REQUEST_CPU),
        "BENCH_LOAD_CONFIG": str(OUT / "config.json"),  # who asked, for the CPU by persona
    }
    from salesmgmt.models import OutboxTask

    broker = _redis(env)
    with gunicorn_log.open("w") as log, (OUT / "celery.log").open("w") as worker_log:
        server = subprocess.Popen(
            [*gunicorn, "-b", f"127.0.0.1:{port}", "--access-logfile", str(OUT / "access.log")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = _worker(env, worker_log)
        beat = _beat(env, worker_log)
        sampler = Sampler()
        try:
            _wait_ready(server, port, gunicorn_log)
            deadlocks = _deadlocks()
            versions = _versions()
            print(
                f"bench_load: {users} locust users against gunicorn on port {port}: {warmup} s of warm-up, then "
                f"{seconds} s measured ...",
                flush=True,
            )
            with (OUT / "locust.log").open("w") as locust_log:
                runner = subprocess.Popen(
                    locust,
                    cwd=ROOT,
                    env={**os.environ, "BENCH_LOAD_CONFIG": str(OUT / "config.json")},
                    stdout=locust_log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    if warmup:
                        _wait_for_file(OUT / WARM_FILE, runner, timeout=warmup + 60)
                    sampler.start()
                    before, started = _snapshot(server.pid, worker.pid), time.perf_counter()
                    runner.wait(timeout=seconds + 120)
                finally:
                    if runner.poll() is None:
                        runner.kill()
            after, window = _snapshot(server.pid, worker.pid), time.perf_counter() - started
            sampler.stop()
            print("bench_load: waiting for the worker to drain the queue ...", flush=True)
            ok = drained(lambda: queued_messages(broker), OutboxTask.objects.count, timeout=DRAIN_TIMEOUT)
            drain = {
                "ok": ok,
                "seconds": time.perf_counter() - started - window,
                "after": _snapshot(server.pid, worker.pid),
            }
            if worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited ({worker.returncode}): see {OUT / 'celery.log'}")
        finally:
            sampler.stop()
            _stop(server)
            _stop(worker)
            _stop(beat)
    speed_after = reference_work()
    time.sleep(1)  # backends report their statistics within a second of a transaction's end
    deadlocks = _deadlocks() - deadlocks
    versions = {k: v - versions.get(k, 0) for k, v in _versions().items() if v != versions.get(k, 0)}

    stopped = OUT / "stopped"
    groups, measured = loadstats.summarize(
        json.loads((OUT / "locust.json").read_text()), float(stopped.read_text()) if stopped.exists() else None
    )
    warm = json.loads((OUT / WARM_FILE).read_text()) if warmup else None
    timings = load_timings(
        groups, measured, users=users, seconds=seconds, load_average=load_average, warm=warm, pace=pace
    )
    timings += error_timings(groups, OUT / "locust_failures.csv", deadlocks, warm=warm)
    timings += cpu_timings(before, after, window, os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1, sampler)
    timings.append(cpu_per_request(cpu_split(before, after, os.sysconf("SC_CLK_TCK")), window, groups))
    timings.append(machine_speed(speed_before, speed_after))
    since = warm["at"] if warm else 0.0
    requests = list(_request_cpu_lines())  # gunicorn's record of every request, read once
    timings += route_cpu_timings(loadstats.route_cpu(requests, since=since))
    timings += route_cpu_timings(loadstats.route_cpu(requests, by="who", since=since), label="by persona")
    timings += server_time_timings(loadstats.server_times(requests, since=since))
    timings += slow_timings(sampler, known or [])
    timings += drain_timings(drain, after, os.sysconf("SC_CLK_TCK"))
    timings.append(rebuild_check(company["plan"]))
    timings.append(freshness_timing(versions))
    return timings


def _wait_for_file(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"locust exited ({process.returncode}) before its warm-up ended: see {OUT / 'locust.log'}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"locust's warm-up did not end within {timeout:.0f} s: see {OUT / 'locust.log'}")
        time.sleep(0.05)


def _request_cpu_lines() -> Iterator[str]:
    for path in sorted(OUT.glob(f"{REQUEST_CPU}.*")):
        with path.open() as lines:
            yield from lines


def route_cpu_timings(routes: list[loadstats.RouteCPU], top: int = ROUTES_SHOWN, *, label: str = "") -> list[Timing]:
    """Where gunicorn's CPU went, by route (or by persona: `label`): the costliest `top` routes, each with its share
    of all requests' CPU (the worker threads' own CPU between gunicorn's request hooks: the collector's pauses
    included, the interpreter lock's waits not), the mean and the spread (a cached page costs a few ms, one rendered
    afresh tens)."""
    total = sum(r.total for r in routes)
    return [
        Timing(
            name=f"load: gunicorn CPU{' ' + label if label else ''}, {r.route}",
            seconds=r.mean,
            unit="ms",
            note=f"{r.total / total:.0%} of the requests' CPU; {r.count:,} requests, p50 {r.p50:.1f} ms, "
            f"p90 {r.p90:.1f} ms, {r.total / 1000:.1f} cpu-s in all",
        )
        for r in routes[:top]
    ]


def server_time_timings(times: dict[str, loadstats.ServerTime]) -> list[Timing]:
    """The reads' and writes' p95 inside gunicorn (wall time between its request hooks, `bench.gunicorn_cpu`): set
    beside the clients' p95, the rest is the wait for a free thread (the listen queue) and the network."""
    return [
        Timing(
            name=f"load: {kind} p95 inside gunicorn",
            seconds=times[kind].p95 / 1000,
            note=f"{times[kind].count:,} requests, p50 {times[kind].p50:.0f} ms; from a thread taking the request "
            "to its answer: beyond it a client waited for a free thread or the network; no goal",
        )
        for kind in ("reads", "writes")
        if kind in times
    ]


def _versions() -> dict[str, int]:
    from salesmgmt.models import Freshness

    return dict(Freshness.objects.values_list("key", "version"))


def freshness_timing(bumped: dict[str, int]) -> Timing:
    """How often the load made cached pages stale: every page (a write naming nothing narrower) and by key."""
    from salesmgmt.freshness import EVERYTHING

    everything = bumped.pop(EVERYTHING, 0)
    regions = sum(v for k, v in bumped.items() if k.startswith("r"))
    people = sum(v for k, v in bumped.items() if k.startswith("u"))
    return Timing(
        name="load: cached pages made stale for everyone",
        seconds=everything,
        unit="times",
        note=f"bumps of every page's version; besides, {regions:,} of regions' and {people:,} of people's "
        f"({len(bumped):,} keys) — salesmgmt/freshness.py",
    )


def cpu_per_request(used: dict[str, float], window: float, groups) -> Timing:
    """CPU of the app (PostgreSQL, gunicorn, Celery) per request served: a steadier figure than the throughput
    on a busy machine (the 2 cores can serve about 2 / this many requests a second, locust aside)."""
    rate = groups["reads"].per_second + groups["writes"].per_second
    app = used["postgres"] + used["gunicorn"] + used["celery"]
    per_request = app / window / rate if rate and window else 0.0
    return Timing(
        name="load: CPU per request (PostgreSQL + gunicorn + Celery)",
        seconds=per_request * 1000,
        unit="ms",
        note=(
            f"PostgreSQL {used['postgres'] / window / rate * 1000:.1f} + gunicorn "
            f"{used['gunicorn'] / window / rate * 1000:.1f} + Celery {used['celery'] / window / rate * 1000:.1f} ms"
            if rate and window
            else "no request"
        ),
    )


def drain_timings(drain: dict, after: dict, ticks: int) -> list[Timing]:
    used = cpu_split(after, drain["after"], ticks)
    return [
        Timing(
            name="load: the queue drained after the load",
            seconds=drain["seconds"],
            goal=None if drain["ok"] else 0.0,  # flagged in the table when it did not drain
            note=(
                ("" if drain["ok"] else f"NOT DRAINED within {DRAIN_TIMEOUT} s; ")
                + f"the background work still queued when the load ended; meanwhile CPU: Celery "
                f"{used['celery']:.1f} cpu-s, PostgreSQL {used['postgres']:.1f} cpu-s"
            ),
        )
    ]


def rebuild_check(plan, name: str = "load: figures == a full rebuild after the queue drained") -> Timing:
    """The plan's figures after every move's recompute ran (the worker's) equal a full rebuild: it writes nothing."""
    from targets.attainment.services import attainment_recompute

    started = time.perf_counter()
    rewritten = attainment_recompute(plan=plan)
    check = Timing(
        name=name,
        seconds=time.perf_counter() - started,
        note="the rebuild wrote nothing: every node equals the facts",
    )
    if rewritten:
        check.goal = 0.0  # flagged in the table
        check.note = f"NOT EQUAL: the rebuild rewrote {rewritten:,} nodes"
    print(f"bench_load: {check.name}: {check.note}", flush=True)
    return check


def load_timings(
    groups, measured: float, *, users: int, seconds: int, load_average, warm=None, pace: float | None = None
) -> list[Timing]:
    """Throughput and percentiles of the measured window; `warm`: what the warm-up before it saw (the
    locustfile's record), told in the throughput's note."""
    reads, writes = groups["reads"], groups["writes"]
    readers = ", ".join(f"{n} {persona}s" for persona, n in READERS.items())
    warmed = (
        f"after {warm['seconds']:g} s of warm-up ({warm['requests']:,} requests, p50 {warm['p50_ms'] or 0:,.0f} ms, "
        f"p95 {warm['p95_ms'] or 0:,.0f} ms); "
        if warm
        else ""
    )
    timings = [
        Timing(
            name=f"load: throughput, {users} users ({sum(READERS.values())} readers + {WRITERS} writers)",
            seconds=reads.per_second + writes.per_second,
            unit="req/s",
            goal=THROUGHPUT_GOAL,
            at_least=True,
            note=(
                f"{warmed}requests ended in the {measured:.0f} s from the stats' reset to the end of the {seconds} s "
                "measured "
                f"({reads.requests + writes.requests:,} in all, with those then running); "
                f"readers: {readers}; "
                + (f"each user starts a request every {pace:g} s" if pace else f"think time {WAIT[0]:g}-{WAIT[1]:g} s")
                + "; load average at the start "
                + " ".join(f"{x:.2f}" for x in load_average)
            ),
        )
    ]
    for group, goal in ((reads, READ_P95_GOAL), (writes, WRITE_P95_GOAL)):
        timings.append(
            Timing(
                name=f"load: {group.name} p95",
                seconds=group.p(0.95),
                goal=goal,
                note=(
                    f"{group.requests:,} requests, {group.per_second:.1f}/s, p50 {group.p(0.5) * 1000:,.0f} ms, "
                    f"p95 {group.p(0.95) * 1000:,.0f} ms, p99 {group.p(0.99) * 1000:,.0f} ms"
                ),
            )
        )
    for name, group in groups.items():
        if name in ("reads", "writes"):
            continue
        timings.append(
            Timing(
                name=f"load: {name} p95",
                seconds=group.p(0.95),
                note=(
                    f"{group.requests:,} requests, {group.failures} failed, p50 {group.p(0.5) * 1000:,.0f} ms, "
                    f"p99 {group.p(0.99) * 1000:,.0f} ms; no goal"
                ),
            )
        )
    return timings


def error_timings(groups, failures_csv: Path, deadlocks: int, warm=None) -> list[Timing]:
    """Failures of the whole run: the measured window's (locust's failures file) and the warm-up's (`warm`)."""
    import csv

    messages = Counter()
    for error in (warm or {}).get("errors", []):
        messages[f"{error['name']}: {error['error']} (warm-up)"] += error["occurrences"]
    if failures_csv.exists():
        with failures_csv.open() as f:
            for row in csv.DictReader(f):
                messages[f"{row['Name']}: {row['Error']}"] += int(row["Occurrences"])
    errors = groups["reads"].failures + groups["writes"].failures + (warm or {}).get("failures", 0)
    top = "; ".join(f"{n} x {m}" for m, n in messages.most_common(3))
    return [
        Timing(name="load: errors", seconds=errors, unit="errors", goal=0, note=top or "none"),
        Timing(name="load: deadlocks", seconds=deadlocks, unit="deadlocks", goal=0, note="pg_stat_database"),
    ]


def cpu_split(before: dict, after: dict, ticks_per_second: int) -> dict[str, float]:
    """CPU seconds between two snapshots, by side; "other" is the rest of the machine's busy time."""
    used = {k: (after[k] - before[k]) / ticks_per_second for k in before}
    machine = used.pop("machine")
    used["other"] = max(0.0, machine - sum(used.values()))
    return used


def cpu_timings(before, after, window: float, ticks: int, cpus: int, sampler) -> list[Timing]:
    used = cpu_split(before, after, ticks)
    app = used["postgres"] + used["gunicorn"] + used["celery"]
    rounds = max(1, sampler.rounds)
    workers, threads = web_shape()
    notes = {
        "postgres": (
            f"{used['postgres'] / app:.0%} of PostgreSQL + gunicorn + Celery; every postgres process "
            "(other databases too: "
            f"{sampler.others / rounds:.1f} of their statements running on average vs "
            f"{sampler.ours / rounds:.1f} of the benchmark's)"
        ),
        "gunicorn": (
            f"{used['gunicorn'] / app:.0%} of PostgreSQL + gunicorn + Celery; master and {workers} workers x {threads} "
            "thread(s) (Python)"
        ),
        "celery": (
            f"{used['celery'] / app:.0%} of PostgreSQL + gunicorn + Celery; the worker's master and "
            f"{CELERY_CONCURRENCY} child(ren) (Python): the moves' background work"
        ),
        "locust": "the load generator, on the same machine",
        "sampler": "this process, sampling pg_stat_activity",
        "other": "the rest of the machine's busy time: other work on it (load average in the throughput's note)",
    }
    return [
        Timing(
            name=f"load: CPU, {side}",
            seconds=seconds,
            unit="cpu-s",
            note=f"{notes[side]}; of {cpus} x {window:.0f} s = {cpus * window:.0f} cpu-s",
        )
        for side, seconds in used.items()
    ]


def slow_timings(sampler, known: list[str]) -> list[Timing]:
    if sampler.error is not None:
        return [Timing(name="load: slowest statements", note=f"not sampled: {sampler.error}")]
    slow = loadstats.slowest(sampler.seen)
    timings = []
    with (OUT / "slow_statements.sql").open("w") as f:
        for k, q in enumerate(slow, 1):
            # pg_stat_activity keeps a statement's first track_activity_query_size bytes (1 kB by default):
            # the same kind of statement run by the single requests gives the rest.
            full = loadstats.complete_sql(q.sql, known)
            sql = full or q.sql
            more = "; the rest from the same statement of the single requests" if full else ""
            if not full and len(q.sql.encode()) >= 1000:
                more = "; cut by pg_stat_activity (track_activity_query_size)"
            f.write(f"-- #{k}: {q.seconds * 1000:,.0f} ms at most; {_seen(q)}{more}\n{sql.strip()};\n\n")
            timings.append(
                Timing(
                    name=f"load: slowest statement #{k}",
                    seconds=q.seconds,
                    note=f"{_seen(q)}; {loadstats.short_sql(sql)}",
                    extra={"sql": sql, "statements": q.statements, "total": q.total, "locked": q.locked},
                )
            )
    return timings
