"""One deal (and its customer) per rep of the persona company, closing on known dates."""

from datetime import date

import pytest
import time_machine

from tests.factories import make_deal

TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def _frozen_today():
    # Stage moves stamp closed_on with today; freeze it so dates in assertions are stable.
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def deals(org):
    return {
        "rep": make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 30)),
        "rep_sh2": make_deal(owner=org.rep_same_team, amount="2000", close=date(2026, 7, 15)),
        "rep_js": make_deal(owner=org.rep_js, amount="3000", close=date(2026, 6, 1)),
        "rep_other": make_deal(owner=org.rep_other, amount="4000", close=date(2026, 8, 31)),
    }


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[int]:
    return {row["id"] for row in results(response)}
