"""The search pickers (crm.forms.SearchSelect) in a real browser: a manager finds a rep by typing part of his
name, picks him with the keyboard, and the team pipeline narrows to his deals; clearing the field shows all."""

from decimal import Decimal

from tests.browser.plugin import login
from tests.factories import make_deal


def test_manager_types_a_name_and_picks_a_rep_to_filter_the_team_pipeline(page, org):
    make_deal(owner=org.rep, amount="1000")
    make_deal(owner=org.rep_js, amount="5000")
    make_deal(owner=org.rep_other, amount="9999")  # North: never visible to the East manager
    login(page, "manager")
    page.goto("/pipeline/team/")  # managers land on their workbench
    assert page.get_by_test_id("total-count").get_attribute("data-value") == "2"

    field = page.get_by_test_id("pick-owner")
    options = page.get_by_test_id("pick-owner-options")
    field.fill("rep")
    # Only the people of his scope match, at most a short list: not North's rep.
    options.locator("[role=option]", has_text="rep_js").wait_for()
    shown = options.locator("[role=option]").all_inner_texts()
    assert any("rep_js" in text for text in shown) and not any("rep_other" in text for text in shown)
    assert field.get_attribute("aria-expanded") == "true"

    # Narrow by typing, then pick with the keyboard: the filter applies at once.
    field.fill("rep_j")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=pick-owner-options] [role=option]')]"
        ".every(o => o.textContent.includes('rep_js'))"
    )
    field.press("ArrowDown")
    field.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=total-count]').dataset.value === '1'")
    assert Decimal(page.get_by_test_id("total-amount").get_attribute("data-value")) == Decimal("5000")
    assert field.input_value() == str(org.rep_js)
    assert page.locator("input[type=hidden][name=owner]").input_value() == str(org.rep_js.pk)
    assert f"owner={org.rep_js.pk}" in page.url  # shareable, and reloads with his name shown
    assert options.is_hidden()

    page.reload()
    assert page.get_by_test_id("pick-owner").input_value() == str(org.rep_js)

    # Emptying the field is "All reps" again.
    page.get_by_test_id("pick-owner").fill("")
    page.wait_for_function("() => document.querySelector('[data-testid=total-count]').dataset.value === '2'")
