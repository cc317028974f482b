"""gunicorn's production settings (`salesmgmt.gunicorn`) plus a record of each request's CPU, for the load
benchmark (`gunicorn -c python:bench.gunicorn_cpu`): the thread that serves a request measures its own CPU time
(`time.thread_time`) from gunicorn's `pre_request` to its `post_request` hook, and appends one line (method, path
with ids as N, status, CPU ms, who asked, unix time it ended, wall ms between the hooks) to
$BENCH_REQUEST_CPU.<worker pid>. The wall time is the request's time inside gunicorn's thread; what a client waits
beyond it is the listen queue (no thread free yet) and the network. Who asked: the
persona of the session cookie or API token in the load's config ($BENCH_LOAD_CONFIG: director, manager, rep,
writer), "-" for anyone else. `bench.loadstats.route_cpu` adds them up, by route or by persona."""

import json
import os
import re
import time
from functools import cache
from http.cookies import SimpleCookie
from pathlib import Path

from salesmgmt.gunicorn import *  # noqa: F403 (production's settings, as they are)

_IDS = re.compile(r"/\d+(?=/|$)")


@cache
def personas() -> dict[str, str]:
    """Session key or API token -> the persona the load's config gives it."""
    path = os.environ.get("BENCH_LOAD_CONFIG")
    if not path:
        return {}
    config = json.loads(Path(path).read_text())
    found = {
        account["session"]: persona for persona, readers in config["readers"].items() for account in readers["accounts"]
    }
    found.update({account["token"]: "writer" for account in config["writers"]["accounts"]})
    return found


def _who(environ) -> str:
    token = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Token ").strip()
    if not token:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get("sessionid")
        token = morsel.value if morsel else ""
    return personas().get(token, "-")


def pre_request(worker, req) -> None:
    req.bench_cpu = time.thread_time()
    req.bench_wall = time.perf_counter()


def post_request(worker, req, environ, resp) -> None:
    started = getattr(req, "bench_cpu", None)
    if started is None:
        return
    cpu = (time.thread_time() - started) * 1000
    wall = (time.perf_counter() - req.bench_wall) * 1000
    path = _IDS.sub("/N", req.path)
    status = getattr(resp, "status_code", 0)
    with open(f"{os.environ['BENCH_REQUEST_CPU']}.{os.getpid()}", "a") as out:
        out.write(f"{req.method}\t{path}\t{status}\t{cpu:.3f}\t{_who(environ)}\t{time.time():.3f}\t{wall:.3f}\n")
