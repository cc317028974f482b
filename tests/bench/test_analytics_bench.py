"""The analytics benchmark at 1 % scale: it runs, and its pages answer what plain counts say (its asserts)."""

import pytest
from django.db import connection

from bench import bench_analytics


def test_the_analytics_benchmark_runs_at_small_scale(db):
    if connection.vendor != "postgresql":
        pytest.skip("bench.bigco loads with PostgreSQL COPY: runs in the PostgreSQL suite (make test-postgres)")
    timings = bench_analytics.run(scale=0.01)
    assert len(timings) == 5
    assert all(t.seconds > 0 and t.queries > 0 for t in timings)
