"""Attainment math on plain values: time progress (calendar and working days), pace, coverage, run rate."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesmgmt.lib import attainment as a

Q1 = (date(2026, 1, 1), date(2026, 3, 31))  # 90 calendar days, 64 working days Mon-Fri


def test_time_progress_calendar_days():
    assert a.time_progress(*Q1, date(2025, 12, 31)) == Decimal("0")
    assert a.time_progress(*Q1, date(2026, 1, 1)) == Decimal("0.0111")  # 1 of 90
    assert a.time_progress(*Q1, date(2026, 2, 14)) == Decimal("0.5")  # 45 of 90: 时间过半
    assert a.time_progress(*Q1, date(2026, 3, 31)) == Decimal("1")
    assert a.time_progress(*Q1, date(2026, 7, 1)) == Decimal("1")


def test_time_progress_working_days_skips_weekends_and_holidays():
    done, total = a.elapsed_days(*Q1, date(2026, 1, 9), working_days=True)
    assert (done, total) == (7, 64)  # Thu 1 Jan .. Fri 9 Jan: 7 working days
    holidays = [date(2026, 1, 1), date(2026, 2, 16), date(2026, 2, 17)]
    done, total = a.elapsed_days(*Q1, date(2026, 1, 9), working_days=True, holidays=holidays)
    assert (done, total) == (6, 61)
    # A Saturday adds nothing to working-day progress.
    assert a.time_progress(*Q1, date(2026, 1, 10), working_days=True) == a.time_progress(
        *Q1, date(2026, 1, 9), working_days=True
    )


def test_attainment_gap_pace_coverage_run_rate():
    att = a.attainment(Decimal("400"), Decimal("1000"))
    assert att == Decimal("0.4")
    assert a.gap(Decimal("400"), Decimal("1000")) == Decimal("600")
    assert a.gap(Decimal("1400"), Decimal("1000")) == Decimal("0")
    assert a.pace_gap(att, Decimal("0.5")) == Decimal("-0.1")  # ten points behind time
    assert a.coverage(Decimal("1800"), Decimal("600")) == Decimal("3.00")
    assert a.coverage(Decimal("1800"), Decimal("0")) is None
    assert a.attainment(Decimal("5"), Decimal("0")) is None
    assert a.run_rate_forecast(Decimal("450"), *Q1, date(2026, 2, 14)) == Decimal("900.00")
    assert a.run_rate_forecast(Decimal("450"), *Q1, date(2025, 12, 1)) == Decimal("0")
    assert a.weighted(Decimal("1000"), 30) == Decimal("300.00")
    # Rounded once over all the deals: two deals of 0.01 at 50 % weigh 0.01 together (0.005 + 0.005), not 0.02.
    assert a.weighted_total(Decimal("0.01") * 50 + Decimal("0.01") * 50) == Decimal("0.01")
    assert a.weighted(Decimal("0.01"), 50) + a.weighted(Decimal("0.01"), 50) == Decimal("0.02")


def test_period_ending_before_start_is_refused():
    with pytest.raises(ValueError):
        a.time_progress(date(2026, 2, 1), date(2026, 1, 1), date(2026, 1, 15))


@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    length=st.integers(0, 400),
    offset=st.integers(-30, 430),
    working=st.booleans(),
)
def test_time_progress_is_monotonic_and_bounded(start, length, offset, working):
    from datetime import timedelta

    end = start + timedelta(days=length)
    today = start + timedelta(days=offset)
    p = a.time_progress(start, end, today, working_days=working)
    q = a.time_progress(start, end, today + timedelta(days=1), working_days=working)
    assert Decimal(0) <= p <= q <= Decimal(1)


def test_a_shown_percentage_is_rounded_once_from_the_exact_ratio():
    # 122,294 of 200,000 is 61.147 %: the fraction 0.6115 rounded again would show 61.2.
    assert a.attainment(Decimal("122294"), Decimal("200000")) == Decimal("0.6115")
    assert a.percent(Decimal("122294"), Decimal("200000")) == Decimal("61.1")
    assert a.percent(Decimal("122300"), Decimal("200000")) == Decimal("61.2")  # exactly 61.15: half up
    assert a.percent(Decimal("1"), Decimal("0")) is None
    # Points: the exact difference of two ratios, rounded once (61.147 − 45.0 = 16.147, not 16.15 → 16.2).
    assert a.points(Decimal("122294"), Decimal("200000"), 45, 100) == Decimal("16.1")
    assert a.points(Decimal("90000"), Decimal("200000"), Decimal("122294"), Decimal("200000")) == Decimal("-16.1")
    assert a.points(1, 0, 1, 2) is None
    assert a.elapsed_share(*Q1, date(2026, 2, 14)) == (45, 90)
