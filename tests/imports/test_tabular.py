"""Reading what Excel and CRMs export: pure functions, no database."""

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook

from salesmgmt.lib.tabular import (
    AmbiguousDate,
    TabularError,
    detect_date_order,
    normalise,
    parse_date,
    parse_decimal,
    parse_identifier,
    read_table,
)
from tests.imports.conftest import csv_bytes


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
