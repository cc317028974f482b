"""The persona company on Monday 15 June 2026 (ISO week 2026-W25), 07:00 in Shanghai: month (June) and quarter
(Q2) targets of the reps, a year target and last month's (not in the digest), deals of every kind to act on or
not, coaching commitments and meeting action items."""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from coaching import session_services
from coaching.services import action_item_create, meeting_create
from pipeline.models import Opportunity
from targets.attainment.services import attainment_recompute
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import make_deal

TODAY = date(2026, 6, 15)
WEEK = "2026-W25"


@pytest.fixture
def frozen():
    with time_machine.travel("2026-06-15 07:00 +0800", tick=False) as traveller:
        yield traveller


def stage(org, **flags):
    return next(s for s in org.stages if all(getattr(s, k) == v for k, v in flags.items()))


def open_stage_with_days(org):
    return next(s for s in org.stages if s.expected_days and not s.is_closed)


def owned_plan(org, metric, period_key, total, owner, region=None):
    """An approved plan of `period_key` whose targets `owner` owns; a quarter is split into its months."""
    plan = plan_create(
        metric=metric, period_key=period_key, total=total, owner=org.director, region=region, actor=org.director
    )
    if "-Q" in period_key:
        target_split(node=plan.nodes.get(), dimension="month", method="equal", actor=org.director)
    plan.nodes.update(owner=owner)
    plan = plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    attainment_recompute(plan=plan, as_of=TODAY)
    return plan


@pytest.fixture
def world(org, metrics, frozen):
    for user in (org.director, org.manager, org.manager_north, org.rep, org.rep_same_team, org.rep_js, org.rep_other):
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    won, lost = stage(org, is_won=True), stage(org, is_lost=True)
    slow = open_stage_with_days(org)
    first = org.stages[0]
    # Won business: June and April (the quarter) for the rep, June for the Shanghai teammate.
    make_deal(owner=org.rep, amount="600000", stage=won, close=date(2026, 6, 5))
    make_deal(owner=org.rep, amount="200000", stage=won, close=date(2026, 4, 20))
    make_deal(owner=org.rep_same_team, amount="50000", stage=won, close=date(2026, 6, 2))
    deals = SimpleNamespace(
        late=make_deal(owner=org.rep, name="Late close", amount="80000", stage=first, close=date(2026, 6, 10)),
        step_due=make_deal(
            owner=org.rep,
            name="Step due today",
            amount="90000",
            stage=first,
            close=date(2026, 7, 30),
            next_step="Send the quote",
            next_step_date=TODAY,
        ),
        step_later=make_deal(
            owner=org.rep,
            name="Step later",
            amount="70000",
            stage=first,
            close=date(2026, 8, 30),
            next_step="Demo",
            next_step_date=date(2026, 6, 20),
        ),
        stuck=make_deal(owner=org.rep, name="Stuck", amount="60000", stage=slow, close=date(2026, 9, 30)),
        fresh=make_deal(owner=org.rep, name="Fresh", amount="65000", stage=slow, close=date(2026, 9, 30)),
        lost=make_deal(owner=org.rep, name="Lost long ago", amount="10000", stage=lost, close=date(2026, 5, 1)),
        teammate_late=make_deal(
            owner=org.rep_same_team, name="Teammate late", amount="40000", stage=first, close=date(2026, 6, 1)
        ),
        other_late=make_deal(
            owner=org.rep_other, name="North late", amount="40000", stage=first, close=date(2026, 6, 1)
        ),
    )
    Opportunity.objects.filter(pk=deals.stuck.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=slow.expected_days + 1)
    )
    Opportunity.objects.filter(pk=deals.fresh.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=slow.expected_days - 1)
    )
    revenue = metrics["won_revenue"]
    plans = SimpleNamespace(
        # Q2 of 3,000,000: April, May (over, not in the digest) and June of 1,000,000 each.
        q2=owned_plan(org, revenue, "FY2026-Q2", "3000000", org.rep),
        year=owned_plan(org, revenue, "FY2026", "9000000", org.rep),  # a year: not in the digest
        # One plan per metric, period and region: the teammate's is of collections (none yet), the Jiangsu rep's
        # of his region's revenue (none won).
        teammate_q2=owned_plan(org, metrics["collections"], "FY2026-Q2", "300000", org.rep_same_team),
        js_q2=owned_plan(org, revenue, "FY2026-Q2", "600000", org.rep_js, region=org.js),
    )
    session = session_services.coaching_session_create(
        actor=org.manager,
        rep=org.rep,
        date=date(2026, 6, 8),
        focus_kind="skill",
        focus="Closing",
        observations="Hesitates to ask for the order.",
        commitments=[
            session_services.NewCommitment("Ask for the order in every meeting", date(2026, 6, 19)),
            session_services.NewCommitment("Role-play objections", date(2026, 6, 12)),
        ],
    )
    meeting = meeting_create(actor=org.manager, team=org.east, week=date(2026, 6, 8))
    items = SimpleNamespace(
        rep=action_item_create(
            actor=org.manager, meeting=meeting, what="Call back Acme", owner=org.rep, due_date=date(2026, 6, 18)
        ),
        teammate=action_item_create(
            actor=org.manager, meeting=meeting, what="Fix the quote", owner=org.rep_same_team, due_date=TODAY
        ),
    )
    return SimpleNamespace(org=org, deals=deals, plans=plans, session=session, meeting=meeting, items=items)
