"""The review's pipeline flow page (/review/flow/) and its drill-down."""

from decimal import Decimal

from django.urls import reverse

from pipeline import flow as F
from tests.conftest import chart_figures

OWNERS = {
    "rep": {"rep"},
    "manager": {"rep", "rep_sh2", "rep_js"},
    "director": {"rep", "rep_sh2", "rep_js", "rep_other"},
}


def test_the_page_defaults_to_the_last_week_and_the_current_quarter(org, client_for, week):
    response = client_for(org.manager).get(reverse("coaching:flow"))
    assert response.status_code == 200
    context = response.context
    assert {k: v.isoformat() for k, v in context["arguments"].items() if k != "region"} == {
        "date_from": "2026-05-03",
        "date_to": "2026-05-10",
        "period_start": "2026-04-01",
        "period_end": "2026-06-30",
    }
    flow = context["flow"]
    # the manager's three reps: 3 × (100 + 200 + 50) at the start, 3 × (50 + 400) at the end
    assert (flow.start.total, flow.end.total) == (Decimal("1050.00"), Decimal("1350.00"))
    assert (flow.boxes["won"].total, flow.boxes["pushed_out"].total, flow.boxes["new"].total) == (
        Decimal("300.00"),
        Decimal("600.00"),
        Decimal("1200.00"),
    )
    assert context["balanced"]
    body = response.content.decode()
    assert 'data-testid="flow-row-won"' in body and "−300.00" in body
    (figure,) = chart_figures(body)
    assert [trace["type"] for trace in figure["data"]] == ["waterfall"]
    assert 'data-testid="flow-cell-new-pipeline"' in body


def test_a_team_outside_the_scope_is_refused_and_shows_nothing_of_it(org, client_for, week):
    response = client_for(org.manager).get(reverse("coaching:flow"), {"region": org.bj.pk})
    assert response.status_code == 200
    assert 'data-testid="error-region"' in response.content.decode()
    assert response.context["arguments"]["region"] is None
    assert response.context["flow"].end.total == Decimal("1350.00")  # still his own team only


def test_a_team_of_the_scope_narrows_the_page(org, client_for, week):
    response = client_for(org.director).get(reverse("coaching:flow"), {"region": org.js.pk})
    assert response.context["flow"].end.total == Decimal("450.00")


def test_bad_dates_are_form_errors_with_the_defaults_kept(org, client_for, week):
    response = client_for(org.rep).get(reverse("coaching:flow"), {"date_from": "2026-05-09", "date_to": "2026-05-01"})
    assert response.status_code == 200
    assert 'data-testid="error-date_to"' in response.content.decode()
    response = client_for(org.rep).get(reverse("coaching:flow"), {"date_from": "not a day"})
    assert response.status_code == 200 and 'data-testid="error-date_from"' in response.content.decode()


def drill(client, **params):
    query = {
        "date_from": "2026-05-03",
        "date_to": "2026-05-10",
        "period_start": "2026-04-01",
        "period_end": "2026-06-30",
    }
    return client.get(reverse("coaching:flow_box"), {**query, **params}, HTTP_HX_REQUEST="true")


def test_every_box_drills_down_to_its_deals_with_what_changed(org, client_for, week):
    client = client_for(org.manager)
    response = drill(client, box="won")
    assert response.status_code == 200
    listed = {d.deal_id for d in response.context["deals"]}
    assert listed == {week[o, "won"].pk for o in OWNERS["manager"]}
    body = response.content.decode()
    assert "<del>2026-06-01</del> → <ins>2026-05-06</ins>" in body
    assert f'data-testid="inline-edit-{week["rep", "won"].pk}"' in body
    pushed = drill(client, box="pushed_out", category="pipeline")
    assert {d.deal_id for d in pushed.context["deals"]} == {week[o, "slip"].pk for o in OWNERS["manager"]}
    assert drill(client, box="won", category="commit").context["deals"] == []


def test_the_ends_drill_down_too(org, client_for, week):
    response = drill(client_for(org.rep), box="end")
    assert {d.deal_id for d in response.context["deals"]} == {week["rep", "stay"].pk, week["rep", "new"].pk}


def test_the_drill_down_shows_each_role_only_its_deals(org, client_for, week):
    for who, owners in OWNERS.items():
        for box, kind in (("new", "new"), ("won", "won"), ("pushed_out", "slip"), ("start", "stay")):
            response = drill(client_for(getattr(org, who)), box=box)
            listed = {d.deal_id for d in response.context["deals"]}
            assert {week[o, kind].pk for o in owners} <= listed, (who, box)
            others = {week[o, k].pk for o in set(OWNERS["director"]) - owners for k in ("new", "won", "slip", "stay")}
            assert not listed & others, (who, box)


def test_an_unknown_box_or_category_is_a_404(org, client_for, week):
    assert drill(client_for(org.rep), box="everything").status_code == 404
    assert drill(client_for(org.rep), box="won", category="maybe").status_code == 404


def test_the_drill_down_pages(org, client_for, week, monkeypatch):
    from coaching.views import flow as views

    monkeypatch.setattr(views, "DRILL_PAGE", 2)
    first = drill(client_for(org.director), box="new")
    second = drill(client_for(org.director), box="new", page=2)
    ids = [d.deal_id for d in first.context["deals"] + second.context["deals"]]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert first.context["next_query"] and not second.context["next_query"]


def test_the_page_needs_a_login(client, db):
    assert client.get(reverse("coaching:flow")).status_code == 302


def test_query_count_does_not_grow_with_the_deals(org, client_for, week, django_assert_num_queries):
    from pipeline.services import opportunity_update

    client = client_for(org.manager)
    client.get(reverse("coaching:flow"))
    # A fixed number (two of them find the team's last review meeting, where the window starts by default; one
    # reads the ids of the regions he sees, asked for twice: crm.scopes.visible_regions; the company settings once).
    with django_assert_num_queries(13) as before:
        client.get(reverse("coaching:flow"))
    for deal in (week["rep", "stay"], week["rep_js", "stay"], week["rep", "new"]):
        opportunity_update(opportunity=deal, data={"amount": Decimal("75")}, actor=org.manager)
    with django_assert_num_queries(len(before)):
        response = client.get(reverse("coaching:flow"))
    assert response.context["flow"].boxes["increased"].count == 2


def test_box_labels_are_translated(org):
    assert set(F.LABELS) == set(F.BOXES)


def test_the_window_opens_on_the_day_of_the_teams_last_review_meeting(org, client_for, week):
    """ "Since the last meeting": with a meeting of East held on 6 May, the manager's flow starts that day; an
    explicit start still wins, and North's manager (no meeting) keeps the last 7 days."""
    import time_machine

    from coaching.services import meeting_create, meeting_hold
    from tests.coaching.flow.conftest import DURING

    with time_machine.travel(DURING, tick=False):
        meeting = meeting_create(actor=org.manager, team=org.east, week=DURING.date())
        meeting_hold(actor=org.manager, meeting=meeting)
    response = client_for(org.manager).get(reverse("coaching:flow"))
    assert response.context["arguments"]["date_from"].isoformat() == "2026-05-06"
    assert 'data-testid="since-meeting"' in response.content.decode()
    # The flow of that window: the pushed-out and won moves of 6 May are inside it, and it still balances.
    flow = response.context["flow"]
    assert flow.computed_end() == flow.end.total
    explicit = client_for(org.manager).get(reverse("coaching:flow"), {"date_from": "2026-05-01"})
    assert explicit.context["arguments"]["date_from"].isoformat() == "2026-05-01"
    assert 'data-testid="since-meeting"' not in explicit.content.decode()
    north = client_for(org.manager_north).get(reverse("coaching:flow"))
    assert north.context["arguments"]["date_from"].isoformat() == "2026-05-03"


def test_an_empty_outflow_reads_zero_not_minus_zero(org, client_for, week):
    response = client_for(org.manager).get(reverse("coaching:flow"))
    assert response.context["flow"].boxes["lost"].total == 0
    body = response.content.decode()
    row = body[body.index('data-testid="flow-row-lost"') :]
    row = row[: row.index("</tr>")]
    assert "0.00" in row and "−0.00" not in row
