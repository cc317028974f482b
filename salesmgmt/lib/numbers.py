"""Numbers as the pages show them: Django's `floatformat`, the same string for the same value and argument, at a
fraction of its cost.

Django's filter turns every value into a string and back, rebuilds the digits one by one and looks up the active
language's separators three times a call (~40 µs); a deal list shows a few hundred figures a page, a rep's targets
a thousand. Here the value is rounded once (half up, as `floatformat` and `salesmgmt.lib.money.quantize` round) and
written by Python's own format, with the language's separators looked up once per language. What this fast path does
not cover (a non-number, the `u` suffix, a grouping other than threes, a value too long for the default precision)
goes to Django's filter, so the output is Django's in every case; `tests/salesmgmt/test_numbers.py` holds the two
side by side over generated values.

`floatformat` is registered as a template builtin (settings.TEMPLATES), so every template's `|floatformat` is this
one; Python code calls it (the target figures' filters) or, for a page of many figures, `formatter`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.defaultfilters import floatformat as django_floatformat
from django.utils.formats import get_format
from django.utils.safestring import SafeString
from django.utils.translation import get_language

# (decimal separator, thousand separator, grouping) of each language, as Django's formats give them.
_SEPARATORS: dict[str | None, tuple[str, str, Any]] = {}
# floatformat's argument -> (places, only when not whole, force grouping); None: Django's filter handles it.
_ARGS: dict[Any, tuple[int, bool, bool] | None | bool] = {}
# 10 ** -places, by places.
_STEPS: dict[int, Decimal] = {}


@receiver(setting_changed)
def _forget(setting: str, **_kwargs: Any) -> None:
    """A test that changes the formats' settings (as Django's own format cache does): look them up again."""
    if setting in {"LANGUAGE_CODE", "LANGUAGES", "FORMAT_MODULE_PATH", "USE_THOUSAND_SEPARATOR"} or setting.endswith(
        ("_SEPARATOR", "NUMBER_GROUPING")
    ):
        _SEPARATORS.clear()


def _separators() -> tuple[str, str, Any]:
    language = get_language()
    found = _SEPARATORS.get(language)
    if found is None:
        found = _SEPARATORS[language] = (
            get_format("DECIMAL_SEPARATOR"),
            get_format("THOUSAND_SEPARATOR"),
            get_format("NUMBER_GROUPING"),
        )
    return found


def _parse(arg: Any) -> tuple[int, bool, bool] | None:
    """floatformat's argument as (places, whole values without decimals, force grouping), as Django reads it."""
    grouping = False
    if isinstance(arg, str):
        if arg.endswith("u") or arg[-2:] in {"gu", "ug"}:
            return None  # unlocalized: rare, left to Django
        if arg.endswith("g"):
            grouping, arg = True, arg[:-1] or -1
    try:
        places = int(arg)
    except (TypeError, ValueError):
        return None
    return abs(places), places <= 0, grouping


def _format(value: Any, places: int, optional: bool, grouping: bool, separators: tuple[str, str, Any]) -> str | None:
    """The fast path; None where it does not apply (Django's filter then decides)."""
    if type(value) is Decimal:
        number = value
    elif type(value) is int:
        number = Decimal(value)
    elif type(value) is float:
        number = Decimal(str(value))  # as Django reads a float: its shortest repr, not its binary expansion
    else:
        return None
    if not number.is_finite():
        return None
    _sign, digits, exponent = number.as_tuple()
    if len(digits) + abs(int(exponent)) > 200:  # finite: the exponent is an int
        return None  # Django shows such a value as it is
    decimal_sep, thousand_sep, group = separators
    if grouping or settings.USE_THOUSAND_SEPARATOR:
        if group != 3 or not thousand_sep:
            return None
        spec = ","
    else:
        spec = ""
    if optional and number == number.to_integral_value():
        places = 0
    step = _STEPS.get(places)
    if step is None:
        step = _STEPS[places] = Decimal(1).scaleb(-places)
    try:
        rounded = number.quantize(step, ROUND_HALF_UP)
    except InvalidOperation:
        return None
    if not rounded:
        rounded = abs(rounded)  # no "-0.00"
    text = format(rounded, f"{spec}.{places}f")
    if (decimal_sep, thousand_sep) != (".", ","):
        text = text.translate({ord("."): decimal_sep, ord(","): thousand_sep})
    return text


def floatformat(value: Any, arg: Any = -1) -> SafeString:
    """Django's `floatformat`, same output (see the module's docstring)."""
    spec = _ARGS.get(arg, False) if isinstance(arg, (str, int)) else None
    if spec is False:
        spec = _ARGS[arg] = _parse(arg)
    if isinstance(spec, tuple):
        text = _format(value, *spec, separators=_separators())
        if text is not None:
            return SafeString(text)
    return SafeString(django_floatformat(value, arg))


def formatter(places: int) -> Callable[[Any], SafeString]:
    """`floatformat(·, "<places>g")` for the many figures of one page (the grid's cells): the active language's
    separators looked up once."""
    separators = _separators()

    def fmt(value: Any) -> SafeString:
        text = _format(value, places, False, True, separators)
        return SafeString(text if text is not None else django_floatformat(value, f"{places}g"))

    return fmt
