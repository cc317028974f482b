"""`seed_demo_targets`: the demo plans through the services, complete 3定, and a second run changes nothing."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crm.models import AuditLog, CompanySettings, RegionKind, Role
from crm.services import ensure_company_currency, region_create, user_create
from targets.models import (
    ActionPlan,
    AdjustmentRequest,
    AdjustmentStatus,
    Metric,
    PlanStatus,
    TargetNode,
    TargetNodeAmount,
    TargetPlan,
)
from targets.planning.selectors import incomplete_leaves, unbalanced_nodes
from tests.factories import ProductLineFactory

TABLES = (Metric, TargetPlan, TargetNode, TargetNodeAmount, AdjustmentRequest, ActionPlan, AuditLog)


@pytest.fixture
def demo_company(db, time_machine):
    """The part of `seed_demo`'s company the targets need (its users, regions and product lines), without
    its two years of deals (so every history split falls back to equal parts)."""
    time_machine.move_to(datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Asia/Shanghai")), tick=False)
    company = CompanySettings.load()
    company.fiscal_year_start_month = 1
    company.save()
    ensure_company_currency()
    director = user_create(username="director", password=None, role=Role.DIRECTOR)
    user_create(username="admin", password=None, role=Role.ADMIN)
    hq = region_create(name="HQ", code="HQ", kind=RegionKind.COMPANY, manager=director)
    director.region = hq
    director.save(update_fields=["region"])
    for area_code, manager, teams in (
        ("EAST", "mgr_east", {"SH": ["rep_sh1", "rep_sh2"], "JS": ["rep_js1", "rep_js2"]}),
        ("NORTH", "mgr_north", {"BJ": ["rep_bj1", "rep_bj2"]}),
    ):
        area = region_create(name=area_code.title(), code=area_code, kind=RegionKind.AREA, parent=hq)
        mgr = user_create(username=manager, password=None, role=Role.MANAGER, region=area)
        area.manager = mgr
        area.save(update_fields=["manager"])
        for code, reps in teams.items():
            team = region_create(name=code, code=code, kind=RegionKind.PROVINCE, parent=area, manager=mgr)
            for rep in reps:
                user_create(username=rep, password=None, role=Role.REP, region=team)
    for code in ("HW", "SW", "SV"):
        ProductLineFactory(code=code, name=code)


def counts():
    return {model.__name__: model.objects.count() for model in TABLES}


def test_it_needs_the_demo_company(db):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_demo_targets")


def test_seed_builds_the_demo_plans_and_a_second_run_changes_nothing(demo_company):
    call_command("seed_demo_targets")
    company = TargetPlan.objects.get(period_key="FY2026", region__isnull=True)
    assert (company.status, company.current_version) == (PlanStatus.APPROVED, 2)
    # Nobody approves what he submitted: the director submits, the admin (above him in the chain) approves.
    assert (company.submitted_by.username, company.approved_by.username) == ("director", "admin")
    adjusted = AdjustmentRequest.objects.get(plan=company, status=AdjustmentStatus.APPROVED)
    assert (adjusted.proposer.username, adjusted.approver.username) == ("mgr_north", "director")
    assert not incomplete_leaves(company).exists() and not unbalanced_nodes(company).exists()
    # Area -> province -> rep -> quarter: every rep has four quarter targets of his own.
    quarters = TargetNode.objects.filter(plan=company, period_kind="quarter")
    assert quarters.count() == 6 * 4
    assert all(q.owner_id == q.rep_id and q.deadline == q.period_end for q in quarters)
    assert AdjustmentRequest.objects.filter(plan=company, status=AdjustmentStatus.PENDING).count() == 1
    assert ActionPlan.objects.filter(node__plan=company).count() >= 3

    east = TargetPlan.objects.get(period_key="FY2027", region__code="EAST")
    assert east.status == PlanStatus.DRAFT and east.owner.username == "mgr_east"
    assert incomplete_leaves(east).count() == 1
    assert TargetNode.objects.filter(plan=east, committed_amount__isnull=False).count() == 2

    # Attainment history: a snapshot of every node of the approved plan each week since 1 January 2026
    # (23 November 2026 back to 5 January: 47 weeks), so trends show at once.
    from targets.models import AttainmentSnapshot

    days = sorted(set(AttainmentSnapshot.objects.filter(node__plan=company).values_list("as_of", flat=True)))
    assert len(days) == 47 and days[-1] == date(2026, 11, 23) and days[0] == date(2026, 1, 5)
    assert AttainmentSnapshot.objects.filter(node__plan=company).count() == 47 * company.nodes.count()
    assert not AttainmentSnapshot.objects.filter(node__plan=east).exists()  # a draft is not measured

    before = counts()
    call_command("seed_demo_targets")
    assert counts() == before
