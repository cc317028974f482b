"""The driver formula and its LMDI decomposition (salesmgmt.lib.drivers), as properties."""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesmgmt.lib.drivers import Drivers, lmdi, main_driver, scaled_to
from salesmgmt.lib.money import quantize

cents = st.integers(min_value=0, max_value=10**11).map(lambda n: Decimal(n) / 100)


@st.composite
def facts(draw):
    """Consistent facts: active ≤ covered, active ≤ deals, no won amount without won deals."""
    covered = draw(st.integers(0, 5000))
    active = draw(st.integers(0, covered))
    deals = draw(st.integers(active, active * 5 + 3)) if active else 0
    amount = draw(cents) if deals else Decimal(0)
    return Drivers(covered=covered, active=active, deals=deals, amount=amount)


factor = st.one_of(
    st.just(Fraction(0)),
    st.fractions(min_value=Fraction(1, 1000), max_value=10**6, max_denominator=10**4),
)
states = st.integers(1, 5).flatmap(lambda n: st.tuples(st.lists(factor, min_size=n, max_size=n), st.just(n)))


def product(values):
    return math.prod(values, start=Fraction(1))


@given(facts())
def test_product_of_the_drivers_is_the_won_amount(d):
    assert d.exact
    assert d.product == Fraction(d.amount)
    c, r, n, s = d.factors
    assert c == d.covered and (r == Fraction(d.active, d.covered) if d.covered else r == 0)


def test_won_deals_without_a_covered_customer_break_the_identity_and_say_so():
    d = Drivers(covered=3, active=0, deals=2, amount=Decimal("10.00"))
    assert not d.exact


@given(facts(), facts())
def test_contributions_sum_exactly_to_the_change(a, b):
    parts = lmdi(a.factors, b.factors)
    assert len(parts) == 4
    assert sum(parts) == b.amount - a.amount
    assert all(p == quantize(p) for p in parts)


@given(states.flatmap(lambda s: st.tuples(st.just(s[0]), st.lists(factor, min_size=s[1], max_size=s[1]))))
def test_any_factors_sum_exactly_and_sign_symmetric(pair):
    before, after = pair
    parts = lmdi(before, after)
    assert sum(parts) == quantize(Decimal(product(after).numerator) / product(after).denominator) - quantize(
        Decimal(product(before).numerator) / product(before).denominator
    )
    assert lmdi(after, before) == [-p for p in parts]


@given(facts(), st.integers(0, 3), st.fractions(min_value=Fraction(1, 10), max_value=10, max_denominator=100))
def test_a_change_in_one_driver_is_wholly_attributed_to_it(d, k, scale):
    before = list(d.factors)
    after = list(before)
    after[k] = after[k] * scale
    parts = lmdi(before, after)
    change = sum(parts)
    assert parts[k] == change
    assert all(p == 0 for i, p in enumerate(parts) if i != k)


def test_the_textbook_case():
    # V: 100 → 300, one factor doubles (×2) and the other grows ×1.5: contributions split by ln 2 : ln 1.5.
    parts = lmdi([10, 10], [20, 15])
    weight = 200 / math.log(3)
    assert parts == [Decimal(str(round(weight * math.log(2), 2))), Decimal(str(round(weight * math.log(1.5), 2)))]
    assert sum(parts) == 200


def test_zero_limits():
    # Nothing won before: the zero factors (active rate, deals per active, size) share the change equally.
    # The remaining cent goes to the first of the equal remainders.
    assert lmdi([10, 0, 0, 0], [10, Fraction(1, 2), 2, 100]) == [
        0,
        Decimal("333.34"),
        Decimal("333.33"),
        Decimal("333.33"),
    ]
    # Only the covered customers went to zero: all of the loss is theirs.
    assert lmdi([4, Fraction(1, 2), 1, 50], [0, Fraction(1, 2), 1, 50]) == [Decimal(-100), 0, 0, 0]
    assert lmdi([0, 0], [0, 5]) == [0, 0]
    with pytest.raises(ValueError):
        lmdi([-1], [1])


@given(facts(), cents)
def test_scaled_factors_multiply_to_the_target(d, target):
    if not d.amount:
        with pytest.raises(ValueError):
            scaled_to(d.factors, target)
        return
    scaled = scaled_to(d.factors, target)
    assert quantize(math.prod(scaled, start=Decimal(1))) == target
    parts = lmdi(scaled, d.factors)
    assert sum(parts) == d.amount - target


def test_main_driver_follows_the_direction_of_the_change():
    assert main_driver([Decimal(5), Decimal(-2), Decimal(1), Decimal(0)]) == 0
    assert main_driver([Decimal(5), Decimal(-20), Decimal(1), Decimal(0)]) == 1
    assert main_driver([Decimal(0)] * 4) is None
