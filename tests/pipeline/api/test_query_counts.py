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


def _stage_move_queries(client, deal) -> tuple[int, dict]:
    """Queries of one move of a deal one stage on through the API (its background work is not run here), and
    the answer's body."""
    stage = next(s for s in deal.pipeline.stages.order_by("order") if s.order > deal.stage.order)
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            f"/api/opportunities/{deal.pk}/move-stage/",
            {"stage": stage.pk, "evidence": "Met them", "version": deal.version},
            format="json",
        )
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def test_a_stage_move_costs_a_fixed_number_of_queries_and_answers_the_deal_as_read(org, api, monkeypatch):
    """A move reads the deal (scoped), locks and writes it with its history, audit and outbox rows, and answers the
    deal as written: the same queries whoever moves it and however many deals and people the scope holds, and the
    same body as reading the deal afterwards."""
    from celery import current_app

    monkeypatch.setitem(current_app.conf, "task_always_eager", False)  # a worker's part: not in the request
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: None)
    seed(org, 2)
    movers = (("rep", org.rep), ("manager", org.rep_same_team), ("director", org.rep_js))
    few = {}
    for who, owner in movers:
        client = api(getattr(org, who))
        deal = make_deal(owner=owner, amount="500")
        few[who], body = _stage_move_queries(client, deal)
        assert body == client.get(f"/api/opportunities/{deal.pk}/").json()
    seed(org, 10)
    for i in range(10):
        UserFactory(username=f"more{i}", region=org.js if i % 2 else org.sh)
    many = {
        who: _stage_move_queries(api(getattr(org, who)), make_deal(owner=owner, amount="700"))[0]
        for who, owner in movers
    }
    assert many == few
    # Token or session, scope, the stage, whether the deal is seen; then lock, read, write, history, outbox, audit;
    # the pages' versions bumped; its lines (with the transaction's statements where the database counts them). The
    # outbox's publish after commit reads nothing back: a drained-together task's name is known.
    assert max(few.values()) <= 13, few


def test_a_stage_move_checks_the_deal_is_seen_without_reading_it_twice(org, api, monkeypatch):
    from celery import current_app

    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: None)
    deal = make_deal(owner=org.rep, amount="500")
    stage = next(s for s in deal.pipeline.stages.order_by("order") if s.order > deal.stage.order)
    with CaptureQueriesContext(connection) as ctx:
        response = api(org.manager).post(
            f"/api/opportunities/{deal.pk}/move-stage/",
            {"stage": stage.pk, "evidence": "Met them", "version": deal.version},
            format="json",
        )
    assert response.status_code == 200, response.content
    deal_reads = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "pipeline_opportunity"' in q["sql"]
    ]
    # The scoped check (the id alone), the lock, the read of the locked deal with what it joins.
    assert len(deal_reads) == 3, deal_reads
    assert deal_reads[0].startswith('SELECT "pipeline_opportunity"."id" FROM'), deal_reads[0]
    assert not [q for q in ctx.captured_queries if 'FROM "salesmgmt_outboxtask"' in q["sql"]]
    # Someone who does not see the deal: 404, nothing written.
    other = api(org.rep_other).post(
        f"/api/opportunities/{deal.pk}/move-stage/", {"stage": stage.pk, "version": 2}, format="json"
    )
    assert other.status_code == 404
