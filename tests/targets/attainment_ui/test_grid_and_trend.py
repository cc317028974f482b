"""Attainment on the plan grid (cells, row/column totals that are nodes, the toggle, a flat query count) and
the week-over-week change on "my targets" and the editor tree, and a target's trend page."""

import re
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Role
from targets.attainment.selectors import attainment_of
from targets.models import AttainmentSnapshot, TargetNode
from targets.services import plan_approve, plan_submit, target_split, target_split_leaves
from targets.views import editor
from tests.conftest import chart_figures
from tests.factories import UserFactory
from tests.targets.attainment_ui.conftest import DAY, snap

MINE = reverse("targets:mine")
FRACTION = Decimal("0.0001")


def attr(html: str, testid: str, name: str) -> str:
    """The attribute `name` of the element with `testid` (attributes in any order within its tag)."""
    tag = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>', html)
    assert tag, f"no element {testid}"
    return re.search(rf'{name}="([^"]*)"', tag[0])[1]


def rate(actual: str, target: Decimal) -> Decimal:
    return (Decimal(actual) / target).quantize(FRACTION)


def grid(client, plan, **params) -> str:
    return client.get(reverse("targets:plan_grid", args=[plan.pk]), params).content.decode()


# --- the grid -------------------------------------------------------------------------------------


@pytest.fixture
def monthly(plan, tree, org):
    """The "my targets" tree with East's rep targets split into the 12 months, approved."""
    target_split_leaves(node=tree["east"], dimension="month", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    return tree


def month_of(rep, *, ended: bool) -> TargetNode:
    """A month leaf of `rep` that ended before DAY (time progress 100 %) or the one DAY falls in."""
    leaves = TargetNode.objects.filter(rep=rep, period_kind="month").order_by("period_start")
    if ended:
        return leaves.filter(period_end__lt=DAY).last()
    return leaves.get(period_start__lte=DAY, period_end__gte=DAY)


def test_grid_cells_and_totals_show_the_actual_and_attainment_of_their_nodes(org, plan, monthly, client_for):
    ended, current = month_of(org.rep, ended=True), month_of(org.rep, ended=False)
    snap(ended, "4000.00")  # a whole month elapsed, a quarter of it attained: far behind pace
    snap(current, current.amount)  # already all of it: ahead
    rep_year, east = monthly["reps"][org.rep], monthly["east"]
    snap(rep_year, "90000.00")
    snap(east, "170000.00")
    html = grid(client_for(org.manager), plan, rows="rep", cols="month")
    assert 'data-show="attainment"' in html  # an approved plan: with attainment by default

    cell = f"att-cell-{org.rep.pk}-{ended.period_key}"
    assert attr(html, cell, "data-actual") == "4000.00"
    assert Decimal(attr(html, cell, "data-rate")) == rate("4000.00", ended.amount)
    assert attr(html, cell, "data-pace") == "bad" and "pace-bad" in attr(html, cell, "class")
    assert f"{rate('4000.00', ended.amount) * 100:.1f}%" in html
    ahead = f"att-cell-{org.rep.pk}-{current.period_key}"
    assert Decimal(attr(html, ahead, "data-rate")) == Decimal(1) and attr(html, ahead, "data-pace") == "good"

    # The row total is the rep's yearly target, the grand total East itself.
    assert attr(html, f"att-row-total-{org.rep.pk}", "data-actual") == "90000.00"
    assert Decimal(attr(html, f"att-row-total-{org.rep.pk}", "data-rate")) == rate("90000", rep_year.amount)
    assert Decimal(attr(html, "att-grand-total", "data-rate")) == rate("170000", east.amount)
    # No snapshot, no figures; a month column total (all reps) is no node of this tree.
    assert f"att-cell-{org.rep_same_team.pk}-" not in html and "att-col-total-" not in html


def test_column_totals_show_attainment_where_a_month_is_a_node(org, plan, client_for):
    """Split by month first, then by region: each month column total is that month's node."""
    root = plan.nodes.get()
    months = {
        n.period_key: n for n in target_split(node=root, dimension="month", method="equal", actor=org.director).children
    }
    target_split_leaves(node=root, dimension="region", method="equal", actor=org.director)
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    key, month = next(iter(months.items()))
    snap(month, "50000.00")
    html = grid(client_for(org.director), plan, rows="region", cols="month")
    assert attr(html, f"att-col-total-{key}", "data-actual") == "50000.00"
    assert Decimal(attr(html, f"att-col-total-{key}", "data-rate")) == rate("50000", month.amount)


def test_the_toggle_hides_attainment_and_is_kept_by_paging_and_edits(org, plan, monthly, client_for, monkeypatch):
    ended = month_of(org.rep, ended=True)
    snap(ended, "4000.00")
    client = client_for(org.manager)
    hidden = grid(client, plan, rows="rep", cols="month", show="targets")
    assert "att-cell-" not in hidden and 'data-show="targets"' in hidden
    assert f'data-testid="cell-{org.rep.pk}-{ended.period_key}"' in hidden  # the targets are still there
    assert '<input type="hidden" name="show" value="targets">' in hidden  # sent with a cell edit

    monkeypatch.setattr(editor, "GRID_PAGE", 1)
    paged = grid(client, plan, rows="rep", cols="month", show="targets")
    assert re.search(r'data-testid="page-next"[^>]*', paged) and "show=targets" in attr(paged, "page-next", "href")
    shown = grid(client, plan, rows="rep", cols="month", show="attainment")
    assert "show=attainment" in attr(shown, "page-next", "href")


def test_a_draft_grid_shows_targets_only_and_cells_stay_editable(org, plan, tree, client_for):
    target_split_leaves(node=tree["east"], dimension="month", method="equal", actor=org.manager)
    leaf = month_of(org.rep, ended=True)
    html = grid(client_for(org.manager), plan, rows="rep", cols="month")
    assert 'data-show="targets"' in html and 'data-testid="grid-show"' not in html
    response = client_for(org.manager).post(
        reverse("targets:grid_cell", args=[plan.pk, leaf.pk]),
        {
            "node": tree["east"].pk,
            "rows": "rep",
            "cols": "month",
            "show": "targets",
            "amount": "20000",
            "version": leaf.version,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert TargetNode.objects.get(pk=leaf.pk).amount == Decimal("20000.00")
    assert 'data-show="targets"' in response.content.decode()


def test_grid_attainment_costs_one_query_whatever_the_rows(org, plan, client_for, monkeypatch):
    """50 reps in East, every node measured: 5 rows and 50 rows a page cost the same queries, one more
    than without attainment."""
    UserFactory.create_batch(47, role=Role.REP, region=org.east)
    root = plan.nodes.get()
    east = next(
        n
        for n in target_split(node=root, dimension="region", method="equal", actor=org.director).children
        if n.region_id == org.east.pk
    )
    target_split(node=east, dimension="rep", method="equal", actor=org.manager)
    target_split_leaves(node=east, dimension="month", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    AttainmentSnapshot.objects.bulk_create(
        AttainmentSnapshot(
            node=n, as_of=DAY, actual=n.amount / 2, target=n.amount, weighted_pipeline=0, open_pipeline=0
        )
        for n in TargetNode.objects.filter(plan=plan)
    )

    def measure(user, rows: int, show: str) -> int:
        monkeypatch.setattr(editor, "GRID_PAGE", rows)
        with CaptureQueriesContext(connection) as queries:
            html = grid(client_for(user), plan, node=east.pk, rows="rep", cols="month", show=show)
        assert html.count('data-testid="row-total-') == rows
        assert html.count('data-testid="att-cell-') == (rows * 12 if show == "attainment" else 0)
        assert html.count('data-testid="att-row-total-') == (rows if show == "attainment" else 0)
        return len(queries)

    for user in (org.manager, org.director):
        assert measure(user, 5, "attainment") == measure(user, 50, "attainment")
    # The figures of the whole page: one query (a scoped manager's scope is read once per request).
    assert measure(org.director, 50, "attainment") == measure(org.director, 50, "targets") + 1
    assert measure(org.manager, 50, "attainment") == measure(org.manager, 50, "targets") + 1


# --- week over week ---------------------------------------------------------------------------------


def test_my_targets_show_the_change_since_a_week_before(org, tree, snapshots, client_for):
    """rep: 45 % on DAY vs 5 % on 30 April (the newest snapshot at least 7 days older): +40 points."""
    node = tree["reps"][org.rep]
    html = client_for(org.rep).get(MINE).content.decode()
    change = Decimal(attr(html, f"att-trend-{node.pk}", "data-value"))
    assert change == rate("90000", node.amount) - rate("10000", node.amount) == Decimal("0.4000")
    assert attr(html, f"att-trend-{node.pk}", "data-trend") == "up"
    assert "+40.0 pts vs last week" in html
    assert f"att-trend-{tree['reps'][org.rep_same_team].pk}" not in html  # one snapshot: blank


def test_the_week_before_is_the_newest_snapshot_at_least_seven_days_older(org, tree, snapshots, client_for):
    node = tree["reps"][org.rep_same_team]  # 60,000 on DAY
    snap(node, "58000", as_of=date(2027, 5, 10))  # 4 days older: too recent
    snap(node, "64000", as_of=date(2027, 5, 7))  # exactly 7 days older: this one
    snap(node, "1000", as_of=date(2027, 5, 1))
    figures = attainment_of([node], week_before=True)[node.pk]
    assert figures.week_before.as_of == date(2027, 5, 7)
    expected = rate("60000", node.amount) - rate("64000", node.amount)
    assert figures.week_change == expected and figures.week_change_points == expected * 100
    html = client_for(org.manager).get(MINE, {"person": "team"}).content.decode()
    assert Decimal(attr(html, f"att-trend-{node.pk}", "data-value")) == expected
    assert attr(html, f"att-trend-{node.pk}", "data-trend") == "down"
    assert f"{expected * 100:.1f} pts vs last week" in html


def test_the_editor_tree_shows_the_change_too(org, tree, snapshots, client_for):
    east = tree["east"]
    snap(east, "110000", as_of=date(2027, 5, 7))
    html = client_for(org.manager).get(reverse("targets:plan_detail", args=[east.plan_id])).content.decode()
    expected = rate("170000", east.amount) - rate("110000", east.amount)
    assert Decimal(attr(html, f"att-trend-{east.pk}", "data-value")) == expected == Decimal("0.1000")


def test_the_change_is_read_in_the_same_single_query(org, tree, snapshots, django_assert_num_queries):
    nodes = list(tree["reps"].values())
    with django_assert_num_queries(1):
        figures = attainment_of(nodes, working_days=False, week_before=True)
    assert figures[tree["reps"][org.rep].pk].week_change == Decimal("0.4000")
    assert figures[tree["reps"][org.rep_js].pk].week_change is None


# --- a target's trend page --------------------------------------------------------------------------


def test_the_trend_page_charts_and_tabulates_every_snapshot(org, tree, snapshots, client_for):
    node = tree["reps"][org.rep]
    response = client_for(org.rep).get(reverse("targets:node_attainment", args=[node.pk]))
    html = response.content.decode()
    for stored in (snapshots["old_rep"], snapshots["rep"]):
        day = stored.as_of.isoformat()
        row = html[html.index(f'data-testid="trend-row-{day}"') :]
        row = row[: row.index("</tr>")]
        assert attr(row, "trend-actual", "data-value") == f"{stored.actual:.2f}"
        assert Decimal(attr(row, "trend-rate", "data-value")) == rate(stored.actual, node.amount)
        assert day in html[html.index('data-testid="trend-chart"') :]  # the chart's x values
    assert html.index("trend-row-2027-05-14") < html.index("trend-row-2027-04-30")  # newest first
    assert "vendor/plotly-4.1.1.min.js" in html and "<script>" not in html  # the chart is data, drawn by charts.js
    # One chart, one trace per series: attainment and time progress.
    (figure,) = chart_figures(html)
    assert [trace["name"] for trace in figure["data"]] == ["Attainment %", "Time progress %"]
    my_targets = client_for(org.rep).get(MINE).content.decode()
    assert reverse("targets:node_attainment", args=[node.pk]) in my_targets


def test_the_trend_reaches_today_when_the_figures_have_not_changed_since(org, tree, snapshots, client_for):
    """A snapshot holds until the figures change: weeks after the newest one, the chart's lines go on to
    today (time progress moves every day) and the page says since when the figures are the same."""
    node = tree["reps"][org.rep]
    url = reverse("targets:node_attainment", args=[node.pk])
    newest = snapshots["rep"].as_of.isoformat()
    with time_machine.travel("2027-06-01 09:00 +0800", tick=False):
        html = client_for(org.rep).get(url).content.decode()
    chart = html[html.index('data-testid="trend-chart"') :]
    assert "2027-06-01" in chart and newest in chart
    assert "trend-row-2027-06-01" not in html  # the table lists snapshots only
    assert attr(html, "changed-on", "data-value") == newest
    with time_machine.travel(f"{newest} 09:00 +0800", tick=False):
        html = client_for(org.rep).get(url).content.decode()
    assert 'data-testid="changed-on"' not in html  # read on the day they changed


def test_plotly_is_loaded_only_on_the_trend_page(org, tree, snapshots, client_for):
    assert "plotly" not in client_for(org.rep).get(MINE).content.decode()


def test_a_target_without_snapshots_has_an_empty_trend_page(org, tree, approved, client_for):
    html = client_for(org.rep).get(reverse("targets:node_attainment", args=[tree["reps"][org.rep].pk])).content
    assert b'data-testid="empty"' in html and b"trend-chart" not in html


def test_a_target_outside_the_scope_is_a_404(org, tree, snapshots, client_for):
    colleague = tree["reps"][org.rep_same_team]
    assert client_for(org.rep).get(reverse("targets:node_attainment", args=[colleague.pk])).status_code == 404
    other = tree["reps"][org.rep_other]
    assert client_for(org.manager).get(reverse("targets:node_attainment", args=[other.pk])).status_code == 404
    assert client_for(org.manager).get(reverse("targets:node_attainment", args=[colleague.pk])).status_code == 200


def test_the_trend_chart_draws_in_the_browser(page, org, tree, snapshots):
    from tests.browser.plugin import login

    login(page, "rep")
    node = tree["reps"][org.rep]
    page.goto(reverse("targets:mine"))
    page.click(f'[data-testid="trend-link-{node.pk}"]')
    page.wait_for_selector('[data-testid="trend-chart"] .chart .main-svg')
    assert page.locator('[data-testid="trend-chart"] .scatterlayer .trace').count() == 2
    stored = AttainmentSnapshot.objects.filter(node=node).count()  # here approval's recompute adds today's
    assert page.locator('[data-testid="trend-table"] tbody tr').count() == stored >= 2
