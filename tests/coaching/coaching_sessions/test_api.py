"""The coaching API (/api/review/coaching-sessions/, /api/review/commitments/): recording, bad input as a JSON
400 that writes nothing, the follow-up, the commitments' scope, and the schema."""

from datetime import date

import pytest

from coaching.models import CoachingSession, Commitment
from tests.coaching.coaching_sessions.conftest import record

pytestmark = pytest.mark.django_db
SESSIONS, COMMITMENTS = "/api/review/coaching-sessions/", "/api/review/commitments/"


def body(rep, **extra):
    data = {
        "rep": rep.pk,
        "date": "2026-06-10",
        "focus_kind": "skill",
        "focus": "Closing",
        "commitments": [{"what": "Ask for the order", "due_date": "2026-06-19"}],
    }
    data.update(extra)
    return data


def test_record_follow_up_and_acknowledge(org, api):
    earlier = record(org.manager, org.rep, day=date(2026, 6, 1), commitments=[("Old", date(2026, 6, 5))])
    client = api(org.manager)
    response = client.post(SESSIONS, body(org.rep), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert [c["what"] for c in created["commitments"]] == ["Ask for the order"]
    old = earlier.commitments.get()
    assert [c["id"] for c in created["follow_ups"]] == [old.pk]
    response = client.post(
        f"{SESSIONS}{created['id']}/follow-up/",
        {"commitment": old.pk, "status": "dropped", "note": "No"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "dropped"
    response = client.post(
        COMMITMENTS, {"session": created["id"], "what": "Demo", "due_date": "2026-06-25"}, format="json"
    )
    assert response.status_code == 201
    response = api(org.rep).post(f"{SESSIONS}{created['id']}/acknowledge/")
    assert response.status_code == 200 and response.json()["acknowledged_at"]
    mine = api(org.rep).get(COMMITMENTS, {"status": "open"}).json()["results"]
    assert [c["what"] for c in mine] == ["Ask for the order", "Demo"]


@pytest.mark.parametrize(
    "extra",
    [
        {"commitments": [{"what": "No date"}]},
        {"commitments": [{"what": "", "due_date": "2026-06-19"}]},
        {"focus_kind": "magic"},
        {"focus": ""},
        {"date": "soon"},
    ],
)
def test_bad_input_is_a_400_and_writes_nothing(org, api, extra):
    response = api(org.manager).post(SESSIONS, body(org.rep, **extra), format="json")
    assert response.status_code == 400, response.content
    assert not CoachingSession.objects.exists() and not Commitment.objects.exists()


def test_another_teams_rep_is_refused(org, api):
    for user, rep in ((org.manager, org.rep_other), (org.manager_north, org.rep), (org.rep, org.rep_same_team)):
        assert api(user).post(SESSIONS, body(rep), format="json").status_code == 400
    assert not CoachingSession.objects.exists()


def test_commitments_are_scoped_like_their_sessions(org, sessions, api):
    def whats(user):
        return sorted(c["what"] for c in api(user).get(COMMITMENTS).json()["results"])

    assert whats(org.manager) == ["Call ten prospects", "Send the proposal"]
    assert whats(org.rep) == ["Send the proposal"]
    assert whats(org.rep_same_team) == []
    assert whats(org.director) == ["Call ten prospects", "Send the proposal", "Visit the CIO"]
    other = sessions.other.commitments.get()
    assert api(org.manager).get(f"{COMMITMENTS}{other.pk}/").status_code == 404
    # Nobody adds to a session he does not coach.
    response = api(org.manager).post(
        COMMITMENTS, {"session": sessions.other.pk, "what": "X", "due_date": "2026-07-01"}, format="json"
    )
    assert response.status_code == 400
    assert sessions.other.commitments.count() == 1


def test_the_schema_describes_the_endpoints(schema):
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/review/coaching-sessions/"])
    assert "post" in paths["/api/review/coaching-sessions/{id}/acknowledge/"]
    assert "post" in paths["/api/review/coaching-sessions/{id}/follow-up/"]
    assert {"get", "post"} <= set(paths["/api/review/commitments/"])
    detail = schema["components"]["schemas"]["SessionDetail"]["properties"]
    assert detail["follow_ups"]["type"] == "array"
