"""The funnel and win rates on a small hand-built history, against a plain-Python replay; and the scope."""

import statistics
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pipeline.analytics import BY_OWNER, funnel, median_of_histogram, previous_period, win_rates
from pipeline.services import opportunity_move_stage
from tests.factories import make_deal

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 5, 9, 0, tzinfo=TZ)

# Per deal: owner attribute of `org`, days after START it was created, then (stage index, days after creation).
# Stage indexes of the default pipeline: 0 Needs confirmed .. 3 Contract signing, 4 Won, 5 Lost.
HISTORIES = [
    ("rep", 0, [(1, 3), (2, 10), (3, 11), (4, 30)]),
    ("rep", 1, [(1, 5), (5, 6)]),
    ("rep", 2, [(1, 2), (2, 9), (4, 12)]),
    ("rep_same_team", 3, [(5, 4)]),
    ("rep_same_team", 4, [(1, 7), (2, 8), (3, 20), (5, 21)]),
    ("rep_js", 5, []),
    ("rep_js", 6, [(1, 1)]),
    ("rep_js", 7, [(1, 4), (2, 5), (3, 6), (4, 40)]),
    ("rep_other", 8, [(1, 2), (2, 3), (4, 9)]),
    ("rep", 60, [(1, 1)]),  # created after the cohort's dates
]


@pytest.fixture
def history(org):
    stages = org.stages
    deals = []
    for who, created, moves in HISTORIES:
        owner = getattr(org, who)
        created_at = START + timedelta(days=created)
        deal = make_deal(owner=owner, amount=str(1000 * (len(deals) + 1)), created_at=created_at)
        for index, after in moves:
            stage = stages[index]
            at = created_at + timedelta(days=after)
            deal = opportunity_move_stage(
                opportunity=deal,
                stage=stage,
                actor=owner,
                evidence="seen",
                lost_reason="price" if stage.is_lost else "",
                closed_on=at.date() if stage.is_closed else None,
                at=at,
            )
        deals.append(deal)
    return deals


def replay(owners):
    """Reached per stage index and the days of each completed stay, from HISTORIES alone."""
    reached, stays = [0] * 5, {i: [] for i in range(4)}
    for who, created, moves in HISTORIES:
        if who not in owners or created > 30:
            continue
        path = [(0, 0), *moves]
        top = max(i for i, _ in path if i != 5)
        for i in range(top + 1):
            reached[i] += 1
        for (stage, at), (_next, left) in zip(path, path[1:], strict=False):
            if stage < 4:
                entered = (START + timedelta(days=created + at)).date()
                stays[stage].append(((START + timedelta(days=created + left)).date() - entered).days)
    return reached, stays


@pytest.mark.parametrize(
    ("role", "owners"),
    [
        ("director", {"rep", "rep_same_team", "rep_js", "rep_other"}),
        ("manager", {"rep", "rep_same_team", "rep_js"}),
        ("rep", {"rep"}),
    ],
)
def test_funnel_equals_a_replay_of_the_history(org, history, role, owners):
    result = funnel(getattr(org, role), date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))
    reached, stays = replay(owners)
    assert [f.reached for f in result.stages] == reached
    assert [f.stage.pk for f in result.stages] == [s.pk for s in org.stages[:5]]
    for i, f in enumerate(result.stages[:4]):
        assert f.stays == len(stays[i])
        assert f.median_days == (Decimal(str(statistics.median(stays[i]))) if stays[i] else None)
        nxt = reached[i + 1]
        assert f.conversion == (round(Decimal(nxt * 100) / reached[i], 1) if reached[i] else None)
    assert result.win_conversion == round(Decimal(reached[4] * 100) / reached[0], 1)


def test_funnel_of_a_region_narrows_to_its_subtree(org, history):
    whole = funnel(org.director, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31), region=org.js)
    assert [f.reached for f in whole.stages] == replay({"rep_js"})[0]


def test_win_rates_per_rep_and_month(org, history):
    rows = win_rates(org.manager, date_from=date(2026, 1, 1), date_to=date(2026, 3, 31), by=BY_OWNER, period="month")
    got = {(r.label, r.period.number): (r.won, r.lost, r.median_cycle_days) for r in rows}
    expected = {}
    for who, created, moves in HISTORIES:
        if who == "rep_other" or not moves or moves[-1][0] < 4:
            continue
        closed = (START + timedelta(days=created + moves[-1][1])).date()
        owner = str(getattr(org, who))
        won, lost, cycles = expected.get((owner, closed.month), (0, 0, []))
        if moves[-1][0] == 4:
            won, cycles = won + 1, [*cycles, moves[-1][1]]
        else:
            lost += 1
        expected[(owner, closed.month)] = (won, lost, cycles)
    assert got == {
        key: (won, lost, Decimal(str(statistics.median(c))) if c else None) for key, (won, lost, c) in expected.items()
    }


def test_median_of_a_histogram_matches_statistics():
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert median_of_histogram(counts) == Decimal(str(statistics.median(values)))
    assert median_of_histogram({7: 3}) == 7
    assert median_of_histogram({}) is None


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 4, 1), date(2026, 6, 30), (date(2026, 1, 1), date(2026, 3, 31))),  # a quarter
        (date(2026, 1, 1), date(2026, 1, 31), (date(2025, 12, 1), date(2025, 12, 31))),  # a month, across a year
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),  # into a short month
        (date(2027, 4, 1), date(2028, 3, 31), (date(2026, 4, 1), date(2027, 3, 31))),  # a fiscal year
        (date(2026, 6, 8), date(2026, 6, 14), (date(2026, 6, 1), date(2026, 6, 7))),  # a week: days back
    ],
)
def test_previous_period_of_equal_kind(start, end, expected):
    assert previous_period(start, end) == expected
