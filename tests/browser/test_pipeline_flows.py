"""The key flows in a real browser: a rep creates and advances a deal from a phone; a manager
filters the team pipeline."""

from decimal import Decimal

from pipeline.models import Opportunity, OpportunityHistory, StageEvidence
from tests.browser.plugin import htmx_settled, login, pick
from tests.factories import CustomerFactory, make_deal


def test_rep_creates_a_deal_and_advances_it_on_a_phone(phone_page, org):
    page = phone_page
    CustomerFactory(name="Acme Shanghai", owner=org.rep, region=org.sh)
    CustomerFactory(name="Other team's customer", owner=org.rep_other, region=org.bj)
    login(page, "rep")

    page.get_by_test_id("new-deal").first.click()
    form = page.get_by_test_id("deal-form")
    form.wait_for()
    page.fill("input[name=name]", "Acme servers")
    # The customer is searched among the rep's own: the other team's never shows.
    page.get_by_test_id("pick-customer").fill("customer")
    page.get_by_test_id("pick-customer-options").get_by_text("No customer you may see matches.").wait_for()
    pick(form, "customer", "acme", "Acme Shanghai")
    assert "Other team's customer" not in form.inner_html()
    page.fill("input[name=amount]", "120,000")
    page.fill("input[name=expected_close_date]", "2026-12-15")
    page.get_by_test_id("deal-submit").click()
    page.wait_for_load_state("networkidle")

    deal = Opportunity.objects.get(name="Acme servers")
    assert (deal.owner, deal.amount, deal.stage, deal.probability) == (org.rep, Decimal("120000"), org.stages[0], 10)

    page.goto("/pipeline/mine/")
    page.get_by_test_id(f"advance-{deal.pk}").click()
    dialog = page.get_by_test_id("move-form")
    dialog.wait_for()
    # The next stage requires milestone evidence: submitting without it is refused in place.
    page.get_by_test_id("move-submit").click()
    page.get_by_test_id("error-evidence").wait_for()
    assert Opportunity.objects.get(pk=deal.pk).stage == org.stages[0]
    page.fill("[name=evidence]", "Met the CIO, budget confirmed")
    page.get_by_test_id("move-submit").click()
    page.wait_for_function(
        f"() => !document.querySelector('[data-testid=move-form]') && "
        f"document.querySelector('[data-testid=deal-row-{deal.pk}], [data-testid=deal-card-{deal.pk}]')"
    )
    deal.refresh_from_db()
    assert deal.stage == org.stages[1] and deal.probability == org.stages[1].probability
    assert StageEvidence.objects.get(opportunity=deal).text == "Met the CIO, budget confirmed"
    assert OpportunityHistory.objects.filter(opportunity=deal, field="stage", new_stage=org.stages[1]).exists()
    row = page.locator(f"[data-testid=deal-row-{deal.pk}], [data-testid=deal-card-{deal.pk}]").first
    assert org.stages[1].name in row.inner_text()
    # Phone width: the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_manager_filters_the_team_pipeline(page, org):
    for _ in range(2):
        make_deal(owner=org.rep, amount="1000")
    make_deal(owner=org.rep_js, amount="5000")
    make_deal(owner=org.rep_other, amount="9999")  # North: never visible to the East manager
    login(page, "manager")
    page.goto("/pipeline/team/")  # managers land on their workbench
    totals = page.get_by_test_id("totals")
    assert totals.get_by_test_id("total-count").get_attribute("data-value") == "3"
    assert Decimal(totals.get_by_test_id("total-amount").get_attribute("data-value")) == Decimal("7000")

    form = page.get_by_test_id("filter-form")
    form.locator("[name=region]").select_option(value=str(org.js.pk))
    apply = page.get_by_test_id("filter-apply")
    if apply.count() and apply.is_visible():
        apply.click()
    page.wait_for_function("() => document.querySelector('[data-testid=total-count]').dataset.value === '1'")
    assert Decimal(page.get_by_test_id("total-amount").get_attribute("data-value")) == Decimal("5000")
    assert "region=" in page.url  # the filtered view is shareable
    rows = page.locator("[data-testid^=team-row-]")
    assert rows.count() == 1


def test_manager_edits_a_deal_from_its_page_the_form_loading_when_the_panel_opens(page, org):
    deal = make_deal(owner=org.rep, amount="1000", name="Panel deal")
    login(page, "manager")
    page.goto(f"/pipeline/deals/{deal.pk}/")
    assert page.get_by_test_id("edit-form").count() == 0  # not built until asked for
    page.get_by_test_id("edit-panel").locator("summary").click()
    form = page.get_by_test_id("edit-form")
    form.wait_for()
    pick(form, "owner", "rep_js", str(org.rep_js))
    form.locator("input[name=amount]").fill("2,500")
    page.get_by_test_id("edit-submit").click()
    page.get_by_test_id("deal-amount").wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=deal-amount]').textContent.includes('2,500')")
    deal.refresh_from_db()
    assert (deal.amount, deal.owner, deal.version) == (Decimal("2500"), org.rep_js, 2)
    # The saved deal's page: its panel loads the form of the new version; closed and opened again, not a second one.
    summary = page.get_by_test_id("edit-panel").locator("summary")
    summary.click()
    page.get_by_test_id("edit-form").wait_for()
    assert page.get_by_test_id("edit-form").locator("input[name=version]").input_value() == "2"
    summary.click()
    summary.click()
    page.get_by_test_id("edit-form").wait_for()
    htmx_settled(page)
    assert page.get_by_test_id("edit-form").count() == 1
