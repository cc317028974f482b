"""The arithmetic of the load benchmark (`bench/loadstats.py`, `bench/bench_load.py`) on made-up input: locust's
JSON stats into reads, writes and rates; CPU seconds from two snapshots of /proc; sampled statements into
the slowest kinds. Nothing here runs a server or reads a clock."""

import json
import os
import time

import pytest

from bench import Timing, bench_load, loadstats
from bench.loadstats import (
    Group,
    Proc,
    complete_sql,
    cpu_ticks,
    machine_busy_ticks,
    named,
    normalize_sql,
    percentile,
    short_sql,
    slowest,
    summarize,
    tree,
)


def entry(name, method, times, per_second, start=1000.2, failures=0):
    return {
        "name": name,
        "method": method,
        "start_time": start,
        "last_request_timestamp": max(per_second) + 0.5,
        "num_requests": sum(times.values()),
        "num_failures": failures,
        "response_times": {str(ms): n for ms, n in times.items()},  # JSON object keys are strings
        "num_reqs_per_sec": {str(s): n for s, n in per_second.items()},
    }


def test_percentile_follows_locust_counting_down_from_the_slowest():
    # 100 requests: 90 at 10 ms, 5 at 200 ms, 4 at 900 ms, 1 at 3,000 ms. Locust's rule gives the first
    # bucket, from the slowest down, with no more than 95 requests below it: 900 ms for p95, not 200 ms.
    times = {10: 90, 200: 5, 900: 4, 3000: 1}
    assert percentile(times, 100, 0.5) == 10
    assert percentile(times, 100, 0.90) == 200
    assert percentile(times, 100, 0.95) == 900
    assert percentile(times, 100, 0.99) == 3000
    assert percentile(times, 100, 1.0) == 3000
    assert percentile({}, 0, 0.95) == 0


def test_summarize_merges_reads_and_writes_and_counts_rates_over_whole_seconds_before_the_stop():
    entries = [
        entry("team pipeline", "GET", {100: 8, 2000: 2}, {1001: 4, 1002: 4, 1003: 2}, failures=1),
        entry("deal page", "GET", {50: 10}, {1001: 5, 1002: 5}),
        entry("move stage", "POST", {300: 3, 700: 1}, {1002: 2, 1004: 2}, start=1001.0),
        entry("never asked", "GET", {}, {1001: 0}),  # no requests: left out
    ]
    groups, window = summarize(entries, stopped=1003.7)

    reads, writes = groups["reads"], groups["writes"]
    assert (reads.requests, reads.failures, writes.requests) == (20, 1, 4)
    assert reads.response_times == {50: 10, 100: 8, 2000: 2}
    assert reads.p(0.5) == 0.1 and reads.p(0.95) == 2.0
    assert writes.p(0.5) == 0.3 and writes.p(0.95) == 0.7
    assert groups["team pipeline"].p(0.95) == 2.0
    assert "never asked" not in groups
    # Whole seconds from the reset (1000.2 -> 1001) to the stop (1003.7 -> 1003): 1001 and 1002.
    assert window == 2.0
    assert reads.per_second == (4 + 4 + 5 + 5) / 2  # the 2 reads ended in second 1003 are after the stop
    assert writes.per_second == 2 / 2


def test_summarize_without_a_stop_time_rates_up_to_the_last_request_as_locust_does():
    groups, window = summarize([entry("deal page", "GET", {50: 10}, {1001: 5, 1004: 5}, start=1000.5)])
    assert window == pytest.approx(4.0)  # 1000.5 to 1004.5
    assert groups["reads"].per_second == pytest.approx(10 / 4.0)
    assert groups["writes"].requests == 0 and groups["writes"].per_second == 0


def stat(pid, comm, ppid, utime, stime, cutime=0, cstime=0):
    """A /proc/<pid>/stat line with the fields the benchmark reads (the rest zeros)."""
    fields = ["S", ppid, 0, 0, 0, 0, 0, 0, 0, 0, 0, utime, stime, cutime, cstime] + [0] * 37
    return Proc.parse(pid, f"{pid} ({comm}) " + " ".join(map(str, fields)))


def test_proc_stat_parsing_survives_spaces_and_parentheses_in_the_command_name():
    p = stat(42, "gunicorn: (worker) x", 7, 11, 5, 3, 2)
    assert (p.pid, p.comm, p.ppid, p.ticks, p.reaped) == (42, "gunicorn: (worker) x", 7, 16, 5)


def test_cpu_between_snapshots_counts_backends_that_ended_through_the_postmasters_reaped_ticks():
    before = {
        p.pid: p
        for p in [
            stat(1, "postgres", 0, 100, 50),  # the postmaster
            stat(2, "postgres", 1, 30, 10),  # a backend that ends before the second snapshot
            stat(3, "postgres", 1, 5, 5),  # a backend that lives on
            stat(10, "python", 9, 200, 20),  # gunicorn master
            stat(11, "python", 10, 400, 40),  # a worker
            stat(50, "python", 1, 999, 999),  # a process of someone else
        ]
    }
    after = {
        p.pid: p
        for p in [
            stat(1, "postgres", 0, 101, 50, cutime=70, cstime=20),  # backend 2 ended after 90 ticks in all
            stat(3, "postgres", 1, 25, 5),
            stat(4, "postgres", 1, 15, 5),  # a backend started and still running
            stat(10, "python", 9, 201, 20),
            stat(11, "python", 10, 500, 60),
        ]
    }
    postgres = cpu_ticks(after, named(after, "postgres")) - cpu_ticks(before, named(before, "postgres"))
    # postmaster +1, backend 2: 90 - 40 already counted = +50, backend 3 +20, backend 4 +20.
    assert postgres == 1 + 50 + 20 + 20
    assert tree(before, 10) == {10, 11}
    assert cpu_ticks(after, tree(after, 10)) - cpu_ticks(before, tree(before, 10)) == 1 + 120


def test_cpu_split_in_seconds_with_the_rest_of_the_machine_as_other():
    before = {"postgres": 1000, "gunicorn": 500, "locust": 0, "sampler": 50, "machine": 10_000}
    after = {"postgres": 3000, "gunicorn": 1500, "locust": 100, "sampler": 60, "machine": 14_000}
    split = bench_load.cpu_split(before, after, 100)
    assert split == pytest.approx({"postgres": 20.0, "gunicorn": 10.0, "locust": 1.0, "sampler": 0.1, "other": 8.9})


def test_the_load_runs_the_issues_gunicorn_shape_or_the_one_asked_for(monkeypatch):
    """3 processes x 4 threads by default; BENCH_WEB_* name others, 0 of either taking production's default."""
    from salesmgmt import gunicorn as production

    assert bench_load.web_shape() == (3, 4) or {"BENCH_WEB_WORKERS", "BENCH_WEB_THREADS"} & set(os.environ)
    monkeypatch.setattr(bench_load, "WEB_WORKERS", 5)
    monkeypatch.setattr(bench_load, "WEB_THREADS", 2)
    assert bench_load.web_shape() == (5, 2)
    monkeypatch.setattr(bench_load, "WEB_WORKERS", 0)
    monkeypatch.setattr(bench_load, "WEB_THREADS", 0)
    assert bench_load.web_shape() == (production.workers, production.threads)


def test_machine_busy_ticks_leave_out_idle_and_iowait():
    text = "cpu  100 5 50 1000 30 2 3 0 0 0\ncpu0 50 2 25 500 15 1 1 0 0 0\nintr 1 2 3\n"
    assert machine_busy_ticks(text) == 100 + 5 + 50 + 2 + 3


def test_normalize_sql_gives_statements_with_other_values_one_shape():
    a = "SELECT * FROM t WHERE id = 12 AND name = 'O''Brien' AND x IN (1, 2, 3) AND t2.c = -4.5"
    b = "SELECT *  FROM t WHERE id = 7 AND name = 'x' AND x IN (9) AND t2.c = 3"
    assert (
        normalize_sql(a) == normalize_sql(b) == "SELECT * FROM t WHERE id = ? AND name = ? AND x IN (...) AND t2.c = ?"
    )
    assert normalize_sql('SELECT "T3"."id" FROM "crm_region" T3') == 'SELECT "T3"."id" FROM "crm_region" T3'


def test_short_sql_keeps_what_a_statement_reads_and_how_it_filters():
    sql = 'SELECT "t"."id",\n  "t"."name", (SELECT 1) FROM "t" INNER JOIN "u" ON ("t"."u_id" = "u"."id")\n'
    sql += 'WHERE "u"."x" = 1'
    assert short_sql(sql) == 'SELECT … FROM "t" INNER JOIN "u" ON ("t"."u_id" = "u"."id") WHERE "u"."x" = 1'
    assert short_sql("COMMIT") == "COMMIT"
    assert short_sql(sql, length=20) == 'SELECT … FROM "t" I…'


def test_complete_sql_finds_the_whole_of_a_truncated_statement_among_known_ones():
    full = 'SELECT "d"."id", "d"."name" FROM "d" WHERE "d"."owner_id" = 7 ORDER BY "d"."id"'
    other = 'SELECT "d"."id", "d"."stage" FROM "d" WHERE "d"."owner_id" = 3'
    truncated = 'SELECT "d"."id", "d"."name" FROM "d" WHERE "d"."own'  # cut mid-word, another owner
    assert complete_sql(truncated, [other, full.replace("7", "12")]) == full.replace("7", "12")
    assert complete_sql(truncated, [other]) is None
    scoped = full.replace("ORDER BY", 'AND "d"."region" = 4 ORDER BY')
    assert complete_sql(truncated, [full, scoped]) is None  # two kinds begin so: no telling which
    assert complete_sql("COMMIT", ["COMMIT"]) is None  # nothing more to learn


def test_slowest_counts_a_statement_once_at_its_longest_and_ranks_kinds_by_their_slowest():
    lock = "SELECT id FROM plan WHERE id = 1 FOR NO KEY UPDATE"
    samples = [
        (("pid 1", "t0"), 0.10, lock, False),
        (("pid 1", "t0"), 0.60, lock, True),  # the same statement, seen again waiting for the lock
        (("pid 2", "t0"), 0.20, "SELECT id FROM plan WHERE id = 2 FOR NO KEY UPDATE", False),
        (("pid 3", "t1"), 0.30, "SELECT count(*) FROM deal WHERE region = 5", False),
        (("pid 4", "t1"), 0.05, "COMMIT", False),
        (("pid 4", "t2"), 0.01, "COMMIT", False),
    ]
    first, second, third = slowest(samples)
    assert (first.seconds, first.statements, first.locked, first.total) == (0.60, 2, 1, pytest.approx(0.80))
    assert first.sql == lock
    assert (second.seconds, second.statements) == (0.30, 1)
    assert (third.sql, third.statements, third.seconds) == ("COMMIT", 2, 0.05)
    assert len(slowest(samples, n=1)) == 1


def test_a_throughput_goal_is_a_floor_and_counts_print_in_their_unit():
    fast = Timing(name="throughput", seconds=61.0, unit="req/s", goal=60, at_least=True)
    slow = Timing(name="throughput", seconds=6.2, unit="req/s", goal=60, at_least=True)
    errors = Timing(name="errors", seconds=3, unit="errors", goal=0)
    assert (fast.met, slow.met, errors.met) == (True, False, False)
    assert (slow.value_text, slow.goal_text) == ("6.2 req/s", ">= 60 req/s")
    assert (errors.value_text, errors.goal_text) == ("3 errors", "<= 0 errors")
    assert Timing(name="t", seconds=0.25, goal=0.3).goal_text == "<= 0.3 s"


def test_load_timings_put_reads_and_writes_beside_their_goals():
    entries = [
        entry("team pipeline", "GET", {250: 96, 900: 4}, {1001: 60, 1002: 40}),
        entry("move stage", "POST", {150: 39, 400: 1}, {1001: 20, 1002: 20}),
    ]
    groups, measured = summarize(entries, stopped=1003.0)
    timings = {
        t.name: t for t in bench_load.load_timings(groups, measured, users=60, seconds=60, load_average=(1, 1, 1))
    }
    throughput = next(t for name, t in timings.items() if name.startswith("load: throughput"))
    assert throughput.seconds == 50.0 + 20.0 and throughput.met
    assert timings["load: reads p95"].seconds == 0.25 and timings["load: reads p95"].met
    assert timings["load: writes p95"].seconds == 0.15 and timings["load: writes p95"].met
    assert timings["load: team pipeline p95"].goal is None
    assert "warm-up" not in throughput.note
    warm = {"seconds": 30, "requests": 1200, "failures": 2, "p50_ms": 400, "p95_ms": 1800, "errors": []}
    warmed = bench_load.load_timings(groups, measured, users=60, seconds=60, load_average=(1, 1, 1), warm=warm)
    assert warmed[0].note.startswith("after 30 s of warm-up (1,200 requests, p50 400 ms, p95 1,800 ms); ")
    assert warmed[0].seconds == throughput.seconds  # the warm-up's requests are not in the figures
    assert "think time 0-1 s" in throughput.note
    paced = bench_load.load_timings(groups, measured, users=60, seconds=60, load_average=(1, 1, 1), pace=0.95)
    assert "each user starts a request every 0.95 s" in paced[0].note and "think time" not in paced[0].note


def test_the_saturation_run_keeps_its_throughput_goal_and_reports_percentiles_without_one():
    entries = [
        entry("team pipeline", "GET", {250: 50, 900: 50}, {1001: 60, 1002: 40}),
        entry("move stage", "POST", {600: 40}, {1001: 20, 1002: 20}),
    ]
    groups, measured = summarize(entries, stopped=1003.0)
    rows = bench_load.saturation(
        bench_load.load_timings(groups, measured, users=60, seconds=60, load_average=(1, 1, 1))
    )
    by_name = {t.name: t for t in rows}
    throughput = next(t for name, t in by_name.items() if name.startswith("saturation: throughput"))
    assert throughput.goal == bench_load.THROUGHPUT_GOAL and throughput.met
    assert by_name["saturation: reads p95"].seconds == 0.9 and by_name["saturation: reads p95"].goal is None
    assert by_name["saturation: writes p95"].goal is None
    assert not [t for t in rows if t.name.startswith("load:")]


def test_failures_of_the_warm_up_count_as_errors(tmp_path):
    entries = [
        entry("team pipeline", "GET", {250: 100}, {1001: 100}),
        entry("move stage", "POST", {150: 40}, {1001: 40}),
    ]
    groups, _measured = summarize(entries, stopped=1002.0)
    missing = tmp_path / "none.csv"
    (clean, _deadlocks) = bench_load.error_timings(groups, missing, 0)
    assert clean.seconds == 0 and clean.met
    warm = {"failures": 3, "errors": [{"name": "deal page", "error": "HTTP 500", "occurrences": 3}]}
    (errors, _deadlocks) = bench_load.error_timings(groups, missing, 0, warm=warm)
    assert errors.seconds == 3 and not errors.met
    assert errors.note == "3 x deal page: HTTP 500 (warm-up)"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_drained_waits_for_three_quiet_checks_in_a_row():
    clock = FakeClock()
    queued = iter([2, 1, 0, 0, 1, 0, 0, 0, 5])  # a running task enqueued one more after two quiet checks
    assert bench_load.drained(lambda: next(queued), lambda: 0, timeout=60, clock=clock, sleep=clock.sleep)
    assert clock.now == 7 * 0.5  # the eighth check was the third quiet one in a row


def test_drained_counts_the_outbox_and_gives_up_at_the_timeout():
    clock = FakeClock()
    assert not bench_load.drained(lambda: 0, lambda: 1, timeout=10, clock=clock, sleep=clock.sleep)
    assert clock.now == 10


def test_cpu_per_request_is_the_apps_cpu_over_the_requests_served():
    reads, writes = Group("reads"), Group("writes")
    reads.per_second, writes.per_second = 40.0, 10.0
    used = {"postgres": 30.0, "gunicorn": 60.0, "celery": 15.0, "locust": 20.0, "other": 1.0}
    timing = bench_load.cpu_per_request(used, 60.0, {"reads": reads, "writes": writes})
    # 105 cpu-s over 60 s is 1.75 cores; at 50 requests a second that is 35 ms each.
    assert timing.seconds == pytest.approx(35.0)
    assert timing.unit == "ms"
    assert "PostgreSQL 10.0 + gunicorn 20.0 + Celery 5.0 ms" in timing.note


def test_queued_counts_this_runs_waiting_and_unacknowledged_messages_only():
    import json

    class FakeRedis:
        def llen(self, name):
            return {bench_load.QUEUE: 3}.get(name, 0)

        def hvals(self, name):
            assert name == "unacked"  # kombu's Redis transport keeps taken, unacknowledged messages there
            mine = json.dumps([{"body": "..."}, "", bench_load.QUEUE])
            other = json.dumps([{"body": "..."}, "", "celery"])  # another deployment's queue on the same Redis
            return [mine.encode(), other.encode(), mine.encode()]

    assert bench_load.queued_messages(FakeRedis()) == 3 + 2


def test_route_cpu_adds_requests_up_by_route_costliest_first():
    lines = [
        "GET\t/review/\t200\t80.0\tdirector\t1000.5\n",
        "GET\t/pipeline/deals/N/\t200\t20.0\tmanager\t1001.0\n",
        "GET\t/review/\t200\t2.0\tmanager\t1001.2\n",
        "GET\t/pipeline/deals/N/\t200\t30.0\trep\t1002.0\n",
        "GET\t/pipeline/deals/N/\t404\t10.0\t-\t1002.1\n",
        "POST\t/api/opportunities/N/move-stage/\t200\t12.5\twriter\t1003.0\n",
        "GET\t/review/\t200\t3.0\tmanager",  # cut short by a worker's exit
    ]
    routes = loadstats.route_cpu(lines)
    assert [(r.route, r.count, r.total) for r in routes] == [
        ("GET /review/", 2, 82.0),
        ("GET /pipeline/deals/N/", 3, 60.0),
        ("POST /api/opportunities/N/move-stage/", 1, 12.5),
    ]
    deals = routes[1]
    assert (deals.mean, deals.p50, deals.p90) == (20.0, 20.0, 30.0)
    rows = bench_load.route_cpu_timings(routes, top=2)
    assert [r.name for r in rows] == ["load: gunicorn CPU, GET /review/", "load: gunicorn CPU, GET /pipeline/deals/N/"]
    assert rows[0].seconds == 41.0 and rows[0].unit == "ms"
    assert rows[0].note.startswith("53% of the requests' CPU; 2 requests")
    by_who = loadstats.route_cpu(lines, by="who")
    assert [(r.route, r.count, r.total) for r in by_who] == [
        ("director", 1, 80.0),
        ("rep", 1, 30.0),
        ("manager", 2, 22.0),
        ("writer", 1, 12.5),
        ("-", 1, 10.0),
    ]
    assert bench_load.route_cpu_timings(by_who, top=1, label="by persona")[0].name == (
        "load: gunicorn CPU by persona, director"
    )
    # After a warm-up: the requests that ended from its end on only.
    after = loadstats.route_cpu(lines, since=1001.0)
    assert [(r.route, r.count, r.total) for r in after] == [
        ("GET /pipeline/deals/N/", 3, 60.0),
        ("POST /api/opportunities/N/move-stage/", 1, 12.5),
        ("GET /review/", 1, 2.0),
    ]


def test_the_cpu_hooks_record_a_requests_own_cpu_with_ids_as_n(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from bench import gunicorn_cpu

    monkeypatch.setenv("BENCH_REQUEST_CPU", str(tmp_path / "cpu"))
    config = {
        "readers": {"director": {"accounts": [{"session": "s-director"}]}, "rep": {"accounts": [{"session": "s-rep"}]}},
        "writers": {"accounts": [{"token": "t-writer"}]},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("BENCH_LOAD_CONFIG", str(tmp_path / "config.json"))
    gunicorn_cpu.personas.cache_clear()
    asked = [
        {"HTTP_COOKIE": "csrftoken=x; sessionid=s-rep"},
        {"HTTP_AUTHORIZATION": "Token t-writer"},
        {"HTTP_COOKIE": "sessionid=someone-else"},
        {},
    ]
    for environ in asked:
        req = SimpleNamespace(method="GET", path="/pipeline/deals/123/")
        gunicorn_cpu.pre_request(None, req)
        sum(i * i for i in range(200_000))  # some CPU on this thread
        gunicorn_cpu.post_request(None, req, environ, SimpleNamespace(status_code=200))
    gunicorn_cpu.personas.cache_clear()
    (written,) = tmp_path.glob("cpu.*")
    rows = [line.split("\t") for line in written.read_text().splitlines()]
    assert [(method, path, status, who) for method, path, status, _ms, who, _at, _wall in rows] == [
        ("GET", "/pipeline/deals/N/", "200", who) for who in ("rep", "writer", "-", "-")
    ]
    assert all(float(ms) > 0 for _m, _p, _s, ms, _w, _at, _wall in rows)
    # The wall time between the hooks holds the request's CPU (one thread, nothing else running on it).
    assert all(float(wall) >= float(ms) * 0.9 for _m, _p, _s, ms, _w, _at, wall in rows)
    ended = [float(at) for _m, _p, _s, _ms, _w, at, _wall in rows]
    assert ended == sorted(ended) and abs(ended[-1] - time.time()) < 60
    from salesmgmt import gunicorn as production

    assert gunicorn_cpu.post_worker_init is production.post_worker_init  # production's settings come along
    assert (gunicorn_cpu.keepalive, gunicorn_cpu.threads) == (production.keepalive, production.threads)


def test_server_times_split_reads_from_writes_and_skip_lines_without_a_wall_time():
    lines = [
        f"GET\t/pipeline/deals/N/\t200\t15.0\tmanager\t{1000 + i}\t{wall}\n" for i, wall in enumerate(range(1, 101))
    ]
    lines += [
        "POST\t/api/opportunities/N/move-stage/\t200\t12.0\twriter\t1200.0\t40.0\n",
        "POST\t/api/opportunities/N/move-stage/\t200\t12.0\twriter\t1201.0\t60.0\n",
        "GET\t/review/\t200\t80.0\tdirector\t1202.0\n",  # an older line: no wall time, not counted
        "GET\t/review/\t200\t3.0\tmanager\t1203.0\t9",  # cut short by a worker's exit (no line end): left out
    ]
    times = loadstats.server_times(lines)
    assert times["reads"] == loadstats.ServerTime(count=100, p50=51.0, p95=96.0)
    assert times["writes"] == loadstats.ServerTime(count=2, p50=60.0, p95=60.0)
    assert loadstats.server_times(lines, since=1050.0)["reads"].count == 50
    rows = bench_load.server_time_timings(times)
    assert [(r.name, r.seconds) for r in rows] == [
        ("load: reads p95 inside gunicorn", 0.096),
        ("load: writes p95 inside gunicorn", 0.06),
    ]
    assert rows[0].note.startswith("100 requests, p50 51 ms;")
    # The CPU by route reads the same lines, the wall time left aside.
    assert [(r.route, r.count) for r in loadstats.route_cpu(lines)][:2] == [
        ("GET /pipeline/deals/N/", 100),
        ("GET /review/", 1),
    ]
