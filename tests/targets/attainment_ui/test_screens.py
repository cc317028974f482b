"""Attainment on "my targets" and in the plan editor's tree: the derived figures of the latest snapshot."""

import re
from datetime import date

from django.urls import reverse
from django.utils import timezone

from crm.models import CompanySettings
from targets.attainment.reference import derive
from targets.attainment.selectors import attainment_of, latest_snapshots, pace_class
from tests.targets.attainment_ui.conftest import snap

MINE = reverse("targets:mine")


def cell(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</td>", start)]


def value(html: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}"[^>]*data-value="([^"]*)"', html).group(1)


def test_latest_snapshot_per_node_in_one_query(org, tree, snapshots, django_assert_num_queries):
    reps = tree["reps"]
    ids = [reps[org.rep].pk, reps[org.rep_same_team].pk, reps[org.rep_other].pk]
    with django_assert_num_queries(1):
        latest = latest_snapshots(ids)
    assert latest[reps[org.rep].pk].pk == snapshots["rep"].pk  # not the older one
    assert latest[reps[org.rep_same_team].pk].pk == snapshots["same_team"].pk
    assert reps[org.rep_other].pk not in latest  # no snapshot yet


def test_pace_colours():
    from decimal import Decimal

    assert pace_class(Decimal("0")) == "good"
    assert pace_class(Decimal("-0.10")) == "warn"
    assert pace_class(Decimal("-0.1001")) == "bad"
    assert pace_class(None) == ""


def test_my_targets_show_the_derived_figures_of_the_latest_snapshot(org, tree, snapshots, client_for):
    node = tree["reps"][org.rep]
    html = client_for(org.rep).get(MINE).content.decode()
    stored = snapshots["rep"]
    # Read today: the 14 May figures with today's time progress (they hold until they change).
    working_days = CompanySettings.load().count_working_days
    expected = derive(stored, on=timezone.localdate(), working_days=working_days)
    assert expected.time_progress > derive(stored, working_days=working_days).time_progress
    assert value(html, f"att-actual-{node.pk}") == "90000.00"
    assert value(html, f"att-rate-{node.pk}") == str(expected.attainment)
    assert value(html, f"att-progress-{node.pk}") == str(expected.time_progress)
    assert value(html, f"att-pace-{node.pk}") == str(expected.pace_gap)
    figures = cell(html, f"attainment-{node.pk}")
    assert f"{expected.attainment * 100:.1f}%" in figures
    assert 'data-pace="good"' in figures  # 45 % attained vs 37 % of the year elapsed


def test_pace_is_coloured_amber_and_red(org, tree, snapshots, client_for):
    html = client_for(org.manager).get(MINE, {"person": "team"}).content.decode()
    reps = tree["reps"]
    assert 'data-pace="warn"' in cell(html, f"attainment-{reps[org.rep_same_team].pk}")  # 30 % vs 37 %
    assert 'data-pace="bad"' in cell(html, f"attainment-{reps[org.rep_js].pk}")  # 10 % vs 37 %


def test_a_target_without_snapshot_keeps_the_dash(org, tree, approved, client_for):
    node = tree["reps"][org.rep]
    figures = cell(client_for(org.rep).get(MINE).content.decode(), f"attainment-{node.pk}")
    assert "—" in figures and "%" not in figures


def test_a_rep_never_sees_a_colleagues_attainment(org, tree, snapshots, client_for):
    html = client_for(org.rep).get(MINE, {"person": org.rep_same_team.pk}).content.decode()
    colleague = tree["reps"][org.rep_same_team]
    assert f"att-rate-{colleague.pk}" not in html
    assert f"att-rate-{tree['reps'][org.rep].pk}" in html


def test_my_targets_queries_do_not_grow_with_snapshots(org, tree, approved, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)
    reps = tree["reps"]
    snap(reps[org.rep], "1000")
    with django_assert_max_num_queries(30) as one:
        html = client.get(MINE, {"person": "team"}).content.decode()
    assert html.count("att-rate-") == 1
    for rep in (org.rep_same_team, org.rep_js):
        snap(reps[rep], "2000")
        snap(reps[rep], "1000", as_of=date(2027, 5, 1))
    with django_assert_max_num_queries(len(one.captured_queries)):
        html = client.get(MINE, {"person": "team"}).content.decode()
    assert html.count("att-rate-") == 3


def test_the_editor_tree_shows_the_same_figures(org, tree, snapshots, client_for):
    east = tree["east"]
    html = client_for(org.manager).get(reverse("targets:plan_detail", args=[east.plan_id])).content.decode()
    expected = attainment_of([east])[east.pk].derived
    assert value(html, f"att-rate-{east.pk}") == str(expected.attainment)
    assert value(html, f"att-progress-{east.pk}") == str(expected.time_progress)
    assert value(html, f"att-pace-{east.pk}") == str(expected.pace_gap)
