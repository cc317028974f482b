"""Meeting mode: planning, action items (3定, links, carry forward, close / drop / keep), holding a meeting freezes
what it shows (the page is the same after the deals change), week-over-week deltas, exports, bad input and who
sees what."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from openpyxl import load_workbook

from coaching import selectors, services
from coaching.models import ActionItem, ActionItemStatus, Meeting, MeetingStatus
from pipeline.services import opportunity_move_stage, opportunity_update
from salesmgmt.lib import periods
from tests.coaching.call_data import CALL_DAY

pytestmark = pytest.mark.django_db

WEEK = date(2026, 6, 8)
RECORD = re.compile(rb"<!-- meeting-record -->(.*)<!-- /meeting-record -->", re.S)


def record(response) -> bytes:
    """The part of a meeting page made of what the meeting shows (the rest carries per-request CSRF tokens)."""
    assert response.status_code == 200
    found = RECORD.search(response.content)
    assert found, "no meeting record on the page"
    return found.group(1)


def plan(org, week=WEEK, team=None):
    return services.meeting_create(actor=org.manager, team=team or org.east, week=week)


def add_item(org, meeting, what="Call the customer", owner=None, due=date(2026, 6, 19), **links):
    return services.action_item_create(
        actor=org.manager, meeting=meeting, what=what, owner=owner or org.rep, due_date=due, **links
    )


def test_planning_takes_the_monday_and_the_team_as_attendees(org, call_day):
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 11))
    assert meeting.week == WEEK
    assert set(meeting.attendees.all()) == {org.manager, org.rep, org.rep_same_team, org.rep_js}
    with pytest.raises(ValidationError) as error:
        services.meeting_create(actor=org.manager, team=org.east, week=WEEK)
    assert "week" in error.value.message_dict


def test_the_manager_plans_a_meeting_through_the_page(org, call_day, client_for):
    client = client_for(org.manager)
    response = client.post("/review/meetings/", {"team": org.east.pk, "week": "2026-06-10", "title": "", "agenda": ""})
    meeting = Meeting.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/review/meetings/{meeting.pk}/"
    # Another area is not his to plan.
    response = client.post("/review/meetings/", {"team": org.north.pk, "week": "2026-06-10"})
    assert response.status_code == 400 and Meeting.objects.count() == 1


def test_holding_freezes_the_page_whatever_the_deals_do_afterwards(org, call_deals, client_for, time_machine):
    client = client_for(org.manager)
    services.forecast_submit(
        actor=org.rep, period=periods.month(2026, 6), commit=Decimal("3000"), best_case=Decimal("3700")
    )
    meeting = plan(org)
    add_item(org, meeting, what="Close the 2000 deal", opportunity=call_deals[2])
    services.meeting_update(actor=org.manager, meeting=meeting, minutes="We talked.")
    client.post(f"/review/meetings/{meeting.pk}/hold/")
    meeting.refresh_from_db()
    assert meeting.status == MeetingStatus.HELD and meeting.snapshot
    before = record(client.get(f"/review/meetings/{meeting.pk}/"))
    assert b"Close the 2000 deal" in before and b"3,000.10" in before  # the rep's deal-based commit

    # The deals move: the commit deal is won, the best-case deal grows; the rep submits again; a week passes.
    won = next(s for s in org.stages if s.is_won)
    opportunity_move_stage(opportunity=call_deals[2], stage=won, actor=org.rep, evidence="Signed")
    opportunity_update(opportunity=call_deals[4], data={"amount": Decimal("9999")}, actor=org.rep)
    services.forecast_submit(
        actor=org.rep, period=periods.month(2026, 6), commit=Decimal("5000"), best_case=Decimal("9000")
    )
    time_machine.move_to(CALL_DAY + timedelta(days=7), tick=False)
    after = record(client.get(f"/review/meetings/{meeting.pk}/"))
    assert after == before

    # ...while a planned meeting shows the figures of now: the comparison above could fail.
    live = record(client.get(f"/review/meetings/{plan(org, WEEK + timedelta(days=7)).pk}/"))
    assert b"5,000.00" in live and b"5,000.00" not in before


def test_a_held_meeting_refuses_changes(org, call_day, client_for):
    meeting = plan(org)
    services.meeting_hold(actor=org.manager, meeting=meeting)
    client = client_for(org.manager)
    response = client.post(
        f"/review/meetings/{meeting.pk}/items/", {"what": "Late", "owner": org.rep.pk, "due_date": "2026-06-20"}
    )
    assert response.status_code in (400, 302) and not ActionItem.objects.exists()
    response = client.post(f"/review/meetings/{meeting.pk}/edit/", {"title": "New", "minutes": "changed"})
    assert response.status_code == 400
    meeting.refresh_from_db()
    assert (meeting.title, meeting.minutes) != ("New", "changed")
    with pytest.raises(ValidationError):
        services.meeting_hold(actor=org.manager, meeting=meeting)


def test_open_items_carry_forward_and_close_in_the_next_meeting(org, call_day, client_for):
    first = plan(org)
    keep = add_item(org, first, what="Keep me")
    close = add_item(org, first, what="Close me", owner=org.rep_js)
    drop = add_item(org, first, what="Drop me")
    services.meeting_hold(actor=org.manager, meeting=first)

    second = plan(org, WEEK + timedelta(days=7))
    assert set(selectors.carried_items(second)) == {keep, close, drop}
    client = client_for(org.manager)
    url = f"/review/meetings/{second.pk}/items/"
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "meeting-items"}
    response = client.post(f"{url}{close.pk}/status/", {"status": "done"}, **htmx)
    assert response.status_code == 200 and b'id="meeting-items"' in response.content
    client.post(f"{url}{drop.pk}/status/", {"status": "dropped"}, **htmx)
    client.post(f"{url}{keep.pk}/status/", {"status": "open"}, **htmx)
    response = client.post(url, {"what": "New one", "owner": org.rep_same_team.pk, "due_date": "2026-06-26"}, **htmx)
    assert response.status_code == 200 and b"New one" in response.content
    close.refresh_from_db()
    drop.refresh_from_db()
    assert (close.status, close.closed_in) == (ActionItemStatus.DONE, second)
    assert (drop.status, drop.closed_in) == (ActionItemStatus.DROPPED, second)
    services.meeting_hold(actor=org.manager, meeting=second)
    second.refresh_from_db()
    shown = {i["what"]: i["status"] for i in second.snapshot["items"]["carried"]}
    assert shown == {"Keep me": "open", "Close me": "done", "Drop me": "dropped"}

    third = plan(org, WEEK + timedelta(days=14))
    carried = {i.what for i in selectors.carried_items(third)}
    assert carried == {"Keep me", "New one"}
    # The first meeting still shows its items as they were when it was held.
    first.refresh_from_db()
    assert {i["what"]: i["status"] for i in first.snapshot["items"]["new"]} == {
        "Keep me": "open",
        "Close me": "open",
        "Drop me": "open",
    }
    assert second.snapshot["previous"] == {"id": first.pk, "week": WEEK.isoformat()}


def test_a_missing_due_date_or_an_owner_outside_the_team_is_a_form_error(org, call_day, client_for):
    meeting = plan(org)
    client = client_for(org.manager)
    url = f"/review/meetings/{meeting.pk}/items/"
    cases = [
        ({"what": "No date", "owner": org.rep.pk, "due_date": ""}, "due_date"),
        ({"what": "Outsider", "owner": org.rep_other.pk, "due_date": "2026-06-20"}, "owner"),
        ({"what": "Nobody", "owner": "", "due_date": "2026-06-20"}, "owner"),
        ({"what": "", "owner": org.rep.pk, "due_date": "2026-06-20"}, "what"),
    ]
    for data, field in cases:
        response = client.post(url, data)
        assert response.status_code == 400, data
        assert field in response.context["item_form"].errors, (data, response.context["item_form"].errors)
    assert not ActionItem.objects.exists()


def test_an_owner_outside_the_team_is_refused_even_when_the_user_sees_him(org, call_day):
    meeting = services.meeting_create(actor=org.director, team=org.east, week=WEEK)
    with pytest.raises(ValidationError) as error:
        services.action_item_create(
            actor=org.director, meeting=meeting, what="x", owner=org.rep_other, due_date=date(2026, 6, 20)
        )
    assert "owner" in error.value.message_dict
    assert not ActionItem.objects.exists()


def test_week_over_week_deltas_of_the_headline():
    previous = {"review": {"headline": [{"metric": "won", "actual": "100.00", "gap": "900.00", "coverage": None}]}}
    current = {
        "headline": [{"metric": "won", "actual": "250.50", "gap": "749.50", "coverage": "2.00"}, {"metric": "new"}]
    }
    deltas = selectors.headline_deltas(current, previous)
    assert deltas["won"]["actual"] == "150.50" and deltas["won"]["gap"] == "-150.50"
    assert deltas["won"]["coverage"] is None and "new" not in deltas
    assert selectors.headline_deltas(current, None) == {}


def test_export_xlsx_and_printable_page(org, call_deals, client_for):
    meeting = plan(org)
    add_item(org, meeting, what="=HYPERLINK(1)")
    services.meeting_hold(actor=org.manager, meeting=meeting)
    client = client_for(org.manager)
    response = client.get(f"/review/meetings/{meeting.pk}/export.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames[:4] == ["Meeting", "Headline", "Team", "Action items"]
    items = list(book["Action items"].iter_rows(values_only=True))
    assert items[1][1] == "'=HYPERLINK(1)"  # never a formula
    forecast = list(book[book.sheetnames[4]].iter_rows(values_only=True))
    rep_row = next(r for r in forecast if r[0] == str(org.rep))
    assert Decimal(str(rep_row[5])) == Decimal("3000.10")  # deals commit, as shown
    response = client.get(f"/review/meetings/{meeting.pk}/print/")
    assert response.status_code == 200 and b"coaching-print.css" in response.content
    assert record(response) == record(client.get(f"/review/meetings/{meeting.pk}/"))


@pytest.mark.parametrize(
    ("who", "own_team", "sub_team", "other_team"),
    [("manager", 200, 200, 404), ("director", 200, 200, 200), ("manager_north", 404, 404, 200), ("rep", 404, 404, 404)],
)
def test_who_sees_which_meeting(org, call_day, client_for, who, own_team, sub_team, other_team):
    east = plan(org)
    sh = services.meeting_create(actor=org.manager, team=org.sh, week=WEEK)
    north = services.meeting_create(actor=org.manager_north, team=org.north, week=WEEK)
    client = client_for(getattr(org, who))
    for meeting, status in ((east, own_team), (sh, sub_team), (north, other_team)):
        assert client.get(f"/review/meetings/{meeting.pk}/").status_code == status
        assert client.get(f"/review/meetings/{meeting.pk}/export.xlsx").status_code == status
        assert client.get(f"/review/meetings/{meeting.pk}/print/").status_code == status
    if status == 404:
        assert client.post(f"/review/meetings/{north.pk}/hold/").status_code == 404


def test_items_visible_to_each_role(org, call_day, client_for):
    east = plan(org)
    north = services.meeting_create(actor=org.manager_north, team=org.north, week=WEEK)
    mine = add_item(org, east, owner=org.rep)
    colleague = add_item(org, east, owner=org.rep_js)
    other = services.action_item_create(
        actor=org.manager_north, meeting=north, what="North", owner=org.rep_other, due_date=date(2026, 6, 20)
    )
    assert set(selectors.items_visible_to(org.rep)) == {mine}
    assert set(selectors.items_visible_to(org.manager)) == {mine, colleague}
    assert set(selectors.items_visible_to(org.director)) == {mine, colleague, other}
    # Changing another team's item through one's own meeting is a 404.
    response = client_for(org.manager).post(f"/review/meetings/{east.pk}/items/{other.pk}/status/", {"status": "done"})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.status == ActionItemStatus.OPEN
    # The rep's list shows his own open items.
    response = client_for(org.rep).get("/review/meetings/")
    assert list(response.context["my_items"]) == [mine] and response.context["form"] is None


def test_the_meeting_page_reads_a_fixed_number_of_queries(org, call_deals, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory

    meeting = plan(org)
    add_item(org, meeting)
    client = client_for(org.manager)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/review/meetings/{meeting.pk}/").status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(5):
        rep = UserFactory(username=f"more{i}", role="rep", region=org.js)
        add_item(org, meeting, what=f"Item {i}", owner=rep)
        services.forecast_submit(actor=rep, period=periods.month(2026, 6), commit=Decimal("1"), best_case=Decimal("2"))
    assert count() == before


def test_links_are_scoped_to_what_the_user_sees(org, call_deals, client_for):
    meeting = plan(org)
    client = client_for(org.manager)
    url = f"/review/meetings/{meeting.pk}/items/"
    base = {"what": "Push it", "owner": org.rep.pk, "due_date": "2026-06-20"}
    north_deal = call_deals[-1]  # rep_other's, in North
    response = client.post(url, {**base, "opportunity": north_deal.pk})
    assert response.status_code == 400 and "opportunity" in response.context["item_form"].errors
    assert not ActionItem.objects.exists()
    response = client.post(url, {**base, "opportunity": call_deals[2].pk})
    assert response.status_code == 302
    assert ActionItem.objects.get().opportunity == call_deals[2]
