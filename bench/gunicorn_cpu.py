"""gunicorn's production settings (`salesmgmt.gunicorn`) plus a record of each request's CPU, for the load
benchmark (`gunicorn -c python:bench.gunicorn_cpu`): the thread that serves a request measures its own CPU time
(`time.thread_time`) from gunicorn's `pre_request` to its `post_request` hook, and appends one line (method, path
with ids as N, status, CPU ms) to $BENCH_REQUEST_CPU.<worker pid>. `bench.loadstats.route_cpu` adds them up."""

import os
import re
import time

from salesmgmt.gunicorn import *  # noqa: F403 (production's settings, as they are)

_IDS = re.compile(r"/\d+(?=/|$)")


def pre_request(worker, req) -> None:
    req.bench_cpu = time.thread_time()


def post_request(worker, req, environ, resp) -> None:
    started = getattr(req, "bench_cpu", None)
    if started is None:
        return
    cpu = (time.thread_time() - started) * 1000
    path = _IDS.sub("/N", req.path)
    status = getattr(resp, "status_code", 0)
    with open(f"{os.environ['BENCH_REQUEST_CPU']}.{os.getpid()}", "a") as out:
        out.write(f"{req.method}\t{path}\t{status}\t{cpu:.3f}\n")
