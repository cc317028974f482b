"""1:1 coaching: who sees which session (pages and API), acknowledgement by the rep only, the follow-up of earlier
commitments, bad input as a form error that writes nothing, the public commitment selectors, query counts."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coaching import session_selectors as selectors
from coaching import session_services as services
from coaching.models import CoachingSession, Commitment
from crm.models import AuditLog
from tests.coaching.coaching_sessions.conftest import record

pytestmark = pytest.mark.django_db
API = "/api/review/coaching-sessions/"

# Which sessions (fixture attribute names) each persona sees.
SEES = {
    "director": {"own", "sub", "sub_js", "other"},
    "manager": {"own", "sub", "sub_js"},
    "manager_north": {"other"},
    "rep": {"sub"},
    "rep_same_team": set(),  # a peer of `rep` in Shanghai: never his sessions
    "rep_js": {"sub_js"},
    "rep_other": {"other"},
}


@pytest.mark.parametrize("who", sorted(SEES))
def test_each_role_sees_exactly_its_sessions_on_pages_and_api(org, sessions, client_for, api, who):
    user = getattr(org, who)
    client, rest = client_for(user), api(user)
    for name in ("own", "sub", "sub_js", "other"):
        session = getattr(sessions, name)
        expected = 200 if name in SEES[who] else 404
        assert client.get(f"/review/coaching/{session.pk}/").status_code == expected, (who, name)
        assert client.get(f"/review/coaching/{session.pk}/print/").status_code == expected, (who, name)
        assert rest.get(f"{API}{session.pk}/").status_code == expected, (who, name)
    listed = {row["id"] for row in rest.get(API).json()["results"]}
    assert listed == {getattr(sessions, n).pk for n in SEES[who]}
    page = client.get("/review/coaching/").content.decode()
    for name in ("own", "sub", "sub_js", "other"):
        assert (f'data-testid="session-row-{getattr(sessions, name).pk}"' in page) == (name in SEES[who])


def test_the_list_filters_by_rep(org, sessions, client_for):
    page = client_for(org.manager).get("/review/coaching/", {"rep": org.rep.pk}).content.decode()
    assert f'session-row-{sessions.sub.pk}"' in page
    assert f'session-row-{sessions.own.pk}"' not in page and f'session-row-{sessions.sub_js.pk}"' not in page


def test_only_the_rep_acknowledges_and_then_the_session_is_frozen(org, sessions, client_for, api):
    url = f"/review/coaching/{sessions.sub.pk}/acknowledge/"
    assert client_for(org.manager).post(url).status_code == 400
    assert client_for(org.director).post(url).status_code == 400
    assert client_for(org.rep_same_team).post(url).status_code == 404
    assert api(org.manager).post(f"{API}{sessions.sub.pk}/acknowledge/").status_code == 400
    assert CoachingSession.objects.get(pk=sessions.sub.pk).acknowledged_at is None

    assert client_for(org.rep).post(url).status_code == 302
    acknowledged = CoachingSession.objects.get(pk=sessions.sub.pk).acknowledged_at
    assert acknowledged is not None
    assert client_for(org.rep).post(url).status_code == 400  # once
    assert CoachingSession.objects.get(pk=sessions.sub.pk).acknowledged_at == acknowledged
    page = client_for(org.manager).get(f"/review/coaching/{sessions.sub.pk}/").content.decode()
    assert 'data-testid="session-ack" data-value="yes"' in page
    assert 'data-testid="session-edit-form"' not in page

    # Frozen: no edit, no new commitment.
    response = client_for(org.manager).post(
        f"/review/coaching/{sessions.sub.pk}/commitments/", {"what": "X", "due_date": "2026-06-30"}
    )
    assert response.status_code == 400
    assert sessions.sub.commitments.count() == 1
    response = api(org.manager).patch(
        f"{API}{sessions.sub.pk}/", {"date": "2026-06-11", "focus_kind": "deal", "focus": "Other"}, format="json"
    )
    assert response.status_code == 400
    assert CoachingSession.objects.get(pk=sessions.sub.pk).focus == "Discovery questions"


def test_a_rep_cannot_edit_his_own_session(org, sessions, client_for):
    data = {"date": "2026-06-10", "focus_kind": "skill", "focus": "Nothing to learn"}
    assert client_for(org.rep).post(f"/review/coaching/{sessions.sub.pk}/edit/", data).status_code == 400
    assert CoachingSession.objects.get(pk=sessions.sub.pk).focus == "Discovery questions"


def test_the_next_session_follows_up_the_earlier_commitments(org, client_for):
    first = record(
        org.manager, org.rep, day=date(2026, 6, 1), commitments=[("A", date(2026, 6, 5)), ("B", date(2026, 6, 8))]
    )
    second = record(org.manager, org.rep, day=date(2026, 6, 8), commitments=[("C", date(2026, 6, 12))])
    a, b = first.commitments.order_by("what")
    assert list(selectors.follow_ups(second)) == [a, b]
    assert list(selectors.follow_ups(first)) == []
    client = client_for(org.manager)
    url = f"/review/coaching/{second.pk}/follow-up/"
    assert client.post(f"{url}{a.pk}/", {"status": "done", "note": "Sent"}).status_code == 302
    assert client.post(f"{url}{b.pk}/", {"status": "open", "note": "Next week"}).status_code == 302
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, a.reviewed_in, a.follow_up, a.closed_at is not None) == ("done", second, "Sent", True)
    assert (b.status, b.reviewed_in, b.follow_up) == ("open", second, "Next week")
    # The second session still lists both (followed up here); a third lists what is open: B and C.
    assert set(selectors.follow_ups(second)) == {a, b}
    third = record(org.manager, org.rep, day=date(2026, 6, 15))
    assert [c.what for c in selectors.follow_ups(third)] == ["B", "C"]
    # A commitment not open before this session cannot be followed up in it.
    assert client.post(f"/review/coaching/{first.pk}/follow-up/{b.pk}/", {"status": "done"}).status_code == 404
    # The rep's open commitments, soonest due first, equal an independent filter.
    expected = sorted(
        (c for c in Commitment.objects.all() if c.rep_id == org.rep.pk and c.status == "open"),
        key=lambda c: (c.due_date, c.pk),
    )
    assert list(selectors.open_commitments(org.rep)) == expected == [b, second.commitments.get()]


def test_team_commitments_are_the_teams_open_ones_the_user_sees(org, sessions):
    def whats(user, region):
        return [c.what for c in selectors.team_commitments(user, region)]

    assert whats(org.manager, org.east) == ["Send the proposal", "Call ten prospects"]
    assert whats(org.manager, org.sh) == ["Send the proposal"]
    assert whats(org.manager_north, org.east) == []
    assert whats(org.director, org.hq) == ["Send the proposal", "Call ten prospects", "Visit the CIO"]
    assert whats(org.rep_same_team, org.sh) == []
    assert [c.what for c in selectors.open_commitments(org.rep_other)] == ["Visit the CIO"]


def _form(person, **extra):
    data = {
        "rep": person.pk,
        "date": "2026-06-10",
        "focus_kind": "deal",
        "focus": "The Jiangsu tender",
        "observations": "",
        "c1_what": "Call the buyer",
        "c1_due": "2026-06-15",
        "c2_what": "",
        "c2_due": "",
        "c3_what": "",
        "c3_due": "",
    }
    data.update(extra)
    return data


def test_recording_a_session_through_the_page(org, client_for):
    response = client_for(org.manager).post("/review/coaching/", _form(org.rep, c2_what="Demo", c2_due="2026-06-20"))
    assert response.status_code == 302
    session = CoachingSession.objects.get()
    assert (session.manager, session.rep, session.region) == (org.manager, org.rep, org.sh)
    assert sorted(session.commitments.values_list("what", "due_date")) == [
        ("Call the buyer", date(2026, 6, 15)),
        ("Demo", date(2026, 6, 20)),
    ]


@pytest.mark.parametrize(
    "who, extra, field",
    [
        ("manager", {"c1_due": ""}, "c1_due"),  # a commitment without a due date
        ("manager", {"c2_due": "2026-06-30"}, "c2_what"),  # a date without a commitment
        ("manager", {"focus": ""}, "focus"),
        ("manager", {"date": "not a date"}, "date"),
        ("manager", {"focus_kind": "magic"}, "focus_kind"),
        ("manager", {"rep": "other"}, "rep"),  # a rep of another team
        ("manager_north", {"rep": "rep"}, "rep"),
    ],
)
def test_bad_input_is_a_form_error_and_writes_nothing(org, client_for, who, extra, field):
    if extra.get("rep"):
        extra = {**extra, "rep": getattr(org, {"other": "rep_other", "rep": "rep"}[extra["rep"]]).pk}
    audits = AuditLog.objects.count()
    response = client_for(getattr(org, who)).post("/review/coaching/", _form(org.rep, **extra))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not CoachingSession.objects.exists() and not Commitment.objects.exists()
    assert AuditLog.objects.count() == audits


def test_a_rep_cannot_record_sessions(org, client_for):
    assert client_for(org.rep).post("/review/coaching/", _form(org.rep_same_team)).status_code == 200
    assert not CoachingSession.objects.exists()
    with pytest.raises(ValidationError):
        services.coaching_session_create(
            actor=org.rep, rep=org.rep_same_team, date=date(2026, 6, 10), focus_kind="skill", focus="x"
        )


def test_the_list_and_a_session_read_a_fixed_number_of_queries(org, client_for):
    client = client_for(org.manager)
    first = record(org.manager, org.rep, day=date(2026, 6, 1), commitments=[("A", date(2026, 6, 5))])

    def count(url):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    session = record(org.manager, org.rep, commitments=[("B", date(2026, 6, 12))])
    before = (count("/review/coaching/"), count(f"/review/coaching/{session.pk}/"))
    for i in range(6):
        record(
            org.manager,
            org.rep_js if i % 2 else org.rep,
            day=date(2026, 5, 1 + i),
            commitments=[(f"X{i}", date(2026, 6, 1 + i)), (f"Y{i}", date(2026, 6, 2 + i))],
        )
        services.commitment_add(actor=org.manager, session=session, what=f"Z{i}", due_date=date(2026, 7, 1))
    assert (count("/review/coaching/"), count(f"/review/coaching/{session.pk}/")) == before
    assert first.pk


def test_the_manager_edits_and_adds_commitments_until_acknowledged(org, sessions, client_for, deals):
    client = client_for(org.manager)
    url = f"/review/coaching/{sessions.sub.pk}/"
    data = {
        "date": "2026-06-09",
        "focus_kind": "deal",
        "focus": "The Shanghai deal",
        "observations": "Prepared",
        "opportunity": deals["rep"].pk,
    }
    assert client.post(f"{url}edit/", data).status_code == 302
    session = CoachingSession.objects.get(pk=sessions.sub.pk)
    assert (session.date, session.focus_kind, session.opportunity) == (date(2026, 6, 9), "deal", deals["rep"])
    # Another rep's deal is refused on the form, and nothing changes.
    response = client.post(f"{url}edit/", {**data, "focus": "Other", "opportunity": deals["rep_sh2"].pk})
    assert response.status_code == 400
    assert CoachingSession.objects.get(pk=sessions.sub.pk).focus == "The Shanghai deal"
    assert client.post(f"{url}commitments/", {"what": "Demo", "due_date": "2026-06-25"}).status_code == 302
    assert client.post(f"{url}commitments/", {"what": "No date"}).status_code == 400
    assert sorted(session.commitments.values_list("what", flat=True)) == ["Demo", "Send the proposal"]
    assert AuditLog.objects.filter(action="coaching.update", object_id=str(session.pk)).count() == 1


def test_the_commitments_include_renders_a_teams_commitments(org, sessions):
    from django.template.loader import render_to_string

    html = render_to_string(
        "coaching/sessions/_commitments.html",
        {"commitments": selectors.team_commitments(org.manager, org.east), "show_rep": True},
    )
    assert "Send the proposal" in html and "Call ten prospects" in html and "Visit the CIO" not in html
