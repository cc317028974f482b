"""A manager reads the funnel and the driver diagnosis in the browser: the plotly figures draw, and the scope
picker regroups the drivers by rep in place (htmx)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.browser.plugin import htmx_settled, login

# Each drawn chart's width against the width of its place on the page: a chart drawn before the cell beside it
# existed took the whole row and was clipped by its neighbour.
CHART_FITS = """() => {
    const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
    return charts.length > 0 && charts.every(el => el._fullLayout.width <= el.getBoundingClientRect().width + 1);
}"""
CHART_WIDTHS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    el => [el._fullLayout.width, el.getBoundingClientRect().width])"""


def assert_charts_fit(page):
    """Every chart ends up as wide as its place (they are refitted after the page or fragment is laid out)."""
    try:
        page.wait_for_function(CHART_FITS, timeout=5000)
    except PlaywrightTimeout:
        raise AssertionError(f"charts wider than their place: {page.evaluate(CHART_WIDTHS)}") from None


@pytest.fixture(autouse=True)
def _day(time_machine):
    # Before the fixtures write the deals: they are created "now", in the funnel's dates.
    time_machine.move_to(datetime(2026, 6, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")), tick=True)


def test_manager_reads_the_funnel_and_the_drivers(page, org, approved_plan, tmp_path):
    login(page, "manager")
    page.goto("/review/funnel/?date_from=2026-01-01&date_to=2026-06-30")
    expect(page.get_by_test_id("funnel-chart").locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_test_id("win-rate-chart").locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_test_id("funnel-table").get_by_test_id("reached").first).to_have_attribute("data-value", "8")
    assert_charts_fit(page)
    page.screenshot(path=str(tmp_path / "funnel.png"), full_page=True)

    page.goto("/review/drivers/?period=FY2026-Q2")
    expect(page.get_by_test_id("change-chart").locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_test_id("target-chart").locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_test_id("drivers-table")).to_have_count(1)
    assert_charts_fit(page)
    expect(page.get_by_test_id("sales-now")).to_have_attribute("data-value", "6600.55")
    page.select_option("select[name=by]", "owner")
    htmx_settled(page)
    expect(page.get_by_test_id("drivers-table")).to_have_count(4)  # the team and its three reps
    assert "by=owner" in page.url
    assert_charts_fit(page)
    page.screenshot(path=str(tmp_path / "drivers.png"), full_page=True)
    print(tmp_path)
