"""gunicorn's settings for production (`gunicorn -c python:salesmgmt.gunicorn salesmgmt.wsgi`), from the environment.

WEB_CONCURRENCY worker processes × WEB_THREADS threads each; one machine's cores bound the processes
(2 × cores + 1 is gunicorn's rule of thumb, threads cover requests waiting on PostgreSQL). Scale out by running
this on more machines behind a load balancer that checks `/healthz`."""

import gc
import multiprocessing
import os

bind = os.environ.get("SERVE_ADDR", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = int(os.environ.get("WEB_THREADS", 4))
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
# Seconds a client's connection is kept open for its next request; 0 (the default): one request per connection.
# A threaded worker keeps serving the connections it accepted, so with keep-alive a few busy clients (a proxy's
# pool, a load generator, an office behind one NAT) stay on the worker that accepted them first: the load
# benchmark's 60 users had one process doing two thirds of the work (its threads sharing one interpreter lock)
# while the others idled, p95 1.2 s. Without keep-alive every request goes to a worker with a free moment to
# accept it. Behind a proxy that keeps connections to the app, set it to that proxy's idle timeout or more.
keepalive = int(os.environ.get("WEB_KEEPALIVE", 0))
graceful_timeout = 30
max_requests = 2000  # a worker is replaced after this many requests (bounds slow leaks), not all at once:
max_requests_jitter = 200
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"  # to stdout: systemd's journal or the Procfile runner collects it
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker) -> None:
    """A worker has loaded the app: build what every request uses (the URL resolver), then move every object
    that lives as long as the process (modules, models, settings, URL patterns) out of the garbage collector's
    reach (`gc.freeze`). Its full collections, which stop every thread of the process while they scan, then
    walk only what requests made: under load they took ~8 % of a worker's CPU, ~0.1 s each."""
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 (imports the URLconf and its views, and builds the reverse lookups)
    gc.freeze()
