"""The split math on its own: exact sums, no negatives, proportional within one step, deterministic."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesmgmt.lib.allocation import AllocationError, largest_remainder, remainder, rescale

cents = st.integers(min_value=0, max_value=10**12).map(lambda c: Decimal(c).scaleb(-2))
counts = st.integers(min_value=0, max_value=10**7).map(Decimal)
weights = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10**9).map(Decimal),
        st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.parametrize(("total_strategy", "places"), [(cents, 2), (counts, 0)])
@given(data=st.data())
def test_parts_sum_exactly_never_negative_and_stay_within_one_step(total_strategy, places, data):
    total = data.draw(total_strategy)
    ws = data.draw(weights)
    parts = largest_remainder(total, ws, places=places)

    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    step = Decimal(1).scaleb(-places)
    assert all(p % step == 0 for p in parts)  # cents for money, whole numbers for counts
    w_total = sum(ws)
    for part, w in zip(parts, ws, strict=True):
        exact = Fraction(total) * Fraction(w) / Fraction(w_total) if w_total else Fraction(total) / len(ws)
        assert abs(Fraction(part) - exact) < Fraction(step)


@given(total=cents, n=st.integers(min_value=1, max_value=400))
def test_equal_parts_differ_by_at_most_one_cent_and_the_first_get_the_odd_cents(total, n):
    parts = largest_remainder(total, [1] * n)
    assert sum(parts) == total
    assert max(parts) - min(parts) <= Decimal("0.01")
    assert parts == sorted(parts, reverse=True)


@given(total=cents, ws=weights)
def test_same_input_same_split(total, ws):
    assert largest_remainder(total, ws) == largest_remainder(total, list(ws))


def test_ties_go_to_the_earlier_part():
    assert largest_remainder(Decimal("0.05"), [1, 1, 1]) == [Decimal("0.02"), Decimal("0.02"), Decimal("0.01")]
    assert largest_remainder(Decimal("10"), [1, 1, 1], places=0) == [Decimal(4), Decimal(3), Decimal(3)]


def test_all_zero_weights_split_equally():
    assert largest_remainder(Decimal("100.00"), [0, 0, 0, 0]) == [Decimal("25.00")] * 4


def test_zero_weight_gets_nothing_when_others_have_weight():
    assert largest_remainder(Decimal("100.00"), [0, 1, 3]) == [Decimal("0.00"), Decimal("25.00"), Decimal("75.00")]


def test_rescale_keeps_proportions():
    assert rescale(Decimal("200.00"), [Decimal("30.00"), Decimal("70.00")]) == [Decimal("60.00"), Decimal("140.00")]


def test_remainder_reports_what_is_left():
    assert remainder(Decimal("100"), [Decimal("30"), Decimal("50")]) == Decimal("20")
    assert remainder(Decimal("100"), [Decimal("130")]) == Decimal("-30")


@pytest.mark.parametrize(
    ("total", "ws", "places"),
    [
        (Decimal("-1"), [1], 2),  # negative total
        (Decimal("10"), [1, -1], 2),  # negative weight
        (Decimal("10.001"), [1], 2),  # finer than a cent
        (Decimal("10.5"), [1, 1], 0),  # a fractional count
        (Decimal("10"), [], 2),  # nothing to split into
    ],
)
def test_bad_input_is_refused(total, ws, places):
    with pytest.raises(AllocationError):
        largest_remainder(total, ws, places=places)
