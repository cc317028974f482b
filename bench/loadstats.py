"""The arithmetic of the load benchmark (`bench/bench_load.py`), apart from anything that runs: locust's
stats into reads and writes, CPU seconds from two snapshots of `/proc`, gunicorn's CPU by route, and SQL
statements sampled from `pg_stat_activity` into the slowest kinds. Pure functions over plain values, so tests
feed them text.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping

# --- locust's stats ----------------------------------------------------------------------------------


def percentile(response_times: Mapping[int, int], count: int, percent: float) -> int:
    """The response time (ms) that `percent` of `count` requests finished within, from a histogram
    {rounded ms: requests}: locust's own rule (`locust.stats.calculate_response_time_percentile`),
    applied here to histograms merged across request names (locust reports one name at a time)."""
    wanted = int(count * percent)
    processed = 0
    for ms in sorted(response_times, reverse=True):
        processed += response_times[ms]
        if count - processed <= wanted:
            return ms
    return 0


@dataclasses.dataclass
class Group:
    """Requests of one kind (all reads, all writes, or one request name)."""

    name: str
    requests: int = 0
    failures: int = 0
    response_times: dict[int, int] = dataclasses.field(default_factory=dict)  # {rounded ms: requests}
    completed: dict[int, int] = dataclasses.field(default_factory=dict)  # {unix second: requests that ended in it}
    per_second: float = 0.0  # requests completed a second while every user ran

    def add(self, entry: Mapping) -> None:
        self.requests += entry["num_requests"]
        self.failures += entry["num_failures"]
        for histogram, counts in (
            (self.response_times, entry["response_times"]),
            (self.completed, entry["num_reqs_per_sec"]),
        ):
            for key, n in counts.items():  # JSON keys are strings
                histogram[int(key)] = histogram.get(int(key), 0) + n

    def p(self, percent: float) -> float:
        """A percentile in seconds."""
        timed = sum(self.response_times.values())
        return percentile(self.response_times, timed, percent) / 1000


def summarize(entries: Iterable[Mapping], stopped: float | None = None) -> tuple[dict[str, Group], float]:
    """Locust's `--json-file` entries (one per method and name) as groups: "reads" (GET), "writes" (every
    other method) and one per request name; and the window their rates are over, in seconds.

    Every request counts in the percentiles, the ones still running when the run time ended too (locust
    lets them finish). The rates count the requests that ended in the whole seconds from the stats reset
    (once every user runs: `--reset-stats`, the entries' start) to `stopped` (when the run time ended and
    users stopped starting requests); without `stopped`, up to the last request, as locust's own req/s."""
    entries = [e for e in entries if e["num_requests"] or e["num_failures"]]
    groups: dict[str, Group] = {"reads": Group("reads"), "writes": Group("writes")}
    if not entries:
        return groups, 0.0
    start = min(e["start_time"] for e in entries)
    for e in entries:
        kind = "reads" if e["method"] == "GET" else "writes"
        for name in (kind, e["name"]):
            groups.setdefault(name, Group(name)).add(e)
    if stopped is None:
        end = max(e["last_request_timestamp"] or e["start_time"] for e in entries)
        window = end - start
        for group in groups.values():
            group.per_second = group.requests / window if window > 0 else 0.0
        return groups, window
    first, last = math.ceil(start), math.floor(stopped)  # whole seconds [first, last)
    window = max(0, last - first)
    for group in groups.values():
        inside = sum(n for second, n in group.completed.items() if first <= second < last)
        group.per_second = inside / window if window else 0.0
    return groups, float(window)


# --- CPU seconds from /proc ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    ppid: int
    ticks: int  # utime + stime: the process's own CPU (all its threads)
    reaped: int  # cutime + cstime: CPU of its children that ended and that it waited for

    @classmethod
    def parse(cls, pid: int, stat: str) -> Proc:
        """A `/proc/<pid>/stat` line. The command name is in parentheses and may hold spaces or ')'."""
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        return cls(pid, comm, ppid, utime + stime, cutime + cstime)


def read_procs(root: str = "/proc") -> dict[int, Proc]:
    """Every process's stat now (processes that end while this reads are skipped)."""
    procs = {}
    for name in os.listdir(root):
        if name.isdigit():
            try:
                with open(f"{root}/{name}/stat") as f:
                    procs[int(name)] = Proc.parse(int(name), f.read())
            except (FileNotFoundError, ProcessLookupError):
                continue
    return procs


def tree(procs: Mapping[int, Proc], root: int) -> set[int]:
    """`root` and its living descendants."""
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def named(procs: Mapping[int, Proc], comm: str) -> set[int]:
    return {p.pid for p in procs.values() if p.comm == comm}


def cpu_ticks(procs: Mapping[int, Proc], members: Iterable[int]) -> int:
    """CPU ticks a set of processes has used so far: their own, plus those of their children that ended
    (PostgreSQL runs a backend process per connection: with connections closed after each request the
    backends end within the run, and their CPU shows only in the postmaster's reaped ticks). The
    difference of two such counts is the CPU used between them, by processes that lived throughout,
    started, or ended in between."""
    return sum(procs[pid].ticks + procs[pid].reaped for pid in members if pid in procs)


def machine_busy_ticks(stat: str) -> int:
    """Busy CPU ticks of the whole machine from `/proc/stat` (all but idle and iowait)."""
    line = next(x for x in stat.splitlines() if x.startswith("cpu "))
    values = [int(x) for x in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


# --- SQL sampled from pg_stat_activity -------------------------------------------------------------------


def normalize_sql(sql: str) -> str:
    """The shape of a statement: literals as ?, IN lists as (...), white space collapsed."""
    shape = re.sub(r"'(?:[^']|'')*'", "?", sql)
    shape = re.sub(r"(?<![\w.])-?\d+(?:\.\d+)?\b", "?", shape)
    shape = re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(...)", shape)
    return re.sub(r"\s+", " ", shape).strip()


def complete_sql(truncated: str, known: Iterable[str]) -> str | None:
    """The statement of `known` ones in full that `truncated` (a sampled statement cut after its first bytes)
    is the beginning of, but for the values; None when no kind of statement, or several, begin so (a cut
    in a long column list can leave the conditions that tell them apart out). Its last word may be cut:
    the shapes are compared without it."""
    prefix = normalize_sql(truncated).rsplit(" ", 1)[0]
    shapes = {normalize_sql(sql): sql for sql in known if len(sql) > len(truncated)}
    found = [sql for shape, sql in shapes.items() if shape.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def short_sql(sql: str, length: int = 200) -> str:
    """A statement on one line for a table: the outer SELECT's column list elided (its FROM, joins and
    conditions tell what it is), cut at `length` characters."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"^SELECT (?:DISTINCT )?.*? FROM ", "SELECT … FROM ", sql, count=1)
    return sql if len(sql) <= length else sql[: length - 1] + "…"


@dataclasses.dataclass
class SlowQuery:
    shape: str
    sql: str  # the slowest statement of this shape as sampled (pg_stat_activity truncates long ones)
    seconds: float  # the longest any statement of this shape was seen running
    statements: int = 0  # statements of this shape seen running
    total: float = 0.0  # their running times added (each as long as it was seen running)
    locked: int = 0  # of them, seen waiting for a lock


def slowest(samples: Iterable[tuple[object, float, str, bool]], n: int = 3) -> list[SlowQuery]:
    """The `n` slowest kinds of statement from samples (statement key, seconds it had been running, SQL,
    waiting for a lock): a statement sampled several times counts once, at the longest it was seen, as
    locked if it was seen waiting for a lock once. Running times are lower bounds, short by at most the
    sampling interval; a statement shorter than that may not be seen at all."""
    longest: dict[object, tuple[float, str, bool]] = {}
    for key, seconds, sql, locked in samples:
        was = longest.get(key, (0.0, sql, False))
        longest[key] = (max(seconds, was[0]), sql if seconds >= was[0] else was[1], locked or was[2])
    shapes: dict[str, SlowQuery] = {}
    for seconds, sql, locked in longest.values():
        shape = normalize_sql(sql)
        q = shapes.setdefault(shape, SlowQuery(shape, sql, seconds))
        q.statements += 1
        q.total += seconds
        q.locked += locked
        if seconds > q.seconds:
            q.seconds, q.sql = seconds, sql
    return sorted(shapes.values(), key=lambda q: q.seconds, reverse=True)[:n]


# --- CPU by route ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RouteCPU:
    """The CPU that gunicorn's threads spent on one route's requests (`bench.gunicorn_cpu`), in ms."""

    route: str  # "GET /pipeline/deals/N/"
    count: int
    total: float
    p50: float
    p90: float

    @property
    def mean(self) -> float:
        return self.total / self.count


def _records(lines: Iterable[str], since: float) -> Iterator[tuple[str, str, float, float | None]]:
    """(route, who, CPU ms, wall ms or None) of requests' lines ("method, path, status, CPU ms, who, unix time it
    ended[, wall ms]", tab-separated) that ended at `since` or later."""
    for line in lines:
        parts = line.rstrip("\n").split("\t")
        if not line.endswith("\n") or len(parts) not in (6, 7):
            continue  # a line cut short by a worker's exit
        method, path, _status, ms, who, ended = parts[:6]
        try:
            if float(ended) >= since:
                yield f"{method} {path}", who, float(ms), float(parts[6]) if len(parts) == 7 else None
        except ValueError:
            continue


def _at(times: list[float], share: float) -> float:
    """The time `share` of the (sorted) times are within: the one at that rank."""
    return times[min(len(times) - 1, int(len(times) * share))]


@dataclasses.dataclass(frozen=True)
class ServerTime:
    """How long gunicorn's threads held requests (wall time between its request hooks), in ms."""

    count: int
    p50: float
    p95: float


def server_times(lines: Iterable[str], *, since: float = 0.0) -> dict[str, ServerTime]:
    """The wall time inside gunicorn of the reads (GET) and the writes (every other method) whose lines record it,
    by "reads" and "writes" (a kind without such a line is left out)."""
    kinds: dict[str, list[float]] = {}
    for route, _who, _ms, wall in _records(lines, since):
        if wall is not None:
            kinds.setdefault("reads" if route.startswith("GET ") else "writes", []).append(wall)
    found = {}
    for kind, times in kinds.items():
        times.sort()
        found[kind] = ServerTime(count=len(times), p50=_at(times, 0.5), p95=_at(times, 0.95))
    return found


def route_cpu(lines: Iterable[str], *, by: str = "route", since: float = 0.0) -> list[RouteCPU]:
    """Requests' CPU lines added up by route (`by="route"`) or by who asked (`by="who"`: a persona of the load),
    the costliest first; the requests that ended at `since` (unix time) or later only."""
    by_route: dict[str, list[float]] = {}
    for route, who, ms, _wall in _records(lines, since):
        by_route.setdefault(route if by == "route" else who, []).append(ms)
    routes = []
    for route, times in by_route.items():
        times.sort()
        routes.append(
            RouteCPU(
                route=route,
                count=len(times),
                total=sum(times),
                p50=_at(times, 0.5),
                p90=_at(times, 0.9),
            )
        )
    return sorted(routes, key=lambda r: -r.total)
