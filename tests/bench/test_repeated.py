"""`bench.repeated`: the timing of the median run, and every run's result."""

import time

import pytest

from bench import repeated


@pytest.mark.django_db
def test_repeated_times_the_median_run_and_returns_every_result():
    pauses = iter([0.06, 0.01, 0.03])

    def work():
        pause = next(pauses)
        time.sleep(pause)
        return pause

    timing, results = repeated("nap", 3, work)
    assert results == [0.06, 0.01, 0.03]
    assert 0.03 <= timing.seconds < 0.06  # the middle one, not the mean (0.033) nor the last
    assert len(timing.extra["runs"]) == 3 and max(timing.extra["runs"]) >= 0.06
