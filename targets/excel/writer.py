"""The export of a plan to XLSX in the layout of `targets.excel.layout`: the tree under a target, or the
editor's grid. Only the targets the user may see are written. openpyxl's write-only mode streams the rows
(they are not kept as cell objects); the ids and versions sit in hidden, locked columns and only the
editable cells are unlocked."""

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from targets.excel.layout import (
    BOLD,
    DATE_FORMAT,
    EDITABLE_FILL,
    FIRST_DATA_ROW,
    GRID,
    GRID_FIRST_AMOUNT,
    GRID_TOTALS_ROW,
    HEADING_FILL,
    KEY_ROW,
    TITLE,
    TREE,
    TREE_HIDDEN,
    TREE_KEYS,
    TREE_LABELS,
    TREE_WIDTHS,
    UNLOCKED,
    Marker,
    amount_format,
    grid_keys,
)
from targets.models import PlanStatus
from targets.planning import selectors


def _text(ws, value, **style) -> WriteOnlyCell:
    """A text cell that stays text: "=..." is not turned into a formula, control characters are dropped."""
    cell = WriteOnlyCell(ws, ILLEGAL_CHARACTERS_RE.sub("", str(value)) if value is not None else None)
    if value is not None:
        cell.data_type = "s"
    return _style(cell, **style)


def _value(ws, value, **style) -> WriteOnlyCell:
    return _style(WriteOnlyCell(ws, value), **style)


def _style(cell, *, font=None, fill=None, number_format=None, editable=False, indent=0):
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if number_format is not None:
        cell.number_format = number_format
    if editable:
        cell.protection = UNLOCKED
        cell.fill = EDITABLE_FILL
    if indent:
        cell.alignment = Alignment(indent=min(indent, 15))
    return cell


def _sheet(workbook, title: str, *, widths: dict[int, float], hidden: set[int], frozen_column: str):
    """A protected sheet (only the unlocked cells can be typed into). A streamed sheet writes its
    columns and panes before the first row, so they are all set here."""
    ws = workbook.create_sheet(title[:31])
    for index, width in widths.items():
        ws.column_dimensions[get_column_letter(index)].width = width
    for index in hidden:
        ws.column_dimensions[get_column_letter(index)].hidden = True
    ws.row_dimensions[1].hidden = True
    ws.row_dimensions[KEY_ROW].hidden = True
    ws.freeze_panes = f"{frozen_column}{FIRST_DATA_ROW}"
    ws.protection.sheet = True
    ws.protection.formatColumns = False  # people may still widen columns and rows
    ws.protection.formatRows = False
    return ws


def _header_block(ws, plan, user, view: str) -> None:
    """The block people read above the table: rows 2 to KEY_ROW - 1."""
    metric = plan.metric
    if plan.status == PlanStatus.APPROVED:
        version = _("approved, version %(version)d") % {"version": plan.current_version}
    else:
        version = plan.get_status_display()
    now = timezone.localtime()
    rows = [
        (_("Plan"), plan.name),
        (_("Metric"), f"{metric.display_name} ({metric.get_unit_display()})"),
        (_("Period"), f"{plan.period_key} ({plan.period_start} – {plan.period_end})"),
        (_("Region"), str(plan.region) if plan.region_id else _("Company-wide")),
        (_("Status / version"), version),
        (_("View"), view),
        (_("Exported at"), f"{date_format(now, 'Y-m-d H:i')} · {user}"),
    ]
    ws.append([_text(ws, plan.name, font=TITLE)])
    for label, value in rows:
        ws.append([_text(ws, label, font=BOLD), _text(ws, value)])
    if plan.status == PlanStatus.APPROVED:
        hint = _(
            "Change the amounts in the yellow cells and import the file on the plan's import page: the plan is "
            "approved, so the changes become one adjustment for approval. Parts must still add up to their target."
        )
    else:
        hint = _(
            "Change the yellow cells and import the file on the plan's import page. Parts must still add up to "
            "their target; a target changed alone has its parts rescaled."
        )
    ws.append([_text(ws, hint)])
    ws.append([])  # rows 2 (title) to 11 (this one): KEY_ROW follows


def tree_workbook(plan, node, user):
    """Every target of `plan` under `node` (None: every one `user` sees) that `user` sees, one a row."""
    keys = TREE_KEYS
    col = {k: i + 1 for i, k in enumerate(keys)}
    workbook = Workbook(write_only=True)
    ws = _sheet(
        workbook,
        _("Targets"),
        widths={col[k]: width for k, width in TREE_WIDTHS.items()},
        hidden={col[k] for k in TREE_HIDDEN},
        frozen_column=get_column_letter(col["target"] + 1),
    )
    ws.append(Marker(TREE, plan.pk, node.pk if node else None).row())
    view = _("Targets under %(target)s") % {"target": node.label} if node else _("Every target you can see")
    _header_block(ws, plan, user, view)
    ws.append(list(keys))
    ws.append([_text(ws, TREE_LABELS[k], font=BOLD, fill=HEADING_FILL) for k in keys])
    first_data = FIRST_DATA_ROW
    nodes = selectors.nodes_visible_to(user).filter(plan=plan)
    if node is not None:
        nodes = nodes.filter(path__startswith=node.path)
    top = node.depth if node is not None else None
    money = amount_format(plan.metric.places)
    count = 0
    for n in nodes.select_related(*selectors.TREE_RELATED).order_by("path").iterator(chunk_size=2000):
        if top is None:
            top = n.depth  # the shallowest visible target comes first in path order
        level = max(n.depth - top, 0)
        values = {
            "node_id": _value(ws, n.pk),
            "version": _value(ws, n.version),
            "path": _text(ws, n.path),
            "level": _value(ws, level),
            "target": _text(ws, n.label, indent=level),
            "region": _text(ws, n.region),
            "product_line": _text(ws, n.product_line),
            "product": _text(ws, n.product),
            "rep": _text(ws, n.rep),
            "segment": _text(ws, n.get_segment_display() if n.segment else None),
            "period": _text(ws, n.period_key),
            "split": _text(ws, n.get_split_dimension_display() if n.split_dimension else None),
            "amount": _value(ws, n.amount, number_format=money, editable=True),
            "owner": _text(ws, n.owner.username if n.owner_id else None, editable=True),
            "owner_name": _text(ws, n.owner),
            "deadline": _value(ws, n.deadline, number_format=DATE_FORMAT, editable=True),
            "committed": _value(ws, n.committed_amount, number_format=money),
        }
        ws.append([values[k] for k in keys])
        count += 1
    _validations(ws, plan, [col["amount"]], first_data, first_data + max(count, 1) - 1)
    suffix = _("targets")
    return workbook, suffix


def _validations(ws, plan, columns: list[int], first: int, last: int) -> None:
    """Excel itself refuses negative amounts (and fractions of a count) in the editable cells."""
    kind = "whole" if plan.metric.places == 0 else "decimal"
    if not columns:
        return
    check = DataValidation(
        type=kind, operator="greaterThanOrEqual", formula1="0", allow_blank=True, showErrorMessage=True
    )
    check.error = _("Enter an amount of 0 or more.")
    check.errorTitle = _("Amount")
    for index in columns:
        letter = get_column_letter(index)
        check.add(f"{letter}{first}:{letter}{last}")
    ws.data_validations.append(check)  # (a streamed sheet has no add_data_validation)


def grid_workbook(plan, node, data: dict, user):
    """The editor's grid of `node`: one row per region or rep, one column per month or quarter (plus one for
    targets longer than a column), row and column totals as formulas."""
    leaves = selectors.grid_leaves(plan, node, user)
    rows = data.get("rows") or ("rep" if leaves.filter(rep__isnull=False).exists() else "region")
    cols = data.get("cols") or "month"
    columns = selectors.grid_columns(node, cols)
    row_list = list(selectors.grid_rows(leaves, rows))
    table = selectors.grid_table(leaves=leaves, rows=rows, columns=columns, row_page=row_list)
    keys = [c.key for c in columns]
    labels = [c.key for c in columns]
    if table["has_other"]:
        keys.append(selectors.OTHER_COLUMN)
        labels.append(_("Longer periods"))
    width = len(keys)
    # Columns: row key (hidden), row label, the amounts, the row total, then the ids (hidden).
    first_amount, total_col = GRID_FIRST_AMOUNT, GRID_FIRST_AMOUNT + width
    widths = {2: 28, total_col: 16, **{first_amount + i: 14 for i in range(width)}}
    hidden = {1, *range(total_col + 1, total_col + 1 + width)}
    workbook = Workbook(write_only=True)
    ws = _sheet(workbook, _("Grid"), widths=widths, hidden=hidden, frozen_column="C")
    ws.append(Marker(GRID, plan.pk, node.pk, rows, cols).row())
    row_name = _("Region") if rows == "region" else _("Sales rep")
    view = _("Grid of %(target)s: %(rows)s by %(cols)s") % {
        "target": node.label,
        "rows": _("regions") if rows == "region" else _("reps"),
        "cols": _("months") if cols == "month" else _("quarters"),
    }
    _header_block(ws, plan, user, view)
    ws.append(grid_keys(keys))
    heading = [_text(ws, ""), _text(ws, row_name, font=BOLD, fill=HEADING_FILL)]
    heading += [_text(ws, label, font=BOLD, fill=HEADING_FILL) for label in labels]
    heading += [_text(ws, _("Total"), font=BOLD, fill=HEADING_FILL)] + [_text(ws, f"id {k}") for k in keys]
    ws.append(heading)
    money = amount_format(plan.metric.places)
    first = FIRST_DATA_ROW
    editable_columns = set()
    for offset, row in enumerate(table["rows"]):
        number = first + offset
        cells = row["cells"] if table["has_other"] else row["cells"][:-1]
        line = [_text(ws, row["key"] if row["key"] is not None else ""), _text(ws, _row_label(row["row"], rows))]
        ids = []
        for i, cell in enumerate(cells):
            editable = bool(cell and cell["leaf"])
            if editable:
                editable_columns.add(first_amount + i)
            line.append(_value(ws, cell["amount"] if cell else None, number_format=money, editable=editable))
            ids.append(_text(ws, f"{cell['leaf']}@{cell['version']}" if editable else None))
        last_amount = get_column_letter(first_amount + width - 1)
        line.append(_value(ws, f"=SUM(C{number}:{last_amount}{number})", number_format=money, font=BOLD))
        ws.append(line + ids)
    last = first + max(len(table["rows"]), 1) - 1
    totals = [_text(ws, GRID_TOTALS_ROW), _text(ws, _("Total"), font=BOLD)]
    for i in range(width + 1):
        letter = get_column_letter(first_amount + i)
        totals.append(_value(ws, f"=SUM({letter}{first}:{letter}{last})", number_format=money, font=BOLD))
    ws.append(totals)
    _validations(ws, plan, sorted(editable_columns), first, last)
    return workbook, _("grid")


def _row_label(row: dict, rows: str) -> str:
    if rows == "rep":
        if row.get("rep") is None:
            return _("No rep")
        name = f"{row.get('rep__first_name') or ''} {row.get('rep__last_name') or ''}".strip()
        return name or row.get("rep__username") or ""
    return row.get("region__name") or _("No region")
