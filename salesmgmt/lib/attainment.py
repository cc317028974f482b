"""Pure attainment math: plain Decimals and dates in, Decimals out (no Django), so it is tested alone.

Percentages are returned as fractions (0.42 = 42 %) quantized to 4 places; money keeps cents. What a
screen shows as a percentage (or in points) comes from the exact ratio, rounded once (`percent`,
`points`): a fraction already quantized and rounded again would show 61.147 % as 61.2 %.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from salesmgmt.lib.money import CENT, quantize

# What the ratios take: amounts, or counts (days elapsed of days in the period).
Number = Decimal | int

FRACTION = Decimal("0.0001")
SHOWN = Decimal("0.1")  # percentages and points on screen: one decimal
ZERO = Decimal("0")
ONE = Decimal("1")


def _frac(value: Decimal) -> Decimal:
    return quantize(value, FRACTION)


def elapsed_days(
    start: date, end: date, today: date, *, working_days: bool = False, holidays: Iterable[date] = ()
) -> tuple[int, int]:
    """(days elapsed up to and including `today`, days in the period), calendar or Mon-Fri working days."""
    if end < start:
        raise ValueError("period ends before it starts")
    last = min(max(today, start - timedelta(days=1)), end)
    if not working_days:
        return (last - start).days + 1, (end - start).days + 1
    hol = np.array(sorted(holidays), dtype="datetime64[D]")
    total = int(np.busday_count(start, end + timedelta(days=1), holidays=hol))
    done = int(np.busday_count(start, last + timedelta(days=1), holidays=hol)) if last >= start else 0
    return done, total


def elapsed_share(
    start: date, end: date, today: date, *, working_days: bool = False, holidays: Iterable[date] = ()
) -> tuple[int, int]:
    """Time progress as an exact share (elapsed, whole): `elapsed_days`, except that a period without a
    single working day counts as (0, 1) until it ends and (1, 1) from then on."""
    done, total = elapsed_days(start, end, today, working_days=working_days, holidays=holidays)
    if total == 0:
        return (1, 1) if today >= end else (0, 1)
    return done, total


def time_progress(
    start: date, end: date, today: date, *, working_days: bool = False, holidays: Iterable[date] = ()
) -> Decimal:
    """时间进度: the share of the period elapsed at the end of `today` (0 before it starts, 1 after it ends)."""
    done, total = elapsed_share(start, end, today, working_days=working_days, holidays=holidays)
    return _frac(Decimal(done) / Decimal(total))


def attainment(actual: Decimal, target: Decimal) -> Decimal | None:
    """达成率 = actual / target; None where there is no target to measure against."""
    if not target:
        return None
    return _frac(Decimal(actual) / Decimal(target))


def _shown(value: Decimal) -> Decimal:
    return quantize(value, SHOWN)


def percent(numerator: Number, denominator: Number) -> Decimal | None:
    """numerator ÷ denominator as the percentage every screen shows: one decimal, half up (away from
    zero), rounded once from the exact ratio (122,294 of 200,000 is 61.1 %). None without a denominator."""
    if not denominator:
        return None
    return _shown(Decimal(numerator) * 100 / Decimal(denominator))


def points(
    numerator: Number, denominator: Number, minus_numerator: Number, minus_denominator: Number
) -> Decimal | None:
    """The difference of two ratios in percentage points as shown (pace gap: attainment − time progress;
    week change: attainment now − a week before), by the rule of `percent`, from the exact ratios."""
    if not denominator or not minus_denominator:
        return None
    n, d, mn, md = (Decimal(v) for v in (numerator, denominator, minus_numerator, minus_denominator))
    return _shown((n * md - mn * d) * 100 / (d * md))


def gap(actual: Decimal, target: Decimal) -> Decimal:
    """缺口: what is still missing to reach the target (never negative)."""
    return max(Decimal(target) - Decimal(actual), ZERO)


def pace_gap(attainment_: Decimal | None, time_progress_: Decimal) -> Decimal | None:
    """Attainment − time progress ("时间过半，任务过半"): below zero the target is falling behind time."""
    if attainment_ is None:
        return None
    return _frac(attainment_ - time_progress_)


def coverage(open_pipeline: Decimal, remaining_gap: Decimal) -> Decimal | None:
    """Pipeline coverage = open pipeline ÷ remaining gap (healthy ≥ 3×); None when nothing is missing."""
    if remaining_gap <= 0:
        return None
    return quantize(Decimal(open_pipeline) / Decimal(remaining_gap), CENT)


def run_rate_forecast(
    actual: Decimal, start: date, end: date, today: date, *, working_days: bool = False, holidays: Iterable[date] = ()
) -> Decimal:
    """Where the period ends if the pace so far continues: actual ÷ elapsed × whole period."""
    done, total = elapsed_days(start, end, today, working_days=working_days, holidays=holidays)
    if done <= 0:
        return ZERO
    return quantize(Decimal(actual) * Decimal(total) / Decimal(done))


def weighted(amount: Decimal, probability: int) -> Decimal:
    """The weighted amount of one deal (its row, its page, the API's `weighted_amount`): `weighted_total` of a
    group of one, so a deal shows what it adds to any total it is alone in (100.05 at 50 % is 50.03)."""
    return weighted_total(Decimal(amount) * Decimal(probability))


def weighted_total(amount_times_percent: Decimal) -> Decimal:
    """The weighted pipeline rule: from Σ (amount × probability %) of a group of deals, divided by 100 and
    rounded once to the cent by `money.quantize` (half up), never per deal, so the figure is the same however
    the deals are grouped. Every weighted figure goes through here: the deal row (`weighted`), the pipeline
    board and team totals (`pipeline.selectors`) and the attainment reference (`targets.attainment.reference`).

    The PostgreSQL attainment engine (`targets/attainment/sql.py`) mirrors this rule in SQL: per leaf it sums
    amount in cents × probability and rounds once, `ROUND(Σ / 100.0)` (numeric ROUND: half away from zero,
    as here). Change one, change the other; the tests hold engine == reference."""
    return quantize(Decimal(amount_times_percent) / Decimal(100))
