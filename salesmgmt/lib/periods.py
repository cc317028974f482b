"""Fiscal periods: year, quarter, month, week, for a fiscal year starting on any month.

A fiscal year is named after the calendar year in which it *starts*
(start month 4 -> FY2027 runs 2027-04-01 .. 2028-03-31). Weeks are Monday-based and
belong to the fiscal year of their Monday, numbered from the first Monday on or after the
fiscal year's first day (days before that are week 0 of the year).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

YEAR, QUARTER, MONTH, WEEK = "year", "quarter", "month", "week"
KINDS = (YEAR, QUARTER, MONTH, WEEK)


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # inclusive
    kind: str
    fiscal_year: int
    number: int  # quarter 1-4, month 1-12 within the fiscal year, week number; 0 for a year

    @property
    def key(self) -> str:
        if self.kind == YEAR:
            return f"FY{self.fiscal_year}"
        if self.kind == QUARTER:
            return f"FY{self.fiscal_year}-Q{self.number}"
        if self.kind == MONTH:
            return f"FY{self.fiscal_year}-M{self.number:02d}"
        return f"FY{self.fiscal_year}-W{self.number:02d}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def fiscal_year_of(day: date, start_month: int = 1) -> int:
    return day.year if day.month >= start_month else day.year - 1


def year(fiscal_year: int, start_month: int = 1) -> Period:
    start = date(fiscal_year, start_month, 1)
    end_y, end_m = _add_months(fiscal_year, start_month, 11)
    return Period(start, _month_end(end_y, end_m), YEAR, fiscal_year, 0)


def month(fiscal_year: int, number: int, start_month: int = 1) -> Period:
    if not 1 <= number <= 12:
        raise ValueError(f"fiscal month must be 1-12, got {number}")
    y, m = _add_months(fiscal_year, start_month, number - 1)
    return Period(date(y, m, 1), _month_end(y, m), MONTH, fiscal_year, number)


def quarter(fiscal_year: int, number: int, start_month: int = 1) -> Period:
    if not 1 <= number <= 4:
        raise ValueError(f"fiscal quarter must be 1-4, got {number}")
    first = month(fiscal_year, (number - 1) * 3 + 1, start_month)
    last = month(fiscal_year, (number - 1) * 3 + 3, start_month)
    return Period(first.start, last.end, QUARTER, fiscal_year, number)


def weeks(fiscal_year: int, start_month: int = 1) -> list[Period]:
    fy = year(fiscal_year, start_month)
    first_monday = fy.start + timedelta(days=(7 - fy.start.weekday()) % 7)
    result = []
    if first_monday > fy.start:
        result.append(Period(fy.start, first_monday - timedelta(days=1), WEEK, fiscal_year, 0))
    monday, number = first_monday, 1
    while monday <= fy.end:
        result.append(Period(monday, min(monday + timedelta(days=6), fy.end), WEEK, fiscal_year, number))
        monday += timedelta(days=7)
        number += 1
    return result


def children(period: Period, kind: str, start_month: int = 1) -> list[Period]:
    """The periods of `kind` that make up `period` (year->quarters/months/weeks, quarter->months/weeks...)."""
    fy = period.fiscal_year
    if kind == QUARTER and period.kind == YEAR:
        return [quarter(fy, q, start_month) for q in range(1, 5)]
    if kind == MONTH and period.kind in (YEAR, QUARTER):
        months = [month(fy, m, start_month) for m in range(1, 13)]
        return [m for m in months if period.start <= m.start and m.end <= period.end]
    if kind == WEEK and period.kind in (YEAR, QUARTER, MONTH):
        # A week is clipped to the parent so children tile the parent exactly.
        result = []
        for w in weeks(fy, start_month):
            start, end = max(w.start, period.start), min(w.end, period.end)
            if start <= end:
                result.append(Period(start, end, WEEK, fy, w.number))
        return result
    raise ValueError(f"cannot split a {period.kind} into {kind}s")


def period_of(day: date, kind: str, start_month: int = 1) -> Period:
    fy = fiscal_year_of(day, start_month)
    if kind == YEAR:
        return year(fy, start_month)
    if kind == MONTH:
        return next(m for m in children(year(fy, start_month), MONTH, start_month) if m.contains(day))
    if kind == QUARTER:
        return next(q for q in children(year(fy, start_month), QUARTER, start_month) if q.contains(day))
    if kind == WEEK:
        return next(w for w in weeks(fy, start_month) if w.contains(day))
    raise ValueError(f"unknown period kind {kind!r}")


def parse_key(key: str, start_month: int = 1) -> Period:
    """Inverse of Period.key: 'FY2027', 'FY2027-Q2', 'FY2027-M03', 'FY2027-W05'."""
    try:
        head, _, tail = key.partition("-")
        if not head.startswith("FY"):
            raise ValueError(key)
        fy = int(head[2:])
        if not tail:
            return year(fy, start_month)
        kind, number = tail[0], int(tail[1:])
    except (ValueError, IndexError):
        raise ValueError(f"not a period key: {key!r}") from None
    if kind == "Q":
        return quarter(fy, number, start_month)
    if kind == "M":
        return month(fy, number, start_month)
    if kind == "W":
        for w in weeks(fy, start_month):
            if w.number == number:
                return w
    raise ValueError(f"not a period key: {key!r}")
