"""gunicorn's settings for production (`gunicorn -c python:salesmgmt.gunicorn salesmgmt.wsgi`), from the environment.

WEB_CONCURRENCY worker processes × WEB_THREADS threads each; one machine's cores bound the processes
(2 × cores + 1 is gunicorn's rule of thumb, threads cover requests waiting on PostgreSQL). Scale out by running
this on more machines behind a load balancer that checks `/healthz`."""

import multiprocessing
import os

bind = os.environ.get("SERVE_ADDR", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = int(os.environ.get("WEB_THREADS", 4))
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = 30
max_requests = 2000  # a worker is replaced after this many requests (bounds slow leaks), not all at once:
max_requests_jitter = 200
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"  # to stdout: systemd's journal or the Procfile runner collects it
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
