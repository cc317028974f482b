"""Real servers for the integration tests: gunicorn serving the test database, a Redis of the test's own.

`Gunicorn` runs the project's WSGI app as production does (salesmgmt.gunicorn: worker processes × threads)
on a free port, against the test database (PostgreSQL: the test's rows are committed, `transaction=True`);
its stdout/stderr (the access log, and every error Django logs) go to a file the test reads afterwards.
`RedisServer` starts `redis-server` on a free port without persistence, to be killed and started again
without touching the machine's shared Redis.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# gunicorn's default access-log format: ... "GET /path HTTP/1.1" 200 1234 "referer" "agent"
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(condition, what: str, seconds: float, interval: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} within {seconds} s")


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a server or worker process on the test database. TESTING=1 keeps the static files
    served from the app folders (no collectstatic) and lets the process use the test run's SECRET_KEY, so
    the sessions the test makes are valid there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="salesmgmt.settings",
        TESTING="1",
        DEBUG="0",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=database_url(),
        DB_CONN_MAX_AGE="0",  # no idle connection outlives a request: the test database is dropped at the end
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class Gunicorn:
    def __init__(self, tmp_path: Path, env: dict[str, str], *, workers: int = 2, threads: int = 8):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"gunicorn-{self.port}.log"
        self._out = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:salesmgmt.gunicorn", "salesmgmt.wsgi"],
            cwd=ROOT,
            env={
                **env,
                "SERVE_ADDR": f"127.0.0.1:{self.port}",
                "WEB_CONCURRENCY": str(workers),
                "WEB_THREADS": str(threads),
            },
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._ready, f"gunicorn did not answer\n{self.text()[-3000:]}", 60, 0.3)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited ({self.proc.returncode}):\n{self.text()[-3000:]}")
        try:
            return requests.get(self.url + "/accounts/login/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def text(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def statuses(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the access log recorded so far."""
        return [(m["method"], m["path"], int(m["status"])) for m in ACCESS.finditer(self.text())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()


class RedisServer:
    """`redis-server` on a port of its own, no persistence: `kill()` is a crash that loses everything in it."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.tmp_path = tmp_path
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self.tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(self._pings(client), "redis-server did not start", 15, 0.1)

    @staticmethod
    def _pings(client):
        def ping() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        return ping

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
