"""The review and the home pages in a browser: a director lands on the company's workbench, opens the weekly
review, sorts it and sees its charts drawn; a rep at phone width sees his targets against time.

With SAVE_SCREENSHOTS=1 the pages are saved to docs/screenshots/ (the README's pictures)."""

import os
from datetime import date
from pathlib import Path

import pytest

from targets.attainment.services import attainment_recompute
from tests.browser.plugin import login

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def shoot(page, name: str) -> None:
    if os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_a_director_opens_the_weekly_review_from_his_workbench(page, org, company):
    for day in (date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)):
        attainment_recompute(plan=company.plan, as_of=day)  # a history for the cumulative chart
    login(page, "director")
    assert page.locator('[data-testid="tile-won_revenue"]').is_visible()
    assert page.locator(f'[data-testid="region-region:{org.east.pk}"]').is_visible()
    shoot(page, "director-home.png")
    page.click('[data-testid="open-review"]')
    page.wait_for_selector('[data-testid="chart-attainment"] .js-plotly-plot')
    assert page.locator('[data-testid="chart-waterfall"] .js-plotly-plot').count() == 1
    assert page.locator('[data-testid="chart-cumulative"] .js-plotly-plot').count() == 1
    page.click('[data-testid="sort-attainment"]')
    page.wait_for_load_state("networkidle")
    assert "sort=-attainment" in page.url
    keys = page.locator('[data-testid="review-rows"] tbody tr').evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == [f"region:{org.north.pk}", f"region:{org.east.pk}"]  # 25 % before 21.7 %
    shoot(page, "director-review.png")
    # On paper: no navigation, no filters, the figures and charts kept.
    page.emulate_media(media="print")
    assert not page.locator("header.app-header").is_visible()
    assert not page.locator('[data-testid="review-filter"]').is_visible()
    assert page.locator('[data-testid="review-rows"]').is_visible()
    page.emulate_media(media="screen")
    page.click(f'a[href^="/review/?region={org.east.pk}&"]')
    page.wait_for_selector('[data-testid="review-rows"]')
    assert "East" in page.locator("h1").inner_text()


@pytest.mark.usefixtures("company")
def test_a_manager_sees_who_is_behind_and_a_rep_his_targets_at_phone_width(page, phone_page, org):
    login(page, "manager")
    assert page.locator(f'[data-testid="behind-rep:{org.rep_js.pk}"]').is_visible()
    shoot(page, "manager-home.png")
    login(phone_page, "rep")
    bar = phone_page.locator('[data-testid="my-targets"] .bar-fill')
    assert bar.count() == 1 and "pace-good" in bar.get_attribute("class")
    shoot(phone_page, "rep-home-phone.png")
