"""Built-in demo company: 华夏智造 Huaxia Smart Manufacturing, a maker of CNC machines and industrial robots
selling to factories across China. Idempotent: a second run changes nothing.

The story the numbers tell (deterministic: a fixed random seed, every date relative to today):
- 3 areas, 7 provincial teams, 10 reps with Chinese and English names, 180 customers named like the factories
  they are (苏州恒通精密机械有限公司): each rep's 12 accounts (2 key accounts, 3 of them won during the period)
  and 6 prospects, where most deals are lost;
- a year and a half of deals, at least back to the start of last fiscal year so this year's plan can be set
  from last year's results: revenue follows the seasons of the trade (the Chinese New Year dip in February,
  the year-end peak in Q4), each rep's monthly result grows ~15 % on last year times his own form this year
  (`Rep.form`: 0.80 behind, 1.10 ahead), so attainment against a plan set from history spreads around
  70-120 %; about 5 deals lost for every 2 won (win rate ~28 %), 30-120 days from first contact to close;
- every deal walks the stages with dated history rows and the milestone evidence each stage asks for; won
  deals are collected (a deposit, then the balance); today's open pipeline, a few deals overdue;
- visits, calls and meetings over the last weeks, and along each deal's way.

Deals, their history, evidence, collections and activities are written in bulk like the importer's
(`pipeline.importing.writing`): the rows `opportunity_create` / `opportunity_move_stage` would leave (the
credited team is the owner's team, `closed_on` set exactly on closed deals, one history row per stage entered,
the version counting them), then `import_committed` so whatever derives from deals is rebuilt once.
"""

from __future__ import annotations

import dataclasses
import random
from calendar import monthrange
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from crm.models import (
    AuditLog,
    CompanySettings,
    Contact,
    Currency,
    Customer,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    RegionKind,
    Role,
    Tier,
    User,
)
from crm.services import customer_rate, ensure_company_currency, region_create, user_create
from pipeline import events
from pipeline.models import (
    Activity,
    ActivityKind,
    Collection,
    Opportunity,
    OpportunityHistory,
    OpportunityLine,
    Stage,
    StageEvidence,
)
from pipeline.services import customer_refresh_first_won, pipeline_ensure_default
from salesmgmt.lib import periods

DEMO_PASSWORD = "demo-pass-2026"
# The README's tour signs in as these; `make run` prints them (demo_logins).
TOUR_LOGINS = {Role.ADMIN: "admin", Role.DIRECTOR: "director", Role.MANAGER: "mgr_east", Role.REP: "rep_sh1"}
COMPANY_NAME = "华夏智造 Huaxia Smart Manufacturing"
SEED = 2026
HISTORY_MONTHS = 18  # at least; always back to the start of last fiscal year
GROWTH = 1.15  # this year's results on last year's, before each rep's form (the plan asks the same)
BATCH = 500
ACCOUNTS = 12  # a rep's customers: his accounts (the first two key accounts), then prospects
PROSPECTS = 6


@dataclasses.dataclass(frozen=True)
class Person:
    username: str
    name_zh: str
    name_en: str


@dataclasses.dataclass(frozen=True)
class Rep(Person):
    monthly: int  # last year's average monthly signed revenue, yuan
    form: float  # this year against plan: 1.0 on plan, 0.8 behind, 1.1 ahead
    win_rate: float


@dataclasses.dataclass(frozen=True)
class Team:
    code: str
    name: str
    cities: tuple[tuple[str, str], ...]  # (Chinese, English) cities its customers are in
    reps: tuple[Rep, ...]


@dataclasses.dataclass(frozen=True)
class Area:
    code: str
    name: str
    manager: Person
    teams: tuple[Team, ...]


ADMIN = Person("admin", "周敏", "Zhou Min")
DIRECTOR = Person("director", "赵志刚", "Zhao Zhigang")
AREAS = (
    Area(
        "EAST",
        "华东大区 East",
        Person("mgr_east", "陈建华", "Chen Jianhua"),
        (
            Team(
                "SH",
                "上海 Shanghai",
                (("上海", "Shanghai"),),
                (
                    Rep("rep_sh1", "王磊", "Wang Lei", 820_000, 0.97, 0.30),
                    Rep("rep_sh2", "李娜", "Li Na", 640_000, 0.80, 0.26),
                ),
            ),
            Team(
                "JS",
                "江苏 Jiangsu",
                (("苏州", "Suzhou"), ("无锡", "Wuxi"), ("常州", "Changzhou"), ("南京", "Nanjing")),
                (
                    Rep("rep_js1", "张敏", "Zhang Min", 760_000, 1.10, 0.32),
                    Rep("rep_js2", "徐军", "Xu Jun", 560_000, 0.90, 0.27),
                ),
            ),
        ),
    ),
    Area(
        "NORTH",
        "华北大区 North",
        Person("mgr_north", "刘海涛", "Liu Haitao"),
        (
            Team(
                "BJ",
                "北京 Beijing",
                (("北京", "Beijing"), ("天津", "Tianjin")),
                (
                    Rep("rep_bj1", "杨帆", "Yang Fan", 700_000, 0.93, 0.28),
                    Rep("rep_bj2", "马丽", "Ma Li", 520_000, 1.05, 0.29),
                ),
            ),
            Team(
                "SD",
                "山东 Shandong",
                (("青岛", "Qingdao"), ("济南", "Jinan"), ("烟台", "Yantai")),
                (Rep("rep_sd1", "孙浩", "Sun Hao", 600_000, 0.84, 0.24),),
            ),
        ),
    ),
    Area(
        "SOUTH",
        "华南大区 South",
        Person("mgr_south", "黄晓峰", "Huang Xiaofeng"),
        (
            Team(
                "GD",
                "广东 Guangdong",
                (("深圳", "Shenzhen"), ("东莞", "Dongguan"), ("佛山", "Foshan"), ("广州", "Guangzhou")),
                (
                    Rep("rep_gd1", "林志强", "Lin Zhiqiang", 880_000, 1.14, 0.31),
                    Rep("rep_gd2", "何静", "He Jing", 580_000, 0.98, 0.28),
                ),
            ),
            Team(
                "FJ",
                "福建 Fujian",
                (("厦门", "Xiamen"), ("福州", "Fuzhou"), ("泉州", "Quanzhou")),
                (Rep("rep_fj1", "郑伟", "Zheng Wei", 480_000, 0.88, 0.27),),
            ),
        ),
    ),
)


@dataclasses.dataclass(frozen=True)
class Item:
    code: str
    name: str
    price: int
    cost: int
    max_qty: int
    weight: int  # how often it is sold


PRODUCT_LINES = (
    (
        "CNC",
        "数控机床 CNC machines",
        True,
        (
            Item("CNC-VMC850", "立式加工中心 VMC850 vertical machining centre", 380_000, 262_000, 3, 10),
            Item("CNC-CK6150", "数控车床 CK6150 CNC lathe", 165_000, 112_000, 4, 12),
            Item("CNC-5AX650", "五轴加工中心 5AX-650 five-axis centre", 1_280_000, 905_000, 1, 2),
        ),
    ),
    (
        "ROB",
        "工业机器人 Industrial robots",
        True,
        (
            Item("ROB-HR20", "六轴机器人 HR20 six-axis robot", 215_000, 141_000, 4, 10),
            Item("ROB-CR5", "协作机器人 CR5 cobot", 98_000, 61_000, 6, 9),
            Item("ROB-W3", "焊接工作站 WeldCell W3", 460_000, 305_000, 2, 5),
        ),
    ),
    (
        "SW",
        "工业软件 Industrial software",
        False,
        (
            Item("SW-MES", "制造执行系统 MES", 320_000, 60_000, 1, 5),
            Item("SW-IOT", "设备联网平台 IoT Connect", 68_000, 12_000, 3, 6),
        ),
    ),
    (
        "SV",
        "服务 Services",
        False,
        (
            Item("SV-IMP", "安装调试 Installation and commissioning", 45_000, 26_000, 3, 6),
            Item("SV-MNT", "年度维保 Annual maintenance contract", 85_000, 36_000, 2, 8),
            Item("SV-TRN", "操作培训 Operator training", 22_000, 9_000, 3, 5),
        ),
    ),
)
ITEMS = tuple(item for _c, _n, _k, items in PRODUCT_LINES for item in items)

# The trade's year: Chinese New Year empties the factories in February, budgets are spent by year end.
SEASON = {1: 0.85, 2: 0.55, 3: 0.95, 4: 0.95, 5: 1.0, 6: 1.1, 7: 0.9, 8: 0.85, 9: 1.1, 10: 0.95, 11: 1.25, 12: 1.5}

BRANDS = (
    ("恒通", "Hengtong"),
    ("宏达", "Hongda"),
    ("金桥", "Jinqiao"),
    ("远航", "Yuanhang"),
    ("瑞丰", "Ruifeng"),
    ("博远", "Boyuan"),
    ("海川", "Haichuan"),
    ("启明", "Qiming"),
    ("立信", "Lixin"),
    ("精诚", "Jingcheng"),
    ("鼎盛", "Dingsheng"),
    ("永泰", "Yongtai"),
    ("天工", "Tiangong"),
    ("华锐", "Huarui"),
    ("凯达", "Kaida"),
    ("新亚", "Xinya"),
    ("振华", "Zhenhua"),
    ("三和", "Sanhe"),
    ("德润", "Derun"),
    ("明阳", "Mingyang"),
    ("盛世", "Shengshi"),
    ("东升", "Dongsheng"),
    ("力源", "Liyuan"),
    ("信达", "Xinda"),
)
INDUSTRIES = (
    # Chinese name part, English name part, industry field
    ("精密机械", "Precision Machinery", "Machinery 机械"),
    ("汽车零部件", "Auto Parts", "Automotive 汽车"),
    ("模具", "Moulds", "Machinery 机械"),
    ("电子科技", "Electronics", "Electronics 电子"),
    ("新能源科技", "New Energy", "New energy 新能源"),
    ("医疗器械", "Medical Devices", "Medical devices 医疗器械"),
    ("家电", "Home Appliances", "Appliances 家电"),
    ("航空部件", "Aero Components", "Aerospace 航空航天"),
    ("五金制品", "Hardware", "Metalworking 五金"),
)
CONTACTS = (
    ("张建", "Zhang Jian", "生产副总 VP production", True),
    ("李芳", "Li Fang", "采购经理 Purchasing manager", False),
    ("王强", "Wang Qiang", "设备部长 Head of equipment", False),
    ("陈静", "Chen Jing", "总经理 General manager", True),
    ("刘洋", "Liu Yang", "工艺工程师 Process engineer", False),
)
EVIDENCE = {
    2: "与生产副总面谈，确认产能扩张需求与预算 Met the VP of production: capacity needs and budget confirmed",
    3: "技术方案与试切样件获客户认可 Technical proposal and test cuts accepted",
    4: "商务条款与交期双方确认 Commercial terms and delivery agreed",
    5: "合同已签署，预付款到账 Contract signed, deposit received",
}
NEXT_STEPS = {  # what an open deal waits for, by the stage it is in
    1: "约设备部长现场调研 Site survey with the head of equipment",
    2: "提交技术方案并安排试切 Send the proposal, book the test cut",
    3: "报价评审，约采购谈判 Quote review, negotiation with purchasing",
    4: "合同法务审核，确认预付款 Contract with legal, confirm the deposit",
}
LOST_REASONS = (
    "价格 Price: a competitor 12 % cheaper",
    "竞争对手 Competitor: incumbent supplier kept the account",
    "预算取消 Budget cut: expansion postponed",
    "交期 Delivery time too long",
    "无决策 No decision: project on hold",
)
ACTIVITY_NOTES = {
    ActivityKind.VISIT: (
        "现场拜访，参观车间，了解换型需求 On-site visit, toured the shop floor",
        "陪同客户参观样板工厂 Reference-site visit with the customer",
        "拜访设备部长，收集工艺图纸 Visit to the head of equipment, drawings collected",
    ),
    ActivityKind.CALL: (
        "电话跟进报价 Follow-up call on the quotation",
        "确认试切时间 Call to fix the test-cut date",
        "电话沟通付款节点 Call about payment milestones",
    ),
    ActivityKind.MEETING: (
        "技术交流会 Technical workshop with the engineering team",
        "商务谈判会议 Commercial negotiation meeting",
        "方案汇报 Solution presentation to management",
    ),
}


def display_names(person: Person) -> dict[str, str]:
    """The user's name fields: shown as "王磊 Wang Lei" (`User.__str__` is first + last name)."""
    return {"first_name": person.name_zh, "last_name": person.name_en}


def seed_organisation() -> list[User]:
    """The demo company's regions and people: an admin, the director, a manager per area, reps per team.
    Returns the reps."""
    # One hash for every demo user: hashing is deliberately slow.
    password = make_password(DEMO_PASSWORD)

    def person(p: Person, role: str, region: Region | None) -> User:
        user = user_create(username=p.username, password=None, role=role, region=region, **display_names(p))
        user.password = password
        user.save(update_fields=["password"])
        return user

    person(ADMIN, Role.ADMIN, None)
    hq = region_create(name=COMPANY_NAME, code="HQ", kind=RegionKind.COMPANY)
    hq.manager = person(DIRECTOR, Role.DIRECTOR, hq)
    hq.save(update_fields=["manager"])
    reps = []
    for area_spec in AREAS:
        area = region_create(name=area_spec.name, code=area_spec.code, kind=RegionKind.AREA, parent=hq)
        manager = person(area_spec.manager, Role.MANAGER, area)
        area.manager = manager
        area.save(update_fields=["manager"])
        for team_spec in area_spec.teams:
            team = region_create(
                name=team_spec.name, code=team_spec.code, kind=RegionKind.PROVINCE, parent=area, manager=manager
            )
            reps += [person(rep, Role.REP, team) for rep in team_spec.reps]
    return reps


def history_start(today: date, start_month: int) -> date:
    """The first day of the demo's history: 18 months back, or the start of last fiscal year if earlier."""
    year, month = divmod(today.year * 12 + today.month - 1 - HISTORY_MONTHS, 12)
    last_fy = periods.year(periods.fiscal_year_of(today, start_month) - 1, start_month)
    return min(date(year, month + 1, 1), last_fy.start)


def months_between(start: date, end: date) -> list[date]:
    """The first days of the months from `start`'s to `end`'s."""
    out, day = [], start.replace(day=1)
    while day <= end:
        out.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return out


@dataclasses.dataclass
class Deal:
    rep: Rep
    customer: int  # index into the rep's customers
    lines: list[tuple[Item, int, int]]  # item, quantity, amount
    created: date
    close: date  # the close day (closed deals) or the expected one (open deals)
    reached: int  # the last open stage entered (1-4)
    outcome: str  # "won", "lost" or "open"
    expected_first: date | None = None  # the first expected close date, when it slipped
    in_stage: int = 0  # open deals: days since they entered their stage

    @property
    def amount(self) -> int:
        return sum(a for _i, _q, a in self.lines)


class Story:
    """The deals of the demo, planned in plain Python (no database): a rep's months, deal by deal."""

    def __init__(self, today: date, start_month: int, seed: int = SEED):
        self.today = today
        self.rng = random.Random(f"{seed}-{today.isoformat()}")
        self.start = history_start(today, start_month)
        self.this_fy = periods.period_of(today, periods.YEAR, start_month)
        self.customer_since: dict[str, list[date]] = {}

    def target(self, rep: Rep, month: date) -> float:
        """What the rep signs in a month: his level, the season, this year's growth and form, some noise."""
        value = rep.monthly * SEASON[month.month] * self.rng.uniform(0.88, 1.12)
        if month >= self.this_fy.start:
            value *= GROWTH * rep.form
        return value

    def pick_lines(self, budget: float | None = None) -> list[tuple[Item, int, int]]:
        """A deal's products: a main item (the largest that fits `budget`), sometimes with installation."""
        item = self.rng.choices(ITEMS, weights=[i.weight for i in ITEMS])[0]
        qty = self.rng.randint(1, item.max_qty)
        discount = self.rng.choice((0.85, 0.9, 0.92, 0.95, 1.0))
        if budget is not None and item.price * qty * discount > budget:
            fitting = [i for i in ITEMS if i.price * 0.85 <= budget]
            if not fitting:
                return []
            item = max(fitting, key=lambda i: i.price)
            qty = max(1, min(item.max_qty, int(budget // (item.price * 0.9))))
        amount = min(item.price * qty * discount, budget or float("inf"))
        lines = [(item, qty, int(round(amount, -2)))]
        if item.code.startswith(("CNC", "ROB")) and self.rng.random() < 0.3:
            extra = next(i for i in ITEMS if i.code == "SV-IMP")
            if budget is None or lines[0][2] + extra.price <= budget:
                lines.append((extra, 1, extra.price))
        return lines

    def lost_lines(self) -> list[tuple[Item, int, int]]:
        return self.pick_lines(self.rng.uniform(30_000, 700_000)) or self.pick_lines()

    def cycle(self) -> int:
        return int(self.rng.triangular(30, 120, 55))

    def closed_deals(self, rep: Rep, month: date) -> list[Deal]:
        """A month's won deals (summing to what the rep signs) and lost ones (about 3 for each won)."""
        last_day = date(month.year, month.month, monthrange(month.year, month.month)[1])
        end = min(last_day, self.today)
        if end < month:
            return []
        share = ((end - month).days + 1) / ((last_day - month).days + 1)
        left = self.target(rep, month) * share
        deals = []
        while left >= 15_000:
            lines = self.pick_lines(left)
            if not lines:
                break
            deals.append(self.closed(rep, lines, month, end, "won"))
            left -= deals[-1].amount
        won = len(deals)
        lost = round(won * (1 - rep.win_rate) / rep.win_rate * self.rng.uniform(0.85, 1.15))
        # Lost deals are mostly the smaller quotes: a big project is rarely let go.
        deals += [self.closed(rep, self.lost_lines(), month, end, "lost") for _ in range(lost)]
        return deals

    def closed(self, rep: Rep, lines, first: date, last: date, outcome: str) -> Deal:
        close = first + timedelta(days=self.rng.randint(0, (last - first).days))
        reached = 4 if outcome == "won" else self.rng.choices((1, 2, 3, 4), weights=(35, 30, 22, 13))[0]
        created = close - timedelta(days=self.cycle())
        slipped = close - timedelta(days=self.rng.randint(10, 45)) if self.rng.random() < 0.3 else None
        if slipped is not None and slipped <= created:
            slipped = None
        return Deal(rep, self.customer(rep, created, outcome), lines, created, close, reached, outcome, slipped)

    def open_deals(self, rep: Rep) -> list[Deal]:
        """Today's pipeline: what the rep works on for the next four months (about 2.2x what he will sign,
        late stages nearest), plus a deal or two whose close date has passed unnoticed."""
        deals = []
        for k in range(4):
            month = (self.today.replace(day=1) + timedelta(days=32 * k)).replace(day=1)
            last_day = date(month.year, month.month, monthrange(month.year, month.month)[1])
            first = max(month, self.today + timedelta(days=1))
            if first > last_day:
                continue
            left = self.target(rep, month) * 2.2 * ((last_day - first).days + 1) / ((last_day - month).days + 1)
            while left >= 15_000:
                lines = self.pick_lines(left * 0.7) or self.pick_lines()
                close = first + timedelta(days=self.rng.randint(0, (last_day - first).days))
                weights = ((10, 25, 35, 30), (20, 35, 30, 15), (35, 35, 20, 10), (55, 30, 10, 5))[k]
                reached = self.rng.choices((1, 2, 3, 4), weights=weights)[0]
                # Most deals moved lately; about one in four sits in its stage longer than the stage expects.
                in_stage = self.rng.randint(1, 24)
                created = self.today - timedelta(
                    days=in_stage + sum(self.rng.randint(8, 25) for _ in range(reached - 1))
                )
                customer = self.customer(rep, created, "open")
                deals.append(Deal(rep, customer, lines, created, close, reached, "open", in_stage=in_stage))
                left -= deals[-1].amount
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            created = self.today - timedelta(days=self.rng.randint(60, 110))
            close = self.today - timedelta(days=self.rng.randint(3, 25))
            customer = self.customer(rep, created, "open")
            deals.append(Deal(rep, customer, self.pick_lines(), created, close, 2, "open", in_stage=40))
        return deals

    def customers(self, rep: Rep) -> list[date]:
        """When each of the rep's customers came: 12 accounts (9 before the history, 3 won during it: 增量), then
        `PROSPECTS` prospects who mostly ask for quotes and buy elsewhere."""
        if rep.username not in self.customer_since:
            span = (self.today - self.start).days
            before = [self.start - timedelta(days=self.rng.randint(200, 1500)) for _ in range(9)]
            during = sorted(self.start + timedelta(days=int(span * f)) for f in (0.25, 0.5, 0.75))
            prospects = [self.start + timedelta(days=self.rng.randint(-300, span - 30)) for _ in range(PROSPECTS)]
            self.customer_since[rep.username] = before + during + prospects
        return self.customer_since[rep.username]

    def customer(self, rep: Rep, created: date, outcome: str) -> int:
        since = self.customers(rep)
        known = [i for i, day in enumerate(since) if day <= created] or [0]
        # Key accounts (the first two) buy most often; prospects are where most deals are lost.
        prospect = {"won": 0.3, "lost": 3.0, "open": 1.5}[outcome]
        weights = [4.0 if i < 2 else prospect if i >= ACCOUNTS else 1.0 for i in known]
        return self.rng.choices(known, weights=weights)[0]

    def deals(self) -> list[Deal]:
        out = []
        for area in AREAS:
            for team in area.teams:
                for rep in team.reps:
                    for month in months_between(self.start, self.today):
                        out += self.closed_deals(rep, month)
                    out += self.open_deals(rep)
        return out


def _aware(day: date, hour: int, now: datetime) -> datetime:
    return min(timezone.make_aware(datetime.combine(day, time(hour))), now - timedelta(minutes=5))


class Command(BaseCommand):
    help = "Load the built-in demo company (idempotent: a second run changes nothing)."

    def handle(self, *args, **options):
        if Region.objects.filter(code="HQ").exists():
            self.stdout.write("Demo data already loaded; nothing changed.")
            return
        with transaction.atomic():
            counts = self._load()
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {summary}."))

    def _load(self) -> dict[str, int]:
        company = CompanySettings.load()
        company.fiscal_year_start_month = 1
        company.save()
        currency = ensure_company_currency()
        usd, _ = Currency.objects.get_or_create(code="USD", defaults={"name": "US dollar"})
        ExchangeRate.objects.get_or_create(
            currency=usd, valid_from=date(2020, 1, 1), defaults={"rate": Decimal("7.10")}
        )
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        story = Story(self.today, company.fiscal_year_start_month)
        reps = {u.username: u for u in seed_organisation()}
        products = self._products()
        customers = self._customers(story, reps)
        pipeline = pipeline_ensure_default()
        stages = {s.order: s for s in pipeline.stages.all()}
        self.won_stage = next(s for s in stages.values() if s.is_won)
        self.lost_stage = next(s for s in stages.values() if s.is_lost)
        plan = story.deals()
        opportunities = self._deals(plan, reps, customers, products, pipeline, stages, currency)
        collections = self._collections(plan, opportunities, reps, currency, story.rng)
        activities = self._activities(plan, opportunities, reps, customers, story.rng)
        customer_refresh_first_won(sorted({o.customer_id for o in opportunities if o.stage_id == self.won_stage.pk}))
        events.import_committed.publish()  # attainment and alerts are rebuilt from the facts after commit
        won = sum(1 for d in plan if d.outcome == "won")
        return {
            "reps": len(reps),
            "customers": sum(len(c) for c in customers.values()),
            "deals": len(plan),
            "won": won,
            "lost": sum(1 for d in plan if d.outcome == "lost"),
            "open": sum(1 for d in plan if d.outcome == "open"),
            "collections": collections,
            "activities": activities,
        }

    def _products(self) -> dict[str, Product]:
        products = {}
        for code, name, is_key, items in PRODUCT_LINES:
            line = ProductLine.objects.create(code=code, name=name, is_key=is_key)
            for item in items:
                products[item.code] = Product.objects.create(
                    line=line,
                    code=item.code,
                    name=item.name,
                    list_price=Decimal(item.price),
                    unit_cost=Decimal(item.cost),
                )
        return products

    def _customers(self, story: Story, reps: dict[str, User]) -> dict[str, list[Customer]]:
        """Each rep's customers in his team's cities: 2 key accounts, A, B and C tiers, then prospects (C)."""
        rng = story.rng
        combos = rng.sample([(b, i) for b in BRANDS for i in INDUSTRIES], k=len(reps) * (ACCOUNTS + PROSPECTS))
        tiers = [Tier.KEY, Tier.KEY, Tier.A, Tier.A, Tier.A, Tier.B, Tier.B, Tier.B, Tier.C, Tier.C, Tier.B, Tier.C]
        tiers += [Tier.C] * PROSPECTS
        out: dict[str, list[Customer]] = {}
        rows = []
        for area in AREAS:
            for team in area.teams:
                for rep in team.reps:
                    user = reps[rep.username]
                    for k, since in enumerate(story.customers(rep)):
                        (brand_zh, brand_en), (ind_zh, ind_en, industry) = combos.pop()
                        city_zh, city_en = rng.choice(team.cities)
                        customer = Customer(
                            name=f"{city_zh}{brand_zh}{ind_zh}有限公司 {city_en} {brand_en} {ind_en}",
                            region_id=user.region_id,
                            owner=user,
                            industry=industry,
                            tier=tiers[k],
                            created_at=_aware(since, 9, self.now),
                        )
                        rows.append(customer)
                        out.setdefault(rep.username, []).append(customer)
        Customer.objects.bulk_create(rows, batch_size=BATCH)
        Contact.objects.bulk_create(
            [
                Contact(
                    customer=c,
                    name=f"{zh} {en}",
                    title=title,
                    phone=f"1{rng.randint(3, 9)}{rng.randint(100000000, 999999999)}",
                    is_decision_maker=decides,
                )
                for c in rows
                for zh, en, title, decides in rng.sample(CONTACTS, 2)
            ],
            batch_size=BATCH,
        )
        for username, mine in out.items():  # 5星评级 of each rep's first key account
            customer_rate(
                customer=mine[0],
                stars=rng.choice((4, 5)),
                reasons="预算已批，决策链清晰，年采购潜力超过两百万 Budget approved, decision chain mapped, "
                "yearly potential above 2 M",
                actor=reps[username],
            )
        return out

    def _deals(self, plan, reps, customers, products, pipeline, stages, currency) -> list[Opportunity]:
        rows = []
        walks = [self._moves(deal, stages) for deal in plan]
        for deal, moves in zip(plan, walks, strict=True):
            owner = reps[deal.rep.username]
            customer = customers[deal.rep.username][deal.customer]
            final = {"won": self.won_stage, "lost": self.lost_stage}.get(deal.outcome, stages[deal.reached])
            item, qty, _amount = deal.lines[0]
            short = customer.name.split("有限公司")[0]
            amount = Decimal(deal.amount)
            rows.append(
                Opportunity(
                    name=f"{short} · {item.name.split(' ')[0]} ×{qty}",
                    customer=customer,
                    owner=owner,
                    region_id=owner.region_id,  # 业绩归属: the owner's team (nobody moved team in the demo)
                    pipeline=pipeline,
                    stage=final,
                    amount=amount,
                    currency=currency,
                    amount_company=amount,
                    expected_close_date=deal.close,
                    closed_on=deal.close if deal.outcome != "open" else None,
                    probability=final.probability,
                    forecast_category=final.forecast_category,
                    lost_reason=self._pick(LOST_REASONS, deal) if deal.outcome == "lost" else "",
                    next_step=NEXT_STEPS[deal.reached] if deal.outcome == "open" else "",
                    next_step_date=self.today + timedelta(days=7) if deal.outcome == "open" else None,
                    created_at=moves[0][1],
                    stage_entered_at=moves[-1][1],
                    version=len(moves),  # one per stage entered, as the services count them
                )
            )
        Opportunity.objects.bulk_create(rows, batch_size=BATCH)
        lines, history, evidence, audits = [], [], [], []
        opportunity_type = ContentType.objects.get_for_model(Opportunity)
        for deal, opp, moves in zip(plan, rows, walks, strict=True):
            for item, qty, amount in deal.lines:
                product = products[item.code]
                lines.append(
                    OpportunityLine(
                        opportunity=opp,
                        product_line_id=product.line_id,
                        product=product,
                        quantity=Decimal(qty),
                        amount=Decimal(amount),
                        amount_company=Decimal(amount),
                    )
                )
            previous = None
            for stage, at in moves:
                history.append(
                    OpportunityHistory(
                        opportunity=opp,
                        field="stage",
                        old_value=previous.name if previous else "",
                        new_value=stage.name,
                        old_stage=previous,
                        new_stage=stage,
                        changed_by=opp.owner,
                        changed_at=at,
                    )
                )
                if stage.evidence_required:
                    evidence.append(
                        StageEvidence(
                            opportunity=opp,
                            stage=stage,
                            text=EVIDENCE.get(stage.order, stage.evidence_required),
                            given_by=opp.owner,
                            given_at=at,
                        )
                    )
                previous = stage
            if deal.expected_first is not None:  # the close date slipped on the way
                history.append(
                    OpportunityHistory(
                        opportunity=opp,
                        field="expected_close_date",
                        old_value=str(deal.expected_first),
                        new_value=str(deal.close),
                        reason="客户推迟决策 The customer postponed the decision",
                        changed_by=opp.owner,
                        changed_at=moves[-1][1] - timedelta(hours=1) if len(moves) > 1 else moves[0][1],
                    )
                )
            audits.append(
                AuditLog(
                    actor=opp.owner,
                    action="opportunity.create",
                    content_type=opportunity_type,
                    object_id=str(opp.pk),
                    changes={"amount": [None, str(opp.amount)]},
                    at=opp.created_at,
                )
            )
        OpportunityLine.objects.bulk_create(lines, batch_size=BATCH)
        OpportunityHistory.objects.bulk_create(history, batch_size=BATCH)
        StageEvidence.objects.bulk_create(evidence, batch_size=BATCH)
        AuditLog.objects.bulk_create(audits, batch_size=BATCH)
        return rows

    def _moves(self, deal: Deal, stages: dict[int, Stage]) -> list[tuple[Stage, datetime]]:
        """The stages a deal entered, dated from its creation to its close (or to today, open deals)."""
        if deal.outcome == "open":  # the current stage entered `in_stage` days ago
            end = max(deal.created + timedelta(days=1), self.today - timedelta(days=deal.in_stage))
        else:
            end = deal.close
        span = max(1, (end - deal.created).days)
        if deal.outcome == "open":  # stages 2..reached, the last one entered at `end`
            n = deal.reached - 1
            days = [*sorted(int(span * (k + self._unit(deal, k)) / n) for k in range(1, n)), span] if n else []
        else:  # stages 2..reached, then the close
            days = sorted(int(span * (k + self._unit(deal, k)) / (deal.reached + 1)) for k in range(1, deal.reached))
        moves = [(stages[1], _aware(deal.created, 10, self.now))]
        for order, offset in zip(range(2, deal.reached + 1), days, strict=False):
            moves.append((stages[order], _aware(deal.created + timedelta(days=offset), 11, self.now)))
        if deal.outcome != "open":
            final = self.won_stage if deal.outcome == "won" else self.lost_stage
            moves.append((final, _aware(deal.close, 16, self.now)))
        return moves

    @staticmethod
    def _unit(deal: Deal, k: int) -> float:
        """A fixed jitter in [-0.3, 0.3) per deal and step, so moves are not evenly spaced."""
        return ((hash((deal.created.toordinal(), deal.close.toordinal(), k)) % 600) - 300) / 1000

    @staticmethod
    def _pick(options, deal: Deal):
        return options[(deal.created.toordinal() * 7 + deal.close.toordinal()) % len(options)]

    def _collections(self, plan, opportunities, reps, currency, rng) -> int:
        """回款 of won deals: a 30 % deposit at signing, the balance on delivery 30-90 days later (if come)."""
        rows = []
        for deal, opp in zip(plan, opportunities, strict=True):
            if deal.outcome != "won":
                continue
            amount = Decimal(deal.amount)
            deposit = (amount * Decimal("0.3")).quantize(Decimal("1"))
            owner = reps[deal.rep.username]
            rows.append(
                Collection(
                    opportunity=opp,
                    received_on=deal.close,
                    amount=deposit,
                    currency=currency,
                    amount_company=deposit,
                    note="预付款 Deposit",
                    created_by=owner,
                )
            )
            balance_on = deal.close + timedelta(days=rng.randint(30, 90))
            if balance_on <= self.today:
                rows.append(
                    Collection(
                        opportunity=opp,
                        received_on=balance_on,
                        amount=amount - deposit,
                        currency=currency,
                        amount_company=amount - deposit,
                        note="验收款 Balance on acceptance",
                        created_by=owner,
                    )
                )
        Collection.objects.bulk_create(rows, batch_size=BATCH)
        return len(rows)

    def _activities(self, plan, opportunities, reps, customers, rng) -> int:
        """Visits, calls and meetings: one or two along each deal's way, and 4-7 a week per rep lately."""
        kinds, weights = list(ActivityKind), (45, 40, 15)
        rows = []

        def add(owner, customer, opp, day):
            kind = rng.choices(kinds, weights=weights)[0]
            rows.append(
                Activity(
                    customer=customer,
                    opportunity=opp,
                    owner=owner,
                    kind=kind,
                    date=day,
                    notes=rng.choice(ACTIVITY_NOTES[kind]),
                    created_at=_aware(day, 18, self.now),
                )
            )

        open_by_rep: dict[str, list[Opportunity]] = {}
        for deal, opp in zip(plan, opportunities, strict=True):
            end = min(deal.close, self.today)
            for _ in range(rng.choice((1, 1, 2))):
                day = deal.created + timedelta(days=rng.randint(0, max(0, (end - deal.created).days)))
                add(opp.owner, opp.customer, opp, day)
            if deal.outcome == "open":
                open_by_rep.setdefault(deal.rep.username, []).append(opp)
        for username, owner in reps.items():
            mine = open_by_rep.get(username, [])
            for week in range(10):
                for _ in range(rng.randint(4, 7)):
                    day = self.today - timedelta(days=7 * week + rng.randint(0, 6))
                    if day.weekday() >= 5:
                        day -= timedelta(days=day.weekday() - 4)  # visits happen on weekdays
                    opp = rng.choice(mine) if mine and rng.random() < 0.7 else None
                    customer = opp.customer if opp else rng.choice(customers[username])
                    add(owner, customer, opp, day)
        Activity.objects.bulk_create(rows, batch_size=BATCH)
        return len(rows)
