"""Fixtures for target tests: a product catalogue, a draft FY2027 plan (the metrics are in tests/conftest.py) and
the day of the "my targets" and attainment screens."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from targets.services import plan_create
from tests.factories import ProductFactory, ProductLineFactory

# The "my targets" and attainment screens' tests (mine/, attainment_ui/) run at this moment, in Q2 of FY2027:
# their conftest.py makes `my_targets_day` autouse.
MY_TARGETS_DAY = datetime(2027, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def my_targets_day(time_machine):
    time_machine.move_to(MY_TARGETS_DAY, tick=False)


@pytest.fixture
def catalogue(db):
    servers = ProductLineFactory(code="SRV", name="Servers", is_key=True)
    software = ProductLineFactory(code="SW", name="Software")
    return {
        "servers": servers,
        "software": software,
        "rack": ProductFactory(code="RACK", name="Rack server", line=servers),
        "blade": ProductFactory(code="BLADE", name="Blade server", line=servers),
        "erp": ProductFactory(code="ERP", name="ERP suite", line=software),
    }


@pytest.fixture
def plan(org, metrics):
    """FY2027 signed revenue of 1,200,000.00, owned by the director."""
    return plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027",
        total=Decimal("1200000"),
        owner=org.director,
        actor=org.director,
    )


def sql_split_statements(queries) -> list[str]:
    """The statements among `queries` (a CaptureQueriesContext) that split leaves in SQL: the one
    INSERT ... SELECT of `target_split_leaves` when the parts fit SQL (none when it split in Python)."""
    return [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"] and "WITH member" in q["sql"]]


def children_of(node):
    return list(node.children.order_by("path"))


def by_region(nodes):
    return {n.region_id: n for n in nodes}
