"""The targets flow of the issue, in a real browser: a manager creates a plan, splits it by region,
then rep, then month, fixes an incomplete leaf and submits it, the director approves it (nobody approves
what he submitted); a rep then sees it on "my targets"."""

from decimal import Decimal

from targets.models import PlanStatus, TargetNode, TargetPlan
from targets.services import metric_ensure_defaults
from tests.browser.plugin import htmx_settled, login, pick


def split(page, node, dimension, *, every_leaf=False):
    page.get_by_test_id(f"split-{node.pk}").click()
    dialog = page.get_by_test_id("split-dialog")
    dialog.wait_for()
    htmx_settled(page)
    if every_leaf:
        dialog.locator("input[name=scope][value=leaves]").check()
        htmx_settled(page)  # the scope's own redraw is done before the dimension is chosen (it may swap the form)
    with page.expect_response(lambda r: "/split/" in r.url):  # the preview is redrawn for this dimension
        dialog.locator("select[name=dimension]").select_option(dimension)
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("split-preview").wait_for()
    assert page.locator("[data-testid=split-dialog] select[name=dimension]").input_value() == dimension
    htmx_settled(page)
    page.get_by_test_id("split-commit").click()
    page.wait_for_function("() => !document.querySelector('[data-testid=split-dialog]')")


def test_manager_builds_a_plan_the_director_approves_it_and_the_rep_sees_it(page, org):
    metric_ensure_defaults()
    login(page, "manager")

    page.get_by_test_id("nav-plans").click()
    page.get_by_test_id("new-plan").click()
    form = page.get_by_test_id("plan-form")
    form.locator("select[name=period_key]").select_option("FY2027")
    form.locator("select[name=region]").select_option(str(org.east.pk))
    form.locator("input[name=total]").fill("1,200,000")
    page.get_by_test_id("plan-create").click()
    page.wait_for_url("**/targets/plans/*/")
    plan = TargetPlan.objects.get(period_key="FY2027", region=org.east)
    root = plan.nodes.get(parent=None)
    assert (plan.status, root.amount) == (PlanStatus.DRAFT, Decimal("1200000.00"))

    # By region (Shanghai, Jiangsu), then Shanghai by rep, then every Shanghai rep by month.
    split(page, root, "region")
    sh, js = (TargetNode.objects.get(parent=root, region=r) for r in (org.sh, org.js))
    assert sh.amount + js.amount == root.amount
    page.get_by_test_id(f"node-{sh.pk}").wait_for()
    split(page, sh, "rep")
    split(page, sh, "month", every_leaf=True)
    rep_node = TargetNode.objects.get(parent=sh, rep=org.rep)
    months = TargetNode.objects.filter(parent=rep_node)
    assert months.count() == 12 and sum(m.amount for m in months) == rep_node.amount
    assert set(months.values_list("owner", flat=True)) == {org.rep.pk}

    # The manager submits; the plan waits for someone above him, not for him.
    page.get_by_test_id("plan-submit").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("plan-approve").count() == 0
    assert str(org.director) in page.get_by_test_id("plan-approvers").inner_text()

    # Jiangsu has no manager: its leaf has no owner, so the director's approval is refused and names it.
    page.context.clear_cookies()
    login(page, "director")
    page.goto(f"/targets/plans/{plan.pk}/")
    page.get_by_test_id("plan-approve").click()
    page.wait_for_load_state("networkidle")
    assert TargetPlan.objects.get(pk=plan.pk).status != PlanStatus.APPROVED
    page.get_by_test_id(f"incomplete-{js.pk}").wait_for()

    # Back to draft, then the manager fixes it in place: Jiangsu's rep owns it.
    page.get_by_test_id("plan-return-open").click()
    page.fill("input[name=reason]", "Jiangsu needs an owner")
    page.get_by_test_id("plan-return").click()
    page.wait_for_load_state("networkidle")
    page.context.clear_cookies()
    login(page, "manager")
    page.goto(f"/targets/plans/{plan.pk}/")
    page.get_by_test_id(f"edit-{js.pk}").first.click()
    page.get_by_test_id(f"edit-form-{js.pk}").wait_for()
    htmx_settled(page)
    pick(page.get_by_test_id(f"edit-form-{js.pk}"), "owner", "rep_js", str(org.rep_js))
    page.get_by_test_id(f"edit-save-{js.pk}").click()
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=owner-{js.pk}]')?.textContent.trim() === '{org.rep_js}'"
    )
    page.goto(f"/targets/plans/{plan.pk}/")
    page.get_by_test_id("plan-submit").click()
    page.wait_for_load_state("networkidle")
    page.context.clear_cookies()
    login(page, "director")
    page.goto("/targets/plans/?awaiting=me")  # the plans waiting for his approval
    page.get_by_test_id(f"plan-row-{plan.pk}").get_by_role("link").click()
    page.wait_for_url(f"**/targets/plans/{plan.pk}/")
    page.get_by_test_id("plan-approve").click()
    page.wait_for_load_state("networkidle")
    assert TargetPlan.objects.get(pk=plan.pk).status == PlanStatus.APPROVED

    # The grid is laid out as a table (a CSS framework's `.grid` once turned it into side-by-side blocks).
    page.get_by_test_id("tab-grid").click()
    table = page.get_by_test_id("grid-table")
    table.wait_for()
    assert table.evaluate("t => getComputedStyle(t).display") == "table"
    header, first_row = (
        page.locator("[data-testid=grid-table] thead tr"),
        page.locator("[data-testid^=grid-row-]").first,
    )
    assert first_row.bounding_box()["y"] > header.bounding_box()["y"]

    # The rep sees his monthly targets.
    page.context.clear_cookies()
    login(page, "rep")
    page.get_by_test_id("nav-my-targets").click()
    results = page.get_by_test_id("my-targets-results")
    results.wait_for()
    first_month = months.order_by("period_start").first()
    assert page.get_by_test_id(f"target-{first_month.pk}").is_visible()
    assert page.get_by_test_id(f"target-{js.pk}").count() == 0  # a colleague's target stays hidden

    # The leaderboard is one click away in the main menu, and ranks the rep among the reps he may see.
    page.get_by_test_id("nav-leaderboard").click()
    page.wait_for_url("**/targets/leaderboard/**")
    assert page.get_by_test_id("nav-leaderboard").get_attribute("aria-current") == "page"
    page.get_by_test_id("leaderboard").wait_for()
    assert page.get_by_test_id(f"rank-{org.rep.pk}").is_visible()
