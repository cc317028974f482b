"""List pages issue a fixed number of queries however many rows they show (no query per row)."""

from datetime import date

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.services import customer_rate
from pipeline.services import activity_log, opportunity_move_stage
from tests.factories import CustomerFactory, ProductLineFactory, make_deal

# Fixed per page, whatever the number of rows (the team page has two region pickers: team and customer region).
MAX_QUERIES = 20


def seed(org, n):
    """n deals for the rep and n for a teammate, each on its own rated customer, with a product line."""
    line = ProductLineFactory()
    for i in range(n):
        for owner in (org.rep, org.rep_same_team):
            customer = CustomerFactory(owner=owner, region=owner.region)
            customer_rate(customer=customer, stars=1 + i % 5, reasons="r", actor=owner)
            stage = org.stages[i % 5]
            make_deal(
                owner=owner,
                customer=customer,
                stage=stage,
                close=date(2026, 5, 1 + i % 28),
                lines=[{"product_line": line, "amount": 100 + i}],
            )


PAGES = [
    ("rep", "pipeline:mine", {"view": "list", "status": "all"}),
    ("rep", "pipeline:mine", {"view": "kanban", "status": "all"}),
    ("manager", "pipeline:team", {"status": "all"}),
    ("manager", "pipeline:team", {"status": "all", "region": "sh", "close_month": "2026-05", "order": "stage"}),
    ("director", "pipeline:team", {"status": "open"}),
    ("manager", "crm:customer_list", {}),
    ("rep", "crm:customer_list", {"q": "Customer"}),
]


def count_queries(client, url, params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
        assert response.status_code == 200
    return len(ctx.captured_queries), response


def test_list_pages_do_not_grow_with_rows(org, client_for, django_assert_max_num_queries):
    pages = []
    for who, name, params in PAGES:
        params = {k: (org.sh.pk if v == "sh" else v) for k, v in params.items()}
        pages.append((f"{who} {name} {params}", client_for(getattr(org, who)), reverse(name), params))

    def measure():
        result = {}
        for label, client, url, params in pages:
            client.get(url, params)  # the first visit may save a preference in the session; measure the next
            with django_assert_max_num_queries(MAX_QUERIES, info=label):
                result[label] = count_queries(client, url, params)
        return result

    seed(org, 5)
    small = measure()
    seed(org, 25)
    large = measure()
    for label in small:
        assert large[label][0] == small[label][0], label
        assert len(large[label][1].content) > len(small[label][1].content), label  # more rows really shown


def test_deal_detail_does_not_grow_with_history_and_activities(org, client_for, django_assert_max_num_queries):
    deal = make_deal(owner=org.rep)
    client = client_for(org.rep)
    url = reverse("pipeline:deal_detail", args=[deal.pk])
    small, _ = count_queries(client, url, {})
    for _ in range(20):
        activity_log(customer=deal.customer, opportunity=deal, kind="call", date=date(2026, 5, 1), actor=org.rep)
    for stage in org.stages[1:4]:
        deal = opportunity_move_stage(opportunity=deal, stage=stage, actor=org.rep, evidence="e")
    with django_assert_max_num_queries(small):
        large, _ = count_queries(client, url, {})
    assert large == small


def test_deal_detail_does_not_grow_with_product_lines(org, client_for):
    one = make_deal(owner=org.rep, lines=[{"product_line": ProductLineFactory(), "amount": 100}])
    many = make_deal(owner=org.rep, lines=[{"product_line": ProductLineFactory(), "amount": 10 + i} for i in range(8)])
    client = client_for(org.manager)
    counts = {}
    for deal in (one, many):
        url = reverse("pipeline:deal_detail", args=[deal.pk])
        client.get(url)
        counts[deal.pk], response = count_queries(client, url, {})
        assert response.content.decode().count('<td data-label="Product line">') == deal.lines.count()
    assert counts[many.pk] == counts[one.pk], counts


def test_deal_page_reads_each_thing_once(org, client_for):
    """A manager's deal page reads his scope's regions once, for the deal, its activities and its collections
    (an activity on a deal is seen where the deal is: his people are not read), and the collections once for the
    list and their total. The edit form is not built: its panel loads it when opened."""
    deal = make_deal(owner=org.rep, stage=next(s for s in org.stages if s.is_won), amount="1000")
    client = client_for(org.manager)
    url = reverse("pipeline:deal_detail", args=[deal.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0].strip('"(') for q in ctx.captured_queries]
    assert tables.count("pipeline_collection") == 1, tables
    # The collection form's currency <select> reads its choices once, not also its first; the edit form's is not built.
    assert tables.count("crm_currency") == 1, tables
    assert "crm_customer" not in tables and response.context["edit_form"] is None, tables
    reaches = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip("(").startswith('SELECT "crm_region"."id"')]
    assert len(reaches) == 1, reaches  # the regions (for the deal, its activities and collections)
    assert "UNION" not in reaches[0]  # not with their members


def test_the_deal_edit_form_reads_each_choice_list_once(org, client_for):
    deal = make_deal(owner=org.rep, amount="1000")
    client = client_for(org.manager)
    url = reverse("pipeline:deal_edit", args=[deal.pk])
    headers = {"HX-Request": "true", "HX-Target": "edit-body"}
    client.get(url, headers=headers)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0].strip('"(') for q in ctx.captured_queries]
    assert tables.count("crm_currency") == 1, tables
    assert "pipeline_collection" not in tables and "pipeline_opportunityhistory" not in tables, tables  # a fragment
