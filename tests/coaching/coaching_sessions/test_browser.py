"""A 1:1 in a real browser: the manager records a session with two commitments (the rep picked by searching);
the rep logs in, sees the session and its commitments, and acknowledges it; the manager sees the acknowledgement."""

import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from coaching.models import CoachingSession
from tests.browser.plugin import login, pick

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
DAY = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_manager_records_a_one_to_one_and_the_rep_acknowledges_it(page, org, time_machine):
    time_machine.move_to(DAY, tick=True)
    org.rep.first_name, org.rep.last_name = "Wei", "Zhang"
    org.rep.save(update_fields=["first_name", "last_name"])

    login(page, "manager")
    page.goto("/review/coaching/")
    page.get_by_test_id("session-create").locator("summary").click()
    form = page.get_by_test_id("session-create-form")
    pick(form, "rep", "Wei", "Wei Zhang")
    form.locator("input[name=date]").fill("2026-06-10")
    form.locator("select[name=focus_kind]").select_option("skill")
    form.locator("input[name=focus]").fill("Asking for the order")
    form.locator("textarea[name=observations]").fill("Good rapport; never asks for the close.")
    form.locator("input[name=c1_what]").fill("Ask for the order in every final meeting")
    form.locator("input[name=c1_due]").fill("2026-06-19")
    form.locator("input[name=c2_what]").fill("Role-play the close with a peer")
    form.locator("input[name=c2_due]").fill("2026-06-26")
    page.get_by_test_id("session-create-submit").click()
    page.wait_for_url("**/review/coaching/*/")
    session = CoachingSession.objects.get()
    assert (session.rep, session.manager) == (org.rep, org.manager)
    expect(page.get_by_test_id("commitments")).to_contain_text("Ask for the order in every final meeting")
    expect(page.get_by_test_id("session-ack")).to_have_attribute("data-value", "no")
    expect(page.get_by_test_id("session-acknowledge")).to_have_count(0)

    page.context.clear_cookies()
    time_machine.move_to(DAY + timedelta(hours=3), tick=True)
    login(page, "rep")
    page.goto("/review/coaching/")
    expect(page.get_by_test_id("my-commitments")).to_contain_text("Role-play the close with a peer")
    page.get_by_test_id(f"session-row-{session.pk}").get_by_role("link").click()
    page.wait_for_url(f"**/review/coaching/{session.pk}/")
    commitments = page.get_by_test_id("commitments")
    expect(commitments).to_contain_text("Ask for the order in every final meeting")
    expect(commitments).to_contain_text("Role-play the close with a peer")
    expect(page.get_by_test_id("session-edit-form")).to_have_count(0)
    page.get_by_test_id("session-acknowledge").click()
    page.wait_for_url(f"**/review/coaching/{session.pk}/")
    expect(page.get_by_test_id("session-ack")).to_have_attribute("data-value", "yes")
    session.refresh_from_db()
    assert session.acknowledged_at is not None

    page.context.clear_cookies()
    login(page, "manager")
    page.goto(f"/review/coaching/{session.pk}/")
    expect(page.get_by_test_id("session-ack")).to_have_attribute("data-value", "yes")
    expect(page.get_by_test_id("session-ack")).to_contain_text("Acknowledged by the rep")
    expect(page.get_by_test_id("session-edit-form")).to_have_count(0)
    if os.environ.get("SAVE_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / "manager-coaching.png"), full_page=True)
