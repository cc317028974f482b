"""The fast `floatformat` (salesmgmt/lib/numbers.py) writes exactly what Django's does, for every value and
argument the pages use, in both languages; and it is the one every template's `|floatformat` runs."""

from decimal import Decimal

import pytest
from django.template import engines
from django.template.defaultfilters import floatformat as django_floatformat
from django.test import override_settings
from django.utils import translation
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salesmgmt.lib import numbers

ARGS = ["2g", "0g", "g", 1, 2, "1", "2", "-2", -2, -1, 0, "0", "3g", "-2g", "2u", "2gu", "x", True]

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < Decimal(10) ** 30)
values = st.one_of(
    st.decimals(min_value=-(10**13), max_value=10**13, places=2),
    st.decimals(min_value=-1000, max_value=1000, places=4),
    decimals,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(None),
    st.text(max_size=6),
)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@settings(max_examples=400, deadline=None)
@given(value=values, arg=st.sampled_from(ARGS))
@example(value=Decimal("-0.001"), arg="2g")
@example(value=Decimal("0.005"), arg="2g")
@example(value=Decimal("-0.005"), arg=2)
@example(value=Decimal("34.5"), arg="0g")
@example(value=Decimal("1234.000"), arg="-2")
@example(value=Decimal("1234.001"), arg="-2")
@example(value=Decimal("1E+5"), arg="2g")
@example(value=Decimal("-0"), arg="0g")
@example(value=2.675, arg=2)
@example(value=1e16, arg="2g")
@example(value=Decimal("0.1234567890123456789012345678901"), arg="2g")
def test_the_same_string_as_djangos(language, value, arg):
    with translation.override(language):
        assert numbers.floatformat(value, arg) == django_floatformat(value, arg)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@override_settings(USE_THOUSAND_SEPARATOR=True)
def test_grouped_when_the_setting_says_so(language):
    with translation.override(language):
        for value, arg in [(Decimal("1234567.891"), 2), (1234567, -2), (Decimal("-9876.5"), "1")]:
            assert numbers.floatformat(value, arg) == django_floatformat(value, arg)


def test_other_separators_are_the_languages():
    """A language that writes 1.234,50 (German): the separators are looked up per language, not assumed."""
    with translation.override("de"):
        assert numbers.floatformat(Decimal("1234.5"), "2g") == django_floatformat(Decimal("1234.5"), "2g") == "1.234,50"
    with translation.override("en"):
        assert numbers.floatformat(Decimal("1234.5"), "2g") == numbers.formatter(2)(Decimal("1234.5")) == "1,234.50"


def test_every_templates_floatformat_is_this_one():
    engine = engines["django"].engine
    filters = [
        library.filters["floatformat"] for library in engine.template_builtins if "floatformat" in library.filters
    ]
    assert filters[-1] is numbers.floatformat  # the last builtin library's filter is the one templates get
    template = engines["django"].from_string('{{ v|floatformat:"2g" }} {{ v|floatformat }}')
    with translation.override("en"):
        assert template.render({"v": Decimal("12345.675")}) == "12,345.68 12345.7"
