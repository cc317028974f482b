"""Persona fixtures: a small company with a director, an area manager, two reps in his area
(two teams) and a rep of another area, as healthchecks' alice/bob/charlie. And what the apps' API,
screen and import tests share: their frozen days, one deal per rep, and readers of what they answer."""

import csv
import io
from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from openpyxl import load_workbook
from rest_framework.test import APIClient

from crm.models import CompanySettings, DataScope, RegionKind, Role
from crm.services import ensure_company_currency
from pipeline.services import pipeline_ensure_default
from tests.factories import UserFactory, make_deal, make_region

pytest_plugins = ["tests.browser.plugin"]


@pytest.fixture
def org(db):
    """A small company. Its people have fixed first names, none inside another: pickers and searches find them by
    name, and random names could collide (a rep picked for his namesake)."""
    company = CompanySettings.load()
    ensure_company_currency()
    hq = make_region("HQ", "HQ", kind=RegionKind.COMPANY)
    east = make_region("East", "EAST", parent=hq, kind=RegionKind.AREA)
    north = make_region("North", "NORTH", parent=hq, kind=RegionKind.AREA)
    sh = make_region("Shanghai", "SH", parent=east, kind=RegionKind.PROVINCE)
    js = make_region("Jiangsu", "JS", parent=east, kind=RegionKind.PROVINCE)
    bj = make_region("Beijing", "BJ", parent=north, kind=RegionKind.PROVINCE)
    director = UserFactory(username="director", first_name="Diana", role=Role.DIRECTOR, region=hq)
    manager = UserFactory(username="manager", first_name="Marcus", role=Role.MANAGER, region=east)
    manager_north = UserFactory(username="manager_north", first_name="Nadia", role=Role.MANAGER, region=north)
    east.manager = manager
    east.save(update_fields=["manager"])
    north.manager = manager_north
    north.save(update_fields=["manager"])
    rep = UserFactory(username="rep", first_name="Oscar", role=Role.REP, region=sh)
    rep_same_team = UserFactory(username="rep_sh2", first_name="Priya", role=Role.REP, region=sh)
    rep_js = UserFactory(username="rep_js", first_name="Quentin", role=Role.REP, region=js)
    rep_other = UserFactory(username="rep_other", first_name="Rosa", role=Role.REP, region=bj)
    admin = UserFactory(username="admin", first_name="Adele", role=Role.ADMIN, is_staff=True, is_superuser=True)
    pipeline = pipeline_ensure_default()
    return SimpleNamespace(
        company=company,
        hq=hq,
        east=east,
        north=north,
        sh=sh,
        js=js,
        bj=bj,
        director=director,
        manager=manager,
        manager_north=manager_north,
        rep=rep,
        rep_same_team=rep_same_team,
        rep_js=rep_js,
        rep_other=rep_other,
        admin=admin,
        pipeline=pipeline,
        stages=list(pipeline.stages.order_by("order")),
        DataScope=DataScope,
    )


@pytest.fixture
def metrics(db):
    """The built-in metrics by code (signed revenue, collections, new customers...)."""
    from targets.services import metric_ensure_defaults

    return {m.code: m for m in metric_ensure_defaults()}


@pytest.fixture
def api():
    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language: a request through the test client activates the user's
    language for the thread and leaves it active (a server activates each request's own)."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_rates():
    """Each test starts with no request counted: DRF's throttles and the password-reset rate keep their counts in
    the default cache, which (local memory) outlives a test. A shared cache (REDIS_URL) is left alone."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture(autouse=True)
def _no_kept_reaches():
    """Each test starts with no scope reach kept from an earlier test (`crm.scopes`: kept under the organisation's
    version, which an emptied database starts again)."""
    from crm.scopes import forget_kept_reaches

    forget_kept_reaches()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for(db):
    """A logged-in Django test client for a user: `client_for(org.rep).get(...)`."""

    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture(scope="session")
def schema(tmp_path_factory, django_db_blocker):
    """The OpenAPI schema as drf-spectacular writes it, generated once per test process."""
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        # --fail-on-warn raises on any generator warning; --validate checks it against the OpenAPI spec.
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


# The API tests (tests/*/api/) run on this day; their conftest.py makes `api_day` autouse.
API_DAY = date(2026, 6, 15)

# The screen tests (tests/*/screens/) run at this moment; their conftest.py makes `screens_day` autouse.
SCREENS_DAY = datetime(2026, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def api_day():
    # Stage moves stamp closed_on with today; freeze it so dates in assertions are stable.
    with time_machine.travel(API_DAY, tick=False):
        yield


@pytest.fixture
def screens_day(time_machine):
    time_machine.move_to(SCREENS_DAY, tick=False)


@pytest.fixture
def deals(org):
    """One deal (and its customer) per rep of the persona company, closing on known dates."""
    return {
        "rep": make_deal(owner=org.rep, amount="1000", close=date(2026, 6, 30)),
        "rep_sh2": make_deal(owner=org.rep_same_team, amount="2000", close=date(2026, 7, 15)),
        "rep_js": make_deal(owner=org.rep_js, amount="3000", close=date(2026, 6, 1)),
        "rep_other": make_deal(owner=org.rep_other, amount="4000", close=date(2026, 8, 31)),
    }


# Whose `deals` each role sees through its data scope.
EXPECTED_OWNERS = {
    "rep": {"rep"},
    "manager": {"rep", "rep_sh2", "rep_js"},
    "director": {"rep", "rep_sh2", "rep_js", "rep_other"},
}


def results(response) -> list[dict]:
    """The rows of an API list response (which must be a 200)."""
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[int]:
    return {row["id"] for row in results(response)}


def csv_ids(response) -> set[int]:
    """The ids (first column) of a CSV export."""
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    return {int(row[0]) for row in rows[1:]}


def xlsx_ids(response) -> set[int]:
    """The ids (first column) of an Excel export."""
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    return {int(row[0]) for row in rows[1:]}


def csv_bytes(rows, *, delimiter=",", encoding="utf-8") -> bytes:
    """A CSV file, as an upload or an import reads it, built in code."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def chart_figures(html: str) -> list[dict]:
    """The figures of a page's charts (`salesmgmt.charts.chart_html`: `<div class="chart" data-figure="{json}">`),
    parsed, in page order."""
    import json
    from html.parser import HTMLParser

    figures: list[dict] = []

    class Charts(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found = dict(attrs)
            if "chart" in (found.get("class") or "").split() and found.get("data-figure"):
                figures.append(json.loads(found["data-figure"]))

    Charts().feed(html)
    return figures
