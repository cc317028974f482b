"""List endpoints cost the same number of queries for 2 rows as for 12."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.services import contact_create, customer_rate
from pipeline.services import activity_log, collection_create, opportunity_move_stage
from tests.factories import ProductFactory, make_deal

LISTS = [
    "/api/opportunities/",
    "/api/customers/",
    "/api/collections/",
    "/api/activities/",
    "/api/users/",
    "/api/regions/",
    "/api/pipelines/",
    "/api/products/",
]


def add_rows(org, n):
    product = ProductFactory()
    for i in range(n):
        owner = [org.rep, org.rep_js][i % 2]
        deal = make_deal(owner=owner, lines=[{"product": product, "amount": "100"}])
        opportunity_move_stage(opportunity=deal, stage=org.stages[4], evidence="PO", actor=owner)
        deal.refresh_from_db()
        collection_create(opportunity=deal, received_on=date(2026, 6, 15), amount=Decimal("50"), actor=owner)
        activity_log(customer=deal.customer, opportunity=deal, kind="visit", date=date(2026, 6, 1), actor=owner)
        contact_create(customer=deal.customer, name=f"Contact {i}", actor=owner)
        customer_rate(customer=deal.customer, stars=4, reasons="good", actor=owner)


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(org, api, url, django_assert_max_num_queries):
    client = api(org.manager)
    add_rows(org, 2)
    few = count_queries(client, url)
    add_rows(org, 10)
    assert count_queries(client, url) == few
    with django_assert_max_num_queries(6):
        client.get(url)
