"""Win rate, sales cycle, won/lost per week and the driver identity on the public Maven dataset, each against
a pandas computation straight from the CSV files."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
from django.core.management import call_command

from crm.models import CompanySettings, Region, Role
from pipeline.analytics import BY_REGION, drivers, funnel, win_rates
from pipeline.management.commands.import_maven import PIPELINE_NAME, username_for
from pipeline.models import Pipeline
from salesmgmt.lib import periods
from tests.datasets import MAVEN, needs_maven
from tests.factories import UserFactory

YEAR = (date(2017, 1, 1), date(2017, 12, 31))


def one_decimal(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def csv_deals() -> pd.DataFrame:
    deals = pd.read_csv(MAVEN / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    teams = pd.read_csv(MAVEN / "sales_teams.csv")
    return deals.merge(teams, on="sales_agent", how="left")


def week_start(day: pd.Timestamp) -> date:
    """The start of the fiscal week (FY = calendar year here) of a day: its Monday, clipped to 1 January."""
    monday = (day - pd.Timedelta(days=day.weekday())).date()
    return max(monday, date(day.year, 1, 1))


@pytest.fixture
def maven(db):
    company = CompanySettings.load()
    company.fiscal_year_start_month = 1
    company.save(update_fields=["fiscal_year_start_month"])
    call_command("import_maven", str(MAVEN), stdout=open("/dev/null", "w"))  # noqa: SIM115
    root = Region.objects.get(code="MAVENTECH")
    return root, UserFactory(username="maven-director", role=Role.DIRECTOR)


@needs_maven
def test_win_rates_cycle_weeks_and_drivers_per_office_equal_the_csv(maven):
    root, director = maven
    df = csv_deals()
    closed = df[df.deal_stage.isin(["Won", "Lost"])].copy()
    closed["quarter"] = closed.close_date.dt.quarter
    closed["won"] = closed.deal_stage == "Won"
    closed["cycle"] = (closed.close_date - closed.engage_date).dt.days

    # Win rate, amounts and median sales cycle by office and quarter.
    rows = win_rates(director, date_from=YEAR[0], date_to=YEAR[1], by=BY_REGION, period="quarter", region=root)
    got = {(r.label, r.period.number): r for r in rows}
    expected = closed.groupby(["regional_office", "quarter"])
    assert set(got) == set(expected.groups)
    for (office, quarter), g in expected:
        row = got[(office, quarter)]
        won, lost = int(g.won.sum()), int((~g.won).sum())
        assert (row.won, row.lost) == (won, lost), (office, quarter)
        assert row.win_rate == one_decimal(Decimal(won * 100) / Decimal(won + lost))
        assert row.won_amount == Decimal(int(g[g.won].close_value.sum()))
        assert row.median_cycle_days == one_decimal(g[g.won].cycle.median()), (office, quarter)
        assert row.average_won == (row.won_amount / won).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    # Won and lost per week and office.
    weekly = win_rates(director, date_from=YEAR[0], date_to=YEAR[1], by=BY_REGION, period="week", region=root)
    closed["week"] = closed.close_date.map(week_start)
    counts = closed.groupby(["regional_office", "week"]).won.agg(["sum", "count"])
    assert {(r.label, r.period.start): (r.won, r.lost) for r in weekly} == {
        key: (int(s), int(c - s)) for key, (s, c) in counts.iterrows()
    }

    # A team manager's figures hold his team's deals only.
    team = Region.objects.filter(parent__parent=root, manager__isnull=False).select_related("manager").first()
    mine = win_rates(team.manager, date_from=YEAR[0], date_to=YEAR[1], by=None, period="quarter")
    his = closed[closed.manager.map(username_for) == team.manager.username]
    assert sum(r.won for r in mine) == int(his.won.sum()) > 0
    assert sum(r.lost for r in mine) == int((~his.won).sum())

    # The driver identity per office for 2017-Q3, and its change against Q2 split exactly.
    q3 = periods.quarter(2017, 3)
    rows = {r.label: r for r in drivers(director, period_start=q3.start, period_end=q3.end, region=root, by=BY_REGION)}
    won = df[df.deal_stage == "Won"]
    for office, g in won.groupby("regional_office"):
        in_q3 = g[(g.close_date >= pd.Timestamp(q3.start)) & (g.close_date <= pd.Timestamp(q3.end))]
        in_q2 = g[(g.close_date >= pd.Timestamp("2017-04-01")) & (g.close_date <= pd.Timestamp("2017-06-30"))]
        row = rows[office]
        assert row.now.amount == Decimal(int(in_q3.close_value.sum()))
        assert row.now.deals == len(in_q3) and row.now.active == in_q3.account.nunique()
        assert row.now.exact and row.now.product == row.now.amount
        assert row.previous.amount == Decimal(int(in_q2.close_value.sum()))
        assert sum(row.change) == row.now.amount - row.previous.amount


@needs_maven
def test_covered_customers_per_office_follow_the_import_owner_rule(maven):
    root, director = maven
    df = csv_deals()
    owners = (
        df[df.account.notna()]
        .groupby(["account", "sales_agent"])
        .size()
        .reset_index(name="n")
        .sort_values(["account", "n", "sales_agent"], ascending=[True, False, True])
        .drop_duplicates("account")
    )
    office_of = df.drop_duplicates("sales_agent").set_index("sales_agent").regional_office
    owners["office"] = owners.sales_agent.map(office_of)
    q3 = periods.quarter(2017, 3)
    won = df[(df.deal_stage == "Won") & df.close_date.between(pd.Timestamp(q3.start), pd.Timestamp(q3.end))]
    rows = {r.label: r for r in drivers(director, period_start=q3.start, period_end=q3.end, region=root, by=BY_REGION)}
    for office in ("Central", "East", "West"):
        owned = set(owners[owners.office == office].account)
        sold_to = set(won[won.regional_office == office].account)
        assert rows[office].now.covered == len(owned | sold_to), office


@needs_maven
def test_maven_funnel_counts_every_won_deal_through_every_stage(maven):
    root, director = maven
    df = csv_deals()
    engaged = df[df.engage_date.notna() & df.engage_date.between("2017-01-01", "2017-03-31")]
    result = funnel(
        director,
        date_from=date(2017, 1, 1),
        date_to=date(2017, 3, 31),
        pipeline=Pipeline.objects.get(name=PIPELINE_NAME),
    )
    reached = {f.stage.name: f.reached for f in result.stages}
    stage = engaged.deal_stage
    assert reached == {
        "Prospecting": len(engaged),
        "Engaging": int(stage.isin(["Engaging", "Won"]).sum()),
        "Won": int((stage == "Won").sum()),
    }
    assert result.won == int((stage == "Won").sum()) and result.lost == int((stage == "Lost").sum())
