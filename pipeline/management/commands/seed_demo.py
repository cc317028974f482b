"""Built-in demo company: organisation, products, customers, two years of deals. Idempotent."""

import random
from datetime import date, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from crm.models import (
    CompanySettings,
    Currency,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    RegionKind,
    Role,
    Tier,
    User,
)
from crm.services import customer_create, customer_rate, ensure_company_currency, region_create, user_create
from pipeline.models import ActivityKind
from pipeline.services import (
    activity_log,
    collection_create,
    opportunity_create,
    opportunity_move_stage,
    pipeline_ensure_default,
)
from salesmgmt.lib.money import quantize

DEMO_PASSWORD = "demo-pass-2026"
# The README's tour signs in as these; `make run` prints them (demo_logins).
TOUR_LOGINS = {Role.ADMIN: "admin", Role.DIRECTOR: "director", Role.MANAGER: "mgr_east", Role.REP: "rep_sh1"}

AREAS = [
    # code, name, manager username, [(team code, team name, [rep usernames])]
    (
        "EAST",
        "华东大区 East",
        "mgr_east",
        [("SH", "上海 Shanghai", ["rep_sh1", "rep_sh2"]), ("JS", "江苏 Jiangsu", ["rep_js1", "rep_js2"])],
    ),
    (
        "NORTH",
        "华北大区 North",
        "mgr_north",
        [("BJ", "北京 Beijing", ["rep_bj1", "rep_bj2"]), ("SD", "山东 Shandong", ["rep_sd1"])],
    ),
    (
        "SOUTH",
        "华南大区 South",
        "mgr_south",
        [("GD", "广东 Guangdong", ["rep_gd1", "rep_gd2"]), ("FJ", "福建 Fujian", ["rep_fj1"])],
    ),
]
PRODUCTS = [
    (
        "HW",
        "Hardware 硬件",
        True,
        [("HW-SRV", "Server X1", "120000", "78000"), ("HW-STO", "Storage S2", "80000", "50000")],
    ),
    (
        "SW",
        "Software 软件",
        True,
        [("SW-ERP", "ERP Suite", "200000", "40000"), ("SW-CRM", "CRM Cloud", "60000", "12000")],
    ),
    (
        "SV",
        "Services 服务",
        False,
        [("SV-IMP", "Implementation", "50000", "30000"), ("SV-SUP", "Support plan", "20000", "8000")],
    ),
]
INDUSTRIES = [
    "Manufacturing 制造",
    "Retail 零售",
    "Finance 金融",
    "Healthcare 医疗",
    "Logistics 物流",
    "Education 教育",
]
COMPANY_WORDS = ["华信", "天成", "宏达", "金桥", "远航", "瑞丰", "博远", "新东", "恒通", "海川", "中科", "云启"]


def seed_organisation() -> list[User]:
    """The demo company's regions and people: an admin, the director, a manager per area, reps per team.
    Returns the reps."""
    user_create(username="admin", password=DEMO_PASSWORD, role=Role.ADMIN, first_name="Admin")
    hq = region_create(name="华夏科技 Demo Co.", code="HQ", kind=RegionKind.COMPANY)
    director = user_create(
        username="director",
        password=DEMO_PASSWORD,
        role=Role.DIRECTOR,
        region=hq,
        first_name="Zhang",
        last_name="Wei 张伟",
    )
    hq.manager = director
    hq.save(update_fields=["manager"])
    reps = []
    for code, name, mgr_name, teams in AREAS:
        area = region_create(name=name, code=code, kind=RegionKind.AREA, parent=hq)
        mgr = user_create(
            username=mgr_name,
            password=DEMO_PASSWORD,
            role=Role.MANAGER,
            region=area,
            first_name=mgr_name.split("_")[1].title(),
            last_name="Manager",
        )
        area.manager = mgr
        area.save(update_fields=["manager"])
        for team_code, team_name, rep_names in teams:
            team = region_create(name=team_name, code=team_code, kind=RegionKind.PROVINCE, parent=area, manager=mgr)
            for rep_name in rep_names:
                reps.append(
                    user_create(
                        username=rep_name,
                        password=DEMO_PASSWORD,
                        role=Role.REP,
                        region=team,
                        first_name=rep_name.upper().replace("_", " "),
                        last_name="",
                    )
                )
    return reps


class Command(BaseCommand):
    help = "Load the built-in demo company (idempotent: a second run changes nothing)."

    def handle(self, *args, **options):
        if Region.objects.filter(code="HQ").exists():
            self.stdout.write("Demo data already loaded; nothing changed.")
            return
        with transaction.atomic():
            self._load()
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))

    def _load(self):
        rng = random.Random(2026)
        company = CompanySettings.load()
        company.fiscal_year_start_month = 1
        company.save()
        ensure_company_currency()
        usd, _ = Currency.objects.get_or_create(code="USD", defaults={"name": "US dollar"})
        ExchangeRate.objects.get_or_create(
            currency=usd, valid_from=date(2020, 1, 1), defaults={"rate": Decimal("7.10")}
        )
        ExchangeRate.objects.get_or_create(
            currency=usd, valid_from=date(2026, 1, 1), defaults={"rate": Decimal("7.05")}
        )

        reps = seed_organisation()

        products = []
        for code, name, is_key, items in PRODUCTS:
            line = ProductLine.objects.create(code=code, name=name, is_key=is_key)
            for pcode, pname, price, cost in items:
                products.append(
                    Product.objects.create(
                        line=line, code=pcode, name=pname, list_price=Decimal(price), unit_cost=Decimal(cost)
                    )
                )

        pipeline = pipeline_ensure_default()
        stages = list(pipeline.stages.order_by("order"))
        won = next(s for s in stages if s.is_won)
        lost = next(s for s in stages if s.is_lost)
        open_stages = [s for s in stages if not s.is_closed]
        today = timezone.localdate()

        customers = []
        for i in range(60):
            owner = reps[i % len(reps)]
            customers.append(
                customer_create(
                    name=f"{rng.choice(COMPANY_WORDS)}{rng.choice(['科技', '集团', '实业', '股份'])} #{i + 1:02d}",
                    region=owner.region,
                    owner=owner,
                    industry=rng.choice(INDUSTRIES),
                    tier=rng.choice([Tier.KEY, Tier.A, Tier.B, Tier.B, Tier.C, Tier.C]),
                )
            )
        for customer in customers[:8]:
            if customer.tier == Tier.KEY:
                customer_rate(
                    customer=customer,
                    stars=rng.randint(3, 5),
                    reasons="Budget confirmed; decision chain mapped 预算已确认",
                    actor=customer.owner,
                )

        evidence = "Demo evidence 演示证据"
        for _n in range(320):
            customer = rng.choice(customers)
            owner = customer.owner
            product = rng.choice(products)
            qty = rng.randint(1, 4)
            amount = (product.list_price * qty * Decimal(rng.choice([80, 90, 100, 110])) / 100).quantize(Decimal("1"))
            created = today - timedelta(days=rng.randint(5, 700))
            close = created + timedelta(days=rng.randint(20, 150))
            opp = opportunity_create(
                name=f"{customer.name} · {product.name}",
                customer=customer,
                owner=owner,
                expected_close_date=close,
                pipeline=pipeline,
                stage=open_stages[0],
                lines=[{"product": product, "amount": amount, "quantity": Decimal(qty)}],
                created_at=timezone.make_aware(timezone.datetime.combine(created, timezone.datetime.min.time())),
                actor=owner,
            )
            # Walk the deal forward; deals whose close date has passed end won or lost.
            target_order = rng.randint(1, len(open_stages))
            at = created
            for stage in open_stages[1:target_order]:
                at = at + timedelta(days=rng.randint(3, 20))
                opp = opportunity_move_stage(
                    opportunity=opp, stage=stage, actor=owner, evidence=evidence, at=_aware(at)
                )
            if close < today:
                final = won if rng.random() < 0.55 else lost
                opp = opportunity_move_stage(
                    opportunity=opp,
                    stage=final,
                    actor=owner,
                    evidence=evidence,
                    lost_reason="Price 价格",
                    closed_on=close,
                    at=_aware(close),
                )
                if final.is_won and rng.random() < 0.8:
                    collection_create(
                        opportunity=opp,
                        received_on=min(today, close + timedelta(days=rng.randint(10, 60))),
                        amount=quantize(opp.amount * Decimal(rng.choice([50, 100])) / 100),
                        actor=owner,
                    )
            if rng.random() < 0.6:
                activity_log(
                    customer=customer,
                    kind=rng.choice(ActivityKind.values),
                    date=min(today, created + timedelta(days=rng.randint(0, 30))),
                    notes="Follow-up 跟进",
                    opportunity=opp,
                    actor=owner,
                )


def _aware(day):
    return timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time()))
