"""Screens are tested through the Django test client, as each persona, on a frozen day."""

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

TODAY = datetime(2026, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def _frozen_day(time_machine):
    time_machine.move_to(TODAY, tick=False)


def csv_ids(response) -> set[int]:
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    return {int(row[0]) for row in rows[1:]}


def xlsx_ids(response) -> set[int]:
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    return {int(row[0]) for row in rows[1:]}
