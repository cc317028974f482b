"""Load the public Maven Analytics "CRM + Sales Opportunities" dataset (MavenTech) as demo data.

What becomes what:
- a company root region "MavenTech" with the regional offices Central / East / West as areas;
- the 6 managers as users with role manager in their office (the first one listed for an office is the
  office's `Region.manager`; both managers of an office see it whole, as their role's default scope says);
- the 35 agents as reps in their office (5 of them have no deals);
- the product series as product lines, the 7 products with sales_price as list price;
- the 85 accounts as customers: sector as industry (the source's "technolgy" is corrected), owner = the rep
  with most deals for the account (ties: alphabetical; the office manager if the account has no deals),
  region = the owner's region;
- the 8,800 opportunities, with external_id = opportunity_id, in a dedicated pipeline "MavenTech":
  Prospecting 10% -> Engaging 40% -> Won 100% / Lost 0%. They go through the same import service as the
  wizard (pipeline/importing/). Won/Lost: closed_on = close_date, amount = close_value. Prospecting and
  Engaging rows have no value in the source: their amount is an *estimate*, the product's sales_price, and
  their expected close date stays empty. Deals with an empty account have no customer. Amounts are taken as
  company currency. The source's "GTXPro" matches the product "GTX Pro" (names are matched ignoring spaces).

Idempotent: everything is matched by code, username or external id; a second run changes nothing.
Demo users get the demo password of seed_demo.
"""

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from crm.models import Customer, Product, ProductLine, Region, RegionKind, Role, User
from crm.services import (
    customer_create,
    ensure_company_currency,
    product_create,
    product_line_create,
    region_create,
    user_create,
)
from pipeline.importing import ImportOptions, import_apply, import_validate, read_upload
from pipeline.management.commands.seed_demo import DEMO_PASSWORD
from pipeline.models import ForecastCategory, Opportunity, Pipeline, Stage
from salesmgmt.lib.tabular import Table, cell_text

FILES = ("sales_teams.csv", "products.csv", "accounts.csv", "sales_pipeline.csv")
ROOT_CODE = "MAVENTECH"
PIPELINE_NAME = "MavenTech"
STAGES = [
    # name, name_zh, probability, won, lost, forecast category
    ("Prospecting", "初步接触", 10, False, False, ForecastCategory.PIPELINE),
    ("Engaging", "深入洽谈", 40, False, False, ForecastCategory.PIPELINE),
    ("Won", "赢单", 100, True, False, ForecastCategory.CLOSED),
    ("Lost", "输单", 0, False, True, ForecastCategory.OMITTED),
]
SECTOR_FIXES = {"technolgy": "technology"}
PIPELINE_MAPPING = {
    "opportunity_id": "external_id",
    "sales_agent": "owner",
    "product": "product",
    "account": "customer",
    "deal_stage": "stage",
    "engage_date": "created_on",
    "close_date": "close_date",
    "close_value": "amount",
}


def username_for(name: str) -> str:
    return slugify(name).replace("-", ".")[:150]


class Command(BaseCommand):
    help = "Import the Maven CRM sales opportunities dataset (a directory of its CSV files). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("directory", help="Directory holding sales_teams.csv, products.csv, accounts.csv, ...")

    def handle(self, *args, directory, **options):
        tables = self._read(Path(directory))
        try:
            with transaction.atomic():
                created = self._load(tables)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages))
        if not any(created.values()):
            self.stdout.write("MavenTech data already imported; nothing changed.")
            return
        summary = ", ".join(f"{n} {what}" for what, n in created.items() if n)
        self.stdout.write(self.style.SUCCESS(f"MavenTech data imported: {summary}."))

    def _read(self, directory: Path) -> dict[str, Table]:
        tables = {}
        for name in FILES:
            path = directory / name
            if not path.is_file():
                raise CommandError(f"{path} is missing: is {directory} the Maven dataset directory?")
            try:
                tables[name] = read_upload(path.read_bytes(), name)
            except ValidationError as exc:
                raise CommandError(f"{path}: {' '.join(exc.messages)}")
        return tables

    def _load(self, tables: dict[str, Table]) -> Counter:
        created = Counter()
        ensure_company_currency()
        teams = [rec for _n, rec in tables["sales_teams.csv"].records()]
        deals = [rec for _n, rec in tables["sales_pipeline.csv"].records()]

        # Regions: the company and its offices.
        root = Region.objects.filter(code=ROOT_CODE).first()
        if root is None:
            root = region_create(name="MavenTech", code=ROOT_CODE, kind=RegionKind.COMPANY)
            created["regions"] += 1
        offices = {}
        for office in dict.fromkeys(rec["regional_office"] for rec in teams):
            code = f"MAVEN-{slugify(office).upper()}"
            region = Region.objects.filter(code=code).first()
            if region is None:
                region = region_create(name=office, code=code, kind=RegionKind.AREA, parent=root)
                created["regions"] += 1
            offices[office] = region

        # People: managers first (they manage the offices), then the agents.
        users = {u.username: u for u in User.objects.filter(username__in=self._usernames(teams))}
        # One hash for every demo user: hashing is deliberately slow (41 users would take ~15 s).
        password_hash = make_password(DEMO_PASSWORD)

        def person(name: str, role: str, region: Region) -> User:
            username = username_for(name)
            if username not in users:
                first, _space, last = name.partition(" ")
                users[username] = user = user_create(
                    username=username,
                    password=None,
                    role=role,
                    region=region,
                    first_name=first,
                    last_name=last,
                )
                user.password = password_hash
                user.save(update_fields=["password"])
                created["users"] += 1
            return users[username]

        office_manager = {}
        for rec in teams:
            manager = person(rec["manager"], Role.MANAGER, offices[rec["regional_office"]])
            office_manager.setdefault(rec["regional_office"], manager)
        for office, manager in office_manager.items():
            region = offices[office]
            if region.manager_id is None:
                region.manager = manager
                region.save(update_fields=["manager"])
        agents = {
            rec["sales_agent"]: person(rec["sales_agent"], Role.REP, offices[rec["regional_office"]]) for rec in teams
        }

        # Products: series as product lines, sales_price as list price.
        for _n, rec in tables["products.csv"].records():
            series = cell_text(rec["series"])
            line = ProductLine.objects.filter(code=f"MAVEN-{series}").first()
            if line is None:
                line = product_line_create(code=f"MAVEN-{series}", name=series)
                created["product lines"] += 1
            code = f"MAVEN-{slugify(rec['product']).upper()}"
            if not Product.objects.filter(code=code).exists():
                product_create(
                    line=line, code=code, name=rec["product"], list_price=Decimal(cell_text(rec["sales_price"]))
                )
                created["products"] += 1

        # Customers: owner = the rep with most deals for the account.
        deal_counts = defaultdict(Counter)
        for rec in deals:
            if rec["account"]:
                deal_counts[rec["account"]][rec["sales_agent"]] += 1
        existing = set(Customer.objects.filter(external_id__startswith="maven:").values_list("external_id", flat=True))
        for _n, rec in tables["accounts.csv"].records():
            external_id = f"maven:{rec['account']}"[:80]
            if external_id in existing:
                continue
            counts = deal_counts.get(rec["account"])
            if counts:
                best = max(counts.values())
                owner = agents[min(a for a, n in counts.items() if n == best)]
            else:  # no account of the source is without deals; kept for other versions of the file
                owner = next(iter(office_manager.values()))
            sector = cell_text(rec["sector"])
            customer_create(
                name=rec["account"],
                region=owner.region,
                owner=owner,
                industry=SECTOR_FIXES.get(sector, sector),
                external_id=external_id,
            )
            created["customers"] += 1

        # Opportunities, through the import service; only ids not imported yet.
        pipeline = self._pipeline(created)
        table = tables["sales_pipeline.csv"]
        known = set(Opportunity.objects.filter(pipeline=pipeline).values_list("external_id", flat=True))
        table.rows = [row for row, rec in zip(table.rows, deals, strict=True) if rec["opportunity_id"] not in known]
        if table.rows:
            plan = import_validate(
                table=table,
                kind="opportunities",
                mapping=PIPELINE_MAPPING,
                options=ImportOptions(pipeline_id=pipeline.pk, missing_amount="list_price"),
                actor=None,
            )
            if plan.errors:
                lines = [str(e) for e in plan.errors[:20]]
                raise CommandError(f"{len(plan.errors)} rows of sales_pipeline.csv have errors:\n" + "\n".join(lines))
            created["opportunities"] += import_apply(plan=plan, actor=None).get("opportunities", 0)
        return created

    def _usernames(self, teams) -> set[str]:
        return {username_for(rec[k]) for rec in teams for k in ("manager", "sales_agent")}

    def _pipeline(self, created: Counter) -> Pipeline:
        pipeline, new = Pipeline.objects.get_or_create(name=PIPELINE_NAME, defaults={"name_zh": "MavenTech 销售流程"})
        created["pipelines"] += int(new)
        if not pipeline.stages.exists():
            Stage.objects.bulk_create(
                Stage(
                    pipeline=pipeline,
                    name=name,
                    name_zh=zh,
                    order=order,
                    probability=prob,
                    is_won=won,
                    is_lost=lost,
                    forecast_category=category,
                )
                for order, (name, zh, prob, won, lost, category) in enumerate(STAGES, start=1)
            )
        return pipeline
