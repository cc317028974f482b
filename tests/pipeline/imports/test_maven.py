"""`manage.py import_maven`: the public MavenTech dataset end to end, idempotent, and attributed by the rule
of DOMAIN.md (业绩归属): a deal counts for its owner's team, the customer's region is a separate attribute."""

import io
from datetime import date
from decimal import Decimal

import pandas as pd
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.test import RequestFactory

from crm.models import Customer, Region, RegionKind, Role, User
from pipeline.management.commands.import_maven import username_for
from pipeline.management.commands.seed_demo import DEMO_PASSWORD
from pipeline.models import Opportunity, OpportunityHistory, OpportunityLine
from pipeline.selectors import STATUS_ALL, STATUS_WON, team_pipeline
from tests.datasets import MAVEN, needs_maven
from tests.factories import UserFactory
from tests.pipeline.imports.conftest import snapshot

pytestmark = needs_maven


def run() -> str:
    out = io.StringIO()
    call_command("import_maven", str(MAVEN), stdout=out)
    return out.getvalue()


def test_maven_dataset_imports_exactly_and_idempotently(db):
    assert "8800 opportunities" in run()
    maven = Opportunity.objects.filter(pipeline__name="MavenTech")
    assert maven.count() == 8800
    assert maven.won().aggregate(total=Sum("amount"))["total"] == Decimal("10005534")
    assert maven.won().aggregate(total=Sum("amount_company"))["total"] == Decimal("10005534")
    stages = dict(maven.values_list("stage__name").annotate(n=Count("id")))
    assert stages == {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}
    assert maven.filter(customer=None).count() == 1425

    won = Opportunity.objects.get(external_id="1C1I7A6R")
    assert (won.owner.get_full_name(), won.customer.name, won.closed_on, won.amount, won.probability) == (
        "Moses Frase",
        "Cancity",
        date(2017, 3, 1),
        Decimal("1054.00"),
        100,
    )
    # Open deals: no value in the source, so the product's list price is the estimate; no close date.
    open_deals = maven.filter(stage__name__in=["Prospecting", "Engaging"])
    assert not open_deals.exclude(expected_close_date=None).exists()
    assert open_deals.filter(lines__product__name="GTX Pro").first().amount == Decimal("4821.00")
    # The source's "GTXPro" is the product "GTX Pro".
    assert OpportunityLine.objects.filter(product__name="GTX Pro").count() == 1480

    root = Region.objects.get(code="MAVENTECH")
    offices = Region.objects.filter(parent=root)
    assert sorted(offices.values_list("name", flat=True)) == ["Central", "East", "West"]
    assert set(offices.values_list("kind", flat=True)) == {RegionKind.AREA}
    assert not offices.exclude(manager=None).exists()  # the data names no office head
    teams = Region.objects.filter(parent__in=offices)
    assert set(teams.values_list("kind", flat=True)) == {RegionKind.TEAM}
    assert teams.get(code="MAVEN-CENTRAL-DUSTIN-BRINKMANN").name == "Central · Dustin Brinkmann"
    # Each manager heads his own team; each rep sits in his manager's team.
    managers = User.objects.filter(role=Role.MANAGER, region__in=teams)
    assert managers.count() == 6 and teams.count() == 6
    assert {(t.manager_id, t.pk) for t in teams} == set(managers.values_list("pk", "region"))
    assert User.objects.filter(role=Role.REP, region__in=teams).count() == 35
    assert User.objects.get(username="anna.snelling").region.manager.username == "dustin.brinkmann"
    assert User.objects.get(username="carl.lin").opportunities.count() == 0
    login = RequestFactory().post("/accounts/login/")
    assert authenticate(login, username="cara.losch", password=DEMO_PASSWORD) is not None
    # Every deal is booked to its owner's team, whatever its customer's region.
    assert maven.filter(region__kind=RegionKind.TEAM).count() == 8800
    assert not maven.exclude(region=F("owner__region")).exists()
    elsewhere = maven.exclude(customer=None).exclude(region__parent=F("customer__region"))
    # 818 deals (236 won, 562,074) are with a customer whose region is another office: they count where their
    # owner is (pandas on the CSV files: the account's top agent's office differs from the deal's agent's).
    assert elsewhere.count() == 818

    customers = Customer.objects.filter(external_id__startswith="maven:")
    assert customers.count() == 85
    assert not customers.filter(industry="technolgy").exists() and customers.filter(industry="technology").count() == 12
    assert not customers.filter(first_won_on=None).exists()
    acme = customers.get(name="Acme Corporation")
    top_rep = (
        maven.filter(customer=acme).values("owner").annotate(n=Count("id")).order_by("-n", "owner__first_name").first()
    )
    # The customer's region is an attribute of its own: the office of the rep with most deals there.
    assert acme.owner_id == top_rep["owner"] and acme.region == acme.owner.region.parent

    before = snapshot()
    assert "nothing changed" in run()
    assert snapshot() == before


def layout() -> tuple[dict, ...]:
    """Where every deal is booked, where every user sits and who heads every region."""
    return (
        dict(Opportunity.objects.values_list("external_id", "region__code")),
        dict(User.objects.values_list("username", "region__code")),
        dict(Region.objects.values_list("code", "manager__username")),
    )


def test_a_database_imported_before_teams_existed_is_brought_to_the_team_layout(db):
    run()
    expected = layout()
    # The layout of earlier imports: no teams, everyone in his office, which the first manager listed heads, and
    # each deal booked to its customer's region (the owner's office when it has none).
    Opportunity.objects.exclude(customer=None).update(
        region=Subquery(Customer.objects.filter(pk=OuterRef("customer")).values("region")[:1])
    )
    for team in Region.objects.filter(kind=RegionKind.TEAM, code__startswith="MAVEN-"):
        Opportunity.objects.filter(customer=None, owner__region=team).update(region=team.parent_id)
        User.objects.filter(region=team).update(region=team.parent_id)
        team.delete()
    for code, username in (
        ("MAVEN-CENTRAL", "dustin.brinkmann"),
        ("MAVEN-EAST", "cara.losch"),
        ("MAVEN-WEST", "celia.rouche"),
    ):
        Region.objects.filter(code=code).update(manager=User.objects.get(username=username))
    assert layout() != expected

    out = run()
    assert "8800 deals booked to their owner's team" in out and "41 users moved into their teams" in out
    assert layout() == expected
    assert OpportunityHistory.objects.filter(field="region").count() == 8800
    before = snapshot()
    assert "nothing changed" in run()
    assert snapshot() == before


def won_from_csv() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Straight from the CSV files, independently of the import: every deal with its agent's manager and office
    (won value as Decimal), and per (office, manager) the won total and the number of deals."""
    teams = pd.read_csv(MAVEN / "sales_teams.csv", dtype=str)
    deals = pd.read_csv(MAVEN / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    deals = deals.merge(teams, on="sales_agent", how="left", validate="many_to_one")
    assert deals["manager"].notna().all()
    won = deals["deal_stage"] == "Won"
    deals["won"] = [Decimal(v) if w else Decimal(0) for v, w in zip(deals["close_value"], won, strict=True)]
    per_manager = deals.groupby(["regional_office", "manager"]).agg(
        won=("won", "sum"), deals=("opportunity_id", "size")
    )
    return deals, per_manager


def test_won_totals_per_office_per_manager_and_in_each_managers_scope_equal_the_csv(db):
    run()
    deals, per_manager = won_from_csv()
    by_office = deals.groupby("regional_office")["won"].sum().to_dict()
    assert by_office == {"Central": Decimal("3346293"), "East": Decimal("3090594"), "West": Decimal("3568647")}
    director = UserFactory(username="maven-director", role=Role.DIRECTOR)

    def won_total(user, region=None) -> Decimal:
        """What the team pipeline page shows `user` for the won deals (of `region`'s subtree)."""
        _deals, totals = team_pipeline(user, {"status": STATUS_WON, "region": region})
        return totals["total"]

    # (a) Each office's subtree holds the won value of its agents; the three add up to the company's.
    root = Region.objects.get(code="MAVENTECH")
    offices = {r.name: r for r in root.children.all()}
    assert {name: won_total(director, office) for name, office in offices.items()} == by_office
    assert sum(by_office.values()) == won_total(director, root) == won_total(director) == Decimal("10005534")

    # (b) Won by manager: each manager's team holds the won value of his agents.
    teams = Region.objects.filter(kind=RegionKind.TEAM, parent__in=offices.values()).select_related("parent", "manager")
    by_team = {(t.parent.name, t.manager.get_full_name()): won_total(director, t) for t in teams}
    assert by_team == per_manager["won"].to_dict()
    assert sum(by_team.values()) == Decimal("10005534")

    # (c) Each manager sees exactly his team's deals: count, owners and won value as the CSV has them.
    for team in teams:
        manager = team.manager
        expected = per_manager.loc[(team.parent.name, manager.get_full_name())]
        visible = Opportunity.objects.visible_to(manager)
        _deals, all_totals = team_pipeline(manager, {"status": STATUS_ALL})
        assert visible.count() == all_totals["count"] == expected["deals"], manager
        with_deals = set(deals.loc[deals["manager"] == manager.get_full_name(), "sales_agent"].map(username_for))
        assert set(visible.values_list("owner__username", flat=True)) == with_deals
        assert won_total(manager) == expected["won"], manager
