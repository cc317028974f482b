"""The project analysis meeting in a real browser: the manager plans it, records a project's buying step, risks and
an action item, and holds it; a week later, after the deal has moved, the held review reads as it was."""

import os
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from coaching.models import ProjectDecision, ProjectReview
from pipeline.models import Opportunity
from pipeline.services import opportunity_move_stage, opportunity_update
from tests.browser.plugin import login
from tests.factories import make_deal

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
DAY = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_manager_holds_a_project_review_and_it_reopens_unchanged(page, org, time_machine, settings):
    settings.PROJECT_REVIEW_MIN_AMOUNT = 50000
    time_machine.move_to(DAY - timedelta(days=20), tick=True)
    deal = make_deal(owner=org.rep, amount="880000", name="Jiangnan Bank core network", close=date(2026, 8, 31))
    opportunity_move_stage(opportunity=deal, stage=org.stages[1], actor=org.rep, evidence="Met the CIO and the CTO")
    make_deal(owner=org.rep_js, amount="120000", name="Suzhou Metro CCTV", close=date(2026, 9, 30))
    make_deal(owner=org.rep_js, amount="9000", name="Small deal")
    time_machine.move_to(DAY, tick=True)

    login(page, "manager")
    page.goto("/review/projects/")
    page.get_by_test_id("project-review-create").locator("summary").click()
    form = page.get_by_test_id("project-review-create-form")
    form.locator("select[name=team]").select_option(str(org.east.pk))
    form.locator("input[name=date]").fill("2026-06-10")
    page.get_by_test_id("project-review-create-submit").click()
    page.wait_for_url("**/review/projects/*/")
    review = ProjectReview.objects.get()
    expect(page.get_by_test_id("project-review-record")).not_to_contain_text("Small deal")

    project = page.get_by_test_id(f"project-{deal.pk}")
    expect(project.get_by_test_id(f"project-{deal.pk}-evidence")).to_contain_text("Met the CIO and the CTO")
    entry = project.get_by_test_id(f"project-{deal.pk}-entry")
    entry.locator("select[name=buying_step]").select_option("need")
    entry.locator("textarea[name=next_steps]").fill("Solution workshop with the IT team")
    entry.locator("textarea[name=risks]").fill("Incumbent vendor offers a 20% discount")
    page.get_by_test_id(f"project-{deal.pk}-entry-save").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id(f"project-{deal.pk}-buying")).to_contain_text("we are ahead of the customer")
    decision = page.get_by_test_id(f"project-{deal.pk}-decision-form")
    decision.locator("select[name=kind]").select_option("action")
    decision.locator("input[name=what]").fill("Bring the regional director to the CIO")
    decision.locator("select[name=owner]").select_option(str(org.manager.pk))
    decision.locator("input[name=due_date]").fill("2026-06-17")
    decision.get_by_role("button").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id(f"project-{deal.pk}-decisions")).to_contain_text("Bring the regional director")
    assert ProjectDecision.objects.get().owner == org.manager

    page.get_by_test_id("project-review-hold").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("project-review-status")).to_have_attribute("data-value", "held")
    held = page.get_by_test_id("project-review-record").inner_html()
    if os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / "manager-project-review.png"), full_page=True)

    time_machine.move_to(DAY + timedelta(days=7), tick=True)
    opportunity_update(
        opportunity=Opportunity.objects.get(pk=deal.pk), data={"amount": Decimal("990000")}, actor=org.rep
    )
    make_deal(owner=org.rep, amount="700000", name="New big deal")
    page.goto(f"/review/projects/{review.pk}/")
    assert page.get_by_test_id("project-review-record").inner_html() == held
    expect(page.get_by_test_id("project-review-hold")).to_have_count(0)
