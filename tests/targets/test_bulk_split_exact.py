"""The bulk split in SQL (one INSERT ... SELECT) gives the cents of `allocation.largest_remainder` for
awkward amounts, and never takes money through a float, on SQLite as on PostgreSQL."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from salesmgmt.lib.allocation import largest_remainder
from targets.services import plan_create, target_split_leaves
from tests.factories import ProductLineFactory
from tests.targets.conftest import sql_split_statements

FLOAT_TYPES = re.compile(r"\b(REAL|FLOAT\d*|DOUBLE)\b", re.IGNORECASE)


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        ("100.00", [1, 1, 1]),
        ("0.05", [1] * 7),
        ("1000000.01", [1, 1, 1]),
        ("1000000.01", None),  # the equal split: its own SQL, no sort
        ("0.05", None),
        ("99999999999.99", [3, 1, 4, 1, 5, 9, 2]),
    ],
)
def test_the_sql_split_gives_the_cents_of_the_largest_remainder(org, metrics, total, weights):
    lines = [ProductLineFactory(name=f"Line {i:02d}") for i in range(len(weights or [1, 1, 1]))]
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=Decimal(total), owner=org.director, actor=org.director
    )
    root = plan.nodes.get(parent__isnull=True)
    with CaptureQueriesContext(connection) as queries:
        if weights is None:
            target_split_leaves(node=root, dimension="product_line", method="equal", actor=org.director)
        else:
            target_split_leaves(
                node=root,
                dimension="product_line",
                method="weights",
                weights=dict(zip(lines, weights, strict=True)),
                actor=org.director,
            )
    parts = {node.product_line_id: node.amount for node in root.children.all()}
    assert [parts[line.pk] for line in lines] == largest_remainder(Decimal(total), weights or [1] * len(lines))
    statements = sql_split_statements(queries)
    assert len(statements) == 1, "this split should have run in SQL"
    (insert,) = statements
    assert not FLOAT_TYPES.search(insert), "money went through a float in the split SQL"
