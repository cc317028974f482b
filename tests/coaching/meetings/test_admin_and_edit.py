"""Admin shows meetings, items and forecasts read-only; editing a planned meeting checks its attendees."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from coaching import services
from coaching.models import Meeting
from salesmgmt.lib import periods

pytestmark = pytest.mark.django_db


def test_admin_lists_but_never_changes(org, call_day, client_for):
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8))
    item = services.action_item_create(
        actor=org.manager, meeting=meeting, what="x", owner=org.rep, due_date=date(2026, 6, 19)
    )
    forecast = services.forecast_submit(
        actor=org.rep, period=periods.month(2026, 6), commit=Decimal("1"), best_case=Decimal("2")
    )
    client = client_for(org.admin)
    for obj in (meeting, item, forecast):
        meta = obj._meta
        assert client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")).status_code == 200
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        assert client.get(change).status_code == 200
        assert client.post(change, {"_save": "Save"}).status_code == 403
        assert client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403


def test_editing_a_meeting_keeps_attendees_in_the_team(org, call_day, client_for, api):
    meeting = services.meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8))
    client = client_for(org.manager)
    data = {"title": "Monday review", "agenda": "1. Pipeline", "minutes": "", "attendees": [org.rep.pk, org.manager.pk]}
    assert client.post(f"/review/meetings/{meeting.pk}/edit/", data).status_code == 302
    meeting.refresh_from_db()
    assert (meeting.title, meeting.agenda) == ("Monday review", "1. Pipeline")
    assert set(meeting.attendees.all()) == {org.rep, org.manager}
    # Someone outside the team is refused, on the page and through the API; nothing changes.
    response = client.post(f"/review/meetings/{meeting.pk}/edit/", {**data, "attendees": [org.rep_other.pk]})
    assert response.status_code == 400
    response = api(org.director).patch(
        f"/api/review/meetings/{meeting.pk}/", {"attendees": [org.rep_other.pk], "title": "Changed"}, format="json"
    )
    assert response.status_code == 400 and "attendees" in response.json()["errors"]
    meeting = Meeting.objects.get(pk=meeting.pk)
    assert meeting.title == "Monday review" and set(meeting.attendees.all()) == {org.rep, org.manager}
