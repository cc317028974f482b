"""Query-string filters, ordering and pagination of the deal, activity and collection lists."""

from datetime import date

import pytest

from pipeline.services import opportunity_move_stage, opportunity_update
from salesmgmt.api import PageNumberPagination
from tests.conftest import ids, results
from tests.factories import ProductFactory, make_deal


def deal_ids(client, query: str) -> set[int]:
    return ids(client.get(f"/api/opportunities/?{query}"))


@pytest.fixture
def director(org, api):
    return api(org.director)


def test_filter_by_stage(org, deals, director):
    moved = deals["rep_js"]
    opportunity_move_stage(opportunity=moved, stage=org.stages[1], evidence="met", actor=org.rep_js)
    assert deal_ids(director, f"stage={org.stages[1].pk}") == {moved.pk}
    assert deal_ids(director, f"stage={org.stages[0].pk}") == {deals[n].pk for n in ("rep", "rep_sh2", "rep_other")}


def test_filter_by_close_month_and_date_range(deals, director):
    assert deal_ids(director, "close_month=2026-06") == {deals["rep"].pk, deals["rep_js"].pk}
    assert deal_ids(director, "close_month=2026-08") == {deals["rep_other"].pk}
    assert deal_ids(director, "close_date_after=2026-06-30&close_date_before=2026-07-15") == {
        deals["rep"].pk,
        deals["rep_sh2"].pk,
    }


def test_bad_close_month_is_a_json_400(deals, director):
    response = director.get("/api/opportunities/?close_month=2026-13")
    assert response.status_code == 400
    assert response.json()["errors"] == {"close_month": ["Enter a month as YYYY-MM, e.g. 2026-06."]}


def test_filter_by_region_includes_the_subtree(org, deals, director):
    assert deal_ids(director, f"region={org.east.pk}") == {deals[n].pk for n in ("rep", "rep_sh2", "rep_js")}
    assert deal_ids(director, f"region={org.sh.pk}") == {deals["rep"].pk, deals["rep_sh2"].pk}
    assert deal_ids(director, f"region={org.hq.pk}") == {d.pk for d in deals.values()}
    assert deal_ids(director, "region=999999") == set()


def test_region_filter_cannot_widen_the_scope(org, deals, api):
    assert deal_ids(api(org.rep), f"region={org.hq.pk}") == {deals["rep"].pk}


def test_filter_by_owner_customer_and_pipeline(org, deals, director):
    assert deal_ids(director, f"owner={org.rep_js.pk}") == {deals["rep_js"].pk}
    assert deal_ids(director, f"customer={deals['rep_other'].customer_id}") == {deals["rep_other"].pk}
    assert deal_ids(director, f"pipeline={org.pipeline.pk}") == {d.pk for d in deals.values()}


def test_filter_by_status_and_forecast_category(org, deals, director):
    opportunity_move_stage(opportunity=deals["rep"], stage=org.stages[4], evidence="PO", actor=org.rep)
    opportunity_move_stage(opportunity=deals["rep_js"], stage=org.stages[5], lost_reason="price", actor=org.rep_js)
    assert deal_ids(director, "status=won") == {deals["rep"].pk}
    assert deal_ids(director, "status=lost") == {deals["rep_js"].pk}
    assert deal_ids(director, "status=open") == {deals["rep_sh2"].pk, deals["rep_other"].pk}
    opportunity_update(opportunity=deals["rep_sh2"], data={"forecast_category": "commit"}, actor=org.rep_same_team)
    assert deal_ids(director, "forecast_category=commit") == {deals["rep_sh2"].pk}
    assert deal_ids(director, "forecast_category=commit&forecast_category=closed") == {
        deals["rep_sh2"].pk,
        deals["rep"].pk,
    }


def test_filter_by_product_line(org, director):
    product = ProductFactory()
    other = ProductFactory()
    with_line = make_deal(
        owner=org.rep, lines=[{"product": product, "amount": "10"}, {"product": other, "amount": "5"}]
    )
    make_deal(owner=org.rep, lines=[{"product": other, "amount": "10"}])
    make_deal(owner=org.rep)
    # Two lines of the same deal match once: the filter never duplicates rows.
    assert [row["id"] for row in results(director.get(f"/api/opportunities/?product_line={product.line_id}"))] == [
        with_line.pk
    ]


def test_ordering(deals, director):
    rows = results(director.get("/api/opportunities/?ordering=-amount_company"))
    assert [row["amount"] for row in rows] == ["4000.00", "3000.00", "2000.00", "1000.00"]
    rows = results(director.get("/api/opportunities/"))
    assert [row["expected_close_date"] for row in rows] == ["2026-06-01", "2026-06-30", "2026-07-15", "2026-08-31"]


def test_pagination_with_page_size(deals, director):
    first = director.get("/api/opportunities/?page_size=3").json()
    assert first["count"] == 4
    assert len(first["results"]) == 3
    assert "page=2" in first["next"]
    second = director.get("/api/opportunities/?page_size=3&page=2").json()
    assert len(second["results"]) == 1
    assert {r["id"] for r in first["results"] + second["results"]} == {d.pk for d in deals.values()}
    assert director.get("/api/opportunities/?page=9").status_code == 404


def test_page_size_is_capped(deals, director, monkeypatch):
    monkeypatch.setattr(PageNumberPagination, "max_page_size", 2)
    assert len(results(director.get("/api/opportunities/?page_size=1000"))) == 2
    assert PageNumberPagination.page_size_query_param == "page_size"


def test_activity_and_collection_filters(org, deals, api):
    client = api(org.rep)
    customer = deals["rep"].customer_id
    for day in ("2026-06-01", "2026-06-10"):
        assert (
            client.post(
                "/api/activities/", {"customer": customer, "kind": "visit", "date": day}, format="json"
            ).status_code
            == 201
        )
    client.post("/api/activities/", {"customer": customer, "kind": "call", "date": "2026-06-12"}, format="json")
    assert len(results(client.get("/api/activities/?kind=visit"))) == 2
    rows = results(client.get("/api/activities/?date_after=2026-06-05"))
    assert sorted(row["date"] for row in rows) == ["2026-06-10", "2026-06-12"]
    assert date(2026, 6, 12).isoformat() == results(client.get("/api/activities/"))[0]["date"]
