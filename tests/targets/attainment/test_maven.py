"""Attainment on the public Maven dataset equals an independent computation straight from the CSV files."""

import csv
from collections import Counter
from datetime import date
from decimal import Decimal

from django.core.management import call_command
from rest_framework.test import APIClient

from crm.models import CompanySettings, Region, Role
from pipeline.management.commands.import_maven import username_for
from pipeline.selectors import team_pipeline
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot
from targets.services import plan_approve, plan_create, plan_submit, target_split, target_split_leaves
from tests.datasets import MAVEN, needs_maven
from tests.factories import UserFactory


def won_2017_from_csv():
    """Won value closed in 2017 per office, per agent (username) and per (agent, month)."""
    with (MAVEN / "sales_teams.csv").open(newline="") as f:
        office = {row["sales_agent"]: row["regional_office"] for row in csv.DictReader(f)}
    by_office, by_rep, by_month = Counter(), Counter(), Counter()
    with (MAVEN / "sales_pipeline.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["deal_stage"] == "Won" and row["close_date"].startswith("2017"):
                value = Decimal(row["close_value"])
                by_office[office[row["sales_agent"]]] += value
                by_rep[username_for(row["sales_agent"])] += value
                by_month[(username_for(row["sales_agent"]), int(row["close_date"][5:7]))] += value
    return by_office, by_rep, by_month


@needs_maven
def test_attainment_per_region_rep_and_month_equals_the_csv(db, metrics):
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
    target_split_leaves(node=root, dimension="rep", method="equal", actor=director)
    target_split_leaves(node=root, dimension="month", method="equal", actor=director)
    approver = UserFactory(username="maven-admin", role=Role.ADMIN)  # nobody approves what he submitted
    plan_approve(plan=plan_submit(plan=plan, actor=director), actor=approver)

    as_of = date(2017, 12, 31)
    written = attainment_recompute(plan=plan, as_of=as_of)
    nodes = list(plan.nodes.select_related("region", "rep"))
    assert written == len(nodes) == AttainmentSnapshot.objects.filter(as_of=as_of).count()
    snaps = {s.node_id: s for s in AttainmentSnapshot.objects.filter(as_of=as_of)}
    by_office, by_rep, by_month = won_2017_from_csv()
    assert sum(by_office.values()) == Decimal("10005534")

    regions = {n.region.name: snaps[n.pk].actual for n in nodes if n.depth == 1}
    assert regions == dict(by_office)

    # One attribution rule: the team pipeline, the API and attainment give each office the CSV's won total.
    client = APIClient()
    client.force_authenticate(director)
    for office, won in by_office.items():
        region = Region.objects.get(name=office, parent__parent__isnull=True)
        _deals, totals = team_pipeline(director, {"status": "won", "region": region})
        assert totals["total"] == won, office
        api_totals = client.get(f"/api/opportunities/totals/?status=won&region={region.pk}").json()
        assert Decimal(api_totals["total"]) == won, office
        # Won by manager: each team manager's own pipeline equals the attainment of his reps' targets.
        teams = list(region.children.filter(manager__isnull=False).select_related("manager"))
        assert len(teams) == 2, office
        for team in teams:
            _deals, mine = team_pipeline(team.manager, {"status": "won"})
            reps = [n for n in nodes if n.depth == 2 and n.rep.region_id == team.pk]
            assert reps and mine["total"] == sum(snaps[n.pk].actual for n in reps), team.name
    reps = {n.rep.username: snaps[n.pk].actual for n in nodes if n.depth == 2}
    assert {k: v for k, v in reps.items() if v} == dict(by_rep)
    months = {(n.rep.username, n.period_start.month): snaps[n.pk].actual for n in nodes if n.depth == 3}
    assert len(months) == 12 * len(reps)
    assert {k: v for k, v in months.items() if v} == dict(by_month)
    assert snaps[root.pk].actual == Decimal("10005534")
    assert snaps[root.pk].target == Decimal("12000000")

    # Roll-ups equal the direct sums of their children, at every level.
    for node in nodes:
        children = [c for c in nodes if c.parent_id == node.pk]
        if children:
            assert snaps[node.pk].actual == sum(snaps[c.pk].actual for c in children)
            assert snaps[node.pk].open_pipeline == sum(snaps[c.pk].open_pipeline for c in children)

    # Recompute twice = once: same rows, same values.
    before = sorted(AttainmentSnapshot.objects.values_list("node_id", "as_of", "actual", "target", "weighted_pipeline"))
    assert attainment_recompute(plan=plan, as_of=as_of) == 0  # nothing changed: nothing written
    after = sorted(AttainmentSnapshot.objects.values_list("node_id", "as_of", "actual", "target", "weighted_pipeline"))
    assert after == before
