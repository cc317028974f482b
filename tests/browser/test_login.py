from tests.browser.plugin import login


def test_login_lands_each_role_on_their_workbench_and_logout(page, org):
    login(page, "rep")
    assert page.url.endswith("/") and page.locator('[data-testid="my-targets"]').is_visible()
    page.click("[data-testid=user-menu]")
    page.click("#logout-button")
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" in page.url or "logged out" in page.content().lower()
    login(page, "manager")
    assert page.url.endswith("/") and page.locator('[data-testid="open-review"]').is_visible()
    # The Review menu leads to the weekly review and its parts.
    page.click("[data-testid=nav-review-menu] summary")
    with page.expect_navigation():
        page.click("[data-testid=nav-review]")
    assert page.url.endswith("/review/")
    page.click("[data-testid=nav-review-menu] summary")
    with page.expect_navigation():
        page.click("[data-testid=nav-meetings]")
    assert page.url.endswith("/review/meetings/")


def test_wrong_password_shows_error(page, org):
    login(page, "rep", "wrong")
    assert "/accounts/login/" in page.url
    assert page.locator(".errorlist").is_visible()


def test_language_switch_to_chinese(page, org):
    login(page, "rep")
    with page.expect_navigation():
        page.select_option("select[name=language]", "zh-hans")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
