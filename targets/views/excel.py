"""The Excel round trip of a plan: export the tree under a target or the editor's grid to XLSX, then
import the filled file back (upload -> preview with every row's problem -> apply all or nothing).

Exports are scoped: only the targets the user may see are written. The workbook is written with
openpyxl's write-only mode (rows are not kept as cell objects), with the ids and versions in hidden,
locked columns and only the editable cells unlocked; its layout is described in
`targets.services.excel`, which reads it back. Between the preview and the apply, the uploaded
file waits in the default storage, named in the user's session (one pending import per plan; a
day-old one is deleted at the user's next upload), and it is checked again when applied.
"""

import uuid
from datetime import timedelta
from io import BytesIO
from pathlib import PurePath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from crm.forms import add_service_errors
from salesmgmt.views import XLSX_TYPE
from targets import access, selectors
from targets.forms.excel import ExportForm, ImportApplyForm, ImportUploadForm
from targets.models import PlanStatus
from targets.services import excel

SHOWN_ERRORS = 200
SHOWN_CHANGES = 500
PENDING_DIR = "target-imports"
PENDING_FOR = timedelta(days=1)
EDITABLE_FILL = PatternFill("solid", fgColor="FFF4CC")
HEADING_FILL = PatternFill("solid", fgColor="E8EEF5")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
UNLOCKED = Protection(locked=False)
# Rows of an export: the hidden marker, the header block, the hidden keys, the headings, the data.
KEY_ROW = 12
FIRST_DATA_ROW = KEY_ROW + 2


# --- export ------------------------------------------------------------------------------


@login_required
@require_GET
def plan_export(request, pk):
    """`?view=tree&node=<id>` (default: every target you can see) or `?view=grid&node=&rows=&cols=`."""
    plan = access.visible_plan(request.user, pk)
    form = ExportForm(request.GET)
    if not form.is_valid():
        raise Http404(_("Unknown export."))
    user = request.user
    node_pk = form.cleaned_data.get("node")
    node = access.plan_node(user, plan, node_pk) if node_pk else None
    if form.cleaned_data["view"] == excel.GRID:
        workbook, suffix = _grid_workbook(plan, node, form.cleaned_data, user)
    else:
        workbook, suffix = _tree_workbook(plan, node, user)
    buffer = BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    filename = f"{plan.name} {suffix}.xlsx".replace("/", "-")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


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


def _amount_format(plan) -> str:
    return "#,##0" if plan.metric.places == 0 else "#,##0.00"


def _tree_workbook(plan, node, user):
    keys = excel.TREE_KEYS
    col = {k: i + 1 for i, k in enumerate(keys)}
    widths = {col["level"]: 6, col["target"]: 40, col["amount"]: 16, col["owner"]: 16, col["owner_name"]: 18}
    widths.update({col[k]: 12 for k in ("deadline", "committed", "period", "segment", "split")})
    widths.update({col[k]: 16 for k in ("region", "product_line", "product", "rep")})
    workbook = Workbook(write_only=True)
    ws = _sheet(
        workbook,
        _("Targets"),
        widths=widths,
        hidden={col[k] for k in excel.TREE_HIDDEN},
        frozen_column=get_column_letter(col["target"] + 1),
    )
    ws.append([excel.MARKER, plan.pk, excel.TREE, node.pk if node else "", "", ""])
    view = _("Targets under %(target)s") % {"target": node.label} if node else _("Every target you can see")
    _header_block(ws, plan, user, view)
    ws.append(list(keys))
    labels = {
        "node_id": _("Target id"),
        "version": _("Version"),
        "path": _("Path"),
        "level": _("Level"),
        "target": _("Target"),
        "region": _("Region"),
        "product_line": _("Product line"),
        "product": _("Product"),
        "rep": _("Sales rep"),
        "segment": _("Segment"),
        "period": _("Period"),
        "split": _("Split along"),
        "amount": _("Amount"),
        "owner": _("Owner (username)"),
        "owner_name": _("Owner"),
        "deadline": _("Deadline"),
        "committed": _("Committed (bottom-up)"),
    }
    ws.append([_text(ws, labels[k], font=BOLD, fill=HEADING_FILL) for k in keys])
    first_data = FIRST_DATA_ROW
    nodes = selectors.nodes_visible_to(user).filter(plan=plan)
    if node is not None:
        nodes = nodes.filter(path__startswith=node.path)
    top = node.depth if node is not None else None
    money = _amount_format(plan)
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
            "deadline": _value(ws, n.deadline, number_format="yyyy-mm-dd", editable=True),
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


def _grid_workbook(plan, node, data: dict, user):
    """The editor's grid: one row per region or rep, one column per month or quarter (plus one for
    targets longer than a column), row and column totals as formulas."""
    if node is None:
        node = access.entry_node(user, plan)
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
    first_amount, total_col = 3, 3 + width
    widths = {2: 28, total_col: 16, **{first_amount + i: 14 for i in range(width)}}
    hidden = {1, *range(total_col + 1, total_col + 1 + width)}
    workbook = Workbook(write_only=True)
    ws = _sheet(workbook, _("Grid"), widths=widths, hidden=hidden, frozen_column="C")
    ws.append([excel.MARKER, plan.pk, excel.GRID, node.pk, rows, cols])
    row_name = _("Region") if rows == "region" else _("Sales rep")
    view = _("Grid of %(target)s: %(rows)s by %(cols)s") % {
        "target": node.label,
        "rows": _("regions") if rows == "region" else _("reps"),
        "cols": _("months") if cols == "month" else _("quarters"),
    }
    _header_block(ws, plan, user, view)
    ws.append(
        [excel.GRID_ROW_KEY, excel.GRID_LABEL]
        + [f"{excel.GRID_AMOUNT}{k}" for k in keys]
        + [excel.GRID_TOTAL]
        + [f"{excel.GRID_ID}{k}" for k in keys]
    )
    heading = [_text(ws, ""), _text(ws, row_name, font=BOLD, fill=HEADING_FILL)]
    heading += [_text(ws, label, font=BOLD, fill=HEADING_FILL) for label in labels]
    heading += [_text(ws, _("Total"), font=BOLD, fill=HEADING_FILL)] + [_text(ws, f"id {k}") for k in keys]
    ws.append(heading)
    money = _amount_format(plan)
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
    totals = [_text(ws, excel.GRID_TOTALS_ROW), _text(ws, _("Total"), font=BOLD)]
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


# --- import ------------------------------------------------------------------------------


def _session_key(plan) -> str:
    return f"target-import-{plan.pk}"


def _pending(request, plan) -> dict | None:
    return request.session.get(_session_key(plan))


def _forget(request, plan) -> None:
    pending = request.session.pop(_session_key(plan), None)
    if pending and default_storage.exists(pending["path"]):
        default_storage.delete(pending["path"])


def _keep(request, plan, data: bytes, name: str) -> str:
    """Store the checked file until it is applied (replacing any earlier one); returns its token."""
    _forget(request, plan)
    _sweep(f"{PENDING_DIR}/{request.user.pk}")
    token = uuid.uuid4().hex
    suffix = PurePath(name).suffix.lower()
    path = default_storage.save(f"{PENDING_DIR}/{request.user.pk}/{token}{suffix}", ContentFile(data))
    request.session[_session_key(plan)] = {"token": token, "path": path, "name": name}
    return token


def _sweep(folder: str) -> None:
    """Delete the user's uploads that were never applied (kept a day, for a preview left open)."""
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return
    cutoff = timezone.now() - PENDING_FOR
    for name in files:
        path = f"{folder}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
        except (FileNotFoundError, NotImplementedError):
            continue


def _preview_context(check) -> dict:
    changes = check.changes
    return {
        "check": check,
        "errors": check.errors[:SHOWN_ERRORS],
        "more_errors": max(0, len(check.errors) - SHOWN_ERRORS),
        "changes": changes[:SHOWN_CHANGES],
        "more_changes": max(0, len(changes) - SHOWN_CHANGES),
        "is_adjustment": check.mode == excel.Mode.ADJUSTMENT,
    }


@login_required
@require_http_methods(["GET", "POST"])
def plan_import(request, pk):
    """Upload a filled export, see what it changes and every row's problem, then apply it at once."""
    plan = access.visible_plan(request.user, pk)
    if not request.user.is_manager_or_above:
        messages.error(request, _("Only managers, directors and admins can import targets."))
        return redirect("targets:mine")
    context = {"plan": plan, "approved": plan.status == PlanStatus.APPROVED}
    upload = ImportUploadForm()
    if request.method == "POST" and "apply" in request.POST:
        return _apply(request, plan, context)
    if request.method == "POST":
        upload = ImportUploadForm(request.POST, request.FILES)
        if upload.is_valid():
            file = upload.cleaned_data["file"]
            data = file.read()
            try:
                parsed = excel.parse_file(data, file.name)
            except ValidationError as exc:
                upload.add_error("file", exc)
            else:
                check = excel.plan_import_check(plan=plan, parsed=parsed, actor=request.user)
                context.update(_preview_context(check), file_name=file.name)
                if check.ok and check.changes:
                    token = _keep(request, plan, data, file.name)
                    context["apply_form"] = ImportApplyForm(initial={"token": token}, approved=context["approved"])
    context["upload"] = upload
    return render(request, "targets/excel/import.html", context)


def _apply(request, plan, context):
    pending = _pending(request, plan)
    form = ImportApplyForm(request.POST, approved=context["approved"])
    if pending is None or request.POST.get("token") != pending["token"]:
        messages.error(request, _("That upload is no longer waiting to be imported: upload the file again."))
        return redirect("targets:plan_import", pk=plan.pk)
    try:
        with default_storage.open(pending["path"], "rb") as stored:
            data = stored.read()
    except OSError:
        _forget(request, plan)
        messages.error(request, _("That upload is no longer waiting to be imported: upload the file again."))
        return redirect("targets:plan_import", pk=plan.pk)
    if form.is_valid():
        try:
            result = excel.plan_import_apply(
                plan=plan,
                data=data,
                filename=pending["name"],
                reason=form.cleaned_data.get("reason", ""),
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            _forget(request, plan)
            if result.adjustment is not None:
                messages.success(
                    request,
                    _("The file proposed an adjustment of %(count)d targets; it takes effect once approved.")
                    % {"count": result.changed},
                )
                return redirect("targets:adjustment_detail", pk=result.adjustment.pk)
            messages.success(request, _("%(count)d targets were updated from the file.") % {"count": result.changed})
            return redirect(reverse("targets:plan_detail", args=[plan.pk]))
    # Show the file's current problems (someone may have changed a target since the preview).
    check = excel.plan_import_check(plan=plan, parsed=excel.parse_file(data, pending["name"]), actor=request.user)
    context.update(_preview_context(check), file_name=pending["name"], apply_form=form, upload=ImportUploadForm())
    if not check.ok or not check.changes:
        context.pop("apply_form")
    return render(request, "targets/excel/import.html", context)
