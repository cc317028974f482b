"""`bench.bench_tier_l`'s table: tier L's figures get issue 15's goals and their ratio to tier M's, tier M's
are the reference (no goal), and a database of its own per tier."""

from dataclasses import asdict

import pytest

from bench import Timing, bench_tier_l


def _measured(tier: str, rebuild: float, incremental: float, review: float, director: float) -> dict:
    rows = [
        Timing(name=f"{tier}: incremental", seconds=incremental, extra={"key": "incremental"}),
        Timing(name=f"{tier}: exact", seconds=12.0, extra={"key": "exact"}),
        Timing(name=f"{tier}: rebuild", seconds=rebuild, extra={"key": "rebuild"}),
        Timing(name=f"{tier}: review", seconds=review, extra={"key": "review"}),
        Timing(name=f"{tier}: director", seconds=director, goal=0.8, extra={"key": "director"}),
    ]
    return {"timings": [asdict(t) for t in rows], "rss_mb": 900.0, "database_gb": 1.5}


def _generated(seconds: float) -> dict:
    counts = {"reps": 5, "opportunities": 6, "stage changes": 30, "target leaves": 12}
    return {"seconds": seconds, "steps": {"history": seconds / 2}, "counts": counts, "rss_mb": 700.0}


def test_tier_l_rows_carry_the_goals_and_the_ratio_to_tier_m():
    results = {
        "tier M": {"generated": _generated(30.0), "measured": _measured("tier M", 0.7, 0.030, 0.226, 0.5)},
        "tier L": {"generated": _generated(400.0), "measured": _measured("tier L", 9.1, 0.060, 0.25, 2.0)},
    }
    timings = bench_tier_l.table_rows(results)
    tier_m = [t for t in timings if t.name.startswith("tier M: ")]
    assert len(tier_m) == 7 and all(t.goal is None for t in tier_m)  # the reference: no goal, no ratio
    assert not any("x tier M" in t.note for t in tier_m)

    by_name = {t.name.removeprefix("tier L: "): t for t in timings if t.name.startswith("tier L: ")}
    assert by_name["rebuild"].goal == 10.0 and by_name["rebuild"].met is True
    ratio = by_name["nightly rebuild, ratio to tier M"]
    assert ratio.seconds == pytest.approx(13.0) and ratio.goal == 12.0 and ratio.met is False
    assert by_name["incremental"].goal == 0.05 and by_name["incremental"].met is False
    assert by_name["incremental"].note.startswith("2.0x tier M (30 ms)")
    assert by_name["review"].met is True
    assert by_name["director"].goal is None  # not a goal of issue 15
    generator = next(t for name, t in by_name.items() if name.startswith("generator"))
    assert generator.goal == 15 * 60 and "peak RSS 700 MB" in generator.note
    memory = by_name["memory"]
    assert (memory.seconds, memory.unit) == (1.5, "GB") and "900 MB" in memory.note


def test_each_tier_has_a_database_of_its_own(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/salesmgmt_bench")
    assert bench_tier_l.database_url("L").endswith("/salesmgmt_bench_tier_l")
    assert bench_tier_l.database_url("1").endswith("/salesmgmt_bench_tier_m")
    assert bench_tier_l.database_url("3").endswith("/salesmgmt_bench_scale_3")
    assert bench_tier_l.database_url("0.5").endswith("/salesmgmt_bench_scale_0_5")
