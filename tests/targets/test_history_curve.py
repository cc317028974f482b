"""Splits by history where a leaf's own history is thin: the leaf follows its team's or the company's
curve (`weights.HISTORY_DENSE_SHARE`), every part says where its weight came from, and the bulk split
gives the same cents in SQL and in Python, on SQLite and on PostgreSQL."""

import hashlib
import random
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.models import Role
from salesmgmt.lib import allocation
from targets.models import TargetNode
from targets.planning import splits
from targets.planning.selectors import unbalanced_nodes
from targets.planning.weights import HISTORY_DENSE_SHARE, SOURCE_OWN, follow_curves, is_dense
from targets.services import (
    target_split,
    target_split_leaves,
    target_split_leaves_preview,
    target_split_preview,
)
from tests.factories import UserFactory, make_deal
from tests.targets.conftest import by_region, sql_split_statements

MONTHS = [f"FY2027-M{m:02d}" for m in range(1, 13)]


def won(org):
    return next(s for s in org.stages if s.is_won)


def deals(org, owner, by_month: dict):
    """Won deals of FY2026 (the fiscal year is the calendar year): {month: amount}."""
    for month, amount in by_month.items():
        make_deal(owner=owner, amount=str(amount), stage=won(org), close=date(2026, month, 15))


def rep_leaf(plan, org, rep):
    """The plan split by region, East by province, Shanghai by rep: the rep's FY2027 target."""
    root = plan.nodes.get()
    east = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    provinces = by_region(
        target_split(node=east[org.east.pk], dimension="region", method="equal", actor=org.director).children
    )
    reps = target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.director).children
    return next(n for n in reps if n.rep_id == rep.pk)


# Shanghai's other rep sells every month, more towards the year end.
TEAM = {m: 100 * m for m in range(1, 13)}


def test_a_rep_with_two_months_of_history_follows_the_teams_curve(plan, org):
    deals(org, org.rep, {3: 5000, 10: 7000})
    deals(org, org.rep_same_team, TEAM)
    leaf = rep_leaf(plan, org, org.rep)  # 150,000.00
    preview = target_split_preview(node=leaf, dimension="month", method="history", actor=org.director)
    amounts = [c.amount for c in preview.children]
    assert all(amounts) and sum(amounts) == leaf.amount == Decimal("150000")
    # Shanghai's curve: the rep's 12,000 and his colleague's 7,800 (100 x month).
    team = [TEAM[m] + {3: 5000, 10: 7000}.get(m, 0) for m in range(1, 13)]
    assert amounts == allocation.largest_remainder(leaf.amount, team)
    assert {(c.source, c.source_label) for c in preview.children} == {("region", "curve of Shanghai")}
    assert preview.warnings == [
        f"“{leaf.label}” had history in only 2 of its 12 parts last year; it follows the curve of Shanghai."
    ]


def test_a_rep_with_dense_history_keeps_his_own_curve(plan, org):
    own = {m: 1000 + m for m in range(1, 13) if m not in (4, 8)}  # 10 of 12 months: dense
    deals(org, org.rep, own)
    deals(org, org.rep_same_team, TEAM)
    preview = target_split_preview(
        node=rep_leaf(plan, org, org.rep), dimension="month", method="history", actor=org.director
    )
    parts = {c.key: c for c in preview.children}
    assert sum(c.amount for c in parts.values()) == Decimal("150000")
    assert {k for k, c in parts.items() if c.source == SOURCE_OWN} == {MONTHS[m - 1] for m in own}
    # The months he kept his own weights: his own proportions.
    assert parts["FY2027-M12"].weight / parts["FY2027-M01"].weight == Decimal(1012) / Decimal(1001)
    # April and August: the share Shanghai's curve gives them, scaled to his months, not nothing.
    holes = [parts["FY2027-M04"], parts["FY2027-M08"]]
    assert [c.source_label for c in holes] == ["curve of Shanghai", "curve of Shanghai"]
    team_total_on_his_months = sum(TEAM[m] + own[m] for m in own)
    for c, month in zip(holes, (4, 8), strict=True):
        assert c.weight == (Decimal(TEAM[month]) * sum(own.values()) / team_total_on_his_months).quantize(
            Decimal("0.01")
        )
        assert c.amount > 0
    assert preview.warnings == ["2 parts had nothing of their own last year and take their share from the curve above."]


def test_no_history_anywhere_splits_equally_with_a_warning(plan, org):
    leaf = rep_leaf(plan, org, org.rep)
    preview = target_split_preview(node=leaf, dimension="month", method="history", actor=org.director)
    assert [c.amount for c in preview.children] == [Decimal("12500")] * 12
    assert {(c.source, c.source_label) for c in preview.children} == {("equal", "equal (no history)")}
    assert preview.warnings == [
        f"There is no history for “{leaf.label}” in the same period last year; it was split equally."
    ]


def test_the_company_curve_when_the_team_is_thin_too(plan, org):
    deals(org, org.rep, {3: 5000})
    deals(org, org.rep_other, TEAM)  # Beijing sells every month; Shanghai and East only in March
    preview = target_split_preview(
        node=rep_leaf(plan, org, org.rep), dimension="month", method="history", actor=org.director
    )
    assert all(c.amount for c in preview.children)
    assert {(c.source, c.source_label) for c in preview.children} == {("company", "company curve")}


# --- the math, without a database ----------------------------------------------------------------

curves = st.lists(st.integers(min_value=0, max_value=10**9), min_size=12, max_size=12)


@settings(max_examples=200, deadline=None)
@given(own=curves, extra=curves, total=st.integers(min_value=0, max_value=10**11))
def test_a_leaf_gets_nothing_only_where_the_curve_above_has_nothing(own, extra, total):
    """The team's curve contains the rep's (his deals are the team's): a part is zero only where the team's
    is, and the parts add up exactly to the leaf, whichever curve it follows."""
    mine = [Decimal(x).scaleb(-2) for x in own]
    team = [m + Decimal(x).scaleb(-2) for m, x in zip(mine, extra, strict=True)]
    weights, sources, base = follow_curves([(mine, "own", None), (team, "region", 7)])
    assert base == (0 if is_dense(mine) else 1)
    if any(team):
        assert [w > 0 for w in weights] == [t > 0 for t in team]
        assert all((kind == "own") == (base == 0 and m > 0) for (kind, _r), m in zip(sources, mine, strict=True))
    else:
        assert weights == [Decimal(1)] * 12 and {k for k, _r in sources} == {"equal"}
    amount = Decimal(total).scaleb(-2)
    parts = allocation.largest_remainder(amount, weights)
    assert sum(parts) == amount and min(parts) >= 0


def test_dense_means_three_quarters_of_the_parts():
    assert Fraction(3, 4) == HISTORY_DENSE_SHARE
    assert is_dense([1] * 9 + [0] * 3) and not is_dense([1] * 8 + [0] * 4)
    assert is_dense([1, 1, 1, 0]) and not is_dense([1, 1, 0, 0]) and not is_dense([])


# --- many leaves at once --------------------------------------------------------------------------

REPS = 24


@pytest.fixture
def many_reps(org):
    """24 more Shanghai reps with 1 to 11 months of history each (seeded), and Shanghai selling every month."""
    rng = random.Random(10)
    reps = [UserFactory(username=f"sh-rep-{i:02d}", role=Role.REP, region=org.sh) for i in range(REPS)]
    for rep in reps:
        months = rng.sample(range(1, 13), rng.randint(1, 11))
        deals(org, rep, {m: Decimal(rng.randrange(1_00, 99_999_99)).scaleb(-2) for m in months})
    deals(org, org.rep_same_team, TEAM)
    return reps


def bulk_months(plan, org, *, sql: bool, monkeypatch):
    if not sql:
        monkeypatch.setattr(splits, "SPLIT_LEAVES_IN_SQL", False)
    root = plan.nodes.get()
    east = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    provinces = by_region(
        target_split(node=east[org.east.pk], dimension="region", method="equal", actor=org.director).children
    )
    sh = provinces[org.sh.pk]
    target_split(node=sh, dimension="rep", method="equal", actor=org.director)
    with CaptureQueriesContext(connection) as queries:
        result = target_split_leaves(node=sh, dimension="month", method="history", actor=org.director)
    assert len(sql_split_statements(queries)) == (1 if sql else 0)
    months = {
        (n.rep.username, n.period_key): n.amount
        for n in TargetNode.objects.filter(plan=plan, period_kind="month").select_related("rep")
    }
    return sh, result, months


def digest(months: dict) -> str:
    return hashlib.sha256(repr(sorted((k, str(v)) for k, v in months.items())).encode()).hexdigest()[:16]


# The cents of the bulk split below, the same on SQLite and PostgreSQL and by SQL or Python.
MANY_REPS_DIGEST = "6e1672d3f343557a"


@pytest.mark.parametrize("sql", [True, False], ids=["sql", "python"])
def test_bulk_split_of_many_leaves_has_no_empty_month_where_the_team_sold(plan, org, many_reps, sql, monkeypatch):
    sh, result, months = bulk_months(plan, org, sql=sql, monkeypatch=monkeypatch)
    reps = REPS + 2  # and Shanghai's own two
    assert result.leaves == reps and len(months) == reps * 12
    # Shanghai sold every month last year: no rep's month is left empty.
    assert sum(1 for amount in months.values() if amount == 0) == 0
    assert not unbalanced_nodes(plan).exists()
    assert sum(months.values()) == sh.amount
    sparse = sum(1 for rep in [*many_reps, org.rep] if not _dense_last_year(rep))
    assert sparse and result.warnings[0] == (
        f"{sparse} targets had too little history of their own; they follow their team's or the company's curve."
    )
    assert digest(months) == MANY_REPS_DIGEST


def _dense_last_year(rep) -> bool:
    from pipeline.models import Opportunity

    months = {d.month for d in Opportunity.objects.won().filter(owner=rep).values_list("closed_on", flat=True)}
    return len(months) * 4 >= 12 * 3


def test_the_bulk_preview_lists_every_part_of_every_leaf_as_the_split_writes_it(plan, org, many_reps):
    root = plan.nodes.get()
    east = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    sh = by_region(
        target_split(node=east[org.east.pk], dimension="region", method="equal", actor=org.director).children
    )[org.sh.pk]
    target_split(node=sh, dimension="rep", method="equal", actor=org.director)
    pages, offset = [], 0
    while True:
        page = target_split_leaves_preview(
            node=sh, dimension="month", method="history", offset=offset, limit=10, actor=org.director
        )
        pages.append(page)
        offset += 10
        if offset >= page.leaf_count:
            break
    assert [len(p.leaves) for p in pages] == [10, 10, 6] and pages[0].part_count == 26 * 12
    shown = {(lp.leaf.rep.username, c.key): c for p in pages for lp in p.leaves for c in lp.children}
    assert len(shown) == 26 * 12 and all(c.source_label for c in shown.values())
    assert sum(pages[0].sources.values()) == 26 * 12
    assert set(pages[0].sources) <= {"own history", "curve of Shanghai"}
    assert TargetNode.objects.filter(plan=plan, period_kind="month").count() == 0  # a preview writes nothing
    target_split_leaves(node=sh, dimension="month", method="history", actor=org.director)
    written = {
        (n.rep.username, n.period_key): n.amount
        for n in TargetNode.objects.filter(plan=plan, period_kind="month").select_related("rep")
    }
    assert {k: c.amount for k, c in shown.items()} == written
