"""The Content-Security-Policy allows scripts from this site's files only: no page of the main flows may carry an
inline <script>, an event handler attribute or a javascript: URL, and every chart is data for static/js/charts.js.
Checked on the demo's data (tests/salesmgmt/main_pages.py); the browser test runs the same pages."""

import pytest
from django.db import transaction
from django.test import Client, override_settings

from crm.models import User
from tests.conftest import chart_figures
from tests.pipeline.test_demo_story import load_demo
from tests.salesmgmt.main_pages import inline_code, main_pages
from tests.salesmgmt.test_security import csp_directives

pytestmark = pytest.mark.xdist_group("demo_story")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo loaded once for the module, rolled back after its tests."""
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])  # as every test
    with django_db_blocker.unblock(), fast:
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            load_demo()
            yield main_pages()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def test_no_page_of_the_main_flows_runs_inline_code_and_charts_are_data(demo, db):
    clients: dict = {}
    charts = 0
    for username, url, has_chart in demo:
        if username not in clients:
            clients[username] = Client()
            if username:
                clients[username].force_login(User.objects.get(username=username))
        response = clients[username].get(url)
        assert response.status_code == 200, (username, url)
        assert csp_directives(response)["script-src"] == "'self'", url  # directives come in any order
        html = response.content.decode()
        assert inline_code(html) == [], (username, url)
        assert "<script src=" in html  # the page's own scripts are files
        figures = chart_figures(html)
        if has_chart:
            assert figures and all(figure["data"] for figure in figures), (username, url)
            assert "vendor/plotly-" in html, url  # the library that draws them
        charts += len(figures)
    assert charts >= 8


def test_the_audit_finds_inline_code():
    """The check above could fail: each kind of inline code is found."""
    found = inline_code(
        '<script src="/static/a.js"></script><script>alert(1)</script>'
        '<button onclick="x()">b</button><select onchange="y()"></select><div hx-on:click="z()"></div>'
        '<a href="javascript:void(0)">a</a><div class="chart" data-figure="{}"></div>'
    )
    assert len(found) == 5
