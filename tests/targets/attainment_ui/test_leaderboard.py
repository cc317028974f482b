"""The leaderboard: reps ranked by attainment for a plan and period, within the user's scope."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from django.urls import reverse

from targets.attainment.selectors import (
    leaderboard,
    leaderboard_default_period,
    leaderboard_default_plan,
    leaderboard_periods,
)
from targets.models import PlanStatus
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import UserFactory
from tests.targets.attainment_ui.conftest import snap
from tests.targets.conftest import by_region

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


def test_an_unknown_period_falls_back_to_the_plans_period(org, plan, snapshots, client_for):
    response = client_for(org.manager).get(URL, {"plan": plan.pk, "period": "FY1999"})
    assert response.status_code == 200
    assert not response.context["form"].errors
    assert response.context["period"] == "FY2027" and ranked(response)[0] == org.rep


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


# --- which plan and period the page opens on, and the period choices of the chosen plan -------------


def other_plan(org, metrics, period_key, *, approve=True, split_to_reps=False):
    """A company plan of another fiscal year, optionally split to East's reps and approved."""
    other = plan_create(
        metric=metrics["won_revenue"],
        period_key=period_key,
        total=Decimal("900000"),
        owner=org.director,
        actor=org.director,
    )
    if split_to_reps:
        root = other.nodes.get(parent__isnull=True)
        east = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)[
            org.east.pk
        ]
        target_split(node=east, dimension="rep", method="equal", actor=org.manager)
    if approve:
        plan_submit(plan=other, actor=org.director)
        other = plan_approve(plan=other, actor=org.admin)
    return other


def test_it_opens_on_the_plan_in_force_not_a_future_one(org, metrics, plan, tree, approved, client_for):
    other_plan(org, metrics, "FY2026")
    other_plan(org, metrics, "FY2028")  # approved ahead of time, nothing recorded yet: the old default
    response = client_for(org.director).get(URL)
    assert response.context["plan"] == plan and response.context["period"] == "FY2027"
    assert response.context["form"]["plan"].value() == plan.pk
    assert ranked(response)[0] in (org.rep, org.rep_same_team, org.rep_js, org.rep_other)


def test_without_a_plan_in_force_it_opens_on_the_approved_plan_that_started_last(org, metrics, plan, tree, client_for):
    last_year = other_plan(org, metrics, "FY2026")  # FY2027 is still a draft
    other_plan(org, metrics, "FY2028")
    assert client_for(org.director).get(URL).context["plan"] == last_year


def test_a_future_plan_is_the_default_only_when_no_other_exists(org, metrics, client_for):
    future = other_plan(org, metrics, "FY2028", approve=False)
    assert client_for(org.director).get(URL).context["plan"] == future


def test_the_default_plan_rule():
    def p(pk, start, end, status=PlanStatus.APPROVED):
        return SimpleNamespace(pk=pk, period_start=start, period_end=end, status=status)

    today = date(2027, 5, 15)
    last, this, nxt = (
        p(1, date(2026, 1, 1), date(2026, 12, 31)),
        p(2, date(2027, 1, 1), date(2027, 12, 31)),
        p(3, date(2028, 1, 1), date(2028, 12, 31)),
    )
    quarter = p(4, date(2027, 4, 1), date(2027, 6, 30))
    draft_this = p(5, date(2027, 1, 1), date(2027, 12, 31), PlanStatus.DRAFT)
    assert leaderboard_default_plan([nxt, last, this], today) is this
    assert leaderboard_default_plan([nxt, this, quarter], today) is quarter  # the one that started last
    assert leaderboard_default_plan([nxt, draft_this, last], today) is last
    assert leaderboard_default_plan([nxt, draft_this], today) is draft_this
    assert leaderboard_default_plan([nxt, p(6, date(2029, 1, 1), date(2029, 12, 31))], today) is nxt
    assert leaderboard_default_plan([], today) is None


def test_it_opens_on_the_current_period_of_the_plan(org, plan, tree, client_for):
    quarters = target_split(node=tree["reps"][org.rep], dimension="quarter", method="equal", actor=org.manager).children
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    today = date(2027, 5, 15)
    current = next(q for q in quarters if q.period_start <= today <= q.period_end)
    response = client_for(org.manager).get(URL)
    assert response.context["period"] == current.period_key
    assert [c for c, _ in response.context["form"].fields["period"].choices][0] == "FY2027"
    assert ranked(response) == [org.rep]
    # A plan that has ended opens on its whole period.
    assert leaderboard_default_period(leaderboard_periods(plan), date(2028, 3, 1)) == "FY2027"


def test_a_period_of_another_plan_falls_back_to_the_chosen_plans_period(org, metrics, plan, snapshots, client_for):
    next_year = other_plan(org, metrics, "FY2028", split_to_reps=True)
    response = client_for(org.manager).get(URL, {"plan": next_year.pk, "period": "FY2027"})
    assert response.status_code == 200 and not response.context["form"].errors
    assert response.context["plan"] == next_year and response.context["period"] == "FY2028"
    assert [c for c, _ in response.context["form"].fields["period"].choices] == ["FY2028"]
    assert '<option value="FY2028" selected>' in response.content.decode()
    # And back: the plan in force with next year's period.
    response = client_for(org.manager).get(URL, {"plan": plan.pk, "period": "FY2028"})
    assert not response.context["form"].errors and response.context["period"] == "FY2027"


def test_changing_the_plan_redraws_the_period_select_with_its_periods(org, metrics, plan, snapshots, client_for):
    next_year = other_plan(org, metrics, "FY2028", split_to_reps=True)
    headers = {"HX-Request": "true", "HX-Target": "leaderboard-period"}
    response = client_for(org.manager).get(URL, {"plan": next_year.pk, "period": "FY2027"}, headers=headers)
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith('<div id="leaderboard-period"')
    assert '<option value="FY2028" selected>' in html and "FY2027" not in html
    assert 'data-testid="leaderboard"' not in html  # only the select
    page = client_for(org.manager).get(URL).content.decode()
    assert 'hx-target="#leaderboard-period"' in page and 'id="leaderboard-period"' in page


def test_a_plan_the_user_may_not_see_is_an_error_and_the_default_is_shown(org, plan, snapshots, client_for):
    response = client_for(org.rep).get(URL, {"plan": "999999", "period": "FY2027"})
    assert response.status_code == 200
    assert response.context["form"].errors["plan"] and response.context["plan"] == plan
    assert ranked(response) == [org.rep]


# --- percentages: rounded once, from the exact ratio ------------------------------------------------


def test_attainment_is_rounded_once_from_the_exact_ratio(org, plan, tree, approved, client_for):
    node = tree["reps"][org.rep]
    snap(node, "122294")  # of 200,000: 61.147 %, stored as the fraction 0.6115
    leaderboard_html = client_for(org.manager).get(URL, {"plan": plan.pk}).content.decode()
    row = leaderboard_html[leaderboard_html.index(f'data-testid="rank-{org.rep.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "61.1%" in row and "61.2%" not in row
    mine_html = client_for(org.rep).get(reverse("targets:mine")).content.decode()
    assert "61.1%" in mine_html and "61.2%" not in mine_html
    trend_html = client_for(org.rep).get(reverse("targets:node_attainment", args=[node.pk])).content.decode()
    assert "61.1%" in trend_html and "61.2%" not in trend_html
