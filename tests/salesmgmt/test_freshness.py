"""Cached pages (salesmgmt/freshness.py): served from the cache until a committed write changes what they show,
then rendered afresh — for the writes that name what they changed (a deal move: its team and owner), for the
writes nobody declared (anything else: every page), and never for a transaction that rolled back.

These tests commit (transaction=True): the versions move only after a commit, as in production."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.scopes import freshness_keys, region_keys
from pipeline.models import Opportunity, Stage
from pipeline.services import opportunity_move_stage
from salesmgmt import freshness
from salesmgmt.models import Freshness
from tests.factories import make_deal

pytestmark = pytest.mark.django_db(transaction=True)


def _reads_deals(captured) -> bool:
    return any("pipeline_opportunity" in q["sql"] for q in captured.captured_queries)


def _get(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response, _reads_deals(captured)


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    client.get("/pipeline/mine/")  # the CSRF cookie a browser holds after its first page
    return client


def _unmasked(content: bytes) -> bytes:
    return re.sub(rb"[A-Za-z0-9]{64}", b"<csrf>", content)


def _version(key: str) -> int:
    return Freshness.objects.filter(key=key).values_list("version", flat=True).first() or 0


@pytest.fixture
def deals(org):
    stages = org.stages
    return {
        "east": make_deal(owner=org.rep, name="Eastern deal", amount="1000", stage=stages[0]),
        "north": make_deal(owner=org.rep_other, name="Northern deal", amount="2000", stage=stages[0]),
    }


def _next(stage: Stage) -> Stage:
    return Stage.objects.filter(pipeline_id=stage.pipeline_id, order__gt=stage.order, is_lost=False).order_by("order")[
        0
    ]


def test_written_tables_reads_what_a_statement_writes():
    assert freshness.written_tables('SELECT * FROM "a" WHERE x = 1 FOR UPDATE') is None
    assert freshness.written_tables('SELECT * FROM "a" FOR NO KEY UPDATE OF "a"') is None
    assert freshness.written_tables("SAVEPOINT s1") is None
    assert freshness.written_tables('CREATE TEMP TABLE "t" (x int)') is None
    assert freshness.written_tables('UPDATE "crm_customer" SET "name" = %s') == {"crm_customer"}
    assert freshness.written_tables('INSERT INTO "a" ("x") VALUES (1) ON CONFLICT ("x") DO UPDATE SET "x" = 2') == {"a"}
    assert freshness.written_tables('DELETE FROM "b" WHERE id = 1') == {"b"}
    assert freshness.written_tables('INSERT OR IGNORE INTO "c" ("x") VALUES (1)') == {"c"}  # SQLite's ignore_conflicts
    assert freshness.written_tables("WITH m AS (SELECT 1) UPDATE targets_latestattainment SET x = 1") == {
        "targets_latestattainment"
    }
    assert freshness.written_tables("COPY pipeline_opportunity (id) FROM STDIN") == {"pipeline_opportunity"}
    assert freshness.written_tables("WITH x AS (SELECT 1) SELECT * FROM x") is None
    assert freshness.written_tables('(SELECT "id" FROM "crm_region") UNION ALL (SELECT "id" FROM "crm_user")') is None
    assert freshness.written_tables("CALL refresh_everything()") == set()  # a write of unknown tables: every page


def test_a_page_is_served_from_the_cache_until_a_move_in_the_scope_changes_it(org, deals):
    manager = _browser(org.manager)
    first, read = _get(manager, "/pipeline/team/")
    assert read
    again, read = _get(manager, "/pipeline/team/")
    assert not read, "the second view of an unchanged team pipeline is the cached page"
    assert again.content == first.content
    deal = deals["east"]
    everything = _version(freshness.EVERYTHING)
    new_stage = _next(deal.stage)
    opportunity_move_stage(opportunity=deal, stage=new_stage, actor=org.rep, evidence="signed", closed_on=None)
    assert _version(freshness.EVERYTHING) == everything, "a move names what it changed: not every page"
    after, read = _get(manager, "/pipeline/team/")
    assert read, "the move in the manager's area made his page stale"
    assert after.content != first.content
    assert new_stage.name in after.content.decode()


def test_a_move_outside_the_scope_leaves_the_page_cached(org, deals):
    manager = _browser(org.manager)
    _get(manager, "/pipeline/team/")
    deal = deals["north"]
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep_other, evidence="x")
    _response, read = _get(manager, "/pipeline/team/")
    assert not read, "a move in another area does not touch the East manager's page"
    director = _browser(org.director)
    _get(director, "/pipeline/team/")
    deal.refresh_from_db()
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep_other, evidence="x")
    _response, read = _get(director, "/pipeline/team/")
    assert read, "the company's page moves with every region"


def test_a_write_nobody_declared_makes_every_page_stale(org, deals):
    manager = _browser(org.manager)
    _get(manager, "/pipeline/team/")
    customer = deals["east"].customer
    customer.name = "Renamed customer Ltd"
    customer.save()  # a plain ORM write: the execute wrapper sees it
    response, read = _get(manager, "/pipeline/team/")
    assert read
    assert "Renamed customer Ltd" in response.content.decode()


def test_a_write_that_rolls_back_bumps_nothing(org, deals):
    before = {k: _version(k) for k in (freshness.EVERYTHING, *region_keys(org.sh.path))}
    with pytest.raises(RuntimeError), transaction.atomic():
        customer = deals["east"].customer
        customer.name = "Never committed"
        customer.save()
        raise RuntimeError
    assert {k: _version(k) for k in before} == before


def test_a_move_bumps_its_team_its_areas_and_its_owner(org, deals):
    deal = deals["east"]
    keys = sorted(region_keys(org.sh.path) | {f"u{org.rep.pk}"})
    assert {f"r{org.sh.pk}", f"r{org.east.pk}", f"r{org.hq.pk}", "r"} <= set(keys)
    before = {k: _version(k) for k in [*keys, f"r{org.north.pk}", f"u{org.rep_other.pk}"]}
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep, evidence="x")
    after = {k: _version(k) for k in before}
    assert all(after[k] == before[k] + 1 for k in keys), (before, after)
    assert after[f"r{org.north.pk}"] == before[f"r{org.north.pk}"]
    assert after[f"u{org.rep_other.pk}"] == before[f"u{org.rep_other.pk}"]


def test_people_never_share_a_cached_page(org, deals):
    rep, manager = _browser(org.rep), _browser(org.manager)
    _get(manager, "/pipeline/team/")
    _get(manager, "/pipeline/team/")
    mine, read = _get(rep, "/pipeline/team/")
    assert read, "the rep's page is his own, rendered for him"
    assert "Northern deal" not in mine.content.decode()
    assert freshness_keys(org.rep) != freshness_keys(org.manager)


def test_the_deal_api_is_cached_and_follows_a_move(org, deals):
    api = APIClient()
    api.force_authenticate(org.manager)
    api.credentials(HTTP_AUTHORIZATION="Session test")  # any credential: the cache keys on it
    url = "/api/opportunities/"
    first, read = _get(api, url)
    assert read
    _again, read = _get(api, url)
    assert not read
    deal = deals["east"]
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep, evidence="x")
    after, read = _get(api, url)
    assert read
    row = next(r for r in after.json()["results"] if r["id"] == deal.pk)
    assert row["version"] == deal.version + 1 or row["stage"] != deal.stage_id


def test_a_page_with_a_message_waiting_is_not_served_from_the_cache(org, deals):
    manager = _browser(org.manager)
    _get(manager, "/pipeline/team/")
    _get(manager, "/pipeline/team/")
    deal = deals["east"]
    # The deal form's success message waits for the next page, which must render it.
    response = manager.post(f"/pipeline/deals/{deal.pk}/move/", {"stage": _next(deal.stage).pk, "evidence": "x"})
    assert response.status_code in (200, 302)
    page, read = _get(manager, "/pipeline/team/")
    assert read


def test_uncommitted_writes_of_the_request_bypass_the_cache(org, deals):
    manager = _browser(org.manager)
    _get(manager, "/pipeline/team/")
    with transaction.atomic():
        customer = deals["east"].customer
        customer.name = "Seen inside the transaction"
        customer.save()
        response, read = _get(manager, "/pipeline/team/")
        assert read and "Seen inside the transaction" in response.content.decode()
        transaction.set_rollback(True)


def test_attainment_writes_bump_their_nodes_keys_not_everything(org, metrics, time_machine):
    from targets.attainment.services import attainment_recompute
    from tests.targets.attainment.test_recompute import build_plan, node, won_stage

    time_machine.move_to("2027-03-15 09:00 +0800", tick=False)
    plan = build_plan(org, metrics["won_revenue"], dimensions=("region", "rep"))
    deal = make_deal(owner=org.rep, amount="1000", close=date(2027, 3, 20))
    attainment_recompute(plan=plan)
    opportunity_move_stage(
        opportunity=deal, stage=won_stage(org), actor=org.rep, evidence="x", closed_on=date(2027, 3, 15)
    )
    leaf = node(plan, rep=org.rep)
    # The won deal's amount corrected behind the services' back (a plain ORM update: every page is stale), then the
    # leaf recomputed incrementally by the engine (a rebuild of a whole plan, on PostgreSQL raw SQL, is a write of
    # everything).
    Opportunity.objects.filter(pk=deal.pk).update(amount=Decimal("1500"), amount_company=Decimal("1500"))
    targets = [f"t:r{org.sh.pk}", f"t:r{org.east.pk}", f"t:u{org.rep.pk}", f"t:r{org.north.pk}"]
    deals = [f"r{org.sh.pk}", f"r{org.east.pk}", f"u{org.rep.pk}"]
    keys = [freshness.EVERYTHING, *targets, *deals]
    before = {k: _version(k) for k in keys}
    assert attainment_recompute(node_ids=[leaf.pk]) > 0
    after = {k: _version(k) for k in keys}
    assert after[freshness.EVERYTHING] == before[freshness.EVERYTHING]
    # The targets' facet of the node's team, the areas above and the rep: pages showing attainment go stale...
    assert after[f"t:r{org.east.pk}"] > before[f"t:r{org.east.pk}"]
    assert after[f"t:u{org.rep.pk}"] > before[f"t:u{org.rep.pk}"]
    assert after[f"t:r{org.north.pk}"] == before[f"t:r{org.north.pk}"]
    # ... and pages showing deals alone (the pipelines, a deal) do not.
    assert all(after[k] == before[k] for k in deals)


def test_the_cached_deal_page_equals_a_fresh_one(org, deals, settings):
    deal = deals["east"]
    manager = _browser(org.manager)
    cached_first, _ = _get(manager, f"/pipeline/deals/{deal.pk}/")
    cached, read = _get(manager, f"/pipeline/deals/{deal.pk}/")
    assert not read
    settings.PAGE_CACHE = False
    fresh, read = _get(manager, f"/pipeline/deals/{deal.pk}/")
    assert read
    # Equal but for the CSRF token, which Django masks afresh on every render.
    assert _unmasked(cached.content) == _unmasked(fresh.content) == _unmasked(cached_first.content)
    assert cached.content == cached_first.content


def test_a_covered_write_bumps_only_what_its_block_names(org, deals):
    customer = deals["east"].customer
    everything = _version(freshness.EVERYTHING)
    with transaction.atomic(), freshness.covering(("crm_customer",)):
        freshness.touch({"u-test"})
        customer.name = "Covered rename"
        customer.save()
    assert _version(freshness.EVERYTHING) == everything
    assert _version("u-test") == 1
    # Written without naming anything: every page.
    with transaction.atomic(), freshness.covering(("crm_customer",)):
        customer.name = "Covered but unnamed"
        customer.save()
    assert _version(freshness.EVERYTHING) == everything + 1
    # A covered block that writes nothing bumps nothing.
    with transaction.atomic(), freshness.covering(("crm_customer",)):
        pass
    assert _version(freshness.EVERYTHING) == everything + 1
    # A table the block does not cover: every page.
    with transaction.atomic(), freshness.covering(("crm_customer",)):
        freshness.touch({"u-test"})
        org.sh.name = "Shanghai office"
        org.sh.save()
    assert _version(freshness.EVERYTHING) == everything + 2


def test_an_update_that_changes_no_row_bumps_nothing(org):
    from crm.models import Customer

    everything = _version(freshness.EVERYTHING)
    assert Customer.objects.filter(pk=-1).update(name="nobody") == 0
    assert _version(freshness.EVERYTHING) == everything


def test_facets_keep_deal_pages_cached_through_attainment_and_alert_writes_but_not_the_bell(org, deals):
    """A page showing deals alone (the pipelines, a deal) is kept through writes of attainment and alerts (other
    facets), which a home page showing them renders afresh; a notification to its reader makes it stale (the
    bell), to someone else does not."""
    from crm.scopes import ALERTS, NOTIFICATIONS, TARGETS, people_keys, user_keys
    from targets.alerts.notifications import notifications_insert
    from targets.alerts.selectors import unread_count
    from targets.models import Notification, NotificationTopic

    manager, director = _browser(org.manager), _browser(org.director)
    for client in (manager, director):
        _get(client, "/pipeline/team/")
    _get(manager, "/")
    assert not _get(manager, "/pipeline/team/")[1] and not _get(manager, "/")[1]

    freshness.changed(people_keys([org.rep.pk], facet=ALERTS) | region_keys(org.sh.path, facet=TARGETS))
    assert not _get(manager, "/pipeline/team/")[1]  # kept: it shows no alert, no attainment
    with CaptureQueriesContext(connection) as captured:
        assert manager.get("/").status_code == 200
    assert len(captured) > 3  # the home page shows both: rendered afresh (served from the cache: 3 queries)

    bell, before_unread = _version(f"{NOTIFICATIONS}u{org.manager.pk}"), unread_count(org.manager)
    snap = dict(Freshness.objects.values_list("key", "version"))
    notifications_insert([Notification(recipient=org.manager, topic=NotificationTopic.MILESTONE, in_app=True)])
    assert _version(f"{NOTIFICATIONS}u{org.manager.pk}") == bell + 1
    response, read = _get(manager, "/pipeline/team/")
    unread = unread_count(org.manager)
    assert read and f'data-count="{unread}"'.encode() in response.content  # his bell, counting it: rendered afresh
    assert unread == before_unread + 1
    assert {k: v for k, v in Freshness.objects.values_list("key", "version") if snap.get(k) != v} == {
        f"n:u{org.manager.pk}": bell + 1
    }
    assert not _get(director, "/pipeline/team/")[1]  # not his
    assert user_keys(org.manager.pk, facet=NOTIFICATIONS) == {f"n:u{org.manager.pk}"}


def test_notifications_read_refresh_only_their_readers_pages(org, deals):
    """Reading one's notifications changes one's own bell: one's pages go stale, nobody else's (not `*`)."""
    from targets.alerts.notifications import notifications_insert, notifications_mark_all_read
    from targets.alerts.selectors import unread_count
    from targets.models import Notification, NotificationTopic

    notifications_insert([Notification(recipient=org.manager, topic=NotificationTopic.MILESTONE, in_app=True)])
    manager, director = _browser(org.manager), _browser(org.director)
    for client in (manager, director):
        _get(client, "/pipeline/team/")
    assert unread_count(org.manager) > 0
    everything = _version(freshness.EVERYTHING)

    assert notifications_mark_all_read(actor=org.manager) > 0
    assert _version(freshness.EVERYTHING) == everything
    response, read = _get(manager, "/pipeline/team/")
    assert read and b'data-count="0"' in response.content  # his bell, read: rendered afresh
    assert not _get(director, "/pipeline/team/")[1]


def test_versions_of_a_whole_company_s_keys_in_the_order_asked():
    """A director's roll-up reads the versions of every region (~660 at tier M) in one statement (an array
    parameter on PostgreSQL): each in the order asked, 0 for a key never bumped, the same key asked twice alike."""
    bumped = {f"r{pk}": pk % 5 + 1 for pk in range(0, 700, 7)}
    Freshness.objects.bulk_create(Freshness(key=key, version=version) for key, version in bumped.items())
    bumped[freshness.EVERYTHING] = _version(freshness.EVERYTHING)
    keys = [freshness.EVERYTHING, *(f"r{pk}" for pk in reversed(range(700))), "r7"]
    with CaptureQueriesContext(connection) as captured:
        found = freshness.versions(keys)
    assert len(captured.captured_queries) == 1
    assert found == tuple(bumped.get(key, 0) for key in keys)
    assert found[-1] == found[keys.index("r7")] == 3
