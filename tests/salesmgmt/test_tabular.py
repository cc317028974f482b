"""Reading what Excel and CRMs export: pure functions, no database."""

import io
import zipfile
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from openpyxl import Workbook

from salesmgmt.lib.tabular import (
    AmbiguousDate,
    LimitExceeded,
    Limits,
    TabularError,
    detect_date_order,
    normalise,
    parse_date,
    parse_decimal,
    parse_identifier,
    read_table,
)
from tests.conftest import csv_bytes
from tests.datasets import DATA


@pytest.mark.parametrize(
    ("value", "order", "expected"),
    [
        ("2017-03-01", "auto", date(2017, 3, 1)),
        ("2017/3/1", "auto", date(2017, 3, 1)),
        ("2017.03.01", "auto", date(2017, 3, 1)),
        ("2017年3月1日", "auto", date(2017, 3, 1)),
        ("20170301", "auto", date(2017, 3, 1)),
        ("2017-03-01 00:00:00", "auto", date(2017, 3, 1)),
        ("42795", "auto", date(2017, 3, 1)),
        (42795, "auto", date(2017, 3, 1)),
        (42795.0, "auto", date(2017, 3, 1)),
        (datetime(2017, 3, 1, 15, 30), "auto", date(2017, 3, 1)),
        ("01/03/2017", "dmy", date(2017, 3, 1)),
        ("01/03/2017", "mdy", date(2017, 1, 3)),
        ("25/12/2017", "auto", date(2017, 12, 25)),
        ("12/25/2017", "auto", date(2017, 12, 25)),
        ("1-Mar-2017", "auto", date(2017, 3, 1)),
        (None, "auto", None),
        ("", "auto", None),
    ],
)
def test_parse_date_formats(value, order, expected):
    assert parse_date(value, order=order) == expected


def test_ambiguous_date_says_both_readings():
    with pytest.raises(AmbiguousDate) as err:
        parse_date("01/03/2017")
    assert "2017-03-01" in str(err.value) and "2017-01-03" in str(err.value)


@pytest.mark.parametrize("value", ["2017-02-30", "hello", "31/31/2017", "2017-13-01", True])
def test_bad_dates_name_the_value(value):
    with pytest.raises(ValueError) as err:
        parse_date(value, order="dmy")
    assert str(value) in str(err.value)


def test_date_order_is_decided_by_the_whole_column():
    assert detect_date_order(["01/03/2017", "25/03/2017"]) == "dmy"
    assert detect_date_order(["01/03/2017", "03/25/2017"]) == "mdy"
    assert detect_date_order(["01/03/2017", "02/03/2017"]) is None
    assert detect_date_order(["25/03/2017", "03/25/2017"]) is None  # contradictory: left to each value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,234.50", Decimal("1234.50")),
        ("¥1,200", Decimal("1200.00")),
        ("￥ 1,200.5", Decimal("1200.50")),
        ("1.234,50", Decimal("1234.50")),
        ("1234,5", Decimal("1234.50")),
        ("1.234.567", Decimal("1234567.00")),
        ("(500)", Decimal("-500.00")),
        ("3,000元", Decimal("3000.00")),
        (1054, Decimal("1054.00")),
        (0.1 + 0.2, Decimal("0.30")),
        ("", None),
    ],
)
def test_parse_decimal(value, expected):
    assert parse_decimal(value) == expected


@pytest.mark.parametrize("value", ["1.23E+11", "abc", "1,2345", "NaN"])
def test_bad_amounts(value):
    with pytest.raises(ValueError):
        parse_decimal(value)


def test_identifiers():
    assert parse_identifier("1C1I7A6R") == "1C1I7A6R"
    assert parse_identifier(123456.0) == "123456"
    assert parse_identifier(None) == ""
    for damaged in ("1.23E+11", "1E+15", 1.2345678901234567e19):
        with pytest.raises(ValueError) as err:
            parse_identifier(damaged)
        assert "scientific notation" in str(err.value)


def test_normalise_ignores_case_spaces_and_width():
    assert normalise("GTXPro") == normalise("GTX Pro") == normalise("ｇｔｘ　pro")
    assert normalise("Sales_Agent") == normalise("sales agent")


def test_excel_damaged_csv_gbk_semicolons_bom_trailing_blanks():
    rows = [
        ["商机编号", "客户", "金额", "", ""],
        ["'00123", "华信科技", "1,234.50", "", ""],
        ["", "", "", "", ""],
        ['="0042"', "天成集团", "￥1,200", "", ""],
        ["", "", "", "", ""],
        ["", "", "", "", ""],
    ]
    for encoding, prefix in (("gbk", b""), ("utf-8", b"\xef\xbb\xbf")):
        table = read_table(prefix + csv_bytes(rows, delimiter=";", encoding=encoding), "export.csv")
        assert table.headers == ["商机编号", "客户", "金额"]
        assert table.delimiter == ";"
        assert [r.number for r in table.rows] == [2, 4]  # the blank row 3 is skipped, numbering kept
        assert [r.values for r in table.rows] == [["00123", "华信科技", "1,234.50"], ["0042", "天成集团", "￥1,200"]]


def test_excel_sep_line_and_tabs():
    table = read_table(b"sep=|\r\na|b\r\n1|2\r\n", "x.csv")
    assert table.headers == ["a", "b"] and table.rows[0].number == 3 and table.rows[0].values == ["1", "2"]
    table = read_table("a\tb\r\n1\t2\r\n".encode("utf-16"), "x.txt")
    assert table.headers == ["a", "b"] and table.rows[0].values == ["1", "2"]


def test_xlsx_keeps_cell_types():
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "date", "amount"])
    ws.append([12345, datetime(2017, 3, 1), 1234.5])
    ws.append([None, None, None])
    buffer = io.BytesIO()
    wb.save(buffer)
    table = read_table(buffer.getvalue(), "deals.xlsx")
    assert table.format == "xlsx"
    assert table.rows[0].values == [12345, datetime(2017, 3, 1), 1234.5]
    assert len(table.rows) == 1


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00garbage" * 100, "old.xls", "97-2003"),
        (b"id,amount\r\n1,2\r\n", "renamed.xls", "renamed"),
        (b"PK\x03\x04 not really a zip", "broken.xlsx", "damaged"),
        (b"", "empty.csv", "empty"),
    ],
)
def test_unreadable_files_are_refused_with_a_message(data, name, message):
    with pytest.raises(TabularError) as err:
        read_table(data, name)
    assert message in str(err.value)


# --- ragged rows (issue 10) ----------------------------------------------------------------


def test_a_row_split_by_an_unquoted_thousands_separator_is_a_row_problem_not_a_crash():
    table = read_table(b"name,amount\r\nDeal A,1,234.50\r\nDeal B,200\r\nDeal C,1,234,567.00\r\n", "d.csv")
    assert table.headers == ["name", "amount"]
    first, second, third = table.rows
    assert first.values == ["Deal A", "1"]  # the header's cells, the extra one dropped
    assert first.problem.startswith("Row 2 has 3 cells but the header has 2")
    assert "“1,234.50”" in first.problem and "thousands separator" in first.problem
    assert (second.values, second.problem) == (["Deal B", "200"], "")
    assert "“1,234,567.00”" in third.problem and third.problem.startswith("Row 4 has 4 cells")


def test_a_row_with_an_extra_value_names_the_separator():
    table = read_table(b"name;amount\r\nDeal A;100;extra\r\n", "d.csv")
    problem = table.rows[0].problem
    assert problem.startswith("Row 2 has 3 cells but the header has 2") and "“;”" in problem
    assert "thousands" not in problem


def test_short_rows_trailing_separators_and_unnamed_columns_are_read():
    # Excel leaves out trailing separators: missing cells are empty; empty extra cells are no problem.
    table = read_table(b"name,amount,notes\r\nDeal A\r\nDeal B,2,,,\r\n", "d.csv")
    assert [(r.values, r.problem) for r in table.rows] == [(["Deal A", None, None], ""), (["Deal B", "2", None], "")]
    # The header's own empty cell is a column: a value under it is in its place.
    table = read_table(b"name,amount,\r\nDeal A,1,memo\r\n", "d.csv")
    assert table.headers == ["name", "amount", "Column C"] and table.rows[0].problem == ""


def test_widen_reads_a_ragged_row_like_a_spreadsheet_row():
    table = read_table(b"marker,1\r\nkey,a,b,c\r\n", "d.csv", ragged="widen")
    assert table.headers == ["marker", "1", "Column C", "Column D"]
    assert table.rows[0].values == ["key", "a", "b", "c"] and table.rows[0].problem == ""


# --- limits, checked while reading (issue 10) ------------------------------------------------


class CountingReader(io.BytesIO):
    """A binary file that records how far it was read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.furthest = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return chunk

    def read1(self, size=-1):
        chunk = super().read1(size)
        self.furthest = max(self.furthest, self.tell())
        return chunk

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.furthest = max(self.furthest, self.tell())
        return n


def big_csv(rows: int) -> bytes:
    return b"name,amount\r\n" + b"".join(b"Deal %d,%d\r\n" % (i, i) for i in range(rows))


def test_a_csv_over_the_row_limit_is_refused_after_reading_just_past_the_limit():
    data = big_csv(50_000)  # ~800 KB
    source = CountingReader(data)
    with pytest.raises(LimitExceeded) as err:
        read_table(source, "big.csv", limits=Limits(max_rows=100))
    assert (err.value.limit, err.value.maximum) == ("rows", 100)
    assert str(err.value) == "The file has more than 100 rows; split it."
    assert source.furthest < len(data) // 5  # stopped early: the rest of the file was never read
    # Exactly at the limit it is read whole.
    assert len(read_table(big_csv(100), "ok.csv", limits=Limits(max_rows=100)).rows) == 100


def test_a_sample_read_counts_the_rest_of_a_csv_only_when_asked():
    data = big_csv(500)
    sample = read_table(data, "big.csv", limit=3, limits=Limits(max_rows=100))
    assert len(sample.rows) == 3 and sample.truncated
    with pytest.raises(LimitExceeded):
        read_table(data, "big.csv", limit=3, limits=Limits(max_rows=100), count_all=True)
    assert read_table(data, "big.csv", limit=3, limits=Limits(max_rows=500), count_all=True).rows_read == 500


def test_the_column_limit_counts_up_to_the_last_filled_cell_of_any_row():
    with pytest.raises(LimitExceeded) as err:
        read_table(b"a,b,c,d,e,f\r\n1,2,3,4,5,6\r\n", "wide.csv", limits=Limits(max_columns=5))
    assert err.value.limit == "columns" and "more than 5 columns" in str(err.value)
    assert read_table(b"a,b,c,d,e,,,,\r\n1,2,3,4,5,,,\r\n", "ok.csv", limits=Limits(max_columns=5)).headers == [
        "a",
        "b",
        "c",
        "d",
        "e",
    ]
    with pytest.raises(LimitExceeded):  # a data row wider than the limit, in a file read like a sheet
        read_table(b"a,b\r\n1,2,3,4,5,6\r\n", "wide.csv", limits=Limits(max_columns=5), ragged="widen")


def test_the_byte_limit_is_checked_before_anything_is_parsed():
    source = CountingReader(big_csv(1000))
    with pytest.raises(LimitExceeded) as err:
        read_table(source, "big.csv", limits=Limits(max_bytes=1000))
    assert err.value.limit == "bytes" and "larger than 1000" in str(err.value)
    assert source.furthest <= 4096  # only the first bytes, to tell the format


def test_check_headers_runs_before_any_data_row():
    seen = []

    def refuse(headers):
        seen.append(headers)
        raise ValueError("unmapped")

    source = CountingReader(big_csv(50_000))
    with pytest.raises(ValueError, match="unmapped"):
        read_table(source, "big.csv", check_headers=refuse)
    assert seen == [["name", "amount"]] and source.furthest < 100_000


def test_a_late_gbk_row_restarts_the_decoding_as_gb18030():
    data = big_csv(10_000) + "Deal 华信,1\r\n".encode("gbk")  # the first non-UTF-8 byte ~150 KB in
    table = read_table(data, "late.csv")
    assert table.encoding == "gb18030" and table.rows[-1].values == ["Deal 华信", "1"]


def xlsx_bytes(rows: int, *, write_only: bool, width: int = 2) -> bytes:
    wb = Workbook(write_only=write_only)
    ws = wb.create_sheet() if write_only else wb.active
    ws.append([f"h{c}" for c in range(width)])
    for i in range(rows):
        ws.append([f"Deal {i}", *range(width - 1)])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def no_workbook_load(monkeypatch):
    """Fails the test if the workbook is loaded: a file refused by its size must not be."""

    def fail(*args, **kwargs):
        raise AssertionError("the workbook was loaded")

    monkeypatch.setattr("openpyxl.load_workbook", fail)
    monkeypatch.setattr("python_calamine.CalamineWorkbook.from_filelike", fail)


@pytest.mark.parametrize("write_only", [False, True], ids=["declared-dimension", "no-dimension"])
def test_an_xlsx_over_the_row_limit_is_refused_before_it_is_loaded(write_only, no_workbook_load):
    with pytest.raises(LimitExceeded) as err:
        read_table(xlsx_bytes(150, write_only=write_only), "big.xlsx", limits=Limits(max_rows=100))
    assert err.value.limit == "rows" and "more than 100 rows" in str(err.value)


def test_an_xlsx_over_the_column_limit_is_refused_by_its_declared_dimension(no_workbook_load):
    with pytest.raises(LimitExceeded) as err:
        read_table(xlsx_bytes(3, write_only=False, width=8), "wide.xlsx", limits=Limits(max_columns=5))
    assert err.value.limit == "columns"


def test_an_xlsx_within_the_limits_reads_rows_past_an_understated_dimension():
    data = xlsx_bytes(5, write_only=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:B6"' in content
                content = content.replace(b'<dimension ref="A1:B6"', b'<dimension ref="A1:B2"')
            target.writestr(item, content)
    table = read_table(buffer.getvalue(), "understated.xlsx", limits=Limits(max_rows=5))
    assert [r.values[0] for r in table.rows] == [f"Deal {i}" for i in range(5)]
    with pytest.raises(LimitExceeded):  # the rows past the declared size still count
        read_table(buffer.getvalue(), "understated.xlsx", limits=Limits(max_rows=4))


def test_an_xls_over_the_limits_is_refused():
    data = (DATA / "deals.xls").read_bytes()
    assert len(read_table(data, "deals.xls").rows) == 2
    with pytest.raises(LimitExceeded, match="more than 1 rows"):
        read_table(data, "deals.xls", limits=Limits(max_rows=1))
    with pytest.raises(LimitExceeded, match="more than 2 columns"):
        read_table(data, "deals.xls", limits=Limits(max_columns=2))


def test_a_split_number_is_found_even_when_it_only_pushed_empty_cells_along():
    # The notes column is empty: the split moves "234.50" into it and the empty notes past the header.
    table = read_table(b"id,amount,notes\r\nA,1,234.50,\r\nB,2,\r\n", "d.csv")
    assert "“1,234.50”" in table.rows[0].problem and table.rows[0].values == ["A", "1", "234.50"]
    assert table.rows[1].problem == ""  # a separator at the end of the line, nothing split


def rich_workbook(*, error_cell: bool = False) -> bytes:
    """What people's workbooks hold: a blank first row and column, dates with and without a time, numbers with
    many decimals, whole numbers, big ones, empty cells, Chinese text, padded text, Excel's text markers,
    booleans, times and durations."""
    wb = Workbook()
    ws = wb.active
    ws.append([])
    rows = [
        ["编号", "客户", "日期", "时间", "金额", "数量", "备注", "是否"],
        ["0012", "华信科技（上海）有限公司", date(2024, 2, 29), datetime(2024, 3, 1, 13, 5, 7), 1234.5678901234, 3],
        [None, "  Acme Ltd ", datetime(2025, 12, 31), time(9, 30), 0.123456789012345, 12345678901234, "'00123"],
        [],
        [987654321, "远航物流", date(1999, 1, 1), timedelta(days=1, hours=2), -42.005, 1e20, '="00042"', True],
        ["X-9", None, None, None, None, None, None, False],
    ]
    for row in rows:
        ws.append([None, *row])
    if error_cell:
        ws["H4"] = "#N/A"
        ws["H4"].data_type = "e"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_calamine_and_openpyxl_read_the_same_values():
    data = rich_workbook()
    fast = read_table(data, "rich.xlsx", xlsx_reader="calamine")
    slow = read_table(data, "rich.xlsx", xlsx_reader="openpyxl")
    assert fast.headers == slow.headers == ["Column A", "编号", "客户", "日期", "时间", "金额", "数量", "备注", "是否"]
    assert [(r.number, r.values) for r in fast.rows] == [(r.number, r.values) for r in slow.rows]
    assert [r.number for r in fast.rows] == [3, 4, 6, 7]
    assert fast.rows[0].values == [
        None,
        "0012",
        "华信科技（上海）有限公司",
        datetime(2024, 2, 29),
        datetime(2024, 3, 1, 13, 5, 7),
        1234.5678901234,
        3,
        None,
        None,
    ]
    assert fast.rows[1].values[2:8] == [
        "Acme Ltd",
        datetime(2025, 12, 31),
        time(9, 30),
        0.123456789012345,
        12345678901234,
        "00123",
    ]
    # ="00042" is a formula to openpyxl's writer: without a value computed by Excel, both read an empty cell.
    assert fast.rows[2].values[4:9] == [timedelta(days=1, hours=2), -42.005, 1e20, None, True]
    assert parse_decimal(fast.rows[0].values[5]) == Decimal("1234.57")
    assert parse_decimal(fast.rows[1].values[5]) == Decimal("0.12")


def test_a_workbook_with_error_cells_keeps_them_as_text():
    """calamine reads #N/A as an empty cell: such a workbook is read by openpyxl, so an amount of #N/A is a row
    error, never an empty amount (which an open deal would import as zero)."""
    data = rich_workbook(error_cell=True)
    table = read_table(data, "errors.xlsx")
    assert table.rows[1].values[7] == "#N/A"
    assert [r.values for r in table.rows] == [r.values for r in read_table(data, "e.xlsx", xlsx_reader="openpyxl").rows]
