"""`bench.repeated`: the timing of the median run, its queries, and every run's result.

The runs are timed on a fake clock that each run advances by a known amount, so the test checks which
run is reported without reading the wall clock."""

import pytest

from bench import repeated
from crm.models import User


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.now


@pytest.mark.django_db
def test_repeated_times_the_median_run_and_returns_every_result():
    clock = FakeClock()
    durations = iter([6.0, 1.0, 3.0])
    queries = iter([1, 3, 2])

    def work():
        duration = next(durations)
        for _ in range(next(queries)):
            User.objects.exists()
        clock.now += duration
        return duration

    timing, results = repeated("nap", 3, work, clock=clock)

    assert results == [6.0, 1.0, 3.0]
    assert timing.extra["runs"] == [6.0, 1.0, 3.0]
    assert timing.seconds == 3.0  # the middle one, not the mean (3.33) nor the last
    assert timing.queries == 2  # the median count of queries too
    assert clock.reads == 6  # before and after each run
    assert timing.name == "nap"
