"""The meeting, in a real browser: a manager opens this week's meeting, closes last week's item, adds a new
one, adjusts the team's forecast and holds the meeting; a week later (time-machine), after the deals have
moved, the meeting reopens exactly as it was held."""

import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from coaching import services
from coaching.models import ActionItem, ActionItemStatus, ForecastLevel, ForecastSubmission, Meeting, MeetingStatus
from pipeline.services import opportunity_update
from salesmgmt.lib import periods
from tests.browser.plugin import htmx_settled, login
from tests.coaching.call_data import CALL_DAY, SPECS, stage_of
from tests.factories import make_deal

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def test_a_manager_runs_the_weekly_meeting_and_it_reopens_unchanged(page, org, time_machine):
    time_machine.move_to(CALL_DAY - timedelta(days=7), tick=True)
    deals = [
        make_deal(
            owner=getattr(org, s.owner),
            amount=s.amount,
            stage=stage_of(org, s.state),
            close=s.close,
            forecast_category="commit" if s.category == "closed" else s.category,
        )
        for s in SPECS
    ]
    last_week = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 1))
    old_item = services.action_item_create(
        actor=org.manager, meeting=last_week, what="Send the proposal", owner=org.rep, due_date=date(2026, 6, 5)
    )
    services.meeting_hold(actor=org.manager, meeting=last_week)
    time_machine.move_to(CALL_DAY, tick=True)
    services.forecast_submit(
        actor=org.rep, period=periods.month(2026, 6), commit=Decimal("3000"), best_case=Decimal("3700")
    )
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8), agenda="Pipeline")

    login(page, "manager")
    page.goto("/review/meetings/")
    page.get_by_test_id(f"meeting-row-{meeting.pk}").get_by_role("link").click()
    page.wait_for_url(f"**/review/meetings/{meeting.pk}/")

    # Last week's item, closed in place.
    row = page.get_by_test_id(f"item-{old_item.pk}")
    expect(row.get_by_test_id(f"item-{old_item.pk}-status")).to_have_text("Open")
    htmx_settled(page)
    page.get_by_test_id(f"item-{old_item.pk}-done").click()
    expect(page.get_by_test_id(f"item-{old_item.pk}-status")).to_have_text("Done")
    htmx_settled(page)

    # A new item: what, who, by when.
    form = page.get_by_test_id("item-form")
    form.locator("input[name=what]").fill("Book the demo")
    form.locator("select[name=owner]").select_option(str(org.rep_js.pk))
    form.locator("input[name=due_date]").fill("2026-06-19")
    page.get_by_test_id("item-add").click()
    expect(page.get_by_test_id("new-items")).to_contain_text("Book the demo")
    htmx_settled(page)

    # The team's forecast, adjusted with a note.
    forecast = page.get_by_test_id("team-forecast-form")
    forecast.locator("input[name=commit]").fill("3500")
    forecast.locator("input[name=best_case]").fill("4500")
    forecast.locator("textarea[name=note]").fill("The Jiangsu deal lands")
    page.get_by_test_id("team-forecast-submit").click()
    page.wait_for_url(f"**/review/meetings/{meeting.pk}/")
    expect(page.get_by_test_id("team-commit")).to_have_text("3,500.00")

    page.get_by_test_id("meeting-hold").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("meeting-status")).to_have_attribute("data-value", MeetingStatus.HELD)
    held = page.get_by_test_id("meeting-record").inner_html()
    if os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / "manager-meeting.png"), full_page=True)

    assert Meeting.objects.get(pk=meeting.pk).status == MeetingStatus.HELD
    assert ActionItem.objects.get(pk=old_item.pk).status == ActionItemStatus.DONE
    assert ActionItem.objects.get(what="Book the demo").owner == org.rep_js
    team = ForecastSubmission.objects.get(level=ForecastLevel.TEAM)
    assert (team.commit, team.rollup_commit) == (Decimal("3500"), Decimal("3000"))

    # A week later, the deals have moved and the rep has forecast again: the held meeting has not.
    time_machine.move_to(CALL_DAY + timedelta(days=7), tick=True)
    opportunity_update(opportunity=deals[2], data={"amount": Decimal("7777")}, actor=org.rep)
    services.forecast_submit(
        actor=org.rep, period=periods.month(2026, 6), commit=Decimal("6000"), best_case=Decimal("9000")
    )
    page.goto(f"/review/meetings/{meeting.pk}/")
    assert page.get_by_test_id("meeting-record").inner_html() == held
    expect(page.get_by_test_id("meeting-hold")).to_have_count(0)
    expect(page.get_by_test_id("item-form")).to_have_count(0)
