"""Persona fixtures: a small company with a director, an area manager, two reps in his area
(two teams) and a rep of another area, as healthchecks' alice/bob/charlie."""

from types import SimpleNamespace

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from crm.models import CompanySettings, DataScope, RegionKind, Role
from crm.services import ensure_company_currency
from pipeline.services import pipeline_ensure_default
from tests.factories import UserFactory, make_region

pytest_plugins = ["tests.browser.plugin"]


@pytest.fixture
def org(db):
    company = CompanySettings.load()
    ensure_company_currency()
    hq = make_region("HQ", "HQ", kind=RegionKind.COMPANY)
    east = make_region("East", "EAST", parent=hq, kind=RegionKind.AREA)
    north = make_region("North", "NORTH", parent=hq, kind=RegionKind.AREA)
    sh = make_region("Shanghai", "SH", parent=east, kind=RegionKind.PROVINCE)
    js = make_region("Jiangsu", "JS", parent=east, kind=RegionKind.PROVINCE)
    bj = make_region("Beijing", "BJ", parent=north, kind=RegionKind.PROVINCE)
    director = UserFactory(username="director", role=Role.DIRECTOR, region=hq)
    manager = UserFactory(username="manager", role=Role.MANAGER, region=east)
    manager_north = UserFactory(username="manager_north", role=Role.MANAGER, region=north)
    east.manager = manager
    east.save(update_fields=["manager"])
    north.manager = manager_north
    north.save(update_fields=["manager"])
    rep = UserFactory(username="rep", role=Role.REP, region=sh)
    rep_same_team = UserFactory(username="rep_sh2", role=Role.REP, region=sh)
    rep_js = UserFactory(username="rep_js", role=Role.REP, region=js)
    rep_other = UserFactory(username="rep_other", role=Role.REP, region=bj)
    admin = UserFactory(username="admin", role=Role.ADMIN, is_staff=True, is_superuser=True)
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
