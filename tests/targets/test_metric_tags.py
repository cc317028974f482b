"""`metric_amount`, `pct` and `pace`: the one rules by which every page shows a target's amounts, its percentages
and its pace."""

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


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("45.25"), "45.3%"),  # one decimal, half up
        (Decimal("100"), "100.0%"),
        (Decimal("-3.04"), "-3.0%"),
        (None, '<span class="muted">—</span>'),
    ],
)
def test_a_percentage_reads_with_one_decimal_or_a_dash(value, shown):
    from targets.templatetags.metric_tags import pct

    with translation.override("en"):
        assert pct(value) == shown


def test_the_pace_badge_says_how_far_attainment_runs_ahead_of_or_behind_time():
    from targets.templatetags.metric_tags import pace

    with translation.override("en"):
        assert pace(SimpleNamespace(pace="good", pace_gap_points=Decimal("8"))) == (
            '<span class="att-pace pace-good" data-pace="good">+8.0 pts</span>'
        )
        assert pace(SimpleNamespace(pace="bad", pace_gap_points=Decimal("-7.25"))) == (
            '<span class="att-pace pace-bad" data-pace="bad">-7.3 pts</span>'
        )
        assert pace(SimpleNamespace(pace="", pace_gap_points=None)) == (
            '<span class="att-pace pace-none" data-pace="">—</span>'
        )
    with translation.override("zh-hans"):
        assert pace(SimpleNamespace(pace="warn", pace_gap_points=Decimal("0"))).endswith("+0.0 分</span>")
    rendered = Template("{% load metric_tags %}{{ h|pace }} {{ h.attainment_pct|pct }}").render(
        Context({"h": SimpleNamespace(pace="warn", pace_gap_points=Decimal("-1.5"), attainment_pct=Decimal("37.5"))})
    )
    assert rendered == '<span class="att-pace pace-warn" data-pace="warn">-1.5 pts</span> 37.5%'  # not escaped
