"""The rejected rows of a partial import as a file to fix and upload again: the uploaded columns as read, then
the row's number in the uploaded file and the reason, in the uploaded format (CSV, or XLSX for Excel files)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook

from pipeline.importing.plan import RowError
from salesmgmt.lib.tabular import Table, cell_text


def row_reason(errors: Iterable[RowError]) -> str:
    """One message for a row: each problem with the column it is in ("Sales: “abc” is not a number.")."""
    parts = []
    for error in errors:
        where = error.column or error.field
        parts.append(f"{where}: {error.message}" if where else error.message)
    return "; ".join(parts)


def rejected_file_name(original_name: str, file_format: str) -> str:
    stem = original_name.rsplit("/", 1)[-1].rsplit(".", 1)[0][:80] or "import"
    suffix = _("rejected")
    return f"{stem}-{suffix}.{'xlsx' if file_format in ('xlsx', 'xls') else 'csv'}"


def rejected_rows_file(table: Table, rejected: dict[int, list[RowError]]) -> bytes:
    """The file's bytes: one line per rejected row, in file order. Excel uploads (xlsx, xls) give an xlsx
    with the cells as read (numbers stay numbers, dates dates); CSV gives UTF-8 CSV with a BOM (Excel opens
    it with the Chinese intact) and the uploaded separator."""
    headers = [*table.headers, _("Row in the uploaded file"), pgettext("import", "Reason")]
    rows = (
        (row.values + [None] * (len(table.headers) - len(row.values)), row.number, row_reason(rejected[row.number]))
        for row in table.rows
        if row.number in rejected
    )
    if table.format in ("xlsx", "xls"):
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(str(_("Rejected rows"))[:31])
        sheet.append(headers)
        for values, number, reason in rows:
            sheet.append([*values[: len(table.headers)], number, reason])
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()
    text = io.StringIO()
    writer = csv.writer(text, delimiter=table.delimiter or ",", lineterminator="\r\n")
    writer.writerow(headers)
    for values, number, reason in rows:
        writer.writerow([*(cell_text(v) for v in values[: len(table.headers)]), number, reason])
    return ("\ufeff" + text.getvalue()).encode("utf-8")
