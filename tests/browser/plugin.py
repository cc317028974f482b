"""Browser fixtures, a pytest plugin loaded by tests/conftest.py.

Playwright drives Debian's chromium (/usr/bin/chromium); never `playwright install`."""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls in fixtures are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    # Every test driving the browser shares one chromium per worker and runs in one xdist group.
    for item in items:
        if {"page", "phone_page"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def _browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(_browser, live_server, transactional_db):
    context = _browser.new_context(base_url=live_server.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_page(_browser, live_server, transactional_db):
    context = _browser.new_context(
        base_url=live_server.url, locale="en-US", viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def login(page, username, password="pw-test-123"):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def htmx_settled(page):
    """Wait until htmx has no request in flight and has finished swapping and settling.

    htmx binds the triggers of swapped-in content only when it settles (20 ms after the swap); a
    change made in that window reaches a control without its listener and is silently lost."""
    page.wait_for_function(
        "() => window.htmx && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def css_string(text: str) -> str:
    """`text` inside a CSS attribute selector's double quotes."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def pick(scope, name, text, label):
    """Type `text` into the search picker of field `name` (crm.forms.SearchSelect) inside `scope` (a page or a
    locator) and click the match labelled exactly `label`; returns once its hidden input holds the chosen id."""
    from playwright.sync_api import expect

    scope.get_by_test_id(f"pick-{name}").fill(text)
    scope.get_by_test_id(f"pick-{name}-options").locator(
        f'[role=option][data-label="{css_string(label)}"]'
    ).first.click()
    expect(scope.locator(f"input[type=hidden][name={name}]")).not_to_have_value("")
