"""The API tests: through the REST framework's test client, as each persona, on a frozen day.
The `deals` they share, `results` and `ids` are in tests/conftest.py."""

import pytest


@pytest.fixture(autouse=True)
def _frozen_today(api_day):
    """Every test here runs on `API_DAY` (tests/conftest.py)."""
