"""业绩归属, the one attribution rule: a deal counts for its owner's team as it stood on the close date.

The team pipeline, its filters, totals and exports, the API, the data scopes and attainment all read the
deal's credited team (`Opportunity.region`); the customer's region is a separate attribute and filter.
"""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from crm.models import AuditLog
from pipeline.models import Opportunity
from pipeline.selectors import team_pipeline
from pipeline.services import opportunity_move_stage, opportunity_update
from salesmgmt import outbox
from targets.attainment.services import attainment_recompute
from targets.models import LatestAttainment
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import CustomerFactory, make_deal


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


def won_stage(org):
    return next(s for s in org.stages if s.is_won)


def win(org, deal, day=date(2027, 2, 10)):
    return opportunity_move_stage(
        opportunity=deal, stage=won_stage(org), evidence="signed", closed_on=day, actor=deal.owner
    )


def won_total(user, **filters):
    _qs, totals = team_pipeline(user, {"status": "won", **filters})
    return totals["total"]


@pytest.fixture
def crossed(org, frozen):
    """Won deals whose customers sit in another part of the company than their owners' teams."""
    in_north = CustomerFactory(owner=org.rep_other, region=org.bj)
    in_shanghai = CustomerFactory(owner=org.rep, region=org.sh)
    return {
        "rep": win(org, make_deal(owner=org.rep, customer=in_north, amount="100", close=date(2027, 2, 10))),
        "rep_js": win(org, make_deal(owner=org.rep_js, customer=in_shanghai, amount="200", close=date(2027, 2, 10))),
        "rep_other": win(org, make_deal(owner=org.rep_other, customer=in_shanghai, amount="400")),
        "manager": win(org, make_deal(owner=org.manager, customer=in_north, amount="800")),
    }


def test_a_deal_counts_for_its_owners_team_not_its_customers_region(org, crossed, api):
    deal = crossed["rep"]
    assert deal.region == org.sh
    assert deal.customer.region == org.bj
    assert Opportunity.objects.visible_to(org.manager).filter(pk=deal.pk).exists()
    assert not Opportunity.objects.visible_to(org.manager_north).filter(pk=deal.pk).exists()

    body = api(org.director).get(f"/api/opportunities/{deal.pk}/").json()
    assert (body["region"], body["customer_region"]) == (org.sh.pk, org.bj.pk)

    def ids(query):
        return {row["id"] for row in api(org.director).get(f"/api/opportunities/?{query}").json()["results"]}

    assert ids(f"region={org.east.pk}") == {crossed[n].pk for n in ("rep", "rep_js", "manager")}
    assert ids(f"region={org.north.pk}") == {crossed["rep_other"].pk}
    assert ids(f"customer_region={org.bj.pk}") == {crossed["rep"].pk, crossed["manager"].pk}
    assert ids(f"customer_region={org.sh.pk}&region={org.east.pk}") == {crossed["rep_js"].pk}


def test_regional_won_totals_add_up_to_the_company_and_equal_attainment(org, metrics, crossed, client):
    east, north = won_total(org.director, region=org.east), won_total(org.director, region=org.north)
    assert (east, north) == (Decimal("1100.00"), Decimal("400.00"))
    assert east + north == won_total(org.director)
    # Each manager's own team pipeline holds exactly his region's figure (no deals of other teams' customers).
    assert won_total(org.manager) == east
    assert won_total(org.manager_north) == north

    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="1200000", owner=org.director, actor=org.director
    )
    target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director)
    plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    attainment_recompute(plan=plan)
    actual = {row.node.region_id: row.actual for row in LatestAttainment.objects.filter(node__plan=plan)}
    assert actual[org.east.pk] == east
    assert actual[org.north.pk] == north
    assert actual[None] == east + north

    client.force_login(org.manager)
    response = client.get(reverse("pipeline:team_export_csv"), {"status": "won"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows[0]
    team, customer_region = header.index("Sales team"), header.index("Customer region")
    amount = header.index("Amount (company currency)")
    assert sum(Decimal(r[amount]) for r in rows[1:]) == east
    assert {(r[team], r[customer_region]) for r in rows[1:]} == {
        ("Shanghai", "Beijing"),
        ("Jiangsu", "Shanghai"),
        ("East", "Beijing"),
    }


def test_the_team_page_filters_by_team_and_by_customer_region(org, crossed, client):
    client.force_login(org.director)
    by_team = client.get(reverse("pipeline:team"), {"status": "won", "region": org.north.pk})
    assert by_team.context["totals"]["total"] == Decimal("400.00")
    by_customer = client.get(reverse("pipeline:team"), {"status": "won", "customer_region": org.bj.pk})
    assert by_customer.context["totals"]["total"] == Decimal("900.00")


def test_closing_credits_the_owners_team_of_that_day_and_it_stays(org, frozen):
    deal = make_deal(owner=org.rep, amount="300", close=date(2027, 2, 10))
    won = win(org, deal)
    assert won.region == org.sh
    # The rep moves to Beijing afterwards: the won deal keeps counting for Shanghai.
    org.rep.region = org.bj
    org.rep.save(update_fields=["region"])
    won.refresh_from_db()
    assert won.region == org.sh
    assert won_total(org.manager) == Decimal("300.00")
    assert won_total(org.manager_north) == Decimal("0")


@pytest.fixture
def enqueued(monkeypatch):
    """The outbox's enqueued (task name, args), recorded instead of stored."""
    calls = []
    monkeypatch.setattr(outbox, "enqueue_name", lambda name, *args, key=None: calls.append((name, list(args))))
    return calls


def test_a_deal_that_changes_hands_counts_for_the_new_owners_team(org, frozen, enqueued):
    deal = make_deal(owner=org.rep, amount="300")
    enqueued.clear()
    moved = opportunity_update(opportunity=deal, data={"owner": org.rep_other}, actor=org.director)
    assert moved.region == org.bj
    # The recompute is told where the deal counted before, so the old team's targets lose it.
    assert enqueued == [("targets.recompute_for_deal", [deal.pk, org.rep.pk, [], org.sh.pk])]


def test_a_rep_moved_to_another_team_in_admin_takes_his_open_deals_along(org, client, frozen, enqueued):
    open_deal = make_deal(owner=org.rep, amount="300")
    won = win(org, make_deal(owner=org.rep, amount="500", close=date(2027, 2, 10)))
    client.force_login(org.admin)
    url = reverse("admin:crm_user_change", args=[org.rep.pk])
    page = client.get(url)
    assert page.status_code == 200, page
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "region": org.bj.pk,
            "date_joined_0": form.initial["date_joined"].strftime("%Y-%m-%d"),
            "date_joined_1": form.initial["date_joined"].strftime("%H:%M:%S"),
            "groups": [],
            "user_permissions": [],
        }
    )
    data.pop("date_joined")
    data.pop("last_login", None)
    enqueued.clear()
    response = client.post(url, {k: v for k, v in data.items() if v is not False})
    assert response.status_code == 302, response.context["adminform"].form.errors
    open_deal.refresh_from_db()
    won.refresh_from_db()
    assert open_deal.region == org.bj
    assert won.region == org.sh
    assert enqueued == [("targets.recompute_for_deal", [open_deal.pk, None, [], org.sh.pk])]
    assert AuditLog.objects.filter(action="opportunity.follow_owner").exists()
    assert Opportunity.objects.visible_to(org.manager_north).filter(pk=open_deal.pk).exists()
    assert Opportunity.objects.visible_to(org.manager).filter(pk=won.pk).exists()


def test_the_migration_credits_existing_deals_to_their_owners_team(org):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("pipeline.migrations.0002_deals_credited_to_owner_team")
    deal = make_deal(owner=org.rep, customer=CustomerFactory(owner=org.rep, region=org.bj))
    Opportunity.objects.filter(pk=deal.pk).update(region=org.bj)  # as the old rule booked it
    migration.credit_owner_team(apps, None)
    deal.refresh_from_db()
    assert deal.region == org.sh


def test_the_api_totals_are_the_team_pipelines_figures_in_the_callers_scope(org, crossed, api):
    def totals(user, query=""):
        response = api(user).get(f"/api/opportunities/totals/?status=won{query}")
        assert response.status_code == 200, response.content
        return response.json()

    assert totals(org.director, f"&region={org.east.pk}") == {"count": 3, "total": "1100.00", "weighted": "1100.00"}
    assert totals(org.manager) == totals(org.director, f"&region={org.east.pk}")
    assert totals(org.manager_north)["total"] == "400.00"
    assert totals(org.rep) == {"count": 1, "total": "100.00", "weighted": "100.00"}
    # A filter never widens the scope.
    assert totals(org.manager_north, f"&region={org.east.pk}")["count"] == 0
    assert api(org.director).get("/api/opportunities/totals/?close_month=2026-13").status_code == 400
