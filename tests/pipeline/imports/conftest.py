"""Helpers for the import tests: uploads go to a temporary MEDIA_ROOT, files are built in code
(`csv_bytes`, in tests/conftest.py: the tabular tests of salesmgmt build theirs too)."""

import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command

from crm.models import AuditLog, Customer, Product, ProductLine, Region, User
from pipeline.models import Opportunity, OpportunityHistory, OpportunityLine
from tests.factories import CustomerFactory, ProductFactory, ProductLineFactory

COUNTED = (Opportunity, OpportunityHistory, OpportunityLine, Customer, User, Product, ProductLine, Region, AuditLog)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def snapshot() -> dict[str, int]:
    """Row counts of everything an import may write: equal before/after means nothing was imported."""
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.fixture
def catalogue(org):
    """Two products and two customers of the Shanghai team (rep) in the persona company."""
    line = ProductLineFactory(code="HW", name="Hardware")
    return SimpleNamespace(
        server=ProductFactory(line=line, code="SRV", name="Server X1", list_price=Decimal("1000")),
        storage=ProductFactory(line=line, code="STO", name="Storage S2", list_price=Decimal("800")),
        acme=CustomerFactory(name="Acme Ltd", owner=org.rep, region=org.sh),
        huaxin=CustomerFactory(name="华信科技", owner=org.rep, region=org.sh),
    )


@pytest.fixture
def run_import(tmp_path):
    """Run `manage.py import_opportunities` on bytes; returns (stdout, stderr, CommandError or None)."""

    def run(data: bytes, *args, name="import.csv"):
        path = tmp_path / name
        path.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("import_opportunities", str(path), *args, stdout=out, stderr=err)
        except CommandError as exc:
            return out.getvalue(), err.getvalue(), exc
        return out.getvalue(), err.getvalue(), None

    return run
