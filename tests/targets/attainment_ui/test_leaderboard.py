"""The leaderboard: reps ranked by attainment for a plan and period, within the user's scope."""

from decimal import Decimal

from django.urls import reverse

from targets.selectors_attainment import leaderboard
from targets.services import target_split
from tests.factories import UserFactory
from tests.targets.attainment_ui.conftest import snap

URL = reverse("targets:leaderboard")


def ranked(response) -> list:
    return [row.rep for row in response.context["rows"]]


def test_reps_are_ranked_by_attainment_best_first(org, plan, snapshots, client_for):
    response = client_for(org.manager).get(URL, {"plan": plan.pk, "period": "FY2027"})
    assert response.status_code == 200
    assert ranked(response) == [org.rep, org.rep_same_team, org.rep_js]  # 45 %, 30 %, 10 %
    rows = response.context["rows"]
    assert [r.rank for r in rows] == [1, 2, 3]
    assert rows[0].attainment == Decimal("0.4500") and rows[0].pace == "good"
    assert rows[2].pace == "bad"
    html = response.content.decode()
    assert html.index(f'data-testid="rank-{org.rep.pk}"') < html.index(f'data-testid="rank-{org.rep_js.pk}"')
    assert "45.0%" in html


def test_a_rep_without_snapshot_comes_last_without_a_number(org, plan, snapshots, client_for):
    rows = client_for(org.director).get(URL, {"plan": plan.pk}).context["rows"]
    assert [r.rep for r in rows][-1] == org.rep_other
    assert rows[-1].attainment is None and rows[-1].target == Decimal("600000.00")


def test_scope_a_rep_only_ranks_himself(org, plan, snapshots, client_for):
    response = client_for(org.rep).get(URL, {"plan": plan.pk})
    assert ranked(response) == [org.rep]
    assert "60,000" not in response.content.decode() and "60000" not in response.content.decode()
    assert [r.rep for r in leaderboard(org.manager_north, plan, "FY2027")] == [org.rep_other]


def test_a_rep_target_split_further_is_not_counted_twice(org, plan, tree):
    node = tree["reps"][org.rep]
    node.refresh_from_db()
    parts = target_split(node=node, dimension="segment", method="equal", actor=org.manager).children
    snap(node, "90000")
    for part in parts:
        snap(part, "45000")
    rows = leaderboard(org.manager, plan, "FY2027")
    assert rows[0].rep == org.rep
    assert (rows[0].actual, rows[0].target) == (Decimal("90000.00"), Decimal("200000.00"))


def test_an_unknown_period_is_an_error_on_the_form(org, plan, snapshots, client_for):
    response = client_for(org.manager).get(URL, {"plan": plan.pk, "period": "FY1999"})
    assert response.status_code == 200
    assert response.context["form"].errors["period"]
    assert response.context["period"] == "FY2027"


def test_leaderboard_queries_are_flat(org, plan, tree, approved, client_for, django_assert_max_num_queries):
    client = client_for(org.director)
    snap(tree["reps"][org.rep], "1000")
    with django_assert_max_num_queries(30) as few:
        client.get(URL, {"plan": plan.pk})
    for rep in (org.rep_same_team, org.rep_js, org.rep_other):
        snap(tree["reps"][rep], "5000")
    UserFactory.create_batch(3, role="rep", region=org.sh)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(URL, {"plan": plan.pk})
    assert len(response.context["rows"]) == 4


def test_without_any_plan_the_page_says_so(org, client_for):
    response = client_for(org.rep).get(URL, {"plan": "x", "period": "nope"})
    assert response.status_code == 200
    assert response.context["rows"] == [] and 'data-testid="empty"' in response.content.decode()


def test_my_targets_links_to_the_leaderboard(org, tree, client_for):
    html = client_for(org.rep).get(reverse("targets:mine")).content.decode()
    assert f'href="{URL}" data-testid="leaderboard-link"' in html
