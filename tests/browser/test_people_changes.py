"""A rep leaves mid-year, in a real browser: the manager proposes the transfer of his remaining target on the plan's
"People changes" page, it waits in the director's adjustments list, the director approves it, and the plan tree shows
the rep's target in force beside his original one."""

from datetime import date
from decimal import Decimal

from targets.models import AdjustmentKind, AdjustmentRequest, AdjustmentStatus, TargetNode
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.browser.plugin import login, pick


def test_manager_proposes_a_transfer_and_the_director_approves_it(page, org, metrics):
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027",
        total=Decimal("1200000"),
        owner=org.director,
        actor=org.director,
    )
    root = plan.nodes.get(parent__isnull=True)
    east = next(
        n
        for n in target_split(node=root, dimension="region", method="equal", actor=org.director).children
        if n.region == org.east
    )
    target_split(
        node=next(n for n in root.children.all() if n.region == org.north),
        dimension="rep",
        method="equal",
        actor=org.manager_north,
    )
    reps = {n.rep: n for n in target_split(node=east, dimension="rep", method="equal", actor=org.manager).children}
    for node in reps.values():
        target_split(node=node, dimension="month", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)

    login(page, "manager")
    page.goto(f"/targets/plans/{plan.pk}/")
    page.get_by_test_id("people-changes").click()
    form = page.get_by_test_id("transfer-form")
    pick(form, "t-from_rep", org.rep.first_name, str(org.rep))
    pick(form, "t-to_rep", org.rep_same_team.first_name, str(org.rep_same_team))
    form.locator("input[name=t-effective]").fill("2027-07-01")
    form.locator("textarea[name=t-reason]").fill("Leaves the company on 30 June")
    page.get_by_test_id("transfer-submit").click()
    page.wait_for_url("**/targets/adjustments/*/")
    adjustment = AdjustmentRequest.objects.get()
    assert (adjustment.kind, adjustment.status) == (AdjustmentKind.TRANSFER, AdjustmentStatus.PENDING)
    assert page.get_by_test_id("people-effective").inner_text() == "2027-07-01"
    assert page.get_by_test_id("approve").count() == 0  # not his to approve

    page.context.clear_cookies()
    login(page, "director")
    page.goto("/targets/adjustments/")
    page.locator(f"a[href='/targets/adjustments/{adjustment.pk}/']").first.click()
    page.wait_for_url(f"**/targets/adjustments/{adjustment.pk}/")
    assert "Leaves the company on 30 June" in page.get_by_test_id("reason").inner_text()
    page.get_by_test_id("approve").click()
    # The approval answers with the comparison of the two versions once its transaction has committed: read the
    # database after that (the live server shares it; "networkidle" could come before the POST's answer).
    page.wait_for_url(f"**/targets/plans/{plan.pk}/compare/**")
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.approver) == (AdjustmentStatus.APPROVED, org.director)

    leaving = TargetNode.objects.get(pk=reps[org.rep].pk)
    taking = TargetNode.objects.get(pk=reps[org.rep_same_team].pk)
    first_half = TargetNode.objects.filter(parent=leaving, period_start__lt=date(2027, 7, 1))
    assert leaving.amount == sum(n.amount for n in first_half) == Decimal("100000.02")
    assert leaving.amount + taking.amount == Decimal("400000.00")
    assert not TargetNode.objects.filter(rep=org.rep, period_start__gte=date(2027, 7, 1)).exclude(amount=0).exists()

    page.goto(f"/targets/plans/{plan.pk}/")
    page.get_by_test_id(f"expand-{east.pk}").click()
    page.get_by_test_id(f"original-target-{leaving.pk}").wait_for()
    assert Decimal(page.get_by_test_id(f"original-target-{leaving.pk}").get_attribute("data-value")) == Decimal(
        "200000.00"
    )
    assert Decimal(page.get_by_test_id(f"current-target-{leaving.pk}").get_attribute("data-value")) == leaving.amount
