"""The home pages (工作台): each role's page, its figures against the replay of the hand-built facts, and what
each may see."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.models import Opportunity, Stage
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.coaching.review.company import DAY, NOW, build_company, replay
from tests.factories import ProductLineFactory, make_deal


def value(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*data-value="([^"]*)"', html)
    assert found, testid
    return found.group(1)


def section(html: str, testid: str) -> str:
    found = re.search(rf'<section data-testid="{testid}">.*?</section>', html, re.S)
    assert found, testid
    return found.group(0)


# --- rep ------------------------------------------------------------------------------------------


@pytest.fixture
def action_deals(org, company):
    """rep's deals: one whose close date passed, one stuck in its stage, one with its next step due today, one
    fine; and a colleague's overdue deal."""
    first = org.stages[0]
    Stage.objects.filter(pk=first.pk).update(expected_days=30)
    overdue = make_deal(owner=org.rep, amount="100", close=DAY - timedelta(days=3), name="Overdue")
    stuck = make_deal(owner=org.rep, amount="200", close=DAY + timedelta(days=40), name="Stuck")
    Opportunity.objects.filter(pk=stuck.pk).update(stage_entered_at=NOW - timedelta(days=31))
    due = make_deal(
        owner=org.rep, amount="300", close=DAY + timedelta(days=40), next_step="Call", next_step_date=DAY, name="Due"
    )
    make_deal(owner=org.rep, amount="400", close=DAY + timedelta(days=40), next_step_date=DAY + timedelta(days=1))
    make_deal(owner=org.rep_same_team, amount="500", close=DAY - timedelta(days=3))
    return {"overdue": overdue, "stuck": stuck, "due": due}


def test_a_rep_sees_his_targets_against_time_his_deals_to_act_on_and_his_week(org, company, action_deals, client_for):
    response = client_for(org.rep).get("/")
    assert response.templates[0].name == "coaching/home/rep.html"
    html = response.content.decode()
    node = company.reps[org.rep.pk]
    expected = replay(org, {"rep"}, Decimal("200000"))
    assert [n.pk for n in response.context["targets"]] == [node.pk]
    assert Decimal(value(html, "target-actual")) == expected["actual"]
    assert Decimal(value(html, "target-attainment")) == expected["attainment_pct"]
    assert Decimal(value(html, "target-time")) == expected["time_progress_pct"]
    deals = {d.pk: [code for code, _text in d.reasons] for d in response.context["deals"]}
    assert deals == {
        action_deals["overdue"].pk: ["close_passed"],
        action_deals["stuck"].pk: ["stuck"],
        action_deals["due"].pk: ["next_step_due"],
    }
    assert "Overdue" in section(html, "deals-needing-action")
    assert int(value(html, "activity-count")) == expected["activities"] == 2
    assert 'data-testid="no-alerts"' in html


def test_a_rep_sees_his_open_alerts_only(org, company, client_for):
    html = client_for(org.rep_js).get("/").content.decode()
    alerts = section(html, "my-alerts")
    assert alerts.count('data-testid="alert-') == 1  # the open one, not the resolved one
    assert 'data-testid="no-alerts"' in client_for(org.rep_same_team).get("/").content.decode()


# --- manager --------------------------------------------------------------------------------------


def test_a_manager_sees_his_teams_tiles_the_reps_behind_pace_and_the_meeting_slot(org, company, client_for):
    response = client_for(org.manager).get("/")
    html = response.content.decode()
    east = replay(org, {"rep", "rep_same_team", "rep_js"}, Decimal("600000"))
    tile = re.search(r'data-testid="tile-won_revenue".*?</article>', html, re.S).group(0)
    assert Decimal(value(tile, "tile-target")) == Decimal("600000")
    assert Decimal(value(tile, "tile-actual")) == east["actual"]
    assert Decimal(value(tile, "tile-attainment")) == east["attainment_pct"]
    assert Decimal(value(tile, "tile-time")) == east["time_progress_pct"]
    assert Decimal(value(tile, "tile-gap")) == east["gap"]
    assert Decimal(value(tile, "tile-weighted")) == east["weighted"]
    assert Decimal(value(tile, "tile-coverage")) == east["coverage"]
    assert Decimal(value(tile, "tile-run-rate")) == east["run_rate"]
    assert f'href="/targets/nodes/{company.east.pk}/attainment/"' in tile  # the tile opens the target's trend
    # Behind time: rep_same_team (15 % of the target) and rep_js (5 %); rep is ahead (45 % against 37 %).
    behind = re.findall(r'data-testid="behind-rep:(\d+)"', html)
    assert behind == [str(org.rep_js.pk), str(org.rep_same_team.pk)]  # furthest behind first
    assert 'data-testid="next-meeting"' in html and response.context["next_meeting"] is None
    assert f'href="/pipeline/team/?region={org.east.pk}"' in html


def test_a_manager_never_sees_another_teams_people(org, company, client_for):
    html = client_for(org.manager_north).get("/").content.decode()
    assert re.findall(r'data-testid="behind-rep:(\d+)"', html) == [str(org.rep_other.pk)]
    assert str(org.rep) not in html and f'owner={org.rep.pk}"' not in html


# --- director -------------------------------------------------------------------------------------


def test_the_director_sees_the_company_and_each_region(org, company, client_for):
    html = client_for(org.director).get("/").content.decode()
    everyone = replay(org, {"rep", "rep_same_team", "rep_js", "rep_other"}, Decimal("1200000"))
    assert Decimal(value(html, "tile-actual")) == everyone["actual"]
    east = re.search(rf'data-testid="region-region:{org.east.pk}".*?</article>', html, re.S).group(0)
    north = re.search(rf'data-testid="region-region:{org.north.pk}".*?</article>', html, re.S).group(0)
    assert (
        Decimal(value(east, "region-attainment"))
        == replay(org, {"rep", "rep_same_team", "rep_js"}, Decimal("600000"))["attainment_pct"]
    )
    assert Decimal(value(north, "region-attainment")) == replay(org, {"rep_other"}, Decimal("600000"))["attainment_pct"]
    assert f'href="/review/?region={org.north.pk}"' in north
    assert 'data-testid="no-heatmap"' in html  # the plan is not split by product line


def test_the_directors_heatmap_shows_attainment_per_region_and_product_line(org, metrics, review_day, client_for):
    servers = ProductLineFactory(code="SRV", name="Servers")
    software = ProductLineFactory(code="SW", name="Software")
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="400000", owner=org.director, actor=org.director
    )
    root = plan.nodes.get()
    areas = target_split(node=root, dimension="region", method="equal", actor=org.director).children
    cells = {}
    for area in areas:
        for node in target_split(node=area, dimension="product_line", method="equal", actor=org.director).children:
            cells[(area.region_id, node.product_line_id)] = node
    plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    actuals = {
        (org.east.pk, servers.pk): "80000",
        (org.east.pk, software.pk): "25000",
        (org.north.pk, servers.pk): "0",
        (org.north.pk, software.pk): "100000",
    }
    for key, actual in actuals.items():
        node = cells[key]
        AttainmentSnapshot.objects.create(
            node=node, as_of=DAY, actual=Decimal(actual), target=node.amount, weighted_pipeline=0, open_pipeline=0
        )
    html = client_for(org.director).get("/").content.decode()
    table = re.search(r'<table class="compact" data-testid="heatmap-table">.*?</table>', html, re.S).group(0)
    assert re.findall(r"<th class=\"num\">(\w+)</th>", table) == ["Servers", "Software"]
    shown = [Decimal(v) for v in re.findall(r'data-value="([^"]+)"', table)]
    # 100,000 per cell: East 80 % and 25 %, North 0 % and 100 %.
    assert shown == [Decimal("80.0"), Decimal("25.0"), Decimal("0.0"), Decimal("100.0")]
    assert 'id="home-heatmap"' in html


def test_figures_recomputed_later_show_on_the_next_visit(org, company, client_for):
    make_deal(owner=org.rep_other, amount="60000", stage=next(s for s in org.stages if s.is_won), close=DAY)
    attainment_recompute(plan=company.plan, as_of=DAY)
    html = client_for(org.director).get("/").content.decode()
    everyone = replay(org, {"rep", "rep_same_team", "rep_js", "rep_other"}, Decimal("1200000"))
    assert Decimal(value(html, "tile-actual")) == everyone["actual"] + Decimal("60000")


def test_without_a_region_a_manager_gets_a_hint_not_an_error(org, client_for):
    from tests.factories import UserFactory

    lonely = UserFactory(username="lonely", role="manager")
    response = client_for(lonely).get("/")
    assert response.status_code == 200 and 'data-testid="no-region"' in response.content.decode()


def test_build_company_fixture_is_usable_without_the_fixture(org, metrics, review_day):
    assert build_company(org, metrics).plan.status == "approved"


def test_the_manager_of_a_big_region_sees_his_sub_regions_behind_pace(org, company, client_for, monkeypatch):
    from coaching import home

    monkeypatch.setattr(home, "HOME_REPS", 2)  # East has 3 reps: "big"
    html = client_for(org.manager).get("/").content.decode()
    # Shanghai (30 % of its reps' targets) and Jiangsu (5 %) are both behind 37 % of the year; Jiangsu first.
    assert re.findall(r'data-testid="behind-region:(\d+)"', html) == [str(org.js.pk), str(org.sh.pk)]
    assert "Regions behind pace" in html


def test_a_managers_home_reads_as_many_queries_for_12_reps_as_for_3(org, metrics, company, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.coaching.review.company import team_of

    counts = []
    for size in (3, 12):
        _team, manager = team_of(org, metrics, size)
        client = client_for(manager)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/")
        assert len(response.context["review"].rows) == size
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
