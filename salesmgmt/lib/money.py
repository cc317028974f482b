"""Money is Decimal end to end. Helpers to parse, quantize and split amounts exactly."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_decimal(value: Any, *, field: str = "amount") -> Decimal:
    """Parse user input into Decimal; accepts '1,234.50', ' 12 ', 3, Decimal. Raises ValueError."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value or "").strip().replace(",", "").replace("\u00a0", "").replace(" ", "")
    for symbol in ("¥", "￥", "$", "€", "£"):
        text = text.replace(symbol, "")
    if text.startswith("(") and text.endswith(")"):
        text = "-" + text[1:-1]
    try:
        result = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{field}: {value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a number")
    return result


def quantize(amount: Decimal, places: Decimal = CENT) -> Decimal:
    """The one rounding rule for money (and for every figure rounded to `places`): half up, that is a tie
    goes away from zero (0.005 -> 0.01, -0.005 -> -0.01), whatever the decimal context says. Round once,
    at the end: a figure rounded and rounded again can differ from the exact one by a cent."""
    return amount.quantize(places, rounding=ROUND_HALF_UP)


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """Convert into the company currency with a rate (company units per one foreign unit)."""
    return quantize(amount * rate)
