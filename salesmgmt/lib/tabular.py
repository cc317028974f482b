"""Reading tabular files people export from Excel and CRMs: CSV (any of the ways Excel damages it), XLSX, XLS.

Everything here is plain Python (no models), so the parsing rules are tested without a database:

- `read_table` finds the format from the file's first bytes (not its name), decodes CSV as UTF-8 (with or
  without BOM), UTF-16 or GB18030 (a superset of GBK), picks the separator (`,` `;` tab `|`, or Excel's
  `sep=;` first line), drops empty rows and empty trailing columns, and keeps each row's number as the
  user sees it in Excel (the header is row 1).
- `parse_date`, `parse_decimal` and `parse_identifier` turn one cell into a value or raise `ValueError`
  with a message a manager understands.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from salesmgmt.lib.money import quantize

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DELIMITERS = (",", ";", "\t", "|")
# Excel's day 0 (it wrongly treats 1900 as a leap year, so serials from March 1900 on count from here).
EXCEL_EPOCH = date(1899, 12, 30)


class TabularError(Exception):
    """The file cannot be read at all (wrong format, damaged, empty). The message is for the user."""


@dataclass
class Row:
    number: int  # the row number Excel shows (header = 1)
    values: list


@dataclass
class Table:
    headers: list[str]
    rows: list[Row] = field(default_factory=list)
    format: str = "csv"
    encoding: str = ""
    delimiter: str = ""
    truncated: bool = False  # `limit` stopped the reading early

    def records(self):
        """(row number, {header: value}) for each data row."""
        for row in self.rows:
            yield row.number, dict(zip(self.headers, row.values, strict=False))


# --- reading -----------------------------------------------------------------------------


def read_table(data: bytes, filename: str = "", *, limit: int | None = None) -> Table:
    """Read the first sheet of a workbook or a CSV file into headers and rows.

    `limit` stops after that many data rows (the mapping page only needs a sample).
    Raises TabularError when the file cannot be read.
    """
    name = (filename or "").lower()
    if not data or not data.strip():
        raise TabularError(_("The file is empty."))
    if data.startswith(XLSX_MAGIC):
        table = _read_xlsx(data, limit)
    elif data.startswith(XLS_MAGIC):
        table = _read_xls(data, limit)
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
        table = _read_csv(data, limit)
    if not table.headers:
        raise TabularError(_("The file has no header row."))
    return table


def _finish(raw_rows, *, limit: int | None, first_number: int = 1) -> tuple[list[str], list[Row], bool]:
    """Headers from the first non-empty row; empty rows dropped; empty trailing columns dropped."""
    headers: list[str] | None = None
    rows: list[Row] = []
    truncated = False
    for offset, raw in enumerate(raw_rows):
        values = [clean_cell(v) for v in raw]
        if all(v is None for v in values):
            continue
        if headers is None:
            headers = [cell_text(v) for v in values]
            continue
        if limit is not None and len(rows) >= limit:
            truncated = True
            break
        rows.append(Row(first_number + offset, values))
    if headers is None:
        return [], [], False
    width = max([len(headers)] + [_last_filled(r.values) for r in rows])
    while width and not headers[width - 1] and all(len(r.values) < width or r.values[width - 1] is None for r in rows):
        width -= 1
    headers = _unique_headers(headers[:width] + [""] * (width - len(headers)))
    for row in rows:
        row.values = (row.values + [None] * width)[:width]
    return headers, rows, truncated


def _last_filled(values) -> int:
    for i in range(len(values) - 1, -1, -1):
        if values[i] is not None:
            return i + 1
    return 0


def _unique_headers(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for i, header in enumerate(headers):
        header = header or _("Column %(n)s") % {"n": column_letter(i)}
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
    if b"\x00" in data[:4096]:
        raise TabularError(_("The file is not a text (CSV) file, nor an Excel workbook."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("cp1252", errors="replace"), "cp1252"


def _read_csv(data: bytes, limit: int | None) -> Table:
    text, encoding = decode_text(data)
    first_number = 1
    delimiter = None
    first_line, _sep, rest = text.partition("\n")
    # Excel writes (and honours) a "sep=;" first line in CSVs meant for other locales.
    match = re.fullmatch(r"\s*sep=(.)\s*", first_line)
    if match:
        delimiter, text, first_number = match.group(1), rest, 2
    else:
        delimiter = _guess_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers, rows, truncated = _finish(reader, limit=limit, first_number=first_number)
    except csv.Error as exc:
        raise TabularError(_("The CSV file could not be read: %(error)s") % {"error": exc})
    return Table(headers, rows, "csv", encoding, delimiter, truncated)


def _guess_delimiter(text: str) -> str:
    """The separator that splits the header line into the most columns (csv.Sniffer guesses badly
    on files with few columns or with commas inside quoted amounts)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    best, best_count = ",", 1
    for candidate in DELIMITERS:
        try:
            count = len(next(csv.reader([header], delimiter=candidate)))
        except (csv.Error, StopIteration):
            continue
        if count > best_count:
            best, best_count = candidate, count
    return best


def _read_xlsx(data: bytes, limit: int | None) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TabularError(
            _("The file could not be read as an Excel workbook (.xlsx): it may be damaged. (%(error)s)")
            % {"error": exc}
        )
    try:
        if not workbook.worksheets:
            raise TabularError(_("The workbook has no sheet."))
        sheet = workbook.worksheets[0]
        headers, rows, truncated = _finish(sheet.iter_rows(values_only=True), limit=limit)
    finally:
        workbook.close()
    return Table(headers, rows, "xlsx", truncated=truncated)


def _read_xls(data: bytes, limit: int | None) -> Table:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct/assertion errors on damaged files
        raise TabularError(
            _("The file could not be read as an Excel 97-2003 workbook (.xls): it may be damaged. (%(error)s)")
            % {"error": exc}
        )

    def cells():
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

    headers, rows, truncated = _finish(cells(), limit=limit)
    book.release_resources()
    return Table(headers, rows, "xls", truncated=truncated)


# --- cells -------------------------------------------------------------------------------


def clean_cell(value):
    """Strip text, drop Excel's text markers (a leading apostrophe, ="00123"); empty -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.replace("\u00a0", " ").replace("\ufeff", "").strip()
        if text.startswith("'"):
            text = text[1:].strip()
        match = re.fullmatch(r'="(.*)"', text)
        if match:
            text = match.group(1).strip()
        return text or None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def cell_text(value) -> str:
    """A cell as the user would read it (for headers, previews and error messages)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value).strip()


def normalise(text) -> str:
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


class AmbiguousDate(ValueError):
    pass


def _excel_serial(number) -> date:
    if not 1 <= number < 100000:
        raise ValueError
    return EXCEL_EPOCH + timedelta(days=int(number))


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def parse_date(value, *, order: str = "auto") -> date | None:
    """One cell -> a date (None when empty). Raises ValueError (AmbiguousDate for 01/03/2017 with order
    "auto") with a message naming the bad value.

    Accepted: date/datetime cells, Excel serial numbers (42795), 2017-03-01, 2017/3/1, 2017.3.1,
    2017年3月1日, 20170301, 01/03/2017 and 03/01/2017 (by `order`: dmy or mdy; "auto" decides only when
    one part is above 12), 1-Mar-2017, Mar 1, 2017. A time part is ignored.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    bad = ValueError(_("“%(value)s” is not a date (use e.g. 2017-03-01).") % {"value": cell_text(value)})
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int | float):
        try:
            return _excel_serial(value)
        except ValueError:
            if isinstance(value, int) and _COMPACT.fullmatch(str(value)):
                return parse_date(str(value), order=order)
            raise bad
    text = _TIME_SUFFIX.sub("", str(value).strip()).strip()
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


def detect_date_order(values) -> str | None:
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

_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")
_EXCEL_SCIENTIFIC = re.compile(r"-?\d(?:\.\d+)?[eE]\+\d{1,3}")
_CURRENCY_MARKS = re.compile(r"(¥|￥|\$|€|£|元|RMB|CNY|USD|EUR|HKD)", re.IGNORECASE)


def parse_decimal(value) -> Decimal | None:
    """One cell -> Decimal rounded to cents (None when empty). Understands "1,234.50", "¥1,200",
    "1.234,50", "1234,5", "(500)"; refuses numbers Excel wrote in scientific notation (digits are lost)."""
    if value is None or value == "":
        return None
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


def parse_identifier(value) -> str:
    """One cell -> an id string ("" when empty). An id that Excel turned into 1.23E+11, or a number too big
    to keep all its digits, is refused: the original id cannot be recovered from the file."""
    if value is None:
        return ""
    damaged = ValueError(
        _(
            "The id “%(value)s” was damaged by Excel (shown in scientific notation, digits lost). "
            "Format the column as text and export again."
        )
        % {"value": cell_text(value)}
    )
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if abs(value) >= 10**15:
            raise damaged
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        raise damaged
    if isinstance(value, datetime | date):
        return cell_text(value)
    text = str(value).strip()
    if _EXCEL_SCIENTIFIC.fullmatch(text):
        raise damaged
    return text
