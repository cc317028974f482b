"""Reading tabular files people export from Excel and CRMs: CSV (any of the ways Excel damages it), XLSX, XLS.

Everything here is plain Python (no models), so the parsing rules are tested without a database:

- `read_table` finds the format from the file's first bytes (not its name), decodes CSV as UTF-8 (with or
  without BOM), UTF-16 or GB18030 (a superset of GBK), picks the separator (`,` `;` tab `|`, or Excel's
  `sep=;` first line), drops empty rows and empty trailing columns, and keeps each row's number as the
  user sees it in Excel (the header is row 1).
- It reads lazily, row by row, from bytes or an open binary file, and stops at the first of `Limits` crossed
  (bytes, data rows, columns), so a file too big to import costs little time and memory: the size is checked
  before anything is parsed, a workbook's declared dimension before its first row, and every row as it comes.
- A CSV row with more cells than the header (`Deal A,1,234.50` under `name,amount`: an unquoted thousands
  separator) cannot be placed in its columns: it keeps the header's cells and carries a `problem` for the
  caller to report as a row error. A row with fewer cells reads its missing trailing cells as empty (Excel
  leaves out trailing separators).
- `parse_date`, `parse_decimal` and `parse_identifier` turn one cell into a value or raise `ValueError`
  with a message a manager understands.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from salesmgmt.lib.money import quantize

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DELIMITERS = (",", ";", "\t", "|")
# Excel's day 0 (it wrongly treats 1900 as a leap year, so serials from March 1900 on count from here).
EXCEL_EPOCH = date(1899, 12, 30)
HEAD_BYTES = 4096


class TabularError(Exception):
    """The file cannot be read at all (wrong format, damaged, empty). The message is for the user."""


class LimitExceeded(TabularError):
    """The file crosses one of the `Limits`; `limit` names which ("bytes", "rows" or "columns")."""

    def __init__(self, message: str, *, limit: str, maximum: int):
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum


@dataclass(frozen=True)
class Limits:
    """What a file may hold; None: no limit. Data rows are counted without the header and empty rows."""

    max_bytes: int | None = None
    max_rows: int | None = None
    max_columns: int | None = None

    @classmethod
    def from_settings(cls) -> Limits:
        """The import limits of settings.py (IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, IMPORT_MAX_COLUMNS)."""
        from django.conf import settings

        return cls(settings.IMPORT_MAX_BYTES, settings.IMPORT_MAX_ROWS, settings.IMPORT_MAX_COLUMNS)

    def check_bytes(self, size: int) -> None:
        if self.max_bytes is not None and size > self.max_bytes:
            raise LimitExceeded(
                _("The file is larger than %(size)s; split it.") % {"size": filesizeformat(self.max_bytes)},
                limit="bytes",
                maximum=self.max_bytes,
            )

    def check_rows(self, rows: int) -> None:
        if self.max_rows is not None and rows > self.max_rows:
            raise LimitExceeded(
                _("The file has more than %(max)s rows; split it.") % {"max": self.max_rows},
                limit="rows",
                maximum=self.max_rows,
            )

    def check_columns(self, columns: int) -> None:
        if self.max_columns is not None and columns > self.max_columns:
            raise LimitExceeded(
                _("The file has more than %(max)s columns; delete the columns the import does not need.")
                % {"max": self.max_columns},
                limit="columns",
                maximum=self.max_columns,
            )


NO_LIMITS = Limits()


@dataclass(slots=True)
class Row:
    number: int  # the row number Excel shows (header = 1)
    values: list
    problem: str = ""  # why the row cannot be read as it stands (a ragged CSV row); a row error for the caller
    cells: int = 0  # cells as read, empty ones included (a CSV line's separators + 1)


@dataclass
class Table:
    headers: list[str]
    rows: list[Row] = field(default_factory=list)
    format: str = "csv"
    encoding: str = ""
    delimiter: str = ""
    truncated: bool = False  # `limit` stopped the reading early
    rows_read: int = 0  # data rows seen, kept or (with count_all) only counted

    def records(self) -> Iterator[tuple[int, dict]]:
        """(row number, {header: value}) for each data row."""
        for row in self.rows:
            yield row.number, dict(zip(self.headers, row.values, strict=False))


# --- reading -----------------------------------------------------------------------------


def read_table(
    source: bytes | BinaryIO,
    filename: str = "",
    *,
    limit: int | None = None,
    limits: Limits = NO_LIMITS,
    count_all: bool = False,
    check_headers: Callable[[list[str]], None] | None = None,
    ragged: str = "error",
    xlsx_reader: str = "calamine",
) -> Table:
    """Read the first sheet of a workbook or a CSV file into headers and rows.

    `source` is the file's bytes or a seekable binary file (read lazily, never whole for CSV and XLSX).
    `limit` keeps only that many data rows (the mapping page only needs a sample); with `count_all` the
    rows after it are still counted against `limits.max_rows` where that is cheap (CSV; a workbook's
    declared size stands in for its count). `check_headers(headers)` runs once the header row is read,
    before any data row, and may raise to stop. `ragged`: "error" gives a CSV row wider than the header a
    `problem`; "widen" reads it like a spreadsheet row (the table grows a column), for files whose first row
    is not the real header. `xlsx_reader`: "calamine" (python-calamine, in Rust: several times faster) or
    "openpyxl"; both read the same values (a workbook with error cells such as #N/A is read by openpyxl, which
    keeps them as text). Raises TabularError (LimitExceeded for a limit) when the file cannot be read.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    if not size or (size <= len(head) and not head.strip()):
        raise TabularError(_("The file is empty."))
    limits.check_bytes(size)
    name = (filename or "").lower()
    options: dict[str, Any] = {"limit": limit, "limits": limits, "count_all": count_all, "check_headers": check_headers}
    if head.startswith(XLSX_MAGIC):
        table = _read_xlsx(stream, reader=xlsx_reader, **options)
    elif head.startswith(XLS_MAGIC):
        table = _read_xls(stream, **options)
    elif name.endswith((".xlsx", ".xlsm")):
        raise TabularError(
            _(
                "“%(name)s” is not a valid Excel workbook (.xlsx): it may be damaged or renamed. "
                "Open it in Excel and save it again as .xlsx or .csv."
            )
            % {"name": filename}
        )
    elif name.endswith(".xls"):
        raise TabularError(
            _(
                "“%(name)s” is not a valid Excel 97-2003 workbook (.xls): it may be damaged or renamed. "
                "Open it in Excel and save it again as .xlsx or .csv."
            )
            % {"name": filename}
        )
    else:
        table = _read_csv(stream, head, ragged=ragged, **options)
    if not table.headers:
        raise TabularError(_("The file has no header row."))
    return table


def _collect(
    raw_rows: Iterable,
    table: Table,
    *,
    limit: int | None,
    limits: Limits,
    count_all: bool,
    check_headers: Callable[[list[str]], None] | None,
    first_number: int = 1,
    ragged: str = "widen",
) -> Table:
    """Fill `table` from raw rows: headers from the first non-empty row; empty rows dropped; empty trailing
    columns dropped; limits checked on every row as it is read."""
    header: list | None = None
    header_cells = 0  # cells of the header row, empty trailing ones included (a CSV row may use them all)
    width = 0
    for offset, raw in enumerate(raw_rows):
        values = list(map(clean_cell, raw))
        filled = len(values) if values and values[-1] is not None else last_filled(values)
        if not filled:
            continue
        limits.check_columns(filled)
        if header is None:
            header, header_cells, width = values[:filled], max(len(values), filled), filled
            if check_headers is not None:
                check_headers(_unique_headers(values))
            continue
        table.rows_read += 1
        limits.check_rows(table.rows_read)
        if limit is not None and len(table.rows) >= limit:
            table.truncated = True
            if count_all:
                continue
            break
        row = Row(first_number + offset, values[:filled], cells=len(values))
        if ragged == "error" and len(values) > header_cells:
            row.problem = ragged_row_problem(row.number, values, header_cells, table.delimiter)
        if row.problem:
            row.values = values[:header_cells]
        else:
            width = max(width, filled)
        table.rows.append(row)
    if header is None:
        return table
    table.headers = _unique_headers(header[:width] + [None] * (width - len(header)))
    for row in table.rows:
        row.values = (row.values + [None] * width)[:width]
    return table


_SPLIT_START = re.compile(r"[-(]?\s*[¥￥$€£]?\s*\d{1,3}")
_SPLIT_GROUP = re.compile(r"\d{3}")
_SPLIT_END = re.compile(r"\d{3}(?:\.\d+)?\)?")


def _thousands_split(texts: list[str]) -> str | None:
    """ "1,234.50" when consecutive cells read "1" and "234.50": a number split at its thousands separator."""
    for start in range(len(texts) - 1):
        if not _SPLIT_START.fullmatch(texts[start]):
            continue
        end = start + 1
        while end < len(texts) - 1 and _SPLIT_GROUP.fullmatch(texts[end]):
            end += 1
        if _SPLIT_END.fullmatch(texts[end]):
            return ",".join(texts[start : end + 1])
    return None


def ragged_row_problem(number: int, values: list, columns: int, delimiter: str = ",", *, cells: int = 0) -> str:
    """Why a CSV row of `cells` cells (default: len(values)) cannot be read under a header of `columns` cells;
    "" when it can. Certain: a non-empty cell past the header. Likely, when the cells past the header are
    empty: a number split at its thousands separator (1,234.50 not in quotes) pushed the row's empty last
    cells along. Otherwise the cells past the header are separators at the end of the line: the row is fine."""
    cells = cells or len(values)
    if cells <= columns:
        return ""
    filled = last_filled(values)
    texts = [cell_text(v) for v in values[:filled]]
    number_split = _thousands_split(texts) if delimiter == "," else None
    counts = {"row": number, "cells": cells, "columns": columns}
    if number_split:
        return _(
            "Row %(row)s has %(cells)s cells but the header has %(columns)s: “%(number)s” looks like one "
            "number split by an unquoted thousands separator. Put it in quotes or remove the comma "
            "(1234.50), then upload the file again."
        ) % {**counts, "number": number_split}
    if filled <= columns:
        return ""
    return _(
        "Row %(row)s has %(cells)s cells but the header has %(columns)s: a value contains the separator "
        "“%(delimiter)s” and is not in quotes. Put that value in quotes, then upload the file again."
    ) % {**counts, "delimiter": delimiter}


def last_filled(values: Sequence[Any]) -> int:
    """The number of cells up to the last non-empty one."""
    for i in range(len(values) - 1, -1, -1):
        if values[i] is not None:
            return i + 1
    return 0


def _unique_headers(headers: list) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for i, header in enumerate(headers):
        header = cell_text(header) or _("Column %(n)s") % {"n": column_letter(i)}
        if header in seen:
            seen[header] += 1
            header = f"{header} ({seen[header]})"
        else:
            seen[header] = 1
        result.append(header)
    return result


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA (as Excel names columns)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, UTF-16 with BOM, else GB18030 (covers GBK/GB2312)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if b"\x00" in data[:HEAD_BYTES]:
        raise TabularError(_("The file is not a text (CSV) file, nor an Excel workbook."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("cp1252", errors="replace"), "cp1252"


def _read_csv(stream: BinaryIO, head: bytes, *, ragged: str, **options: Any) -> Table:
    """Decoded lazily: UTF-8 first; a byte that is not UTF-8, wherever it is, starts the reading again
    as GB18030, then as cp1252 (which reads anything)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    elif b"\x00" in head:
        raise TabularError(_("The file is not a text (CSV) file, nor an Excel workbook."))
    else:
        encodings = ("utf-8-sig", "gb18030", "cp1252")
    for encoding in encodings:
        stream.seek(0)
        # newline="": the csv module sees \r\n and quoted line breaks as they are.
        errors = "replace" if encoding == "cp1252" else "strict"
        text = io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline="")
        try:
            return _parse_csv(text, encoding, ragged=ragged, **options)
        except UnicodeDecodeError:
            continue
        finally:
            text.detach()  # the caller's file stays open
    raise AssertionError("cp1252 with errors='replace' decodes anything")


def _parse_csv(text: io.TextIOWrapper, encoding: str, *, ragged: str, **options: Any) -> Table:
    lines = iter(text)
    first_lines = []
    first_number = 1
    for line in lines:
        first_lines.append(line)
        if line.strip():
            break
    # Excel writes (and honours) a "sep=;" first line in CSVs meant for other locales.
    match = re.fullmatch(r"\s*sep=(.)\s*", first_lines[0]) if first_lines else None
    if match:
        delimiter, first_lines, first_number = match.group(1), [], 2
    else:
        delimiter = _guess_delimiter(first_lines[-1] if first_lines else "")
    table = Table([], format="csv", encoding=encoding, delimiter=delimiter)
    reader = csv.reader(itertools.chain(first_lines, lines), delimiter=delimiter)
    try:
        return _collect(reader, table, first_number=first_number, ragged=ragged, **options)
    except csv.Error as exc:
        raise TabularError(_("The CSV file could not be read: %(error)s") % {"error": exc})


def _guess_delimiter(header: str) -> str:
    """The separator that splits the header line into the most columns (csv.Sniffer guesses badly
    on files with few columns or with commas inside quoted amounts)."""
    best, best_count = ",", 1
    for candidate in DELIMITERS:
        try:
            count = len(next(csv.reader([header], delimiter=candidate)))
        except (csv.Error, StopIteration):
            continue
        if count > best_count:
            best, best_count = candidate, count
    return best


def _xlsx_error(exc: Exception) -> TabularError:
    return TabularError(
        _("The file could not be read as an Excel workbook (.xlsx): it may be damaged. (%(error)s)") % {"error": exc}
    )


_XLSX_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_XLSX_SHEET_DATA = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?sheetData[\s/>]")
_XLSX_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\s[^>]*\bref=[\"']([A-Za-z0-9:$]+)[\"']")


def _xlsx_size(stream: BinaryIO, limits: Limits) -> tuple[int, int] | None:
    """(columns, rows) of the first sheet, known before the workbook is loaded: the <dimension> the sheet
    declares before its data (Excel, LibreOffice and openpyxl's normal mode write one), else its <row>
    elements counted in one pass over the compressed XML, stopping just past the row limit (openpyxl's
    write-only mode and some exporters declare nothing; openpyxl itself would parse the whole sheet to find
    that out). Both count the header and empty rows: an upper bound. (0, rows) when only rows were counted."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.utils.cell import range_boundaries

    reader = ExcelReader(stream, read_only=True)
    try:
        reader.read_manifest()
        reader.read_workbook()
        target = next((rel.target for _sheet, rel in reader.parser.find_sheets()), None)
        if target is None or target not in reader.valid_files:
            return None
        rows, buffer, in_data = 0, b"", False
        with reader.archive.open(target) as source:
            while chunk := source.read(1 << 20):
                buffer += chunk
                if not in_data:
                    data = _XLSX_SHEET_DATA.search(buffer)
                    dimension = _XLSX_DIMENSION.search(buffer, 0, data.start() if data else len(buffer))
                    if dimension:
                        _min_col, min_row, max_col, max_row = range_boundaries(dimension.group(1).decode())
                        if max_row is not None and max_col is not None:
                            return max_col, max_row - (min_row or 1) + 1
                    if not data:
                        if len(buffer) > 1 << 23:  # no <sheetData> in 8 MB: not a sheet we can size
                            return None
                        continue
                    in_data, buffer = True, buffer[data.start() :]
                if limits.max_rows is None:
                    return None
                cut = buffer.rfind(b"<")  # a tag cut in two is counted with the next chunk
                rows += len(_XLSX_ROW_TAG.findall(buffer, 0, cut))
                buffer = buffer[cut:]
                if rows > limits.max_rows + 1:
                    break
            rows += len(_XLSX_ROW_TAG.findall(buffer))
        return (0, rows) if in_data else None
    finally:
        reader.archive.close()


def _read_xlsx(stream: BinaryIO, *, limits: Limits, reader: str = "calamine", **options: Any) -> Table:
    from xml.etree.ElementTree import ParseError

    from openpyxl.utils.exceptions import InvalidFileException

    damaged = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError, ParseError)
    try:
        dimension = _xlsx_size(stream, limits)
    except damaged as exc:
        raise _xlsx_error(exc)
    if dimension:
        columns, rows = dimension
        limits.check_columns(columns)
        limits.check_rows(rows - 1)  # an upper bound: the header and any empty rows are in it
    if reader == "calamine":
        try:
            with_errors = _xlsx_has_error_cells(stream)
        except damaged as exc:
            raise _xlsx_error(exc)
        if not with_errors:
            return _read_xlsx_calamine(stream, limits=limits, **options)
    stream.seek(0)
    return _read_xlsx_openpyxl(stream, dimension, limits=limits, **options)


_XLSX_ERROR_CELL = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*\bt=["']e["']""")


def _xlsx_has_error_cells(stream: BinaryIO) -> bool:
    """Whether the first sheet holds an error cell (#N/A, #DIV/0!...): calamine reads those as empty cells, so
    such a workbook is read by openpyxl (an amount that is #N/A must be an error, not a zero). One pass over the
    compressed sheet, ~50 ms for 100,000 rows."""
    from openpyxl.reader.excel import ExcelReader

    stream.seek(0)
    reader = ExcelReader(stream, read_only=True)
    try:
        reader.read_manifest()
        reader.read_workbook()
        target = next((rel.target for _sheet, rel in reader.parser.find_sheets()), None)
        if target is None or target not in reader.valid_files:
            return True  # let openpyxl say what is wrong
        tail = b""
        with reader.archive.open(target) as source:
            while chunk := source.read(1 << 20):
                buffer = tail + chunk
                if _XLSX_ERROR_CELL.search(buffer):
                    return True
                tail = buffer[-200:]  # a <c ...> tag cut in two is seen whole with the next chunk
        return False
    finally:
        reader.archive.close()
        stream.seek(0)


def _read_xlsx_calamine(stream: BinaryIO, *, limits: Limits, **options: Any) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum

    stream.seek(0)
    try:
        workbook = CalamineWorkbook.from_filelike(stream)
    except (CalamineError, OSError, ValueError) as exc:
        raise _xlsx_error(exc)
    with workbook:
        first = next((i for i, m in enumerate(workbook.sheets_metadata) if m.typ == SheetTypeEnum.WorkSheet), None)
        if first is None:
            raise TabularError(_("The workbook has no sheet."))
        try:
            sheet = workbook.get_sheet_by_index(first)
        except (CalamineError, OSError, ValueError) as exc:
            raise _xlsx_error(exc)
        start_row, start_column = sheet.start or (0, 0)
        rows = sheet.iter_rows()
        top = next(rows, None)
        # python-calamine 0.9 yields the empty rows above the data (the row numbers are the sheet's) but not the
        # empty columns before it; should it start at the data's first row, that row has a filled cell.
        from_top = start_row == 0 or top is None or all(v == "" for v in top)
        return _collect(
            calamine_rows(itertools.chain([top] if top is not None else [], rows), start_column),
            Table([], format="xlsx"),
            limits=limits,
            first_number=1 if from_top else start_row + 1,
            **options,
        )


def calamine_rows(rows: Iterable[list], start_column: int = 0) -> Iterator[list]:
    """calamine's rows as openpyxl reads them: empty cells None, a date cell a datetime at midnight (calamine
    gives a date), the columns before the sheet's first used one as empty cells."""
    lead = [None] * start_column
    for row in rows:
        values = [None if v == "" else datetime(v.year, v.month, v.day) if type(v) is date else v for v in row]
        yield lead + values if lead else values


def _read_xlsx_openpyxl(
    stream: BinaryIO, dimension: tuple[int, int] | None, *, limits: Limits, **options: Any
) -> Table:
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    damaged = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError, ParseError)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except damaged as exc:
        raise _xlsx_error(exc)
    try:
        if not workbook.worksheets:
            raise TabularError(_("The workbook has no sheet."))
        sheet = workbook.worksheets[0]
        # A declared dimension smaller than the data would silently cut rows off: read what is there.
        sheet.reset_dimensions()
        width = dimension[0] if dimension else 0
        padded = (
            row if len(row) >= width else [*row, *[None] * (width - len(row))]
            for row in sheet.iter_rows(values_only=True)
        )
        try:
            table = _collect(padded, Table([], format="xlsx"), limits=limits, **options)
        except (ParseError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise _xlsx_error(exc)
    finally:
        workbook.close()
    return table


def _read_xls(stream: BinaryIO, *, limits: Limits, **options: Any) -> Table:
    import xlrd

    try:
        # The whole file, already bounded by limits.max_bytes (a .xls sheet has at most 65,536 rows).
        book = xlrd.open_workbook(file_contents=stream.read(), on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct/assertion errors on damaged files
        raise TabularError(
            _("The file could not be read as an Excel 97-2003 workbook (.xls): it may be damaged. (%(error)s)")
            % {"error": exc}
        )
    limits.check_columns(sheet.ncols)
    limits.check_rows(sheet.nrows - 1)

    def cells() -> Iterator[list]:
        for r in range(sheet.nrows):
            values = []
            for cell in sheet.row(r):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        values.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                    except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                        values.append(cell.value)
                elif cell.ctype == xlrd.XL_CELL_ERROR:
                    values.append(xlrd.error_text_from_code.get(cell.value, "#ERROR"))
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    values.append(bool(cell.value))
                else:
                    values.append(cell.value)
            yield values

    try:
        return _collect(cells(), Table([], format="xls"), limits=limits, **options)
    finally:
        book.release_resources()


# --- cells -------------------------------------------------------------------------------


_EXCEL_TEXT = re.compile(r'="(.*)"')


def clean_cell(value: Any) -> Any:
    """Strip text, drop Excel's text markers (a leading apostrophe, ="00123"); empty -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        # Runs on every cell of a file: plain ASCII text (most cells) skips the replacements.
        text = value.strip() if value.isascii() else value.replace("\u00a0", " ").replace("\ufeff", "").strip()
        if not text:
            return None
        if text[0] == "'":
            text = text[1:].strip()
        if text[:2] == '="':
            match = _EXCEL_TEXT.fullmatch(text)
            if match:
                text = match.group(1).strip()
        return text or None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def cell_text(value: Any) -> str:
    """A cell as the user would read it (for headers, previews and error messages)."""
    if type(value) is str:  # most cells: first, and without isinstance's cost
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value).strip()


def normalise(text: Any) -> str:
    """A matching key: case-, width- and space-insensitive ("GTX Pro" == "GTXPro" == "ｇｔｘ－ｐｒｏ")."""
    text = unicodedata.normalize("NFKC", cell_text(text)).casefold()
    return re.sub(r"[\s_\-./()（）·:：]+", "", text)


# --- dates -------------------------------------------------------------------------------

DATE_ORDERS = ("auto", "dmy", "mdy")
_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_YMD_ZH = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL = re.compile(r"\d{5}(\.0+)?")
_XY_YEAR = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})")
_TIME_SUFFIX = re.compile(r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp][Mm])?)$")
_TEXT_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d-%b-%y", "%B %d, %Y", "%d %B %Y")


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class AmbiguousDate(ValueError):
    pass


def _not_a_date(value: Any) -> ValueError:
    return ValueError(_("“%(value)s” is not a date (use e.g. 2017-03-01).") % {"value": cell_text(value)})


def _excel_serial(number: float) -> date:
    if not 1 <= number < 100000:
        raise ValueError
    return EXCEL_EPOCH + timedelta(days=int(number))


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def parse_date(value: Any, *, order: str = "auto") -> date | None:
    """One cell -> a date (None when empty). Raises ValueError (AmbiguousDate for 01/03/2017 with order
    "auto") with a message naming the bad value.

    Accepted: date/datetime cells, Excel serial numbers (42795), 2017-03-01, 2017/3/1, 2017.3.1,
    2017年3月1日, 20170301, 01/03/2017 and 03/01/2017 (by `order`: dmy or mdy; "auto" decides only when
    one part is above 12), 1-Mar-2017, Mar 1, 2017. A time part is ignored.
    """
    if value is None or value == "":
        return None
    if type(value) is str and (m := _ISO_DATE.fullmatch(value)):  # most cells of a CSV: 2017-03-01
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise _not_a_date(value)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise _not_a_date(value)
    if isinstance(value, int | float):
        try:
            return _excel_serial(value)
        except ValueError:
            if isinstance(value, int) and _COMPACT.fullmatch(str(value)):
                return parse_date(str(value), order=order)
            raise _not_a_date(value)
    text = _TIME_SUFFIX.sub("", str(value).strip()).strip()
    bad = _not_a_date(value)
    try:
        if m := (_YMD.fullmatch(text) or _YMD_ZH.fullmatch(text) or _COMPACT.fullmatch(text)):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if _SERIAL.fullmatch(text):
            return _excel_serial(float(text))
        if m := _XY_YEAR.fullmatch(text):
            first, second, year = int(m.group(1)), int(m.group(2)), _year(m.group(3))
            if order == "auto":
                if first > 12:
                    order = "dmy"
                elif second > 12 or first == second:
                    order = "mdy"
                else:
                    raise AmbiguousDate(
                        _(
                            "“%(value)s” is ambiguous: it could be %(a)s or %(b)s. "
                            "Choose the date order (day first or month first)."
                        )
                        % {
                            "value": text,
                            "a": date(year, second, first).isoformat(),
                            "b": date(year, first, second).isoformat(),
                        }
                    )
            day, month = (first, second) if order == "dmy" else (second, first)
            return date(year, month, day)
    except AmbiguousDate:
        raise
    except ValueError:
        raise bad
    for fmt in _TEXT_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise bad


def detect_date_order(values: Iterable[Any]) -> str | None:
    """ "dmy" or "mdy" when the dd/mm/yyyy-style values of a file agree (some first part above 12 and no
    second part above 12, or the reverse); None when they don't tell, or contradict each other."""
    day_first = month_first = False
    for value in values:
        if not isinstance(value, str):
            continue
        m = _XY_YEAR.fullmatch(_TIME_SUFFIX.sub("", value.strip()).strip())
        if not m:
            continue
        first, second = int(m.group(1)), int(m.group(2))
        day_first |= first > 12
        month_first |= second > 12
    if day_first != month_first:
        return "dmy" if day_first else "mdy"
    return None


# --- numbers and ids ---------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d+)?")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")
_EXCEL_SCIENTIFIC = re.compile(r"-?\d(?:\.\d+)?[eE]\+\d{1,3}")
_CURRENCY_MARKS = re.compile(r"(¥|￥|\$|€|£|元|RMB|CNY|USD|EUR|HKD)", re.IGNORECASE)


def parse_decimal(value: Any) -> Decimal | None:
    """One cell -> Decimal rounded to cents (None when empty). Understands "1,234.50", "¥1,200",
    "1.234,50", "1234,5", "(500)"; refuses numbers Excel wrote in scientific notation (digits are lost)."""
    if value is None or value == "":
        return None
    if type(value) is str and _PLAIN_NUMBER.fullmatch(value):  # most cells of a CSV: 1234.50
        return quantize(Decimal(value))
    if isinstance(value, bool):
        raise ValueError(_("“%(value)s” is not a number.") % {"value": value})
    if isinstance(value, int):
        return quantize(Decimal(value))
    if isinstance(value, float):
        return quantize(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return quantize(value)
    original = cell_text(value)
    text = _CURRENCY_MARKS.sub("", original)
    text = re.sub(r"[\s'\u00a0]", "", text)
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    if _SCIENTIFIC.fullmatch(text):
        raise ValueError(
            _(
                "“%(value)s” is in scientific notation: Excel damaged the number. "
                "Format the column as a number with all digits and export again."
            )
            % {"value": original}
        )
    if "," in text and "." in text:
        # The last separator is the decimal one: 1,234.50 (English) or 1.234,50 (European).
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text):
            text = text.replace(",", "")
        elif re.fullmatch(r"-?\d+,\d{1,2}", text):
            text = text.replace(",", ".")
    elif re.fullmatch(r"-?\d{1,3}(\.\d{3}){2,}", text):
        text = text.replace(".", "")
    try:
        result = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ValueError(_("“%(value)s” is not a number.") % {"value": original})
    if not result.is_finite():
        raise ValueError(_("“%(value)s” is not a number.") % {"value": original})
    return quantize(-result if negative else result)


def _damaged_id(value: Any) -> ValueError:
    return ValueError(
        _(
            "The id “%(value)s” was damaged by Excel (shown in scientific notation, digits lost). "
            "Format the column as text and export again."
        )
        % {"value": cell_text(value)}
    )


def parse_identifier(value: Any) -> str:
    """One cell -> an id string ("" when empty). An id that Excel turned into 1.23E+11, or a number too big
    to keep all its digits, is refused: the original id cannot be recovered from the file."""
    if type(value) is str:  # most cells
        text = value.strip()
        if _EXCEL_SCIENTIFIC.fullmatch(text):
            raise _damaged_id(value)
        return text
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if abs(value) >= 10**15:
            raise _damaged_id(value)
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        raise _damaged_id(value)
    if isinstance(value, datetime | date):
        return cell_text(value)
    text = str(value).strip()
    if _EXCEL_SCIENTIFIC.fullmatch(text):
        raise _damaged_id(value)
    return text
