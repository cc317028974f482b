"""Benchmarks at the sizes the issues name, run by `make bench` (`python -m bench`) against PostgreSQL.

Each `bench/bench_<topic>.py` has a `run()` that returns a list of `Timing`s; `bench/__main__.py`
sets up Django, creates and migrates the database if needed, runs them and prints one table.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field


@dataclass
class Timing:
    name: str
    seconds: float = 0.0
    queries: int = 0
    cpu: float | None = None  # seconds of this process's CPU (the Python side; the database's time is not in it)
    goal: float | None = None  # seconds; None: measured, no goal
    note: str = ""
    extra: dict = field(default_factory=dict)
    # What is not a duration (a throughput, a count of errors) is in `seconds` all the same, in `unit`;
    # `at_least`: the goal is a floor (requests per second), not a ceiling.
    unit: str = "s"
    at_least: bool = False

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.seconds >= self.goal if self.at_least else self.seconds <= self.goal

    @property
    def value_text(self) -> str:
        return f"{self.seconds:.3f} s" if self.unit == "s" else f"{self.seconds:,.4g} {self.unit}"

    @property
    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        return f"{'>=' if self.at_least else '<='} {self.goal:g} {self.unit}"


@contextmanager
def timed(name: str, *, goal: float | None = None, note: str = ""):
    """Time a block and count its SQL queries (COPY through the raw cursor is not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timing = Timing(name=name, goal=goal, note=note)
    with CaptureQueriesContext(connection) as queries, profiled(timing):
        start, cpu = time.perf_counter(), time.process_time()
        yield timing
        timing.seconds = time.perf_counter() - start
        timing.cpu = time.process_time() - cpu
    timing.queries = len(queries)


def profiled(timing: Timing):
    """With BENCH_PROFILE=<part of a timing's name>[,<another>...], each such block runs under cProfile: its
    count of Python function calls (the same on a busy machine as on a quiet one) goes to `extra["calls"]` and
    its top functions to stderr. Its times are then the profiler's, not to be compared."""
    wanted = [part for part in os.environ.get("BENCH_PROFILE", "").split(",") if part]
    if not any(part in timing.name for part in wanted):
        return nullcontext()
    return _profile(timing)


@contextmanager
def _profile(timing: Timing):
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        stats = pstats.Stats(profile, stream=sys.stderr)
        timing.extra["calls"] = stats.total_calls  # type: ignore[attr-defined]
        timing.note = f"{timing.note}; {stats.total_calls:,} calls (profiled)".lstrip("; ")  # type: ignore[attr-defined]
        print(f"--- {timing.name}", file=sys.stderr)
        stats.sort_stats("tottime").print_stats(15)


@contextmanager
def held_dispatch():
    """Record outbox work but publish nothing, as a web request does with a broker: the background work a
    change enqueues (without a broker it would run in-process, on commit) is timed apart, as a worker runs it."""
    try:
        from salesmgmt import outbox
    except ImportError:  # a commit before issue 11 (bench.compare times older commits with this harness)
        from salesmgmt.lib import outbox

    original = outbox.dispatch
    outbox.dispatch = lambda *args, **kwargs: 0
    try:
        yield
    finally:
        outbox.dispatch = original


def repeated(name: str, runs: int, work, *, note: str = "", clock=time.perf_counter) -> tuple[Timing, list]:
    """Run `work()` `runs` times: a Timing of the median run (its queries: the median too) and every run's
    result. A median of several runs is steadier than one run on a noisy machine. `clock` is read before
    and after each run (tests pass a fake one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seconds, cpus, queries, results = [], [], [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start, cpu = clock(), time.process_time()
            results.append(work())
            seconds.append(clock() - start)
            cpus.append(time.process_time() - cpu)
        queries.append(len(captured))
    timing = Timing(
        name=name,
        seconds=statistics.median(seconds),
        queries=int(statistics.median(queries)),
        cpu=statistics.median(cpus),
        note=note,
    )
    timing.extra["runs"] = seconds
    return timing, results


class DatabaseCPU:
    """CPU seconds PostgreSQL spends for this connection inside the block: its backend and the parallel workers
    it starts, read from /proc (the server on this machine, readable by this user; else `seconds` is None).

    On a machine shared with other people's runs the wall time of a query stretches with their load; its CPU
    time does not, nearly. Workers are sampled every `interval` seconds while the block runs (what a worker
    spends after its last sample, up to `interval`, is missed)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.seconds: float | None = None

    def __enter__(self) -> DatabaseCPU:
        import threading

        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]
        self.tick = os.sysconf("SC_CLK_TCK")
        start = self._cpu(self.backend)
        if start is None:
            self.thread = None
            return self
        self.start, self.workers = start, {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.thread is None:
            return
        self.done.set()
        self.thread.join()
        backend = self._cpu(self.backend) or self.start
        self.seconds = (backend - self.start + sum(self.workers.values())) / self.tick

    def _sample(self) -> None:
        marker = f"parallel worker for PID {self.backend}".encode()
        others: set[str] = set()  # processes seen that are not its workers (read once)
        while not self.done.wait(self.interval):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name in others:
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        if marker not in f.read():
                            others.add(entry.name)
                            continue
                except OSError:
                    continue
                cpu = self._cpu(int(entry.name))
                if cpu is not None:
                    self.workers[int(entry.name)] = cpu

    @staticmethod
    def _cpu(pid: int) -> int | None:
        """utime + stime of a process, in clock ticks."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])
