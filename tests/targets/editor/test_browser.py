"""The plan screens in a real browser (htmx at work): lazy expansion, the split dialog with its live
remainder, inline edits and the grid; and the editor at phone width."""

from decimal import Decimal

import pytest

from targets.models import TargetNode
from targets.services import target_split_leaves
from tests.browser.plugin import htmx_settled, login, pick


@pytest.fixture(autouse=True)
def frozen():  # a live server and a browser: real time (the editor's own conftest freezes it)
    yield


def test_manager_expands_splits_by_hand_and_edits_the_grid(page, org, east_tree, east_plan):
    login(page, "manager")
    page.goto(f"/targets/plans/{east_plan.pk}/")
    sh, js = east_tree["sh"], east_tree["js"]
    reps = list(east_tree["reps"].values())

    # Lazy expansion: the reps load on the first click, hide and show again.
    assert page.get_by_test_id(f"node-{reps[0].pk}").count() == 0
    page.get_by_test_id(f"expand-{sh.pk}").click()
    page.get_by_test_id(f"node-{reps[0].pk}").wait_for()
    page.get_by_test_id(f"expand-{sh.pk}").click()
    assert not page.get_by_test_id(f"node-{reps[0].pk}").is_visible()

    # Split Jiangsu by quarter with manual amounts: the remainder follows the typing.
    page.get_by_test_id(f"split-{js.pk}").click()
    page.get_by_test_id("split-dialog").wait_for()
    htmx_settled(page)
    page.select_option("select[name=dimension]", "quarter")
    # Functions, not bare expressions: Playwright polls an expression with eval, which the pages' CSP forbids.
    page.wait_for_function("() => document.querySelector('[data-testid=preview-FY2027-Q1]')")
    htmx_settled(page)
    page.select_option("select[name=method]", "manual")
    page.get_by_test_id("part-FY2027-Q1").wait_for()
    htmx_settled(page)
    for quarter, amount in (("Q1", "60000"), ("Q2", "70000"), ("Q3", "80000")):
        page.get_by_test_id(f"part-FY2027-{quarter}").fill(amount)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=remainder]')?.dataset.value === '90000.00'", timeout=5_000
    )
    assert "90000.00 is still unallocated" in page.get_by_test_id("split-errors").inner_text()
    page.get_by_test_id("part-FY2027-Q4").fill("90000")
    page.wait_for_function("() => document.querySelector('[data-testid=remainder]')?.dataset.value === '0.00'")
    htmx_settled(page)  # no preview still in flight to race the commit
    page.get_by_test_id("split-commit").click()
    page.get_by_test_id(f"level-summary-{js.pk}").wait_for()
    assert page.get_by_test_id("split-dialog").count() == 0  # closed, the node redrawn with its parts
    quarters = {n.period_key: n.amount for n in TargetNode.objects.filter(parent=js)}
    assert quarters["FY2027-Q4"] == Decimal("90000.00") and sum(quarters.values()) == Decimal("300000.00")

    # Inline edit: give Jiangsu an owner.
    page.get_by_test_id(f"edit-{js.pk}").click()
    page.get_by_test_id(f"edit-form-{js.pk}").wait_for()
    htmx_settled(page)
    pick(page.get_by_test_id(f"edit-form-{js.pk}"), "owner", "rep_js", str(org.rep_js))
    page.get_by_test_id(f"edit-save-{js.pk}").click()
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=owner-{js.pk}]')?.textContent.trim() === '{org.rep_js}'"
    )
    assert TargetNode.objects.get(pk=js.pk).owner == org.rep_js

    # The grid: a cell edited in place moves its column total; the rep's row total stays.
    target_split_leaves(node=sh, dimension="month", method="equal", actor=org.manager)
    page.goto(f"/targets/plans/{east_plan.pk}/grid/?node={sh.pk}&rows=rep&cols=month")
    rep = org.rep.pk
    cell = page.get_by_test_id(f"cell-{rep}-FY2027-M01-input")
    january = Decimal(page.get_by_test_id("col-total-FY2027-M01").get_attribute("data-value"))
    old = Decimal(cell.input_value())
    cell.fill("20000")
    cell.press("Tab")
    expected = str(january - old + Decimal("20000.00"))
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=col-total-FY2027-M01]')?.dataset.value === '{expected}'"
    )
    assert page.get_by_test_id(f"row-total-{rep}").get_attribute("data-value") == "150000.00"
    bad = page.get_by_test_id(f"cell-{rep}-FY2027-M02-input")
    bad.fill("-1")
    bad.press("Tab")
    page.get_by_test_id("cell-error").wait_for()
    assert "cannot be negative" in page.get_by_test_id("cell-error").inner_text()


def test_the_editor_fits_a_phone(phone_page, org, east_tree, east_plan):
    phone = phone_page
    login(phone, "manager")
    phone.goto(f"/targets/plans/{east_plan.pk}/")
    phone.get_by_test_id(f"expand-{east_tree['sh'].pk}").click()
    phone.get_by_test_id(f"node-{east_tree['reps'][org.rep].pk}").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.get_by_test_id(f"split-{east_tree['js'].pk}").click()
    phone.get_by_test_id("preview-table").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
