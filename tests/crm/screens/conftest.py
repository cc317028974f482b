"""Screens are tested through the Django test client, as each persona, on a frozen day.
The readers of their exports, `csv_ids` and `xlsx_ids`, are in tests/conftest.py."""

import pytest


@pytest.fixture(autouse=True)
def _frozen_day(screens_day):
    """Every test here runs at `SCREENS_DAY` (tests/conftest.py)."""
