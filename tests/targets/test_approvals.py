"""The approval chain: nobody approves what they submitted; the approver is above the submitter (a director or
an admin, or the manager of a region above), in the service, on the page and in the API alike."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.models import AuditLog, Role
from targets.alerts.selectors import notification_message
from targets.models import AdjustmentStatus, Notification, NotificationTopic, PlanStatus, TargetNode, TargetPlan
from targets.planning.approval_chain import can_approve, plan_approvers, plans_awaiting_approval
from targets.planning.approvals import ApprovalRefused
from targets.planning.selectors import adjustments_to_decide
from targets.services import (
    adjustment_approve,
    adjustment_propose,
    adjustment_reject,
    node_update,
    plan_approve,
    plan_create,
    plan_return,
    plan_submit,
    target_split,
)
from tests.factories import UserFactory
from tests.targets.conftest import by_region

PERSONAS = ("director", "admin", "manager", "manager_north", "rep")


@pytest.fixture
def east_plan(org, metrics):
    """The East area's FY2027 plan, made by its manager: East -> Shanghai (its reps) / Jiangsu, owners complete."""
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="600000", region=org.east, actor=org.manager
    )
    provinces = by_region(
        target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.manager).children
    )
    target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager)
    js = provinces[org.js.pk]
    node_update(node=js, owner=org.rep_js, expected_version=js.version, actor=org.manager)
    return plan


@pytest.fixture
def company_plan(org, plan):
    """The director's company-wide plan, split by area, with owners complete."""
    target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director)
    return plan


def who(org, name):
    return getattr(org, name)


# --- a manager's plan -------------------------------------------------------------------------------


def test_a_manager_submits_his_area_plan_and_only_someone_above_him_approves_it(org, east_plan):
    plan = plan_submit(plan=east_plan, actor=org.manager)
    assert (plan.status, plan.submitted_by) == (PlanStatus.SUBMITTED, org.manager)
    assert plan_approvers(plan) == [org.director, org.admin]

    with pytest.raises(ApprovalRefused, match="You submitted this plan, so someone above you approves it: "):
        plan_approve(plan=plan, actor=org.manager)
    with pytest.raises(ApprovalRefused, match="You submitted this plan"):
        plan_return(plan=plan, reason="second thoughts", actor=org.manager)
    for outsider in (org.manager_north, org.rep):
        with pytest.raises(ApprovalRefused, match="Only someone above the plan's submitter can approve it"):
            plan_approve(plan=plan, actor=outsider)
    assert TargetPlan.objects.get(pk=plan.pk).status == PlanStatus.SUBMITTED  # nothing half-applied

    plan = plan_approve(plan=plan, actor=org.director)
    assert (plan.status, plan.submitted_by, plan.approved_by) == (PlanStatus.APPROVED, org.manager, org.director)
    entry = AuditLog.objects.filter(action="target_plan.approve").get()
    assert (entry.actor, entry.changes["submitted_by"][1], entry.changes["approved_by"][1]) == (
        org.director,
        org.manager.pk,
        org.director.pk,
    )


def test_the_refusal_names_who_the_plan_waits_for(org, east_plan):
    plan = plan_submit(plan=east_plan, actor=org.manager)
    with pytest.raises(ApprovalRefused) as refused:
        plan_approve(plan=plan, actor=org.manager)
    assert refused.value.messages == [
        f"You submitted this plan, so someone above you approves it: {org.director}, {org.admin}."
    ]


def test_the_manager_of_a_region_above_approves_but_not_a_peer_or_someone_below(org, metrics):
    """HQ gets a manager (a VP): he is above the East manager. A Shanghai team manager is below him."""
    vp = UserFactory(username="vp", role=Role.MANAGER, region=org.hq)
    org.hq.manager = vp
    org.hq.save(update_fields=["manager"])
    sh_lead = UserFactory(username="sh_lead", role=Role.MANAGER, region=org.sh)
    org.sh.manager = sh_lead
    org.sh.save(update_fields=["manager"])

    east = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="1", region=org.east, actor=org.manager
    )
    east = plan_submit(plan=east, actor=org.manager)
    assert plan_approvers(east) == [vp, org.director, org.admin]
    assert not can_approve(sh_lead, east) and not can_approve(org.manager_north, east)
    assert can_approve(vp, east)

    # Shanghai's plan, submitted by its team lead: the East manager (above him) approves it, so does the VP.
    sh = plan_create(metric=metrics["won_revenue"], period_key="FY2027", total="1", region=org.sh, actor=org.manager)
    sh = plan_submit(plan=sh, actor=sh_lead)
    assert plan_approvers(sh) == [org.manager, vp, org.director, org.admin]
    # Submitted by the East manager himself: the VP or a director, not he nor the team lead below him.
    plan_return(plan=sh, reason="redo", actor=org.manager)
    sh = plan_submit(plan=sh, actor=org.manager)
    assert plan_approvers(sh) == [vp, org.director, org.admin]
    with pytest.raises(ApprovalRefused, match="You submitted"):
        plan_approve(plan=sh, actor=org.manager)
    with pytest.raises(ApprovalRefused, match="Only someone above"):
        plan_approve(plan=sh, actor=sh_lead)
    assert plan_approve(plan=sh, actor=vp).approved_by == vp


# --- a director's company plan ----------------------------------------------------------------------


def test_a_director_never_approves_his_own_company_plan_another_director_or_an_admin_does(org, company_plan):
    other_director = UserFactory(username="director2", role=Role.DIRECTOR, region=org.hq)
    plan = plan_submit(plan=company_plan, actor=org.director)
    assert set(plan_approvers(plan)) == {other_director, org.admin}
    with pytest.raises(ApprovalRefused, match="You submitted this plan"):
        plan_approve(plan=plan, actor=org.director)
    with pytest.raises(ApprovalRefused, match="Only someone above"):
        plan_approve(plan=plan, actor=org.manager)  # a manager is never above a director
    assert plan_approve(plan=plan, actor=other_director).approved_by == other_director


def test_the_admin_approves_the_directors_company_plan(org, company_plan):
    plan = plan_submit(plan=company_plan, actor=org.director)
    plan = plan_approve(plan=plan, actor=org.admin)
    assert (plan.status, plan.submitted_by, plan.approved_by) == (PlanStatus.APPROVED, org.director, org.admin)


def test_submitting_is_refused_when_nobody_could_approve(org, company_plan):
    org.admin.is_active = False
    org.admin.save(update_fields=["is_active"])
    with pytest.raises(ValidationError, match="Nobody above you could approve this plan"):
        plan_submit(plan=company_plan, actor=org.director)
    assert TargetPlan.objects.get(pk=company_plan.pk).status == PlanStatus.DRAFT
    assert not Notification.objects.exists()


# --- the list of plans waiting for me -------------------------------------------------------------


@pytest.mark.parametrize("submitter", ["director", "manager"])
def test_plans_awaiting_my_approval_agree_with_can_approve(org, company_plan, east_plan, submitter):
    """The set-based list and the one-plan check give the same answer, for every persona."""
    other_director = UserFactory(username="director2", role=Role.DIRECTOR, region=org.hq)
    plan_submit(plan=east_plan, actor=who(org, submitter))
    plan_submit(plan=company_plan, actor=org.director)
    for name in (*PERSONAS, "director2"):
        user = other_director if name == "director2" else who(org, name)
        waiting = set(plans_awaiting_approval(user).values_list("pk", flat=True))
        expected = {p.pk for p in TargetPlan.objects.all() if can_approve(user, p)}
        assert waiting == expected, name
    assert set(plans_awaiting_approval(org.director)) == ({east_plan} if submitter == "manager" else set())
    assert set(plans_awaiting_approval(org.admin)) == {east_plan, company_plan}
    assert set(plans_awaiting_approval(other_director)) == {east_plan, company_plan}
    assert not plans_awaiting_approval(org.manager).exists()


def test_the_plan_list_filters_plans_awaiting_my_approval(org, company_plan, east_plan, client_for):
    plan_submit(plan=east_plan, actor=org.manager)
    url = reverse("targets:plan_list")
    director = client_for(org.director)
    page = director.get(url).content.decode()
    assert 'data-testid="awaiting-count">1<' in page
    response = director.get(url, {"awaiting": "me"})
    assert [plan.pk for plan, _info in response.context["rows"]] == [east_plan.pk]
    response = client_for(org.manager).get(url, {"awaiting": "me"})
    assert response.context["rows"] == [] and "No plan is waiting for your approval." in response.content.decode()
    assert 'data-testid="awaiting-count"' not in client_for(org.manager).get(url).content.decode()


def test_the_plan_page_says_who_it_waits_for_and_offers_approval_only_to_them(org, east_plan, client_for):
    plan_submit(plan=east_plan, actor=org.manager)
    detail = reverse("targets:plan_detail", args=[east_plan.pk])
    page = client_for(org.manager).get(detail).content.decode()
    assert 'data-testid="plan-approve"' not in page
    assert "Waiting for approval by:" in page
    assert f'<span data-testid="plan-approvers">{org.director}, {org.admin}</span>' in page
    page = client_for(org.director).get(detail).content.decode()
    assert 'data-testid="plan-approve"' in page and 'data-testid="plan-return-open"' in page

    response = client_for(org.manager).post(reverse("targets:plan_action", args=[east_plan.pk, "approve"]), follow=True)
    assert "You submitted this plan, so someone above you approves it" in response.content.decode()
    assert TargetPlan.objects.get(pk=east_plan.pk).status == PlanStatus.SUBMITTED


# --- the API ----------------------------------------------------------------------------------------


def test_the_api_refuses_the_submitter_with_403_and_filters_plans_awaiting_me(org, company_plan, east_plan, api):
    manager, director = api(org.manager), api(org.director)
    assert manager.post(f"/api/target-plans/{east_plan.pk}/submit/").status_code == 200
    refused = manager.post(f"/api/target-plans/{east_plan.pk}/approve/")
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": f"You submitted this plan, so someone above you approves it: {org.director}, {org.admin}.",
        "code": "permission_denied",
    }
    back = manager.post(f"/api/target-plans/{east_plan.pk}/return/", {"reason": "x"}, format="json")
    assert back.status_code == 403 and "You submitted this plan" in back.json()["detail"]
    approvers = manager.get(f"/api/target-plans/{east_plan.pk}/approvers/").json()
    assert [(a["id"], a["role"]) for a in approvers] == [(org.director.pk, "director"), (org.admin.pk, "admin")]

    waiting = director.get("/api/target-plans/", {"awaiting_my_approval": "true"}).json()["results"]
    assert [p["id"] for p in waiting] == [east_plan.pk]
    others = director.get("/api/target-plans/", {"awaiting_my_approval": "false"}).json()["results"]
    assert [p["id"] for p in others] == [company_plan.pk]
    assert manager.get("/api/target-plans/", {"awaiting_my_approval": "true"}).json()["results"] == []

    approved = director.post(f"/api/target-plans/{east_plan.pk}/approve/")
    assert approved.status_code == 200
    body = approved.json()
    assert (body["status"], body["submitted_by"], body["approved_by"]) == ("approved", org.manager.pk, org.director.pk)


# --- notifications ----------------------------------------------------------------------------------


def test_the_approvers_are_notified_when_a_plan_is_submitted(org, east_plan, client_for):
    plan_submit(plan=east_plan, actor=org.manager)
    notes = Notification.objects.filter(topic=NotificationTopic.PLAN_SUBMITTED)
    assert {n.recipient for n in notes} == {org.director, org.admin}
    note = notes.get(recipient=org.director)
    assert note.link == reverse("targets:plan_detail", args=[east_plan.pk])
    assert notification_message(note) == (
        f"{org.manager} submitted the plan “{east_plan.name}”; it waits for your approval."
    )
    page = client_for(org.director).get(reverse("targets:notification_list")).content.decode()
    assert f"submitted the plan “{east_plan.name}”" in page and note.link in page


# --- adjustments ------------------------------------------------------------------------------------


@pytest.fixture
def approved_company(org, company_plan):
    """The company plan: East -> Shanghai (its two reps) / Jiangsu, approved (the admin approves the director's
    plan)."""
    east = TargetNode.objects.get(plan=company_plan, region=org.east)
    provinces = by_region(target_split(node=east, dimension="region", method="equal", actor=org.manager).children)
    target_split(node=provinces[org.sh.pk], dimension="rep", method="equal", actor=org.manager)
    js = provinces[org.js.pk]
    node_update(node=js, owner=org.rep_js, expected_version=js.version, actor=org.manager)
    plan_submit(plan=company_plan, actor=org.director)
    return plan_approve(plan=company_plan, actor=org.admin)


def east_reps(plan, org):
    return [TargetNode.objects.get(plan=plan, rep=rep) for rep in (org.rep, org.rep_same_team)]


def move(plan, org, actor, amount="10000", kind="reallocation"):
    a, b = east_reps(plan, org)
    changes = [{"node": a, "amount": a.amount + Decimal(amount)}]
    if kind == "reallocation":
        changes.append({"node": b, "amount": b.amount - Decimal(amount)})
    return adjustment_propose(plan=plan, kind=kind, reason="Key account moved", changes=changes, actor=actor)


def test_the_proposer_never_approves_his_own_adjustment(org, approved_company, api):
    adjustment = move(approved_company, org, org.manager)
    with pytest.raises(ApprovalRefused, match="other than the proposer"):
        adjustment_approve(adjustment=adjustment, actor=org.manager)
    refused = api(org.manager).post(f"/api/target-adjustments/{adjustment.pk}/approve/", {}, format="json")
    assert refused.status_code == 403 and "other than the proposer" in refused.json()["detail"]
    assert adjustment_approve(adjustment=adjustment, actor=org.director).approver == org.director


def test_a_directors_adjustment_goes_to_another_director_or_an_admin_not_to_a_manager(org, approved_company, api):
    adjustment = move(approved_company, org, org.director, kind="total_change")
    with pytest.raises(ApprovalRefused, match="other than the proposer"):
        adjustment_approve(adjustment=adjustment, actor=org.director)
    adjustment = adjustment_approve(adjustment=adjustment, actor=org.admin)
    assert (adjustment.status, adjustment.proposer, adjustment.approver) == (
        AdjustmentStatus.APPROVED,
        org.director,
        org.admin,
    )
    entry = AuditLog.objects.filter(action="target_adjustment.approve").get()
    assert (entry.changes["proposed_by"][1], entry.changes["approved_by"][1]) == (org.director.pk, org.admin.pk)

    # A reallocation the director proposes inside East: the East manager may change those targets, but he is
    # not above the director, so he neither approves nor rejects it, and it is not in his inbox.
    realloc = move(approved_company, org, org.director)
    assert adjustments_to_decide(org.manager) == []
    with pytest.raises(ApprovalRefused, match="Only someone above"):
        adjustment_approve(adjustment=realloc, actor=org.manager)
    with pytest.raises(ApprovalRefused, match="Only someone above"):
        adjustment_reject(adjustment=realloc, actor=org.manager, note="no")
    refused = api(org.manager).post(f"/api/target-adjustments/{realloc.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert [a.pk for a in adjustments_to_decide(org.admin)] == [realloc.pk]
    # The proposer may still withdraw his own.
    assert adjustment_reject(adjustment=realloc, actor=org.director, note="withdrawn").status == "rejected"


def test_a_team_leads_adjustment_is_approved_by_the_area_manager_above_him(org, approved_company):
    sh_lead = UserFactory(username="sh_lead", role=Role.MANAGER, region=org.sh)
    org.sh.manager = sh_lead
    org.sh.save(update_fields=["manager"])
    adjustment = move(approved_company, org, sh_lead)  # two Shanghai reps: the adjustment lies in Shanghai
    assert [a.pk for a in adjustments_to_decide(org.manager)] == [adjustment.pk]
    assert adjustment_approve(adjustment=adjustment, actor=org.manager).approver == org.manager
