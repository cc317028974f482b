"""The main pages in a real browser under the Content-Security-Policy: nothing is refused (no
`securitypolicyviolation`, no console error), and every chart is drawn (an SVG in each chart div), also after an
htmx swap. The demo's data; the same pages as tests/salesmgmt/test_csp_pages.py."""

from pipeline.management.commands.seed_demo import DEMO_PASSWORD
from tests.browser.plugin import htmx_settled, login
from tests.pipeline.test_demo_story import load_demo
from tests.salesmgmt.main_pages import main_pages

# Registered before any page script runs (an init script is the browser's own, outside the page's policy).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
CHARTS_DRAWN = """() => {
  const charts = Array.from(document.querySelectorAll('.chart[data-figure]'));
  return charts.length > 0 && charts.every(el => el.querySelector('svg.main-svg'));
}"""


def test_the_main_pages_run_under_the_policy_and_draw_their_charts(page):
    load_demo()
    pages = main_pages()
    page.context.add_init_script(WATCH_VIOLATIONS)
    errors: list[str] = []

    def console(message):
        # The browser asks for /favicon.ico by itself (the pages name none): not the pages' doing.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))

    user = object()
    for username, url, has_chart in pages:
        if username != user:
            page.context.clear_cookies()
            if username:
                login(page, username, DEMO_PASSWORD)
                assert "/accounts/login/" not in page.url, username
            user = username
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        if has_chart:
            page.wait_for_function(CHARTS_DRAWN)
        assert page.evaluate("window.__violations") == [], url
        assert errors == [], url

    # After an htmx swap the new charts are drawn too (the funnel's filter replaces its results).
    page.goto("/review/funnel/")
    page.wait_for_function(CHARTS_DRAWN)
    first = page.locator(".chart[data-figure]").first.get_attribute("data-figure")
    with page.expect_response(lambda r: "/review/funnel/" in r.url):
        page.get_by_test_id("filter-form").locator("button[type=submit]").click()
    htmx_settled(page)
    page.wait_for_function(CHARTS_DRAWN)
    assert page.locator(".chart[data-figure]").first.get_attribute("data-figure") == first
    assert page.evaluate("window.__violations") == [] and errors == []

    # The API docs: Swagger UI from the app's own static files (drf-spectacular-sidecar), under the same policy.
    response = page.goto("/api/docs/")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".swagger-ui .info .title").wait_for()
    assert "salesmgmt API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 50  # every operation listed
    assert page.evaluate("window.__violations") == [] and errors == []
