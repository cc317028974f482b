"""The demo company tells a believable story (`seed_demo`, `seed_demo_targets`, `seed_demo_coaching`).

The demo is loaded once per module and frozen day (late in a quarter; mid-quarter early in the fiscal year), in a
transaction rolled back at the end. Every figure is recomputed here from the rows, independently of the app's
attainment code: each rep's quarter attainment against the plan in force, the win rate, the cycle times, the
seasons; then the invariants the pipeline services keep (history, close days, attribution), the meetings and
forecasts, the tour's logins and the absence of placeholder names; and a second run changes nothing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from django.test import RequestFactory, override_settings
from django.utils import timezone

from coaching.models import ActionItemStatus, ForecastLevel, ForecastSubmission, Meeting, MeetingStatus
from crm.models import Customer, Region, Role, User
from pipeline.management.commands.seed_demo import AREAS, DEMO_PASSWORD, TOUR_LOGINS, Story
from pipeline.models import Collection, Opportunity, OpportunityHistory
from salesmgmt.lib import periods
from targets.models import AttainmentSnapshot, PlanStatus, TargetNode, TargetPlan

# One worker runs the module: the demo is loaded once per frozen day, not once per test a worker picks up.
pytestmark = pytest.mark.xdist_group("demo_story")

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYS = {
    "late-in-quarter": datetime(2026, 12, 30, 14, tzinfo=SHANGHAI),
    "mid-quarter": datetime(2027, 5, 12, 10, tzinfo=SHANGHAI),
}
COMMANDS = ("seed_demo", "seed_demo_targets", "seed_demo_coaching")


def load_demo():
    for command in COMMANDS:
        call_command(command, stdout=StringIO())


@pytest.fixture(scope="module", params=list(DAYS), ids=list(DAYS))
def demo(request, django_db_setup, django_db_blocker):
    """The demo loaded on a frozen day; rolled back after the module's tests."""
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])  # as every test
    with time_machine.travel(DAYS[request.param], tick=False), django_db_blocker.unblock(), fast:
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            load_demo()
            today = timezone.localdate()
            yield SimpleNamespace(name=request.param, today=today, quarter=periods.period_of(today, periods.QUARTER))
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def rep_quarters(demo) -> dict[str, tuple[Decimal, Decimal, TargetNode]]:
    """Each rep's quarter target in force and his won revenue in it so far, summed here from the deals."""
    nodes = TargetNode.objects.filter(
        plan__status=PlanStatus.APPROVED,
        plan__region__isnull=True,
        rep__isnull=False,
        period_kind=periods.QUARTER,
        period_start=demo.quarter.start,
    ).select_related("rep")
    won = defaultdict(Decimal)
    for owner, amount in Opportunity.objects.filter(
        stage__is_won=True, closed_on__range=(demo.quarter.start, demo.today)
    ).values_list("owner__username", "amount_company"):
        won[owner] += amount
    return {n.rep.username: (won[n.rep.username], n.amount, n) for n in nodes}


def test_every_rep_is_within_reach_of_his_quarter_target(demo, db):
    figures = rep_quarters(demo)
    reps = set(User.objects.filter(role=Role.REP).values_list("username", flat=True))
    assert set(figures) == reps and len(reps) == 10
    elapsed = ((demo.today - demo.quarter.start).days + 1) / ((demo.quarter.end - demo.quarter.start).days + 1)
    # Attainment against the quarter's time progress (时间进度): the same as attainment once the quarter is done.
    pace = {rep: float(actual / target) / elapsed * 100 for rep, (actual, target, _n) in figures.items()}
    assert all(40 <= p <= 160 for p in pace.values()), pace
    assert 70 <= statistics.median(pace.values()) <= 120, pace
    assert max(pace.values()) - min(pace.values()) >= 15, "some reps ahead, some behind"
    if demo.name == "late-in-quarter":
        attainment = [float(actual / target) * 100 for actual, target, _n in figures.values()]
        assert all(40 <= a <= 160 for a in attainment) and 70 <= statistics.median(attainment) <= 120


def test_the_plan_is_approved_in_force_and_its_attainment_recomputed(demo, db):
    plan = TargetPlan.objects.get(region__isnull=True, period_key=f"FY{demo.today.year}")
    assert plan.status == PlanStatus.APPROVED and plan.current_version == 2  # the approved reallocation
    # Area -> province -> rep -> quarter -> month: every rep has 12 monthly targets summing to his year.
    months = TargetNode.objects.filter(plan=plan, period_kind=periods.MONTH)
    assert months.count() == 10 * 12
    february = months.filter(period_start__month=2)
    november = months.filter(period_start__month=11)
    assert sum(n.amount for n in february) < sum(n.amount for n in november)  # the seasons kept
    for rep, (actual, _target, node) in rep_quarters(demo).items():
        snapshot = AttainmentSnapshot.objects.get(node=node, as_of=demo.today)
        assert snapshot.actual == actual, rep


def test_win_rate_cycle_times_and_seasons_are_believable(demo, db):
    closed = list(
        Opportunity.objects.filter(closed_on__isnull=False).values_list("stage__is_won", "created_at", "closed_on")
    )
    won = sum(1 for is_won, _c, _d in closed if is_won)
    assert 0.20 <= won / len(closed) <= 0.35
    cycles = [(day - timezone.localtime(created).date()).days for _w, created, day in closed]
    assert min(cycles) >= 30 and max(cycles) <= 120
    # Eighteen months at least, and all of last fiscal year: the plan is set from it.
    last_year = periods.year(demo.today.year - 1)
    first = min(day for _w, _c, day in closed)
    assert first < last_year.start + timedelta(days=31) and (demo.today - first).days >= 530
    by_month = defaultdict(Decimal)
    for day, amount in Opportunity.objects.filter(
        stage__is_won=True, closed_on__range=(last_year.start, last_year.end)
    ).values_list("closed_on", "amount_company"):
        by_month[day.month] += amount
    assert min(by_month, key=by_month.get) == 2  # Chinese New Year
    assert max(by_month, key=by_month.get) == 12  # the year-end peak


def test_deals_keep_the_services_invariants(demo, db):
    deals = {o.pk: o for o in Opportunity.objects.select_related("stage", "owner")}
    assert all((o.closed_on is not None) == o.stage.is_closed for o in deals.values())
    assert all(o.region_id == o.owner.region_id for o in deals.values())  # credited to the owner's team
    stages = defaultdict(list)
    for row in OpportunityHistory.objects.filter(field="stage").order_by("changed_at", "pk"):
        stages[row.opportunity_id].append(row)
    now = timezone.now()
    for pk, rows in stages.items():
        deal = deals[pk]
        assert rows[0].old_stage_id is None and rows[-1].new_stage_id == deal.stage_id
        assert all(a.new_stage_id == b.old_stage_id for a, b in zip(rows, rows[1:], strict=False))
        assert deal.version == len(rows) and deal.stage_entered_at == rows[-1].changed_at <= now
    assert set(stages) == set(deals)
    won = Opportunity.objects.filter(stage__is_won=True)
    assert sum(len(stages[o.pk]) for o in won) == 5 * won.count()  # every won deal walked all four stages
    collected = defaultdict(Decimal)
    for deal_id, amount in Collection.objects.values_list("opportunity_id", "amount_company"):
        collected[deal_id] += amount
    assert all(deals[pk].stage.is_won and total <= deals[pk].amount_company for pk, total in collected.items())
    first_won = {}
    for customer_id, day in won.order_by("closed_on").values_list("customer_id", "closed_on"):
        first_won.setdefault(customer_id, day)
    assert dict(Customer.objects.filter(first_won_on__isnull=False).values_list("pk", "first_won_on")) == first_won
    assert Opportunity.objects.open().filter(expected_close_date__gte=demo.today).count() >= 10 * 8


def test_the_east_review_was_held_last_week_and_this_weeks_is_planned(demo, db):
    east = Region.objects.get(code="EAST")
    monday = demo.today - timedelta(days=demo.today.weekday())
    held = Meeting.objects.get(region=east, week=monday - timedelta(days=7))
    assert held.status == MeetingStatus.HELD and held.minutes.strip() and held.snapshot
    assert timezone.localtime(held.held_at).date() < monday
    statuses = [i.status for i in held.new_items.all()]
    assert statuses.count(ActionItemStatus.DONE) >= 1 and statuses.count(ActionItemStatus.OPEN) >= 2
    assert Meeting.objects.get(region=east, week=monday).status == MeetingStatus.PLANNED
    # This week's forecast call for the quarter: every rep, then the East manager upward with his judgment.
    this_week = ForecastSubmission.objects.filter(period_key=demo.quarter.key, week=monday)
    reps = this_week.filter(level=ForecastLevel.REP)
    assert sorted(reps.values_list("owner__username", flat=True)) == sorted(
        User.objects.filter(role=Role.REP).values_list("username", flat=True)
    )
    assert all(s.best_case >= s.commit >= s.won for s in reps)
    team = this_week.get(level=ForecastLevel.TEAM, region=east)
    east_reps = reps.filter(region__path__startswith=east.path)
    assert team.rollup_commit == sum(s.commit for s in east_reps)
    assert team.owner.username == "mgr_east" and team.note and team.commit < team.rollup_commit


def test_the_east_manager_coached_his_reps_and_held_a_project_review(demo, db):
    from coaching.models import CoachingSession, ProjectReview
    from coaching.session_selectors import open_commitments

    east = Region.objects.get(code="EAST")
    sessions = CoachingSession.objects.filter(manager__username="mgr_east").order_by("date", "id")
    assert {s.focus_kind for s in sessions} == {"target", "deal", "skill"}
    assert all(s.rep.region.path.startswith(east.path) for s in sessions)
    commitments = [c for s in sessions for c in s.commitments.all()]
    assert commitments and all(c.due_date for c in commitments)
    assert any(c.reviewed_in_id and c.status == ActionItemStatus.DONE for c in commitments)  # one followed up
    assert sessions.filter(acknowledged_at__isnull=False).count() == 1
    # The coached rep's home page shows his open commitments.
    coached = sessions.filter(focus_kind="target").get().rep
    assert open_commitments(coached).exists()
    review = ProjectReview.objects.get(region=east)
    assert review.status == "held" and review.snapshot
    assert review.entries.count() >= 1 and all(e.buying_step for e in review.entries.all())


def test_the_reps_scorecard_of_the_quarter_ranks_them_apart(demo, db):
    """The demo's rep scorecard of the current quarter scores every East rep within its maximum, not all alike."""
    from coaching.scorecard import scorecard
    from crm.models import CompanySettings
    from salesmgmt.lib import periods

    today = timezone.localdate()
    quarter = periods.period_of(today, periods.QUARTER, CompanySettings.load().fiscal_year_start_month)
    card = scorecard(User.objects.get(username="mgr_east"), role=Role.REP, period_key=quarter.key, today=today)
    assert card.config is not None and [i.metric.code for i in card.items] == ["won_revenue", "visits", "deals_created"]
    scores = [row.score for row in card.rows]
    assert len(scores) >= 4 and all(0 < s <= card.max_score for s in scores)
    assert len(set(scores)) > 1


def test_no_placeholder_names_are_left(demo, db):
    people = [f"{u.first_name} {u.last_name}" for u in User.objects.all()]
    assert all(name.strip() and "REP " not in name.upper() and "Manager" not in name for name in people)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in people)  # a Chinese name each
    names = list(Customer.objects.values_list("name", flat=True)) + list(Region.objects.values_list("name", flat=True))
    assert not [n for n in names if "#" in n or "Demo" in n]
    assert len(set(Customer.objects.values_list("name", flat=True))) == Customer.objects.count()


@pytest.mark.parametrize("role", list(TOUR_LOGINS))
def test_the_tours_logins_land_on_a_page_with_data(demo, db, client, role):
    username = TOUR_LOGINS[role]
    user = User.objects.get(username=username)
    # A login passes its request (the lockout, django-axes, counts failures per username and address).
    assert client.login(request=RequestFactory().post("/accounts/login/"), username=username, password=DEMO_PASSWORD)
    response = client.get("/", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    if role == Role.REP:
        # A rep's home lists his own deals that need action.
        mine = Opportunity.objects.open().filter(owner=user)
        assert any(name in page for name in mine.values_list("name", flat=True))
        return
    # The others land on their part of the company's figures: the signed revenue tile's actual is the won total
    # of their region in the plan's period (summed here from the deals), and its attainment shows.
    review = response.context["review"]
    won = next(h for h in review.headline if h.metric == "won_revenue")
    deals = Opportunity.objects.won().filter(closed_on__gte=won.period_start, closed_on__lte=won.period_end)
    if user.region is not None:
        deals = deals.filter(region__path__startswith=user.region.path)
    expected = deals.aggregate(total=Sum("amount_company"))["total"]
    assert expected and won.actual == expected
    assert won.attainment_pct is not None and f"{won.attainment_pct}" in page


def test_a_second_run_changes_nothing(demo, db):
    models = [
        m for label in ("crm", "pipeline", "targets", "coaching") for m in apps.get_app_config(label).get_models()
    ]
    before = {m.__name__: m.objects.count() for m in models}
    load_demo()
    assert {m.__name__: m.objects.count() for m in models} == before


@pytest.mark.parametrize("month", [2, 3, 5, 6, 8, 9, 11, 12])
@pytest.mark.parametrize("year", [2026, 2027, 2028])
def test_whatever_the_day_the_reps_spread_around_their_plan(year, month):
    """The story planned for many days (no database): each rep's quarter so far against last year's same quarter
    plus 15 % (what a plan split by history asks), over the quarter's time progress."""
    today = datetime(year, month, 15).date()
    deals = Story(today, 1).deals()
    quarter = periods.period_of(today, periods.QUARTER)
    last = periods.quarter(quarter.fiscal_year - 1, quarter.number)
    won = defaultdict(Decimal)
    for deal in deals:
        if deal.outcome == "won" and quarter.start <= deal.close <= today:
            won[deal.rep.username, "now"] += deal.amount
        elif deal.outcome == "won" and last.start <= deal.close <= last.end:
            won[deal.rep.username, "last"] += deal.amount
    elapsed = ((today - quarter.start).days + 1) / ((quarter.end - quarter.start).days + 1)
    reps = [rep.username for area in AREAS for team in area.teams for rep in team.reps]
    pace = [float(won[r, "now"] / (won[r, "last"] * Decimal("1.15"))) / elapsed * 100 for r in reps]
    assert all(40 <= p <= 160 for p in pace), pace
    assert 70 <= statistics.median(pace) <= 120, pace
    closed = [d for d in deals if d.outcome != "open"]
    assert 0.20 <= sum(d.outcome == "won" for d in closed) / len(closed) <= 0.35
    assert all(30 <= (d.close - d.created).days <= 120 for d in closed)
