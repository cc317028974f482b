"""The deal API's lists, totals and page counts cost a fixed number of queries, however many deals and however
wide the data scope (the scope is resolved to ids in one query, whatever the number of regions and people)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipeline.services import opportunity_move_stage
from tests.factories import UserFactory, make_deal

CALLS = [
    ("/api/opportunities/", {}),
    ("/api/opportunities/", {"status": "open", "page_size": 5, "ordering": "-amount_company"}),
    ("/api/opportunities/", {"region": "east"}),
    ("/api/opportunities/totals/", {"status": "open"}),
    ("/api/collections/", {}),
    ("/api/activities/", {}),
    ("/api/customers/", {}),
]


def seed(org, n):
    for i in range(n):
        for owner in (org.rep, org.rep_same_team, org.rep_js, org.rep_other):
            deal = make_deal(owner=owner, amount=str(100 + i))
            if i % 3 == 0:
                won = next(s for s in org.stages if s.is_won)
                opportunity_move_stage(opportunity=deal, stage=won, actor=owner, evidence="e")


def measure(org, api) -> dict[tuple[str, str, str], int]:
    counts = {}
    for who in ("rep", "manager", "director"):
        client = api(getattr(org, who))
        for url, params in CALLS:
            params = {k: (org.east.pk if v == "east" else v) for k, v in params.items()}
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url, params)
            assert response.status_code == 200, (who, url, response.content)
            counts[(who, url, str(params))] = len(ctx.captured_queries)
    return counts


def test_the_deal_api_costs_the_same_queries_for_few_and_many_deals(org, api):
    seed(org, 2)
    few = measure(org, api)
    seed(org, 12)
    for i in range(10):  # more people in the manager's regions: his scope's id lists grow, not its queries
        UserFactory(username=f"more{i}", region=org.js if i % 2 else org.sh)
    many = measure(org, api)
    assert many == few
    assert max(few.values()) <= 6, few
