"""Load the public Maven Analytics "CRM + Sales Opportunities" dataset (MavenTech) as demo data.

What becomes what:
- a company root region "MavenTech" with the regional offices Central / East / West as areas, and under each
  office a team per manager named in sales_teams.csv (two managers share each office), e.g.
  "Central · Dustin Brinkmann"; the offices get no manager (the data names none; the director sees them whole);
- the 6 managers as users with role manager, each in his own team and its `Region.manager`, so his default scope
  (department tree) is his team;
- the 35 agents as reps in their manager's team (5 of them have no deals);
- the product series as product lines, the 7 products with sales_price as list price;
- the 85 accounts as customers: sector as industry (the source's "technolgy" is corrected), owner = the rep
  with most deals for the account (ties: alphabetical; the first manager if the account has no deals),
  region = the owner's office (an attribute of the customer, not where its deals count);
- the 8,800 opportunities, with external_id = opportunity_id, in a dedicated pipeline "MavenTech":
  Prospecting 10% -> Engaging 40% -> Won 100% / Lost 0%. They go through the same import service as the
  wizard (pipeline/importing/). Each deal's region is its owner's team (业绩归属: a deal counts for its owner's
  team as it stood on the close date, and the source has one team per rep). Won/Lost: closed_on = close_date,
  amount = close_value. Prospecting and Engaging rows have no value in the source: their amount is an
  *estimate*, the product's sales_price, and their expected close date stays empty. Deals with an empty account
  have no customer. Amounts are taken as company currency. The source's "GTXPro" matches the product "GTX Pro"
  (names are matched ignoring spaces).

Idempotent: everything is matched by code, username or external id; a second run changes nothing. A database
imported before teams existed (everyone in his office, deals booked to the customer's office) is brought to this
layout by the next run. Demo users get the demo password of seed_demo.
"""

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F
from django.utils.text import slugify

from crm.models import Customer, Product, ProductLine, Region, RegionKind, Role, User
from crm.services import (
    audit,
    customer_create,
    ensure_company_currency,
    product_create,
    product_line_create,
    region_create,
    user_create,
)
from pipeline import events
from pipeline.importing import ImportOptions, import_apply, import_validate, read_upload
from pipeline.management.commands.seed_demo import DEMO_PASSWORD
from pipeline.models import ForecastCategory, Opportunity, OpportunityHistory, Pipeline, Stage
from salesmgmt.lib.tabular import Row, Table, cell_text

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
TEAM_COLUMN = "owner_team"  # added to the pipeline rows: the code of the agent's team region
PIPELINE_MAPPING = {
    "opportunity_id": "external_id",
    "sales_agent": "owner",
    "product": "product",
    "account": "customer",
    "deal_stage": "stage",
    "engage_date": "created_on",
    "close_date": "close_date",
    "close_value": "amount",
    TEAM_COLUMN: "region",
}


def username_for(name: str) -> str:
    return slugify(name).replace("-", ".")[:150]


def team_code(office: str, manager: str) -> str:
    return f"MAVEN-{slugify(office).upper()}-{slugify(manager).upper()}"[:40]


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

        # Regions: the company, its offices, and in each office a team per manager.
        root = self._region(created, name="MavenTech", code=ROOT_CODE, kind=RegionKind.COMPANY, parent=None)
        offices, team_regions = {}, {}
        for rec in teams:
            office, manager = rec["regional_office"], rec["manager"]
            if office not in offices:
                code = f"MAVEN-{slugify(office).upper()}"
                offices[office] = self._region(created, name=office, code=code, kind=RegionKind.AREA, parent=root)
            if (office, manager) not in team_regions:
                team_regions[office, manager] = self._region(
                    created,
                    name=f"{office} · {manager}",
                    code=team_code(office, manager),
                    kind=RegionKind.TEAM,
                    parent=offices[office],
                )

        # People: each manager heads his team, each agent sits in his manager's team.
        users = {u.username: u for u in User.objects.filter(username__in=self._usernames(teams))}
        # One hash for every demo user: hashing is deliberately slow (41 users would take ~15 s).
        password_hash = make_password(DEMO_PASSWORD)

        def person(name: str, role: str, team: Region) -> User:
            username = username_for(name)
            user = users.get(username)
            if user is None:
                first, _space, last = name.partition(" ")
                users[username] = user = user_create(
                    username=username,
                    password=None,
                    role=role,
                    region=team,
                    first_name=first,
                    last_name=last,
                )
                user.password = password_hash
                user.save(update_fields=["password"])
                created["users"] += 1
            elif user.region_id == team.parent_id:
                # Imported before teams existed, when everyone sat in his office: into his team.
                audit(actor=None, action="user.move", obj=user, changes={"region": [str(user.region), str(team)]})
                user.region = team
                user.save(update_fields=["region"])
                created["users moved into their teams"] += 1
            return user

        managers = set()
        for rec in teams:
            team = team_regions[rec["regional_office"], rec["manager"]]
            manager = person(rec["manager"], Role.MANAGER, team)
            managers.add(manager.pk)
            if team.manager_id is None:
                team.manager = manager
                team.save(update_fields=["manager"])
        for office in offices.values():
            if office.manager_id in managers:
                # Set by imports before teams existed; the data names no office head (the director's job).
                office.manager = None
                office.save(update_fields=["manager"])
        agents = {
            rec["sales_agent"]: person(
                rec["sales_agent"], Role.REP, team_regions[rec["regional_office"], rec["manager"]]
            )
            for rec in teams
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

        # Customers: owner = the rep with most deals for the account, region = that rep's office.
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
                owner = users[username_for(teams[0]["manager"])]
            sector = cell_text(rec["sector"])
            customer_create(
                name=rec["account"],
                region=owner.region.parent,
                owner=owner,
                industry=SECTOR_FIXES.get(sector, sector),
                external_id=external_id,
            )
            created["customers"] += 1

        # Opportunities, through the import service; only ids not imported yet. Each counts for its owner's team
        # (业绩归属), whatever its customer's region: every row names the agent's team as its region explicitly.
        pipeline = self._pipeline(created)
        created["deals booked to their owner's team"] += self._book_to_teams(pipeline, offices.values())
        team_of_agent = {rec["sales_agent"]: team_code(rec["regional_office"], rec["manager"]) for rec in teams}
        table = tables["sales_pipeline.csv"]
        known = set(Opportunity.objects.filter(pipeline=pipeline).values_list("external_id", flat=True))
        headers = table.headers
        table.headers = [*headers, TEAM_COLUMN]
        table.rows = [
            Row(row.number, [*(rec.get(h, "") for h in headers), team_of_agent.get(rec["sales_agent"], "")])
            for row, rec in zip(table.rows, deals, strict=True)
            if rec["opportunity_id"] not in known
        ]
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

    def _region(self, created: Counter, *, name: str, code: str, kind: str, parent: Region | None) -> Region:
        region = Region.objects.filter(code=code).first()
        if region is None:
            region = region_create(name=name, code=code, kind=kind, parent=parent)
            created["regions"] += 1
        return region

    def _book_to_teams(self, pipeline: Pipeline, offices) -> int:
        """Deals imported before teams existed were booked to an office (their customer's): book them to their
        owner's team, with a history row each, and let attainment be rebuilt. Returns how many moved."""
        stale = list(
            Opportunity.objects.filter(pipeline=pipeline, region__in=offices, owner__region__isnull=False)
            .exclude(owner__region__in=offices)
            .values_list("pk", "region_id", "owner__region_id")
        )
        by_team = defaultdict(list)
        for pk, _office, team in stale:
            by_team[team].append(pk)
        for team, pks in by_team.items():
            Opportunity.objects.filter(pk__in=pks).update(region_id=team, version=F("version") + 1)
        OpportunityHistory.objects.bulk_create(
            OpportunityHistory(opportunity_id=pk, field="region", old_value=str(office), new_value=str(team))
            for pk, office, team in stale
        )
        if stale:
            events.import_committed.publish()
        return len(stale)

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
