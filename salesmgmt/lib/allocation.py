"""Exact allocation of a total over parts: the math behind every target split.

Pure functions on Decimals and ints (no Django), so they can be tested on their own.
Everything is done in integer units of the smallest step (cents for money, 1 for counts):
the parts always add up to the total exactly, none is negative, and ties are broken by
position so the same input always gives the same split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

# An amount or a weight as callers hold it: a Decimal, an int, or the text of a number.
Number = Decimal | int | str


class AllocationError(ValueError):
    """The input cannot be allocated (negative total or weight, no parts, too many decimals)."""


def _step(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def to_units(amount: Number, places: int) -> int:
    """`amount` as a whole number of steps (cents for places=2); refuses finer amounts."""
    value = Decimal(amount)
    units = value.scaleb(places)
    if units != units.to_integral_value():
        if places == 0:
            raise AllocationError(f"{amount} is not a whole number")
        raise AllocationError(f"{amount} has more than {places} decimal places")
    return int(units)


def from_units(units: int, places: int) -> Decimal:
    return Decimal(units).scaleb(-places).quantize(_step(places))


def integer_weights(weights: Sequence[Number]) -> list[int]:
    """Scale non-negative Decimal/int weights to integers with the same ratios."""
    decimals = [Decimal(w) if not isinstance(w, Decimal) else w for w in weights]
    for w in decimals:
        if not w.is_finite() or w < 0:
            raise AllocationError(f"weights must be non-negative numbers, got {w}")
    exponent = min((int(w.as_tuple().exponent) for w in decimals if w), default=0)  # all finite: ints
    shift = -exponent if exponent < 0 else 0
    return [int(w.scaleb(shift)) for w in decimals]


def largest_remainder_units(units: int, weights: Sequence[int]) -> list[int]:
    """Split `units` (an int >= 0) over integer weights by the largest remainder method.

    Each part first gets the floor of its exact quota; the units left over go one each to the
    parts with the largest remainders, the earlier part winning a tie. All-zero weights split equally.
    """
    n = len(weights)
    if n == 0:
        raise AllocationError("nothing to allocate to")
    if units < 0:
        raise AllocationError("the total cannot be negative")
    total_weight = sum(weights)
    if total_weight == 0:
        weights, total_weight = [1] * n, n
    parts, remainders = [], []
    for w in weights:
        quota, remainder = divmod(units * w, total_weight)
        parts.append(quota)
        remainders.append(remainder)
    left = units - sum(parts)
    if left:
        for i in sorted(range(n), key=lambda i: (-remainders[i], i))[:left]:
            parts[i] += 1
    return parts


def largest_remainder(total: Number, weights: Sequence[Number], *, places: int = 2) -> list[Decimal]:
    """Split `total` in proportion to non-negative `weights`; parts sum to `total` exactly.

    `places` is 2 for money (cents) and 0 for counts (whole numbers). All-zero weights split equally.
    """
    units = to_units(total, places)
    parts = largest_remainder_units(units, integer_weights(weights))
    return [from_units(p, places) for p in parts]


def remainder(total: Number, amounts: Iterable[Number]) -> Decimal:
    """What is left to allocate (negative when over-allocated)."""
    return Decimal(total) - sum((Decimal(a) for a in amounts), Decimal(0))


def rescale(new_total: Number, current: Sequence[Number], *, places: int = 2) -> list[Decimal]:
    """Parts for `new_total` keeping the proportions of the `current` parts (equal if all are zero)."""
    return largest_remainder(new_total, current, places=places)
