"""The grid: regions or reps by months or quarters, totals, inline cell edits, paging, query counts."""

import json
import re
from collections import defaultdict
from decimal import Decimal
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from targets.models import TargetNode
from targets.services import target_split, target_split_leaves
from targets.views import editor
from tests.factories import UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def monthly(east_tree, org):
    """Every leaf of the East plan (2 Shanghai reps, Jiangsu) split into 12 months, by days."""
    target_split_leaves(node=east_tree["root"], dimension="month", method="weights", basis="days", actor=org.manager)
    return east_tree


def cells(html: str) -> dict[str, Decimal]:
    """Every grid figure by its data-testid (cell-*, row-total-*, col-total-*, grand-total)."""
    found = re.findall(r'data-testid="((?:cell|row-total|col-total|grand-total)[^"]*)"[^>]*data-value="([^"]*)"', html)
    return {key: Decimal(value) for key, value in found if value}


def grid(client, plan, **params):
    return client.get(reverse("targets:plan_grid", args=[plan.pk]), params).content.decode()


def test_cells_rows_and_columns_equal_independent_sums(org, east_plan, monthly, client_for):
    html = grid(client_for(org.manager), east_plan, rows="rep", cols="month")
    shown = cells(html)
    expected = defaultdict(Decimal)
    for leaf in TargetNode.objects.filter(plan=east_plan, split_dimension=""):
        row = leaf.rep_id or "none"
        expected[f"cell-{row}-{leaf.period_key}"] += leaf.amount
        expected[f"row-total-{row}"] += leaf.amount
        expected[f"col-total-{leaf.period_key}"] += leaf.amount
    expected["grand-total"] = Decimal("600000.00")
    assert shown == dict(expected)
    assert len([k for k in shown if k.startswith("cell-")]) == 3 * 12

    by_quarter = cells(grid(client_for(org.manager), east_plan, rows="region", cols="quarter"))
    sh_q1 = sum(
        leaf.amount
        for leaf in TargetNode.objects.filter(plan=east_plan, split_dimension="", region=org.sh)
        if leaf.period_key in ("FY2027-M01", "FY2027-M02", "FY2027-M03")
    )
    assert by_quarter[f"cell-{org.sh.pk}-FY2027-Q1"] == sh_q1
    assert by_quarter[f"row-total-{org.js.pk}"] == Decimal("300000.00")
    assert by_quarter["grand-total"] == Decimal("600000.00")
    assert f'data-testid="cell-{org.sh.pk}-FY2027-Q1-input"' not in by_quarter  # a sum of months: read-only


def test_leaves_longer_than_a_column_go_to_the_whole_period_column(org, east_plan, east_tree, client_for):
    shown = cells(grid(client_for(org.manager), east_plan, rows="rep", cols="month"))
    assert shown[f"cell-{org.rep.pk}-other"] == Decimal("150000.00")  # a yearly rep target
    assert shown["col-total-other"] == shown["grand-total"] == Decimal("600000.00")


def test_editing_a_cell_updates_the_leaf_and_the_sums_and_refusals_show_in_the_cell(
    org, east_plan, monthly, client_for
):
    client = client_for(org.manager)
    leaf = TargetNode.objects.get(plan=east_plan, rep=org.rep, period_key="FY2027-M01")
    url = reverse("targets:grid_cell", args=[east_plan.pk, leaf.pk])
    params = {"node": monthly["root"].pk, "rows": "rep", "cols": "month", "page": 1}
    before = cells(grid(client, east_plan, rows="rep", cols="month"))
    page = grid(client, east_plan, rows="rep", cols="month")
    cell = re.search(rf'<input [^>]*data-testid="cell-{org.rep.pk}-FY2027-M01-input"', page)[0]
    assert json.loads(unescape(re.search(r'hx-vals="([^"]*)"', cell)[1]))["version"] == str(leaf.version)

    response = client.post(url, {**params, "amount": "20,000", "version": leaf.version}, **HTMX)
    after = cells(response.content.decode())
    leaf.refresh_from_db()
    assert leaf.amount == Decimal("20000.00")
    assert after[f"cell-{org.rep.pk}-FY2027-M01"] == Decimal("20000.00")
    delta = Decimal("20000.00") - before[f"cell-{org.rep.pk}-FY2027-M01"]
    # The rep's other months absorbed the difference: his row total stays, January's column moves.
    assert after[f"row-total-{org.rep.pk}"] == before[f"row-total-{org.rep.pk}"] == Decimal("150000.00")
    assert after["col-total-FY2027-M01"] == before["col-total-FY2027-M01"] + delta
    assert after["grand-total"] == Decimal("600000.00")
    months = TargetNode.objects.filter(parent=leaf.parent_id)
    assert sum(m.amount for m in months) == Decimal("150000.00")

    # Refused: the message shows in the cell, the value typed stays, nothing changes.
    response = client.post(url, {**params, "amount": "-5", "version": leaf.version}, **HTMX)
    html = response.content.decode()
    assert response["HX-Retarget"] == f"#cell-{leaf.pk}"
    assert "The amount cannot be negative." in html and 'value="-5"' in html
    stale = leaf.version - 1
    response = client.post(url, {**params, "amount": "30000", "version": stale}, **HTMX)
    assert "Someone else changed this target since you opened it." in response.content.decode()
    assert TargetNode.objects.get(pk=leaf.pk).amount == Decimal("20000.00")


def test_cells_are_read_only_once_the_plan_is_not_a_draft(org, east_plan, monthly, client_for):
    from targets.services import plan_submit

    plan_submit(plan=east_plan, actor=org.manager)
    html = grid(client_for(org.manager), east_plan, rows="rep", cols="month")
    assert "hx-post" not in html and cells(html)["grand-total"] == Decimal("600000.00")
    leaf = TargetNode.objects.filter(plan=east_plan, rep=org.rep).last()
    response = client_for(org.manager).post(
        reverse("targets:grid_cell", args=[east_plan.pk, leaf.pk]), {"amount": "1", "version": leaf.version}, **HTMX
    )
    assert "only through an adjustment" in response.content.decode()


def test_rows_are_paged_and_the_totals_cover_every_row(org, east_plan, monthly, client_for, monkeypatch):
    monkeypatch.setattr(editor, "GRID_PAGE", 2)
    client = client_for(org.manager)
    first, second = (cells(grid(client, east_plan, rows="rep", cols="month", page=n)) for n in (1, 2))
    rows = lambda shown: {k for k in shown if k.startswith("row-total-")}  # noqa: E731
    assert len(rows(first)) == 2 and len(rows(second)) == 1 and not rows(first) & rows(second)
    assert first["grand-total"] == second["grand-total"] == Decimal("600000.00")


def test_grid_queries_do_not_grow_with_rows(org, east_plan, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)

    def measure(reps: int) -> int:
        UserFactory.create_batch(reps - 3 - org.east.members.filter(role="rep").count(), role="rep", region=org.east)
        root = TargetNode.objects.get(plan=east_plan, parent=None)
        target_split(node=root, dimension="rep", method="equal", actor=org.manager)
        target_split_leaves(node=root, dimension="month", method="equal", actor=org.manager)
        with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(16):
            html = grid(client, east_plan, rows="rep", cols="month")
        assert len([k for k in cells(html) if k.startswith("row-total-")]) == reps
        return len(queries)

    assert measure(5) == measure(60)  # the org's 3 reps and new ones in East


def test_a_manager_grids_only_his_part_of_a_company_plan(org, plan, client_for):
    areas = {
        n.region_id: n
        for n in target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director).children
    }
    target_split(node=areas[org.east.pk], dimension="rep", method="equal", actor=org.manager)
    target_split(node=areas[org.north.pk], dimension="rep", method="equal", actor=org.director)
    shown = cells(grid(client_for(org.manager), plan, rows="rep", cols="month"))
    assert shown["grand-total"] == areas[org.east.pk].amount  # his area: the entry node
    assert f"row-total-{org.rep_other.pk}" not in shown
    director = cells(grid(client_for(org.director), plan, rows="rep", cols="month"))
    assert director["grand-total"] == Decimal("1200000.00") and f"row-total-{org.rep_other.pk}" in director
