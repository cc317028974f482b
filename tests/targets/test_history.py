"""Splits by last year's actuals (won deals, collections, new customers) and bottom-up commitments."""

import csv
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command, get_commands
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import CompanySettings, Region, Role
from pipeline.services import collection_create, opportunity_move_stage
from targets.planning import splits
from targets.planning.selectors import commitment_gap, unbalanced_nodes
from targets.services import (
    node_commit,
    plan_create,
    target_split,
    target_split_leaves,
    target_split_preview,
)
from tests.datasets import MAVEN, needs_maven
from tests.factories import UserFactory, make_deal
from tests.targets.conftest import by_region, sql_split_statements


def won_stage(org):
    return next(s for s in org.stages if s.is_won)


@pytest.fixture
def last_year(org, catalogue):
    """FY2026 won deals: Shanghai rep 300 (March), Jiangsu rep 100 (July), Beijing rep 600 (November);
    plus deals that must not count: lost, still open, won the year before."""
    won = won_stage(org)
    make_deal(
        owner=org.rep,
        amount="300",
        stage=won,
        close=date(2026, 3, 10),
        lines=[{"product_line": catalogue["servers"], "amount": Decimal("300")}],
    )
    # Won through the stage move, as a rep would do it.
    deal = make_deal(owner=org.rep_js, amount="100", close=date(2026, 6, 30))
    opportunity_move_stage(
        opportunity=deal, stage=won, actor=org.rep_js, evidence="Signed contract", closed_on=date(2026, 7, 1)
    )
    make_deal(
        owner=org.rep_other,
        amount="600",
        stage=won,
        close=date(2026, 11, 20),
        lines=[
            {"product_line": catalogue["servers"], "amount": Decimal("200")},
            {"product_line": catalogue["software"], "amount": Decimal("400")},
        ],
    )
    lost = next(s for s in org.stages if s.is_lost)
    lost_deal = make_deal(owner=org.rep, amount="5000", close=date(2026, 5, 5))
    opportunity_move_stage(
        opportunity=lost_deal, stage=lost, actor=org.rep, lost_reason="Price", closed_on=date(2026, 5, 5)
    )
    make_deal(owner=org.rep, amount="7000", close=date(2026, 8, 1))
    make_deal(owner=org.rep_other, amount="9000", stage=won, close=date(2025, 12, 31))


def test_history_split_by_region_uses_last_years_won_deals(plan, org, last_year):
    preview = target_split_preview(node=plan.nodes.get(), dimension="region", method="history", actor=org.director)
    assert preview.warnings == []
    # East won 400 and North 600 in FY2026: 40% / 60% of 1,200,000.
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("480000.00"),
        str(org.north.pk): Decimal("720000.00"),
    }
    assert {c.key: c.weight for c in preview.children} == {
        str(org.east.pk): Decimal("400"),
        str(org.north.pk): Decimal("600"),
    }


def test_history_split_keeps_seasonality_and_warns_about_empty_months(plan, org, last_year):
    result = target_split(node=plan.nodes.get(), dimension="month", method="history", actor=org.director)
    amounts = {c.period_key: c.amount for c in result.children}
    assert (amounts["FY2027-M03"], amounts["FY2027-M07"], amounts["FY2027-M11"]) == (
        Decimal("360000"),
        Decimal("120000"),
        Decimal("720000"),
    )
    assert sum(1 for a in amounts.values() if a == 0) == 9
    assert result.warnings == ["9 parts had nothing last year and get no target."]


def test_history_split_of_many_leaves_at_once_in_few_queries(plan, org, last_year, django_assert_max_num_queries):
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    # A fixed number whatever the number of leaves (one of them asks whether the target carries stretch levels,
    # one locks the plan: one edit of a plan's targets at a time).
    with django_assert_max_num_queries(18):
        result = target_split_leaves(node=root, dimension="rep", method="history", actor=org.director)
    assert result.created == 4
    reps = {n.rep: n.amount for n in plan.nodes.filter(rep__isnull=False)}
    # East 600,000 by 300 : 0 : 100 ; North 600,000 all to its only rep.
    assert reps == {
        org.rep: Decimal("450000"),
        org.rep_same_team: Decimal("0"),
        org.rep_js: Decimal("150000"),
        org.rep_other: Decimal("600000"),
    }
    with django_assert_max_num_queries(18):
        target_split_leaves(node=root, dimension="quarter", method="history", actor=org.director)
    quarters = {(n.rep, n.period_key): n.amount for n in plan.nodes.filter(period_kind="quarter")}
    # One quarter of their own, East two: both follow the company's 300 : 0 : 100 : 600.
    assert [quarters[(org.rep, f"FY2027-Q{q}")] for q in range(1, 5)] == [
        Decimal("135000"),
        Decimal("0"),
        Decimal("45000"),
        Decimal("270000"),
    ]
    assert quarters[(org.rep_js, "FY2027-Q3")] == Decimal("15000")
    # No history for rep_same_team: their (zero) target falls back to an equal split.
    assert quarters[(org.rep_same_team, "FY2027-Q2")] == Decimal("0")
    assert not unbalanced_nodes(plan).exists()


def test_history_by_product_line_uses_deal_lines(plan, org, last_year, catalogue):
    preview = target_split_preview(
        node=plan.nodes.get(), dimension="product_line", method="history", actor=org.director
    )
    # Servers 300 + 200, software 400 (the deal without lines has no product line).
    assert {c.key: c.amount for c in preview.children} == {
        str(catalogue["servers"].pk): Decimal("666666.67"),
        str(catalogue["software"].pk): Decimal("533333.33"),
    }


def test_history_of_collections_and_new_customers(org, metrics, last_year):
    won_deal = make_deal(owner=org.rep_other, amount="1000", stage=won_stage(org), close=date(2026, 1, 5))
    collection_create(opportunity=won_deal, received_on=date(2026, 2, 1), amount=Decimal("250"), actor=org.rep_other)
    east_deal = make_deal(owner=org.rep, amount="1000", stage=won_stage(org), close=date(2026, 1, 5))
    collection_create(opportunity=east_deal, received_on=date(2026, 2, 1), amount=Decimal("750"), actor=org.rep)
    cash = plan_create(
        metric=metrics["collections"], period_key="FY2027", total="100000", owner=org.director, actor=org.director
    )
    preview = target_split_preview(node=cash.nodes.get(), dimension="region", method="history", actor=org.director)
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("75000.00"),
        str(org.north.pk): Decimal("25000.00"),
    }
    # New customers: FY2026 first wins — East 3 customers (rep x2, rep_js), North 2 (the 2025 one is not new).
    logos = plan_create(
        metric=metrics["new_customers"], period_key="FY2027", total="10", owner=org.director, actor=org.director
    )
    preview = target_split_preview(node=logos.nodes.get(), dimension="region", method="history", actor=org.director)
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("6.00"),
        str(org.north.pk): Decimal("4.00"),
    }


def test_no_history_falls_back_to_equal_with_a_warning(plan, org):
    result = target_split(node=plan.nodes.get(), dimension="quarter", method="history", actor=org.director)
    assert [c.amount for c in result.children] == [Decimal("300000")] * 4
    assert result.warnings == ["There is no history for “FY2027” in the same period last year; it was split equally."]


# --- bottom-up ------------------------------------------------------------------------------


@pytest.fixture
def east_reps(plan, org):
    areas = by_region(
        target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director).children
    )
    east = areas[org.east.pk]
    reps = {n.rep: n for n in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    return east, reps


def test_bottom_up_shows_the_gap_and_reconciles_to_the_target(org, east_reps, plan):
    east, reps = east_reps  # 600,000 handed down: 200,000 each
    target_split(node=reps[org.rep], dimension="quarter", method="equal", actor=org.manager)
    node_commit(node=reps[org.rep], amount="300000", actor=org.rep)
    node_commit(node=reps[org.rep_js], amount="150000", actor=org.rep_js)

    gap = commitment_gap(east)
    assert (gap["top_down"], gap["bottom_up"], gap["gap"]) == (Decimal("600000"), Decimal("450000"), Decimal("50000"))
    assert [n.rep for n in gap["missing"]] == [org.rep_same_team]

    preview = target_split_preview(node=east, dimension="rep", method="bottom_up", actor=org.manager)
    assert (preview.bottom_up, preview.gap) == (Decimal("650000"), Decimal("50000"))
    assert any("No commitment yet" in w for w in preview.warnings)
    assert any("50000" in w and "above" in w for w in preview.warnings)

    result = target_split(node=east, dimension="rep", method="bottom_up", actor=org.manager)
    amounts = {c.rep: c.amount for c in result.children}
    # 300 : 150 : 200 scaled to the 600,000 handed down.
    assert amounts == {
        org.rep: Decimal("276923.08"),
        org.rep_js: Decimal("138461.54"),
        org.rep_same_team: Decimal("184615.38"),
    }
    assert sum(amounts.values()) == Decimal("600000")
    assert reps[org.rep].children.count() == 4  # the rep's quarters were kept and rescaled
    assert not unbalanced_nodes(plan).exists()


def test_bottom_up_with_matching_commitments_gives_exactly_what_was_committed(org, east_reps):
    east, reps = east_reps
    for user, amount in ((org.rep, "250000"), (org.rep_js, "150000"), (org.rep_same_team, "200000")):
        node_commit(node=reps[user], amount=amount, actor=user)
    assert commitment_gap(east)["gap"] == 0
    result = target_split(node=east, dimension="rep", method="bottom_up", actor=org.manager)
    assert {c.rep: c.amount for c in result.children} == {
        org.rep: Decimal("250000"),
        org.rep_js: Decimal("150000"),
        org.rep_same_team: Decimal("200000"),
    }
    assert result.warnings == []


# --- the public Maven dataset ------------------------------------------------------------------


def maven_won_2017_by_office() -> Counter:
    """Straight from the CSV files: won value closed in 2017 per regional office of the agent."""
    with (MAVEN / "sales_teams.csv").open(newline="") as f:
        office = {row["sales_agent"]: row["regional_office"] for row in csv.DictReader(f)}
    totals = Counter()
    with (MAVEN / "sales_pipeline.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["deal_stage"] == "Won" and row["close_date"].startswith("2017"):
                totals[office[row["sales_agent"]]] += Decimal(row["close_value"])
    return totals


@pytest.mark.skipif("import_maven" not in get_commands(), reason="manage.py import_maven is not there yet")
@needs_maven
def test_history_split_reproduces_the_maven_share_of_won_value_per_office(db, metrics):
    company = CompanySettings.load()
    company.fiscal_year_start_month = 1
    company.save(update_fields=["fiscal_year_start_month"])
    call_command("import_maven", str(MAVEN), stdout=open("/dev/null", "w"))  # noqa: SIM115
    director = UserFactory(username="maven-director", role=Role.DIRECTOR)
    expected = maven_won_2017_by_office()
    total = sum(expected.values())
    assert total == Decimal("10005534")

    plan = plan_create(metric=metrics["won_revenue"], period_key="FY2018", total=total, owner=director, actor=director)
    result = target_split(node=plan.nodes.get(), dimension="region", method="history", actor=director)
    offices = {c.region.name: c.amount for c in result.children}
    assert Region.objects.get(code="MAVENTECH").children.count() == 3
    # Splitting the 2017 total by 2017 history gives every office exactly its 2017 won value...
    assert offices == dict(expected)

    # ...and any other total its share, to the cent.
    plan = plan_create(
        metric=metrics["gross_margin"], period_key="FY2018", total="1000000", owner=director, actor=director
    )
    shares = {
        c.region.name: c.amount
        for c in target_split(node=plan.nodes.get(), dimension="region", method="history", actor=director).children
    }
    assert sum(shares.values()) == Decimal("1000000")
    for name, amount in shares.items():
        assert abs(amount - Decimal(1000000) * expected[name] / total) < Decimal("0.01")


def test_bulk_history_split_in_sql_matches_the_python_path(org, metrics, monkeypatch):
    """Per-leaf history weights go to SQL through a temporary table; the result must equal the
    general Python path to the cent (odd amounts, ties, and a rep without history)."""
    won = won_stage(org)
    for owner, amount, day in [
        (org.rep, "333.33", date(2026, 1, 31)),
        (org.rep, "333.33", date(2026, 2, 1)),
        (org.rep, "0.01", date(2026, 12, 31)),
        (org.rep_js, "1000", date(2026, 6, 15)),
        (org.rep_js, "1000", date(2026, 9, 15)),
        (org.rep_other, "77.77", date(2026, 4, 4)),
    ]:
        make_deal(owner=owner, amount=amount, stage=won, close=day)
    results = {}
    for code, sql_allowed in (("won_revenue", True), ("gross_margin", False)):
        if not sql_allowed:
            monkeypatch.setattr(splits, "SPLIT_LEAVES_IN_SQL", False)
        plan = plan_create(
            metric=metrics[code], period_key="FY2027", total="1000000.07", owner=org.director, actor=org.director
        )
        root = plan.nodes.get()
        target_split(node=root, dimension="rep", method="equal", actor=org.director)
        with CaptureQueriesContext(connection) as queries:
            split = target_split_leaves(node=root, dimension="month", method="history", actor=org.director)
        assert len(sql_split_statements(queries)) == (1 if sql_allowed else 0), code
        results[code] = (
            {(n.rep_id, n.period_key): n.amount for n in plan.nodes.filter(period_kind="month")},
            split.warnings,
        )
    a, b = results["won_revenue"], results["gross_margin"]
    assert {k: (v, b[0].get(k)) for k, v in a[0].items() if v != b[0].get(k)} == {}
    assert a[1] == b[1]
    months, warnings = results["won_revenue"]
    assert len(months) == 48 and sum(months.values()) == Decimal("1000000.07")
    # Every rep's own history is too thin (at most 3 months of 12): each follows the company's curve.
    rep_js = {key: amount for (rep, key), amount in months.items() if rep == org.rep_js.pk and amount}
    assert rep_js == {
        "FY2027-M01": Decimal("30364.12"),
        "FY2027-M02": Decimal("30364.12"),
        "FY2027-M04": Decimal("7084.33"),
        "FY2027-M06": Decimal("91093.27"),
        "FY2027-M09": Decimal("91093.27"),
        "FY2027-M12": Decimal("0.91"),
    }
    assert warnings == [
        "4 targets had too little history of their own; they follow their team's or the company's curve.",
        "24 parts had nothing last year and get no target.",
    ]


def test_history_of_an_admin_defined_metric_counts_only_its_filter(org, metrics, last_year, catalogue):
    from targets.services import metric_create

    servers = metric_create(
        code="servers",
        name="Server revenue",
        source="won_revenue",
        filters={"product_line": catalogue["servers"].pk},
        actor=org.admin,
    )
    plan = plan_create(metric=servers, period_key="FY2027", total="1000", owner=org.director, actor=org.director)
    preview = target_split_preview(node=plan.nodes.get(), dimension="region", method="history", actor=org.director)
    # Server lines last year: East 300 (Shanghai), North 200 (Beijing); software and line-less deals do not count.
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("600.00"),
        str(org.north.pk): Decimal("400.00"),
    }


def test_history_for_leaves_of_different_periods_uses_each_ones_own_last_year(plan, org, last_year):
    root = plan.nodes.get()
    target_split(node=root, dimension="quarter", method="equal", actor=org.director)  # 300,000 each
    result = target_split_leaves(node=root, dimension="region", method="history", actor=org.director)
    cells = {(n.period_key, n.region_id): n.amount for n in plan.nodes.filter(region__isnull=False)}
    east, north = org.east.pk, org.north.pk
    # Q1 2026: East 300 -> all of Q1; Q2: nothing -> equal; Q3: East 100; Q4: North 600.
    assert cells == {
        ("FY2027-Q1", east): Decimal("300000"),
        ("FY2027-Q1", north): Decimal("0"),
        ("FY2027-Q2", east): Decimal("150000"),
        ("FY2027-Q2", north): Decimal("150000"),
        ("FY2027-Q3", east): Decimal("300000"),
        ("FY2027-Q3", north): Decimal("0"),
        ("FY2027-Q4", east): Decimal("0"),
        ("FY2027-Q4", north): Decimal("300000"),
    }
    assert result.warnings[0] == "1 target has no history in the same period last year; it was split equally."
