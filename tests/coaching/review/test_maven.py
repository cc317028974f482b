"""The company review on the public Maven dataset: won value and win rate per regional office, week by week, equal
an independent computation straight from the CSV files."""

import csv
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.core.management import call_command

from coaching.review import BY_REGION, build_review
from crm.models import CompanySettings, Region, Role
from targets.attainment.services import attainment_recompute
from targets.services import plan_approve, plan_create, plan_submit, target_split, target_split_leaves
from tests.datasets import MAVEN, needs_maven
from tests.factories import UserFactory

SUNDAYS = (date(2017, 3, 12), date(2017, 6, 18), date(2017, 9, 24))


def from_csv(day: date) -> tuple[Counter, Counter, Counter]:
    """Per office: won value and won and lost deals closed in 2017 up to `day`."""
    with (MAVEN / "sales_teams.csv").open(newline="") as f:
        office = {row["sales_agent"]: row["regional_office"] for row in csv.DictReader(f)}
    value, won, lost = Counter(), Counter(), Counter()
    with (MAVEN / "sales_pipeline.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            closed = row["close_date"]
            if not closed or not ("2017-01-01" <= closed <= day.isoformat()):
                continue
            where = office[row["sales_agent"]]
            if row["deal_stage"] == "Won":
                value[where] += Decimal(row["close_value"])
                won[where] += 1
            elif row["deal_stage"] == "Lost":
                lost[where] += 1
    return value, won, lost


@needs_maven
def test_won_and_win_rate_per_office_and_week_equal_the_csv(db, metrics):
    company = CompanySettings.load()
    company.fiscal_year_start_month = 1
    company.save(update_fields=["fiscal_year_start_month"])
    call_command("import_maven", str(MAVEN), stdout=open("/dev/null", "w"))  # noqa: SIM115
    director = UserFactory(username="maven-director", role=Role.DIRECTOR)
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2017", total="12000000", owner=director, actor=director
    )
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=director)
    target_split_leaves(node=root, dimension="rep", method="equal", actor=director)  # every leaf has an owner
    approver = UserFactory(username="maven-admin", role=Role.ADMIN)
    plan_approve(plan=plan_submit(plan=plan, actor=director), actor=approver)
    offices = {r.pk: r.name for r in Region.objects.filter(parent__parent__isnull=True, parent__isnull=False)}
    for sunday in SUNDAYS:
        attainment_recompute(plan=plan, as_of=sunday)
        review = build_review(director, region=Region.objects.get(parent__isnull=True), week=sunday)
        assert (review.rows_by, review.as_of) == (BY_REGION, sunday)
        value, won, lost = from_csv(sunday)
        assert {offices[r.ident]: r.actual for r in review.rows} == dict(value)
        for row in review.rows:
            name = offices[row.ident]
            assert (row.won, row.lost) == (won[name], lost[name]), name
            expected = (Decimal(won[name] * 100) / (won[name] + lost[name])).quantize(Decimal("0.1"), ROUND_HALF_UP)
            assert row.win_rate == expected, name
            assert row.target == Decimal("4000000")
        (head,) = review.headline
        assert head.actual == sum(value.values())
