"""At the size of a big company, the deal lists, their totals and their page counts read the deals through an
index, never a scan of every deal (PostgreSQL only; `tests.query_plans` builds 300,000 deals).

Each test makes the requests the pages and the API make, captures every statement that reads the deals, and
asks PostgreSQL how it would run it. What would bring a full scan back: a data scope joined to the owner's or
the deal's region and matched on its path (`crm.scopes` resolves it to region and owner ids instead), or an
open-deal list that does not say `closed_on IS NULL`, the predicate of the open-deal index.
"""

import pytest
from django.urls import reverse

from pipeline import selectors
from tests.query_plans import (
    assert_no_full_scan,
    company_fixture,
    index_names,
    seq_scans_of,
    sql_of,
    statements_reading,
)

DEALS = "pipeline_opportunity"
OPEN_DEALS_INDEX = "opportunity_open_by_close"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "team-results"}

pytestmark = pytest.mark.xdist_group("query_plans")

company = company_fixture()


def deal_statements(client, *calls) -> list[str]:
    return statements_reading(DEALS, client, *calls)


def test_a_managers_team_pipeline_its_totals_and_pages_read_his_deals_by_index(company, client_for, db):
    url = reverse("pipeline:team")
    statements = deal_statements(
        client_for(company.province_manager),
        (url, {}, {}),
        (url, {"page": 3}, HTMX),
        (url, {"status": "all", "order": "-amount"}, HTMX),
        (url, {"status": "won"}, HTMX),
    )
    assert_no_full_scan(statements, DEALS, "a manager's team pipeline")


def test_the_deal_api_list_and_its_page_count_read_a_managers_deals_by_index(company, api, db):
    statements = deal_statements(
        api(company.province_manager),
        ("/api/opportunities/", {}, {}),
        ("/api/opportunities/", {"status": "open", "page": 2}, {}),
        ("/api/opportunities/totals/", {}, {}),
    )
    page_counts = [sql for sql in statements if sql.startswith("SELECT COUNT(*)")]
    assert len(page_counts) == 2  # the pagination's COUNT(*) of each list
    assert_no_full_scan(statements, DEALS, "the deal API for a manager")


def test_a_team_managers_and_a_reps_lists_read_their_deals_by_index(company, client_for, api, db):
    statements = (
        deal_statements(client_for(company.team_manager), (reverse("pipeline:team"), {}, {}))
        + deal_statements(client_for(company.rep), (reverse("pipeline:mine"), {"view": "list"}, {}))
        + deal_statements(api(company.rep), ("/api/opportunities/", {}, {}))
    )
    assert_no_full_scan(statements, DEALS, "a team manager's or a rep's deals")


def test_open_deals_in_close_date_order_come_from_the_open_deal_index(company, client_for, api, db):
    """The director sees every deal: the first page of open deals, soonest first, must not walk the
    close-date index through the closed deals (five in six) before it finds an open one. (His totals add
    up every open deal, a sixth of the table: a scan of it may well be the planner's best choice there.)"""
    statements = deal_statements(
        client_for(company.director),
        (reverse("pipeline:team"), {}, HTMX),
        (reverse("pipeline:team"), {"page": 4}, HTMX),
    ) + deal_statements(api(company.director), ("/api/opportunities/", {"status": "open"}, {}))
    pages = [sql for sql in statements if "LIMIT" in sql and "ORDER BY" in sql]
    assert len(pages) == 3
    for sql in pages:
        assert OPEN_DEALS_INDEX in index_names(sql), sql
    assert_no_full_scan(pages, DEALS, "the director's pages of open deals")


def test_a_region_filter_reads_the_regions_deals_by_index(company, client_for, api, db):
    region = {"region": company.province.pk}
    statements = deal_statements(
        client_for(company.director), (reverse("pipeline:team"), region, HTMX), (reverse("pipeline:team"), region, {})
    ) + deal_statements(api(company.director), ("/api/opportunities/", region, {}))
    assert_no_full_scan(statements, DEALS, "a region filter")


def test_the_open_deal_list_of_the_selectors_uses_the_index_whoever_asks(company, db):
    for user in (company.director, company.province_manager, company.team_manager, company.rep):
        sql = sql_of(selectors.team_deals(user, {"status": selectors.STATUS_OPEN})[:25])
        assert not seq_scans_of(sql, DEALS), (user, sql)
    assert OPEN_DEALS_INDEX in index_names(sql_of(selectors.team_deals(company.director, {})[:25]))


def test_the_directors_per_stage_totals_of_open_deals_are_summed_per_team_without_a_full_scan(company, client_for, db):
    """The director's team pipeline adds up every open deal by stage from sums kept per team (`crm.rollup`): the
    teams it sums again (here all of them: nothing is kept inside a test's transaction) are summed in one statement
    grouped by team and stage that reads the open deals through an index, not by a scan of every deal."""
    statements = deal_statements(client_for(company.director), (reverse("pipeline:team"), {}, {}))
    subtotals = [sql for sql in statements if "GROUP BY" in sql and "SUM(" in sql]
    assert len(subtotals) == 1, statements
    assert '"pipeline_opportunity"."region_id" AS "region"' in subtotals[0], subtotals[0]  # per team
    assert_no_full_scan(subtotals, DEALS, "the director's open-deal sums per team")
