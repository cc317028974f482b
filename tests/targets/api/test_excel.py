"""The Excel round trip: export the tree or the grid, change it with openpyxl as a person would in
Excel, import it back (preview, then apply all or nothing)."""

import csv
import io
import os
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from crm.models import AuditLog
from targets.models import AdjustmentRequest, AdjustmentStatus, TargetNode
from targets.planning.excel import MARKER
from targets.planning.selectors import unbalanced_nodes
from targets.services import node_update, plan_create, target_split, target_split_leaves
from tests.targets.api.conftest import fresh

KEY_ROW = 12


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


class Sheet:
    """An exported workbook opened for editing, its columns found by their hidden keys."""

    def __init__(self, content: bytes):
        self.book = load_workbook(io.BytesIO(content))
        self.ws = self.book.active
        self.keys = {cell.value: cell.column for cell in self.ws[KEY_ROW] if cell.value}

    @property
    def marker(self) -> list:
        return [c.value for c in self.ws[1]]

    def data_rows(self):
        return range(KEY_ROW + 2, self.ws.max_row + 1)

    def row_of(self, node_id: int) -> int:
        column = self.keys["node_id"]
        return next(r for r in self.data_rows() if self.ws.cell(r, column).value == node_id)

    def node_ids(self) -> set[int]:
        return {self.ws.cell(r, self.keys["node_id"]).value for r in self.data_rows()}

    def set(self, node_id: int, key: str, value) -> int:
        row = self.row_of(node_id)
        self.ws.cell(row, self.keys[key]).value = value
        return row

    def get(self, node_id: int, key: str):
        return self.ws.cell(self.row_of(node_id), self.keys[key]).value

    def bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.book.save(buffer)
        return buffer.getvalue()


def export(client, plan, **params) -> Sheet:
    response = client.get(f"/targets/plans/{plan.pk}/export.xlsx", params)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    return Sheet(response.content)


def upload(client, plan, sheet: Sheet, name="targets.xlsx"):
    return client.post(
        f"/targets/plans/{plan.pk}/import/", {"file": SimpleUploadedFile(name, sheet.bytes())}, follow=False
    )


def apply(client, plan, preview, **extra):
    form = preview.context["apply_form"]
    return client.post(
        f"/targets/plans/{plan.pk}/import/", {"apply": "1", "token": form.initial["token"], **extra}, follow=False
    )


def amounts(plan) -> dict[int, tuple]:
    return {n.pk: (n.amount, n.version, n.owner_id, n.deadline) for n in TargetNode.objects.filter(plan=plan)}


# --- export ------------------------------------------------------------------------------


def test_the_tree_export_has_the_header_ids_and_only_targets_in_scope(client_for, org, plan, tree):
    sheet = export(client_for(org.manager), plan)
    assert sheet.marker[:3] == [MARKER, plan.pk, "tree"]
    header = {sheet.ws.cell(r, 1).value: sheet.ws.cell(r, 2).value for r in range(3, 10)}
    assert header["Plan"] == plan.name and header["Period"].startswith("FY2027 (2027-01-01")
    assert header["Status / version"] == "Draft" and header["Exported at"].endswith(f"· {org.manager}")
    assert sheet.node_ids() == {tree[k].pk for k in ("east", "sh", "js", "rep", "rep_sh2")}
    assert sheet.get(tree["rep"].pk, "amount") == 150000 and sheet.get(tree["rep"].pk, "owner") == "rep"
    assert sheet.get(tree["rep"].pk, "version") == fresh(tree["rep"]).version
    # Ids and versions are hidden and locked; only amount, owner and deadline can be typed into.
    ws = sheet.ws
    assert ws.protection.sheet
    for key in ("node_id", "version"):
        letter = ws.cell(1, sheet.keys[key]).column_letter
        assert ws.column_dimensions[letter].hidden
    row = sheet.row_of(tree["rep"].pk)
    assert not ws.cell(row, sheet.keys["amount"]).protection.locked
    assert ws.cell(row, sheet.keys["target"]).protection.locked
    assert ws.row_dimensions[1].hidden and ws.row_dimensions[KEY_ROW].hidden

    # Under one target only; the rep sees his own target; another region's target is a 404.
    under = export(client_for(org.director), plan, node=tree["sh"].pk)
    assert under.node_ids() == {tree[k].pk for k in ("sh", "rep", "rep_sh2")}
    assert export(client_for(org.rep), plan).node_ids() == {tree["rep"].pk}
    assert (
        client_for(org.manager).get(f"/targets/plans/{plan.pk}/export.xlsx", {"node": tree["north"].pk}).status_code
        == 404
    )
    assert client_for(org.rep_other).get(f"/targets/plans/{plan.pk}/export.xlsx").status_code == 404


def test_the_grid_export_has_one_editable_cell_per_target(client_for, org, plan, tree):
    target_split(node=fresh(tree["sh"]), dimension="quarter", method="equal", actor=org.manager)
    sheet = export(client_for(org.manager), plan, view="grid", node=tree["east"].pk, rows="region", cols="quarter")
    assert sheet.marker[:6] == [MARKER, plan.pk, "grid", tree["east"].pk, "region", "quarter"]
    keys = sheet.keys
    rows = {sheet.ws.cell(r, 2).value: r for r in sheet.data_rows()}
    assert set(rows) == {"Shanghai", "Jiangsu", "Total"}
    # Shanghai: a quarter target per cell, editable; Jiangsu: one yearly target, in "longer periods".
    sh = rows["Shanghai"]
    assert sheet.ws.cell(sh, keys["amount:FY2027-Q1"]).value == 75000
    assert sheet.ws.cell(sh, keys["id:FY2027-Q1"]).value.endswith("@1")
    assert not sheet.ws.cell(sh, keys["amount:FY2027-Q1"]).protection.locked
    js = rows["Jiangsu"]
    assert sheet.ws.cell(js, keys["amount:other"]).value == 300000 and sheet.ws.cell(js, keys["id:other"]).value is None
    assert sheet.ws.cell(sh, keys["total"]).value.startswith("=SUM(")


# --- import --------------------------------------------------------------------------------


def test_round_trip_preview_then_apply_updates_amounts_owners_deadlines_exactly(client_for, org, plan, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    # Move 20,000.50 from one Shanghai rep to the other, give Jiangsu an owner and a deadline.
    r1 = sheet.set(tree["rep"].pk, "amount", 129999.5)
    r2 = sheet.set(tree["rep_sh2"].pk, "amount", "170,000.50")
    sheet.set(tree["js"].pk, "owner", "rep_js")
    sheet.set(tree["js"].pk, "deadline", date(2027, 11, 30))
    before = amounts(plan)

    preview = upload(client, plan, sheet)
    assert preview.status_code == 200
    check = preview.context["check"]
    assert check.errors == []
    assert {(c.row, c.node.pk, c.old_amount, c.new_amount) for c in check.changes if c.amount_changed} == {
        (r1, tree["rep"].pk, Decimal("150000.00"), Decimal("129999.50")),
        (r2, tree["rep_sh2"].pk, Decimal("150000.00"), Decimal("170000.50")),
    }
    assert b'data-testid="import-changes"' in preview.content and b'data-value="129999.50"' in preview.content
    assert amounts(plan) == before  # the preview wrote nothing

    done = apply(client, plan, preview)
    assert done.status_code == 302 and done["Location"] == f"/targets/plans/{plan.pk}/"
    rep, rep2, js = fresh(tree["rep"]), fresh(tree["rep_sh2"]), fresh(tree["js"])
    assert (rep.amount, rep2.amount) == (Decimal("129999.50"), Decimal("170000.50"))
    assert rep.amount + rep2.amount == fresh(tree["sh"]).amount == Decimal("300000.00")
    assert (js.owner, js.deadline) == (org.rep_js, date(2027, 11, 30))
    assert rep.version == before[rep.pk][1] + 1 and js.version == before[js.pk][1] + 1
    assert not unbalanced_nodes(plan).exists()
    assert AuditLog.objects.filter(action="target.update", object_id=str(rep.pk), actor=org.manager).exists()
    assert AuditLog.objects.filter(action="target_plan.import", object_id=str(plan.pk)).exists()
    # The same file again changes nothing (and its old versions do not matter where nothing changes).
    again = upload(client, plan, sheet)
    assert (again.context["check"].errors, again.context["check"].changes) == ([], [])
    assert b'data-testid="import-nothing"' in again.content and "apply_form" not in again.context


def test_changing_a_parent_alone_rescales_its_parts_and_the_grandparent_must_follow(client_for, org, plan, tree):
    client = client_for(org.director)
    sheet = export(client, plan)
    sheet.set(tree["sh"].pk, "amount", 360000)
    sheet.set(tree["js"].pk, "amount", 240000)
    preview = upload(client, plan, sheet)
    check = preview.context["check"]
    assert check.errors == [] and any("rescaled" in w for w in check.warnings)
    apply(client, plan, preview)
    assert [fresh(tree[k]).amount for k in ("rep", "rep_sh2", "js", "east")] == [
        Decimal("180000.00"),
        Decimal("180000.00"),
        Decimal("240000.00"),
        Decimal("600000.00"),
    ]

    # A total change: the root, its area and a province move together.
    sheet = export(client, plan)
    sheet.set(tree["north"].pk, "amount", 700000)
    broken = upload(client, plan, sheet).context["check"]
    assert [e.column for e in broken.errors] == [fresh(tree["root"]).label]
    assert "would add up to 1300000.00 but it is 1200000.00" in broken.errors[0].message
    sheet.set(tree["root"].pk, "amount", 1300000)
    preview = upload(client, plan, sheet)
    assert preview.context["check"].errors == []
    apply(client, plan, preview)
    plan.refresh_from_db()
    assert plan.total == Decimal("1300000.00") == fresh(tree["root"]).amount
    assert not unbalanced_nodes(plan).exists()


def test_a_file_with_one_bad_row_applies_nothing_and_names_the_row(client_for, org, plan, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "amount", 140000)
    sheet.set(tree["rep_sh2"].pk, "amount", 160000)  # balanced: fine on its own
    bad = sheet.set(tree["js"].pk, "amount", "lots")
    before = amounts(plan)
    audits = AuditLog.objects.count()
    preview = upload(client, plan, sheet)
    check = preview.context["check"]
    assert [(e.row, e.column, e.value) for e in check.errors] == [(bad, "Amount", "lots")]
    assert "not a number" in check.errors[0].message
    assert "apply_form" not in preview.context and b'data-testid="error-row"' in preview.content
    # Even a forged apply finds nothing waiting.
    forged = client.post(f"/targets/plans/{plan.pk}/import/", {"apply": "1", "token": "x"})
    assert forged.status_code == 302
    assert amounts(plan) == before and AuditLog.objects.count() == audits


@pytest.mark.parametrize(
    ("key", "value", "column", "message"),
    [
        ("amount", -5, "Amount", "cannot be negative"),
        ("amount", 150000.001, None, None),  # rounds to cents: no change, no error
        ("owner", "nobody", "Owner (username)", "no user “nobody”"),
        ("owner", "rep_other", "Owner (username)", "no user “rep_other”"),  # outside his people
        ("deadline", "2028-02-01", "Deadline", "must fall within FY2027"),
        ("deadline", "someday", "Deadline", "not a date"),
        ("version", 99, None, None),  # an untouched row may be stale
        ("node_id", 999999, "Target id", "no target 999999 among yours"),
        ("node_id", None, "Target id", "no target id"),
    ],
)
def test_row_level_errors(client_for, org, plan, tree, key, value, column, message):
    client = client_for(org.manager)
    sheet = export(client, plan)
    row = sheet.set(tree["rep"].pk, key, value)
    check = upload(client, plan, sheet).context["check"]
    if message is None:
        assert check.errors == [] and check.changes == []
        return
    assert [(e.row, e.column) for e in check.errors] == [(row, column)]
    assert message in check.errors[0].message


def test_stale_versions_targets_of_other_plans_and_out_of_scope_rows(client_for, org, plan, metrics, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    # Someone changes the Shanghai reps after the export.
    rep = fresh(tree["rep"])
    node_update(node=rep, amount="140000", rebalance=True, expected_version=rep.version, actor=org.director)
    sheet.set(tree["rep"].pk, "amount", 100000)
    sheet.set(tree["rep_sh2"].pk, "amount", 200000)
    errors = upload(client, plan, sheet).context["check"].errors
    assert {e.row for e in errors} == {sheet.row_of(tree["rep"].pk), sheet.row_of(tree["rep_sh2"].pk)}
    assert all("after this file was exported" in e.message for e in errors)

    # A row pasted from another plan, a row of another region (North: outside his scope).
    other = target_split(node=_other_plan_root(org, metrics), dimension="region", method="equal", actor=org.director)
    other = other.children
    east_other = next(n for n in other if n.region_id == org.east.pk)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "node_id", east_other.pk)
    sheet.set(tree["rep_sh2"].pk, "node_id", tree["north"].pk)
    errors = upload(client, plan, sheet).context["check"].errors
    messages = sorted(e.message for e in errors)
    assert "belongs to another plan" in messages[0]
    assert f"no target {tree['north'].pk} among yours" in messages[1]


def _other_plan_root(org, metrics):
    other = plan_create(
        metric=metrics["collections"], period_key="FY2027", total="1000", owner=org.director, actor=org.director
    )
    return other.nodes.get()


def test_unbalanced_changes_and_own_targets_are_refused(client_for, org, plan, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    row = sheet.set(tree["rep"].pk, "amount", 160000)
    errors = upload(client, plan, sheet).context["check"].errors
    assert [(e.row, e.column) for e in errors] == [(row, fresh(tree["sh"]).label)]
    assert "+10000.00" in errors[0].message

    sheet = export(client, plan)
    sheet.set(tree["east"].pk, "deadline", date(2027, 10, 31))  # his own target
    errors = upload(client, plan, sheet).context["check"].errors
    assert len(errors) == 1 and "your own target" in errors[0].message


def test_a_file_of_another_plan_or_not_an_export_is_refused(client_for, org, plan, tree, metrics):
    client = client_for(org.director)
    sheet = export(client, plan)
    other = _other_plan_root(org, metrics).plan
    response = upload(client, other, sheet)
    assert "export of another plan" in response.context["check"].errors[0].message
    junk = client.post(
        f"/targets/plans/{plan.pk}/import/", {"file": SimpleUploadedFile("x.csv", b"name,amount\nA,1\n")}
    )
    assert "not a target export" in junk.context["upload"].errors["file"][0]
    assert client_for(org.rep).get(f"/targets/plans/{plan.pk}/import/").status_code == 302


def test_the_grid_round_trip(client_for, org, plan, tree):
    for key in ("rep", "rep_sh2"):
        target_split(node=fresh(tree[key]), dimension="quarter", method="equal", actor=org.manager)
    client = client_for(org.manager)
    sheet = export(client, plan, view="grid", node=tree["sh"].pk, rows="rep", cols="quarter")
    keys = sheet.keys
    rows = {sheet.ws.cell(r, 2).value: r for r in sheet.data_rows()}
    row = rows[str(org.rep)]
    # Move 5,000 from Q1 to Q4 for the first rep.
    sheet.ws.cell(row, keys["amount:FY2027-Q1"]).value = 32500
    sheet.ws.cell(row, keys["amount:FY2027-Q4"]).value = 42500
    preview = upload(client, plan, sheet)
    check = preview.context["check"]
    assert check.errors == [] and len(check.changes) == 2
    apply(client, plan, preview)
    quarters = list(TargetNode.objects.filter(parent__rep=org.rep, parent__plan=plan).order_by("path"))
    assert [q.amount for q in quarters] == [
        Decimal("32500.00"),
        Decimal("37500.00"),
        Decimal("37500.00"),
        Decimal("42500.00"),
    ]
    assert sum(q.amount for q in quarters) == Decimal("150000.00")

    # A total cell is a formula and is ignored; a changed cell that is no single target is refused.
    sheet = export(client, plan, view="grid", node=tree["east"].pk, rows="region", cols="quarter")
    rows = {sheet.ws.cell(r, 2).value: r for r in sheet.data_rows()}
    sheet.ws.cell(rows["Shanghai"], sheet.keys["amount:FY2027-Q2"]).value = 1
    errors = upload(client, plan, sheet).context["check"].errors
    assert [(e.row, e.column) for e in errors] == [(rows["Shanghai"], "Shanghai · FY2027-Q2")]
    assert "not one target" in errors[0].message


def test_an_approved_plan_imports_as_one_adjustment(client_for, org, approved, tree):
    plan = approved
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "amount", 100000)
    sheet.set(tree["sh"].pk, "amount", 250000)
    sheet.set(tree["js"].pk, "amount", 350000)
    before = amounts(plan)
    preview = upload(client, plan, sheet)
    check = preview.context["check"]
    assert check.errors == [] and check.adjustment_kind == "reallocation"
    assert "reason" in preview.context["apply_form"].fields
    missing_reason = apply(client, plan, preview)
    assert missing_reason.status_code == 200 and not AdjustmentRequest.objects.exists()
    done = apply(client, plan, preview, reason="Key account moved to Jiangsu")
    adjustment = AdjustmentRequest.objects.get()
    assert done["Location"] == f"/targets/adjustments/{adjustment.pk}/"
    assert (adjustment.status, adjustment.kind, adjustment.proposer) == (
        AdjustmentStatus.PENDING,
        "reallocation",
        org.manager,
    )
    # The deepest changes only; nothing moves until someone approves it.
    assert {c["node"] for c in adjustment.changes} == {tree["rep"].pk, tree["js"].pk}
    assert amounts(plan) == before

    sheet = export(client, plan)
    sheet.set(tree["js"].pk, "owner", "rep")
    errors = upload(client, plan, sheet).context["check"].errors
    assert len(errors) == 1 and "owners and deadlines no longer change" in errors[0].message


def test_a_csv_saved_from_the_export_imports_too(client_for, org, plan, tree):
    """Excel's "Save as CSV" keeps the hidden rows and columns and writes numbers and dates as text."""
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "amount", "140,000.00")
    sheet.set(tree["rep_sh2"].pk, "amount", "160,000.00")
    sheet.set(tree["js"].pk, "owner", "rep_js")
    sheet.set(tree["js"].pk, "deadline", "11/30/2027")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in sheet.ws.iter_rows(values_only=True):
        writer.writerow(["" if v is None else v for v in row])
    data = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    preview = client.post(f"/targets/plans/{plan.pk}/import/", {"file": SimpleUploadedFile("targets.csv", data)})
    check = preview.context["check"]
    assert check.errors == [] and len(check.changes) == 3
    apply(client, plan, preview)
    assert (fresh(tree["rep"]).amount, fresh(tree["js"]).deadline) == (Decimal("140000.00"), date(2027, 11, 30))


def test_a_change_between_preview_and_apply_applies_nothing(client_for, org, plan, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "amount", 140000)
    sheet.set(tree["rep_sh2"].pk, "amount", 160000)
    sheet.set(tree["js"].pk, "owner", "rep_js")
    preview = upload(client, plan, sheet)
    assert preview.context["check"].errors == []
    # Meanwhile the director gives the second rep another deadline.
    other = fresh(tree["rep_sh2"])
    node_update(node=other, deadline=date(2027, 9, 30), expected_version=other.version, actor=org.director)
    before = amounts(plan)
    response = apply(client, plan, preview)
    assert response.status_code == 200
    errors = response.context["check"].errors
    assert [e.row for e in errors] == [sheet.row_of(tree["rep_sh2"].pk)], [e.message for e in errors]
    assert "after this file was exported" in errors[0].message
    assert "apply_form" not in response.context
    assert amounts(plan) == before  # the Jiangsu owner and the first rep's amount were not written either


def test_exports_cost_a_fixed_number_of_queries(client_for, org, plan, tree, django_assert_max_num_queries):
    target_split_leaves(node=fresh(tree["root"]), dimension="month", method="equal", actor=org.director)
    client = client_for(org.director)
    with django_assert_max_num_queries(8):
        sheet = export(client, plan)
    assert len(sheet.node_ids()) == plan.nodes.count() == 7 + 4 * 12
    with django_assert_max_num_queries(12):
        grid = export(client, plan, view="grid", rows="region", cols="month")
    rows = {grid.ws.cell(r, 2).value: r for r in grid.data_rows()}
    assert grid.ws.cell(rows["Jiangsu"], grid.keys["id:FY2027-M01"]).value  # one month leaf: editable
    assert grid.ws.cell(rows["Shanghai"], grid.keys["id:FY2027-M01"]).value is None  # two reps' leaves: a sum


def test_uploads_wait_until_applied_and_day_old_ones_are_swept(client_for, org, plan, tree, settings):
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["js"].pk, "owner", "rep_js")
    folder = settings.MEDIA_ROOT / "target-imports" / str(org.manager.pk)
    folder.mkdir(parents=True)
    stale = folder / "forgotten.xlsx"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    preview = upload(client, plan, sheet)
    waiting = list(folder.iterdir())
    assert not stale.exists() and len(waiting) == 1
    apply(client, plan, preview)
    assert list(folder.iterdir()) == [] and fresh(tree["js"]).owner == org.rep_js


# --- issue 10: ragged CSV rows and limits --------------------------------------------------------


def _csv_of(sheet: Sheet) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in sheet.ws.iter_rows(values_only=True):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def test_a_csv_row_split_by_an_unquoted_thousands_separator_is_a_row_error(client_for, org, plan, tree):
    client = client_for(org.manager)
    sheet = export(client, plan)
    row = sheet.set(tree["rep"].pk, "amount", "140,000.00")
    sheet.set(tree["rep_sh2"].pk, "amount", "160,000.00")
    text = _csv_of(sheet).replace('"140,000.00"', "140,000.00")  # as a hand-edited file has it
    before = amounts(plan)
    preview = client.post(
        f"/targets/plans/{plan.pk}/import/", {"file": SimpleUploadedFile("targets.csv", text.encode())}
    )
    errors = preview.context["check"].errors
    expected = f"Row {row} has 18 cells but the header has 17"
    assert [(e.row, e.message.split(":")[0]) for e in errors] == [(row, expected)]
    assert "“140,000.00”" in errors[0].message and "apply_form" not in preview.context
    assert amounts(plan) == before


def test_csv_rows_without_their_trailing_separators_import(client_for, org, plan, tree):
    """Some tools (and Excel, past the first rows) leave out the separators of empty trailing cells."""
    client = client_for(org.manager)
    sheet = export(client, plan)
    sheet.set(tree["rep"].pk, "amount", 140000)
    sheet.set(tree["rep_sh2"].pk, "amount", 160000)
    text = "\r\n".join(line.rstrip(",") for line in _csv_of(sheet).splitlines())
    preview = client.post(
        f"/targets/plans/{plan.pk}/import/", {"file": SimpleUploadedFile("targets.csv", text.encode())}
    )
    check = preview.context["check"]
    assert check.errors == [] and len(check.changes) == 2


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("IMPORT_MAX_ROWS", 5, "The file has more than 5 rows; export a smaller part of the plan."),
        ("IMPORT_MAX_COLUMNS", 10, "The file has more than 10 columns"),
        ("IMPORT_MAX_BYTES", 1000, "The file is larger than 1000"),
    ],
)
def test_a_file_over_an_import_limit_is_refused(client_for, org, plan, tree, settings, setting, value, message):
    client = client_for(org.manager)
    sheet = export(client, plan)
    setattr(settings, setting, value)
    response = upload(client, plan, sheet)
    assert response.status_code == 200
    assert response.context["upload"].errors["file"][0].startswith(message)
