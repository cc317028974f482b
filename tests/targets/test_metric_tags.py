"""`metric_amount`: the one rule by which every page shows a target's amounts."""

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils import translation

from targets.templatetags.metric_tags import metric_amount

COUNT, MONEY = SimpleNamespace(unit="count"), SimpleNamespace(unit="money")


@pytest.mark.parametrize(
    ("value", "metric", "shown"),
    [
        (Decimal("1234567.005"), MONEY, "1,234,567.01"),  # half up to the cent, grouped
        (Decimal("1234567.005"), None, "1,234,567.01"),  # no metric: money
        (Decimal("1234.4"), COUNT, "1,234"),
        (Decimal("12.5"), "count", "13"),  # a unit given as such
        (Decimal("-7.1"), "money", "-7.10"),
        (None, COUNT, '<span class="muted">—</span>'),
    ],
)
def test_a_targets_amount_reads_as_its_metric_counts(value, metric, shown):
    with translation.override("en"):
        assert metric_amount(value, metric) == shown


def test_templates_show_it_through_the_filter_in_either_language():
    template = Template("{% load metric_tags %}{{ a|metric_amount:m }}|{{ b|metric_amount:'count' }}")
    for language in ("en", "zh-hans"):
        with translation.override(language):
            assert template.render(Context({"a": Decimal("9876.5"), "m": MONEY, "b": 3})) == "9,876.50|3"
