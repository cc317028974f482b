"""The users of the load benchmark (`bench/bench_load.py` writes their config and runs locust on this file).

Readers (managers, the director, reps, each logged in with a session the benchmark made) loop over the
mix of issues 12 and 16, each request equally often: team pipeline, my pipeline, a deal page, the deal API
list, the attainment API, the home page and the weekly review (a rep, who holds none: his targets). Writers
(team managers, with an API token) move their team's open deals one stage on through the API, as a client
would, each deal at the version the last move answered; a deal that reaches Won leaves the writer's round, and
a writer whose deals are all won idles.
Every user waits `wait` seconds (uniform) between requests.

The first `warmup` seconds after every user started are a warm-up (a server just started: empty page cache,
kept totals and workers cold): then the stats are reset, so the figures are those of the steady state after it,
and what the warm-up saw (its requests, failures and percentiles) is written to `warm_file` as it ends.

Anything but the expected status is a failure: a page answering with the login form (a redirect) too.
Run it only through the benchmark: `BENCH_LOAD_CONFIG` names the config file.
"""

import itertools
import json
import os
import random
import time
from collections import deque
from pathlib import Path

import gevent
from locust import FastHttpUser, between, constant_pacing, events, task

CONFIG = json.loads(Path(os.environ["BENCH_LOAD_CONFIG"]).read_text())
# Users think `wait` seconds (uniform) between requests, or (`pace`) start a request every `pace` seconds.
WAIT = constant_pacing(CONFIG["pace"]) if CONFIG.get("pace") else between(*CONFIG["wait"])
STAGES = {int(order): stage for order, stage in CONFIG["stages"].items()}  # stage order -> id
WON = max(STAGES)


WARMUP = float(CONFIG.get("warmup") or 0)
ENVIRONMENT = []  # locust's Environment, once it is made


@events.init.add_listener
def keep_environment(environment, **_kwargs):
    ENVIRONMENT.append(environment)


@events.spawning_complete.add_listener
def start_warm_up(**_kwargs):
    if WARMUP:
        gevent.spawn_later(WARMUP, end_warm_up)


def end_warm_up():
    """Keep what the warm-up saw, then reset the stats: the figures from here on are the steady state's."""
    stats = ENVIRONMENT[0].runner.stats
    total = stats.total
    seen = {
        "at": time.time(),
        "seconds": WARMUP,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "p50_ms": total.get_response_time_percentile(0.5) if total.num_requests else None,
        "p95_ms": total.get_response_time_percentile(0.95) if total.num_requests else None,
        "errors": [
            {"name": e.name, "error": str(e.error), "occurrences": e.occurrences} for e in stats.errors.values()
        ],
    }
    stats.reset_all()
    Path(CONFIG["warm_file"]).write_text(json.dumps(seen))


@events.test_stopping.add_listener
def run_time_ended(**_kwargs):
    """When users stop starting requests (those running finish): the end of the window rates are over."""
    Path(CONFIG["stopped_file"]).write_text(str(time.time()))


class Reader(FastHttpUser):
    abstract = True
    persona = ""
    wait_time = WAIT

    def on_start(self):
        accounts = CONFIG["readers"][self.persona]["accounts"]
        self.account = accounts[next(type(self).numbers) % len(accounts)]
        # The cookies of a browser that has opened a page: its session and its CSRF cookie.
        self.headers = {"Cookie": f"sessionid={self.account['session']}; csrftoken={self.account['csrf']}"}

    def _get(self, url: str, name: str) -> None:
        with self.client.get(
            url, headers=self.headers, name=name, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")

    @task
    def team_pipeline(self):
        self._get("/pipeline/team/", "team pipeline")

    @task
    def my_pipeline(self):
        self._get("/pipeline/mine/", "my pipeline")

    @task
    def deal_page(self):
        self._get(f"/pipeline/deals/{random.choice(self.account['deals'])}/", "deal page")

    @task
    def deal_api(self):
        self._get("/api/opportunities/", "deal API list")

    @task
    def home_page(self):
        self._get("/", "home page")

    @task
    def weekly_review(self):
        if self.persona == "rep":  # reps hold no review: they read their own targets instead
            self._get("/targets/mine/", "my targets")
        else:
            self._get("/review/", "weekly review")

    @task
    def attainment_api(self):
        self._get(f"/api/attainment/?node={self.account['node']}", "attainment API")


class ManagerReader(Reader):
    persona = "manager"
    fixed_count = CONFIG["readers"]["manager"]["users"]
    numbers = itertools.count()


class DirectorReader(Reader):
    persona = "director"
    fixed_count = CONFIG["readers"]["director"]["users"]
    numbers = itertools.count()


class RepReader(Reader):
    persona = "rep"
    fixed_count = CONFIG["readers"]["rep"]["users"]
    numbers = itertools.count()


class Writer(FastHttpUser):
    fixed_count = CONFIG["writers"]["users"]
    wait_time = WAIT
    numbers = itertools.count()

    def on_start(self):
        accounts = CONFIG["writers"]["accounts"]
        account = accounts[next(type(self).numbers) % len(accounts)]
        self.headers = {"Authorization": f"Token {account['token']}"}
        self.deals = deque(dict(deal) for deal in account["deals"])

    @task
    def move_stage(self):
        if not self.deals:
            # Every deal of the team is won: nothing left to move. The writer stays (idle) rather than stopping:
            # locust starts a stopped user again, and the new one took the next account in turn, another writer's,
            # whose deals the two then moved at the same versions (409s).
            return
        deal = self.deals.popleft()
        body = {"stage": STAGES[deal["order"] + 1], "version": deal["version"]}
        with self.client.post(
            f"/api/opportunities/{deal['id']}/move-stage/",
            json=body,
            headers=self.headers,
            name="move stage",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            deal["version"], deal["order"] = response.json()["version"], deal["order"] + 1
            if deal["order"] < WON:
                self.deals.append(deal)
