"""The driver formula (业绩公式) and its log-mean Divisia decomposition: pure math, no Django.

    sales = covered customers × active rate × deals per active customer × average deal size
          = C × (A / C) × (N / A) × (W / N)

C: customers covered (覆盖客户数), A: covered customers with a won deal in the period (活跃), N: won deals,
W: won amount. The drivers are kept as exact fractions, so their product is W to the cent whenever A > 0
(and is 0 = W when nothing was won). A ratio over a zero count is taken as 0: it only happens when its
numerator is 0 too, except for won deals without a customer (A = 0 < N), which `Drivers.exact` reports.

The change of sales between two states is split into one additive contribution per driver by LMDI-I
(Ang 2004): ΔV_k = L(V¹, V⁰) · ln(x_k¹ / x_k⁰), with the logarithmic mean L(a, b) = (a − b) / (ln a − ln b)
(L(a, a) = a). The contributions add up to V¹ − V⁰ exactly in real arithmetic; they are computed in Decimal
at 32 digits, rounded half up to the cent, and the cents lost or gained by rounding go by the largest
remainder (ties to the first driver), so the rounded contributions add up to the rounded change EXACTLY.

Zeros (Ang & Liu 2007's analytical limits): when V⁰ = V¹ = 0 every contribution is 0; when one state is 0
and the other is not, the factors that are zero in that state take the whole change in equal shares and the
others none (the limit of the formula when the zero factors tend to zero at the same rate); factors that are
zero in both states contribute nothing. Negative factors are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from fractions import Fraction

from salesmgmt.lib.money import CENT, quantize

Factor = Decimal | Fraction | int

DRIVERS = ("covered", "active_rate", "deals_per_active", "deal_size")
PRECISION = 32


def _ratio(numerator: Fraction, denominator: int) -> Fraction:
    return numerator / denominator if denominator else Fraction(0)


@dataclass(frozen=True)
class Drivers:
    """The facts of one scope and period, and the four drivers they make."""

    covered: int
    active: int
    deals: int
    amount: Decimal

    def __post_init__(self) -> None:
        if min(self.covered, self.active, self.deals) < 0 or self.amount < 0:
            raise ValueError("driver facts cannot be negative")

    @property
    def active_rate(self) -> Fraction:
        return _ratio(Fraction(self.active), self.covered)

    @property
    def deals_per_active(self) -> Fraction:
        return _ratio(Fraction(self.deals), self.active)

    @property
    def deal_size(self) -> Fraction:
        return _ratio(Fraction(self.amount), self.deals)

    @property
    def factors(self) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        return (Fraction(self.covered), self.active_rate, self.deals_per_active, self.deal_size)

    @property
    def product(self) -> Fraction:
        c, r, d, s = self.factors
        return c * r * d * s

    @property
    def exact(self) -> bool:
        """Whether the four drivers multiply to the won amount (False only for won deals none of which has
        a covered customer)."""
        return self.product == Fraction(self.amount)


def _dec(value: Factor, ctx: Context) -> Decimal:
    if isinstance(value, Fraction):
        return ctx.divide(Decimal(value.numerator), Decimal(value.denominator))
    return ctx.plus(Decimal(value))


def _product(values: Sequence[Decimal], ctx: Context) -> Decimal:
    result = Decimal(1)
    for v in values:
        result = ctx.multiply(result, v)
    return result


def _round_exactly(raw: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """Round each raw contribution half up to the cent; then move the cents that rounding lost or gained
    (total − Σ rounded) one each: a cent up to the largest remainders, a cent down from the smallest (ties to
    the first), so the result adds up to `total` (itself a whole number of cents) and -raw gives -result."""
    rounded = [quantize(r, CENT) for r in raw]
    residual = int((total - sum(rounded, Decimal(0))) / CENT)
    if residual:
        remainders = [r - q for r, q in zip(raw, rounded, strict=True)]
        step = 1 if residual > 0 else -1
        order = sorted(range(len(raw)), key=lambda i: (-step * remainders[i], i))
        for n in range(abs(residual)):
            i = order[n % len(order)]
            rounded[i] += step * CENT
    return rounded


def _raw(before: Sequence[Decimal], after: Sequence[Decimal], ctx: Context) -> list[Decimal]:
    v0, v1 = _product(before, ctx), _product(after, ctx)
    zero = Decimal(0)
    if v0 == zero and v1 == zero:
        return [zero] * len(before)
    if v0 == zero or v1 == zero:
        zero_side = before if v0 == zero else after
        zeros = [i for i, x in enumerate(zero_side) if x == zero]
        share = ctx.divide(ctx.subtract(v1, v0), Decimal(len(zeros)))
        return [share if i in zeros else zero for i in range(len(before))]
    # ln(x¹/x⁰) per factor, taken from the larger over the smaller so that swapping the states negates it
    # exactly; ln(V¹/V⁰) is their sum.
    logs = [_log_ratio(x0, x1, ctx) for x0, x1 in zip(before, after, strict=True)]
    log_change = sum(logs, zero)
    # L(a, a) = a; also where a and b differ by less than the logarithms can tell (a product of exact ratios
    # carried to PRECISION digits).
    weight = v0 if log_change == zero else ctx.divide(ctx.subtract(v1, v0), log_change)
    return [zero if r == zero else ctx.multiply(weight, r) for r in logs]


def _log_ratio(x0: Decimal, x1: Decimal, ctx: Context) -> Decimal:
    if x0 == x1:
        return Decimal(0)
    if x1 > x0:
        return ctx.divide(x1, x0).ln(ctx)
    return -ctx.divide(x0, x1).ln(ctx)


def lmdi(before: Sequence[Factor], after: Sequence[Factor]) -> list[Decimal]:
    """Additive LMDI-I contributions of each factor to the change of their product from `before` to `after`,
    in cents, adding up exactly to round(Π after) − round(Π before) (each product rounded half up to the
    cent). See the module docstring for zeros."""
    if len(before) != len(after) or not before:
        raise ValueError("both states need the same, non-empty list of factors")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        x0 = [_dec(v, ctx) for v in before]
        x1 = [_dec(v, ctx) for v in after]
        if min(*x0, *x1) < 0:
            raise ValueError("LMDI takes non-negative factors")
        raw = _raw(x0, x1, ctx)
        total = quantize(_product(x1, ctx), CENT) - quantize(_product(x0, ctx), CENT)
    return _round_exactly(raw, total)


def scaled_to(factors: Sequence[Factor], value: Decimal) -> list[Decimal]:
    """`factors` each multiplied by the same number, the n-th root of value ÷ Π factors, so that their
    product is `value` (to 32 digits): the target's drivers under the rule "the target asks the same growth
    of every driver". Refused when the product of `factors` is 0 (no mix to scale)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        x = [_dec(v, ctx) for v in factors]
        product = _product(x, ctx)
        if product <= 0 or value < 0:
            raise ValueError("cannot scale factors whose product is 0")
        if value == 0:
            return [Decimal(0)] * len(x)
        growth = ctx.power(ctx.divide(Decimal(value), product), ctx.divide(Decimal(1), Decimal(len(x))))
        return [ctx.multiply(v, growth) for v in x]


def main_driver(contributions: Sequence[Decimal]) -> int | None:
    """The index of the driver that explains most of a change: the largest contribution in the direction of
    the change (the largest absolute one when the change is 0); None when every contribution is 0."""
    if not any(contributions):
        return None
    total = sum(contributions, Decimal(0))
    if total > 0:
        return max(range(len(contributions)), key=lambda i: (contributions[i], -i))
    if total < 0:
        return min(range(len(contributions)), key=lambda i: (contributions[i], i))
    return max(range(len(contributions)), key=lambda i: (abs(contributions[i]), -i))
