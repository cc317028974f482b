"""Fiscal calendar: any start month; quarters, months and weeks tile their parents exactly."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesmgmt.lib import periods

start_months = st.integers(min_value=1, max_value=12)
fiscal_years = st.integers(min_value=2000, max_value=2040)


def test_april_fiscal_year():
    fy = periods.year(2027, start_month=4)
    assert (fy.start, fy.end, fy.key) == (date(2027, 4, 1), date(2028, 3, 31), "FY2027")
    q4 = periods.quarter(2027, 4, start_month=4)
    assert (q4.start, q4.end) == (date(2028, 1, 1), date(2028, 3, 31))
    assert periods.fiscal_year_of(date(2028, 2, 29), 4) == 2027
    assert periods.period_of(date(2028, 2, 29), periods.MONTH, 4).key == "FY2027-M11"


def test_calendar_year_weeks_start_on_monday():
    weeks = periods.weeks(2026)
    assert weeks[0].number == 0 and weeks[0].start == date(2026, 1, 1) and weeks[0].end == date(2026, 1, 4)
    assert weeks[1].start == date(2026, 1, 5) and weeks[1].start.weekday() == 0
    assert weeks[-1].end == date(2026, 12, 31)


@given(fy=fiscal_years, start=start_months, kind=st.sampled_from([periods.QUARTER, periods.MONTH, periods.WEEK]))
def test_children_tile_the_year_exactly(fy, start, kind):
    year = periods.year(fy, start)
    parts = periods.children(year, kind, start)
    assert parts[0].start == year.start and parts[-1].end == year.end
    for a, b in zip(parts, parts[1:], strict=False):
        assert a.end + timedelta(days=1) == b.start
    assert sum(p.days for p in parts) == year.days


@given(fy=fiscal_years, start=start_months, q=st.integers(1, 4))
def test_quarter_is_three_months_and_weeks_clip_to_it(fy, start, q):
    quarter = periods.quarter(fy, q, start)
    months = periods.children(quarter, periods.MONTH, start)
    assert len(months) == 3 and months[0].start == quarter.start and months[-1].end == quarter.end
    weeks = periods.children(quarter, periods.WEEK, start)
    assert sum(w.days for w in weeks) == quarter.days


@given(
    day=st.dates(min_value=date(2001, 1, 1), max_value=date(2039, 12, 31)),
    start=start_months,
    kind=st.sampled_from(periods.KINDS),
)
def test_period_of_contains_the_day_and_keys_round_trip(day, start, kind):
    period = periods.period_of(day, kind, start)
    assert period.contains(day)
    assert periods.parse_key(period.key, start) == period


@pytest.mark.parametrize("bad", ["2027", "FY20x7", "FY2027-Q5", "FY2027-M13", "FY2027-X1"])
def test_bad_keys_are_refused(bad):
    with pytest.raises(ValueError):
        periods.parse_key(bad)
