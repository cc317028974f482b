"""`manage.py import_maven`: the public MavenTech dataset end to end, and idempotent."""

import io
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import Count, Q, Sum

from crm.models import Customer, Region, RegionKind, Role, User
from pipeline.management.commands.seed_demo import DEMO_PASSWORD
from pipeline.models import Opportunity, OpportunityLine
from tests.imports.conftest import snapshot

MAVEN = settings.BASE_DIR.parent / "shared" / "datasets" / "maven-crm-sales-opportunities"


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
    assert User.objects.filter(role=Role.MANAGER, region__in=offices).count() == 6
    assert User.objects.filter(role=Role.REP, region__in=offices).count() == 35
    assert User.objects.get(username="carl.lin").opportunities.count() == 0
    assert authenticate(username="cara.losch", password=DEMO_PASSWORD) is not None
    east_manager = Region.objects.get(code="MAVEN-EAST").manager
    east = Q(region__code="MAVEN-EAST") | Q(owner__region__code="MAVEN-EAST")
    visible = Opportunity.objects.visible_to(east_manager)
    assert visible.count() == maven.filter(east).count() and not visible.exclude(east).exists()

    customers = Customer.objects.filter(external_id__startswith="maven:")
    assert customers.count() == 85
    assert not customers.filter(industry="technolgy").exists() and customers.filter(industry="technology").count() == 12
    assert not customers.filter(first_won_on=None).exists()
    acme = customers.get(name="Acme Corporation")
    top_rep = (
        maven.filter(customer=acme).values("owner").annotate(n=Count("id")).order_by("-n", "owner__first_name").first()
    )
    assert acme.owner_id == top_rep["owner"] and acme.region == acme.owner.region

    before = snapshot()
    assert "nothing changed" in run()
    assert snapshot() == before
