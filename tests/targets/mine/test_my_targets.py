""" "My targets": a rep sees only his own targets, a manager also his people's, grouped per period."""

from datetime import date

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from targets.services import action_plan_create, node_update, target_split
from tests.targets.mine.conftest import fresh

URL = reverse("targets:mine")


def shown(response) -> list[int]:
    return [node.pk for node in response.context["nodes"]]


def test_a_rep_sees_only_his_own_targets(org, tree, client_for):
    mine = tree["reps"][org.rep]
    response = client_for(org.rep).get(URL)
    assert response.status_code == 200
    assert shown(response) == [mine.pk]
    html = response.content.decode()
    assert f'data-testid="target-{mine.pk}"' in html
    colleague = tree["reps"][org.rep_same_team]
    assert f'data-testid="target-{colleague.pk}"' not in html
    # Reps get no person filter: asking for a colleague changes nothing.
    response = client_for(org.rep).get(URL, {"person": org.rep_same_team.pk})
    assert shown(response) == [mine.pk]


def test_a_draft_plan_is_marked_not_yet_approved_until_approved(org, plan, tree, client_for):
    html = client_for(org.rep).get(URL).content.decode()
    assert f'data-testid="not-approved-{plan.pk}"' in html
    from targets.services import plan_approve, plan_submit

    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    html = client_for(org.rep).get(URL).content.decode()
    assert f'data-testid="not-approved-{plan.pk}"' not in html
    assert reverse("targets:plan_versions", args=[plan.pk]) in html


def test_a_manager_sees_his_own_and_his_peoples_targets(org, tree, client_for):
    client = client_for(org.manager)
    assert shown(client.get(URL)) == [tree["east"].pk]
    team = client.get(URL, {"person": "team"})
    east_reps = {tree["reps"][r].pk for r in (org.rep, org.rep_same_team, org.rep_js)}
    assert set(shown(team)) == east_reps  # not rep_other's (North), not the director's root
    one = client.get(URL, {"person": org.rep_js.pk})
    assert shown(one) == [tree["reps"][org.rep_js].pk]
    # Someone outside his scope is not a choice: the filter says so and falls back to his own.
    outside = client.get(URL, {"person": org.rep_other.pk})
    assert outside.context["form"].errors["person"]
    assert shown(outside) == [tree["east"].pk]


def test_periods_are_grouped_year_then_quarters_with_deadlines(org, tree, client_for):
    rep_node = tree["reps"][org.rep]
    quarters = list(target_split(node=rep_node, dimension="quarter", method="equal", actor=org.manager).children)
    q1, q2, q3 = quarters[:3]
    # The manager wants Q2 done early, by 05-10; Q3 keeps its quarter end.
    give_deadline(q2, date(2027, 5, 10), org.manager)
    response = client_for(org.rep).get(URL)
    assert shown(response) == [rep_node.pk, *(q.pk for q in quarters)]
    html = response.content.decode()

    def row(node):
        start = html.index(f'data-testid="target-{node.pk}"')
        return html[start : html.index("</tr>", start)]

    # Frozen on 2027-05-15: Q1 ended on 03-31, Q2's deadline passed 5 days ago, Q3 ends on 09-30.
    assert "Ended 45 days ago" in row(q1) and "Overdue" not in row(q1)
    assert "Overdue by 5 days" in row(q2)
    assert "138 days left" in row(q3)
    # Only quarters when asked.
    response = client_for(org.rep).get(URL, {"kind": "quarter"})
    assert shown(response) == [q.pk for q in quarters]


def give_deadline(node, deadline, actor):
    node = fresh(node)
    node_update(node=node, deadline=deadline, expected_version=node.version, actor=actor)


def test_attainment_has_a_marked_place_and_no_made_up_number(org, tree, client_for):
    node = tree["reps"][org.rep]
    html = client_for(org.rep).get(URL).content.decode()
    cell = html[html.index(f'data-testid="attainment-{node.pk}"') :]
    cell = cell[: cell.index("</td>")]
    assert "—" in cell and "%" not in cell


def test_action_plans_are_listed_under_their_target(org, tree, client_for):
    node = tree["reps"][org.rep]
    action = action_plan_create(node=node, activity="Visit 华信", due_date=node.period_end, actor=org.rep)
    html = client_for(org.manager).get(URL, {"person": "team"}).content.decode()
    assert f'data-testid="action-{action.pk}"' in html and "Visit 华信" in html


def test_an_htmx_filter_returns_the_results_fragment(org, tree, client_for):
    response = client_for(org.manager).get(
        URL, {"person": "team"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="my-targets-results"
    )
    html = response.content.decode()
    assert html.startswith('<div id="my-targets-results"') and "<html" not in html


def test_the_page_does_not_grow_with_rows(org, plan, tree, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(URL, {"person": "team"}).status_code == 200
        return len(ctx.captured_queries)

    small = count()
    for rep in (org.rep, org.rep_same_team, org.rep_js):
        node = fresh(tree["reps"][rep])
        for quarter in target_split(node=node, dimension="quarter", method="equal", actor=org.manager).children:
            action_plan_create(node=quarter, activity="Call", due_date=quarter.period_end, actor=org.manager)
    with django_assert_max_num_queries(small):
        response = client.get(URL, {"person": "team"})
    assert len(response.context["nodes"]) == 15


def test_my_open_action_plans_name_their_targets_in_one_query_however_many(org, plan, tree, client_for):
    node = fresh(tree["reps"][org.rep])
    quarters = target_split(node=node, dimension="quarter", method="equal", actor=org.manager).children
    client = client_for(org.rep)

    def page():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(URL)
        assert response.status_code == 200
        reads = [q["sql"] for q in ctx.captured_queries if 'FROM "targets_actionplan"' in q["sql"]]
        return len(ctx.captured_queries), reads, response.content.decode()

    first = action_plan_create(node=node, activity="Plan the year", due_date=node.period_end, actor=org.rep)
    small, _reads, html = page()
    assert f'data-testid="my-action-{first.pk}"' in html and node.label in html
    actions = [
        action_plan_create(node=q, activity=f"Call {i}", due_date=q.period_end, actor=org.rep)
        for i, q in enumerate(quarters)
    ]
    large, reads, html = page()
    assert large == small
    mine = [sql for sql in reads if "ORDER BY" in sql and "due_date" in sql and "LIMIT" in sql]
    assert len(mine) == 1 and '"targets_targetplan"' not in mine[0]  # the labels' tables only, not the plan
    for action, quarter in zip(actions, quarters, strict=True):
        assert f'data-testid="my-action-{action.pk}"' in html
        assert quarter.label in html


def test_the_plan_filters_read_plans_without_a_server_side_cursor(org, plan, tree, client_for, monkeypatch):
    from django.db.models import QuerySet

    def no_cursor(self, *args, **kwargs):
        raise AssertionError("a server-side cursor for a <select>")

    monkeypatch.setattr(QuerySet, "iterator", no_cursor)
    for url in (URL, reverse("targets:alert_list")):
        html = client_for(org.manager).get(url).content.decode()
        assert f'<option value="{plan.pk}"' in html, url
