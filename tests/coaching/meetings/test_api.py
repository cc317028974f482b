"""The meetings' API (/api/review/meetings/, /api/review/action-items/): scoped, planning, items, holding,
bad input as a JSON 400, another team's as a 404, and the schema."""

from datetime import date

import pytest

from coaching import services
from coaching.models import ActionItem, ActionItemStatus, Meeting, MeetingStatus
from tests.conftest import ids

pytestmark = pytest.mark.django_db
MEETINGS, ITEMS = "/api/review/meetings/", "/api/review/action-items/"


def test_plan_add_items_close_and_hold(org, call_deals, api):
    client = api(org.manager)
    response = client.post(MEETINGS, {"team": org.east.pk, "week": "2026-06-10"}, format="json")
    assert response.status_code == 201, response.content
    meeting = response.json()
    assert meeting["week"] == "2026-06-08" and meeting["status"] == "planned"
    response = client.post(
        ITEMS,
        {
            "meeting": meeting["id"],
            "what": "Call",
            "owner": org.rep.pk,
            "due_date": "2026-06-19",
            "opportunity": call_deals[2].pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    item = response.json()
    assert item["opportunity"] == call_deals[2].pk
    response = client.patch(f"{ITEMS}{item['id']}/", {"status": "done", "meeting": meeting["id"]}, format="json")
    assert response.status_code == 200 and response.json()["closed_in"] == meeting["id"]
    response = client.patch(f"{MEETINGS}{meeting['id']}/", {"minutes": "Done."}, format="json")
    assert response.status_code == 200 and response.json()["minutes"] == "Done."
    response = client.post(f"{MEETINGS}{meeting['id']}/hold/")
    assert response.status_code == 200 and response.json()["status"] == MeetingStatus.HELD
    detail = client.get(f"{MEETINGS}{meeting['id']}/").json()
    assert [i["what"] for i in detail["shown"]["items"]["new"]] == ["Call"]
    # Held: no more changes.
    assert client.post(f"{MEETINGS}{meeting['id']}/hold/").status_code == 400
    assert client.patch(f"{MEETINGS}{meeting['id']}/", {"minutes": "x"}, format="json").status_code == 400


def test_bad_items_are_a_400_and_change_nothing(org, call_day, api):
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8))
    client = api(org.manager)
    for data in (
        {"meeting": meeting.pk, "what": "No date", "owner": org.rep.pk},
        {"meeting": meeting.pk, "what": "Outsider", "owner": org.rep_other.pk, "due_date": "2026-06-19"},
    ):
        response = client.post(ITEMS, data, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["errors"]
    assert not ActionItem.objects.exists()


def test_scopes(org, call_day, api):
    east = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8))
    north = services.meeting_create(actor=org.manager_north, team=org.north, week=date(2026, 6, 8))
    mine = services.action_item_create(
        actor=org.manager, meeting=east, what="a", owner=org.rep, due_date=date(2026, 6, 19)
    )
    services.action_item_create(actor=org.manager, meeting=east, what="b", owner=org.rep_js, due_date=date(2026, 6, 19))
    other = services.action_item_create(
        actor=org.manager_north, meeting=north, what="c", owner=org.rep_other, due_date=date(2026, 6, 19)
    )
    assert ids(api(org.manager).get(MEETINGS)) == {east.pk}
    assert ids(api(org.director).get(MEETINGS)) == {east.pk, north.pk}
    assert ids(api(org.rep).get(MEETINGS)) == set()
    assert api(org.manager).get(f"{MEETINGS}{north.pk}/").status_code == 404
    assert api(org.manager).post(f"{MEETINGS}{north.pk}/hold/").status_code == 404
    assert ids(api(org.rep).get(ITEMS)) == {mine.pk}
    assert api(org.manager).patch(f"{ITEMS}{other.pk}/", {"status": "done"}, format="json").status_code == 404
    # An item on another team's meeting cannot be added through an id outside the scope.
    response = api(org.manager).post(
        ITEMS, {"meeting": north.pk, "what": "x", "owner": org.rep.pk, "due_date": "2026-06-19"}, format="json"
    )
    assert response.status_code == 400
    other.refresh_from_db()
    assert other.status == ActionItemStatus.OPEN and Meeting.objects.count() == 2


def test_the_schema_describes_the_endpoints(schema):
    paths = schema["paths"]
    assert {"/api/review/meetings/", "/api/review/meetings/{id}/", "/api/review/meetings/{id}/hold/"} <= set(paths)
    assert {"/api/review/action-items/", "/api/review/action-items/{id}/"} <= set(paths)
    assert set(paths["/api/review/action-items/{id}/"]) == {"get", "patch"}
    assert "404" in paths["/api/review/meetings/{id}/hold/"]["post"]["responses"]
    props = schema["components"]["schemas"]["ActionItem"]["properties"]
    assert {"what", "owner", "due_date", "status", "node", "opportunity", "alert", "closed_in"} <= set(props)
