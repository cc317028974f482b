"""The scorecard in a real browser: a manager opens it, changes the visits weight in the configuration and sees
the visits component and the scores follow; the rep sees only himself."""

import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.plugin import login
from tests.coaching.scorecard.test_scorecard import Q1, card_data  # noqa: F401  (a fixture)

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
DAY = datetime(2027, 3, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_manager_reweights_the_scorecard_and_the_rep_sees_himself(page, org, metrics, time_machine, request):
    time_machine.move_to(DAY, tick=True)
    request.getfixturevalue("card_data")
    login(page, "manager")
    page.goto(f"/review/scorecard/?role=rep&period_key={Q1}")
    table = page.get_by_test_id("scorecard-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    cell = page.get_by_test_id(f"scorecard-cell-{org.rep.pk}-{metrics['visits'].pk}")
    expect(cell).to_have_attribute("data-points", "16.0")  # 4 of 10 visits × 40 points

    page.get_by_test_id("scorecard-config").locator("summary").click()
    form = page.get_by_test_id("scorecard-config-form")
    form.locator("input[name=weight_1]").fill("80")
    page.get_by_test_id("scorecard-config-submit").click()
    page.wait_for_url("**/review/scorecard/?role=rep*")
    expect(page.get_by_test_id(f"scorecard-cell-{org.rep.pk}-{metrics['visits'].pk}")).to_have_attribute(
        "data-points", "32.0"
    )
    ranks = [
        int(r.get_attribute("data-rank")) for r in page.get_by_test_id("scorecard-table").locator("tbody tr").all()
    ]
    assert ranks == sorted(ranks)
    scores = [
        Decimal(r.get_attribute("data-score")) for r in page.get_by_test_id("scorecard-table").locator("tbody tr").all()
    ]
    assert scores == sorted(scores, reverse=True)
    if os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / "manager-scorecard.png"), full_page=True)

    page.context.clear_cookies()
    login(page, "rep")
    page.goto(f"/review/scorecard/?role=rep&period_key={Q1}")
    expect(page.get_by_test_id("scorecard-table").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id(f"scorecard-row-{org.rep.pk}")).to_be_visible()
    expect(page.get_by_test_id("scorecard-config")).to_have_count(0)
