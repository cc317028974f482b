"""The review's and the home pages' company (its fixtures are in the conftest.py of tests/coaching/review/ and
tests/coaching/home/): the persona company's FY2027 signed-revenue plan split to the areas
(East, North) and their reps, approved, with hand-built won, lost and open deals, activities and alerts, and the
attainment snapshots recomputed on `DAY` (a Saturday in Q2; the review's week starts on `MONDAY`).

`FACTS` lists every deal as plain values, so tests replay the figures in plain Python, independently of the
selectors they check."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pipeline.models import Activity, ActivityKind, ForecastCategory
from pipeline.services import opportunity_move_stage
from targets.attainment.services import attainment_recompute
from targets.models import Alert, AlertKind, AlertRule, AlertSeverity, AlertState
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import make_deal

NOW = datetime(2027, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DAY = NOW.date()
MONDAY = date(2027, 5, 10)
FY_START, FY_END = date(2027, 1, 1), date(2027, 12, 31)


@dataclass(frozen=True)
class Fact:
    owner: str  # the persona's attribute name on `org`
    amount: str
    day: date  # close day (won, lost) or expected close date (open)
    status: str  # won, lost, open
    category: str = ForecastCategory.PIPELINE


FACTS = [
    Fact("rep", "50000", date(2027, 3, 2), "won"),
    Fact("rep", "40000", date(2027, 5, 11), "won"),
    Fact("rep", "99999", date(2026, 12, 1), "won"),  # last year: counts for nothing of FY2027
    Fact("rep", "5000", date(2027, 3, 5), "lost"),
    Fact("rep", "100000", date(2027, 6, 30), "open", ForecastCategory.COMMIT),
    Fact("rep", "20000", date(2028, 2, 1), "open", ForecastCategory.COMMIT),  # after the plan's period
    Fact("rep_same_team", "30000", date(2027, 4, 1), "won"),
    Fact("rep_same_team", "80000", date(2027, 9, 30), "open", ForecastCategory.BEST_CASE),
    Fact("rep_js", "10000", date(2027, 2, 1), "won"),
    Fact("rep_js", "7000", date(2027, 4, 5), "lost"),
    Fact("rep_js", "3000", date(2027, 4, 6), "lost"),
    Fact("rep_js", "60000", date(2027, 7, 31), "open"),
    Fact("rep_other", "150000", date(2027, 4, 20), "won"),
    Fact("rep_other", "70000", date(2027, 8, 1), "open", ForecastCategory.COMMIT),
]

# Activities (owner, day): two of rep's and one of rep_js's in the week, one of rep's the week before.
ACTIVITIES = [
    ("rep", date(2027, 5, 10)),
    ("rep", date(2027, 5, 14)),
    ("rep_js", date(2027, 5, 12)),
    ("rep", MONDAY - timedelta(days=1)),
]


@pytest.fixture
def review_day(time_machine):
    time_machine.move_to(NOW, tick=False)


def build_company(org, metrics):
    """The plan (1,200,000: East and North 600,000 each, split equally to their reps), facts, snapshots."""
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027",
        total=Decimal("1200000"),
        owner=org.director,
        actor=org.director,
    )
    root = plan.nodes.get(parent__isnull=True)
    areas = {
        n.region_id: n for n in target_split(node=root, dimension="region", method="equal", actor=org.director).children
    }
    east, north = areas[org.east.pk], areas[org.north.pk]
    reps = {}
    for node, manager in ((east, org.manager), (north, org.manager_north)):
        for child in target_split(node=node, dimension="rep", method="equal", actor=manager).children:
            reps[child.rep_id] = child
    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    won = next(s for s in org.stages if s.is_won)
    lost = next(s for s in org.stages if s.is_lost)
    for fact in FACTS:
        owner = getattr(org, fact.owner)
        if fact.status == "won":
            make_deal(owner=owner, amount=fact.amount, stage=won, close=fact.day)
        elif fact.status == "lost":
            deal = make_deal(owner=owner, amount=fact.amount, close=fact.day)
            opportunity_move_stage(opportunity=deal, stage=lost, actor=owner, lost_reason="Price", closed_on=fact.day)
        else:
            make_deal(owner=owner, amount=fact.amount, close=fact.day, forecast_category=fact.category)
    deal = None
    for owner, day in ACTIVITIES:
        person = getattr(org, owner)
        customer = person.customers.first()
        Activity.objects.create(customer=customer, owner=person, kind=ActivityKind.VISIT, date=day)
        deal = deal or customer
    rule = AlertRule.objects.create(kind=AlertKind.PACE_GAP)
    for name, state in (("rep_js", AlertState.OPEN), ("rep_js", AlertState.RESOLVED), ("rep_other", AlertState.OPEN)):
        node = reps[getattr(org, name).pk]
        Alert.objects.create(
            rule=rule,
            severity=AlertSeverity.WARNING,
            owner=getattr(org, name),
            node=node,
            subject_key=f"node:{node.pk}:{state}",
            period_key="FY2027",
            state=state,
        )
    attainment_recompute(plan=plan, as_of=DAY)
    return SimpleNamespace(plan=plan, root=root, east=east, north=north, reps=reps)


@pytest.fixture
def company(org, metrics, review_day):
    return build_company(org, metrics)


def team_of(org, metrics, size: int):
    """A team of `size` reps under its own region, with a plan split to them, a deal each and snapshots."""
    from crm.models import RegionKind, Role
    from targets.attainment.services import attainment_recompute
    from targets.services import plan_approve, plan_create, plan_submit, target_split
    from tests.factories import UserFactory, make_deal, make_region

    team = make_region(f"Team {size}", f"T{size}", parent=org.east, kind=RegionKind.TEAM)
    manager = UserFactory(username=f"lead{size}", role=Role.MANAGER, region=team)
    team.manager = manager
    team.save(update_fields=["manager"])
    won = next(s for s in org.stages if s.is_won)
    for i in range(size):
        rep = UserFactory(username=f"t{size}rep{i}", role=Role.REP, region=team)
        make_deal(owner=rep, amount="1000", stage=won, close=date(2027, 5, 3))
        make_deal(owner=rep, amount="500", close=date(2027, 6, 3))
    # The team's own plan (a region's plan comes before the company's for the same metric), split to its reps.
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027",
        total=Decimal("90000"),
        region=team,
        owner=org.manager,
        actor=org.director,
    )
    target_split(node=plan.nodes.get(), dimension="rep", method="equal", actor=org.manager)
    attainment_recompute(plan=plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin), as_of=DAY)
    return team, manager


# --- the independent replay -------------------------------------------------------------------------


def half_up(value: Decimal, places: str) -> Decimal:
    from decimal import ROUND_HALF_UP

    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def replay(org, owners: set[str], target: Decimal, *, day: date = DAY) -> dict:
    """The figures of the given reps' deals, by hand: what the review must show for them."""
    mine = [f for f in FACTS if f.owner in owners]
    actual = sum((Decimal(f.amount) for f in mine if f.status == "won" and FY_START <= f.day <= day), Decimal(0))
    open_ = sum((Decimal(f.amount) for f in mine if f.status == "open" and FY_START <= f.day <= FY_END), Decimal(0))
    won = sum(1 for f in mine if f.status == "won" and FY_START <= f.day <= day)
    lost = sum(1 for f in mine if f.status == "lost" and FY_START <= f.day <= day)
    probability = org.stages[0].probability  # open deals sit in the first stage, at its probability
    weighted_raw = sum(
        (Decimal(f.amount) * probability for f in mine if f.status == "open" and FY_START <= f.day <= FY_END),
        Decimal(0),
    )
    elapsed, whole = (day - FY_START).days + 1, (FY_END - FY_START).days + 1
    gap = max(target - actual, Decimal(0))
    return {
        "target": target,
        "actual": actual,
        "open": open_,
        "weighted": half_up(weighted_raw / 100, "0.01"),
        "attainment_pct": half_up(actual * 100 / target, "0.1"),
        "time_progress_pct": half_up(Decimal(elapsed * 100) / whole, "0.1"),
        "pace_gap_points": half_up((actual / target - Decimal(elapsed) / whole) * 100, "0.1"),
        "gap": gap,
        "coverage": half_up(open_ / gap, "0.01") if gap else None,
        "run_rate": half_up(actual * whole / elapsed, "0.01"),
        "win_rate": half_up(Decimal(won * 100) / (won + lost), "0.1") if won + lost else None,
        "won": won,
        "lost": lost,
        "activities": sum(1 for o, d in ACTIVITIES if o in owners and MONDAY <= d <= MONDAY + timedelta(days=6)),
    }
