"""A client generated from /api/schema/ by openapi-python-client (pinned in requirements-dev.txt) builds
without hand edits and drives a rep's and a manager's main flows against the live server.

The client is generated into a temporary directory for this module (never committed): its models parse
every response strictly (enums, required fields, nullability), so a response the schema does not describe
raises here. It authenticates as the schema says: `Authorization: Token <key>`."""

import importlib
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from targets.attainment.services import attainment_recompute
from targets.models import TargetNode
from targets.services import node_update, plan_approve, plan_submit

pytestmark = pytest.mark.django_db(transaction=True)

# Inside Q2 of FY2027 (fiscal years are calendar years here): the world's plan is for FY2027.
DAY = datetime(2027, 5, 14, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(DAY, tick=True):
        yield


@pytest.fixture(scope="module")
def sdk(tmp_path_factory, django_db_blocker):
    """The generated package, imported (`sdk.api`, `sdk.models`, `sdk.AuthenticatedClient`)."""
    root = tmp_path_factory.mktemp("client")
    schema = root / "schema.json"
    with django_db_blocker.unblock():
        call_command("spectacular", "--format", "openapi-json", "--validate", "--fail-on-warn", "--file", str(schema))
    config = root / "config.yaml"
    config.write_text("package_name_override: salesmgmt_client\npost_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [str(generator), "generate", "--path", str(schema), "--config", str(config), "--meta", "none"]
        + ["--output-path", str(root / "salesmgmt_client"), "--fail-on-warning"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module("salesmgmt_client")
        package.api = importlib.import_module("salesmgmt_client.api")
        package.models = importlib.import_module("salesmgmt_client.models")
        yield package
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "salesmgmt_client" or n.startswith("salesmgmt_client.")]:
            del sys.modules[name]


def call(module_name: str, **kwargs):
    """`sync_detailed` of the generated operation module `api.<tag>.<operation>`; the parsed body of a 2xx."""
    module = importlib.import_module(f"salesmgmt_client.api.{module_name}")
    response = module.sync_detailed(**kwargs)
    assert 200 <= response.status_code < 300, response.content
    return response.parsed


def client_for(sdk, live_server, world, role):
    return sdk.AuthenticatedClient(
        base_url=live_server.url, token=world.tokens[role], prefix="Token", raise_on_unexpected_status=True
    )


def approve_world_plan(world):
    """Owners on every leaf, submitted by the director, approved by the admin (as the plan page does)."""
    org = world.org
    js = TargetNode.objects.get(plan=world.plan, region=org.js, rep__isnull=True)
    node_update(node=js, owner=org.rep_js, expected_version=js.version, actor=org.director)
    plan_submit(plan=world.plan, actor=org.director)
    plan_approve(plan=world.plan, actor=org.admin)


def test_a_rep_works_his_deals_and_reads_his_attainment(sdk, live_server, world):
    from salesmgmt_client.models import (
        ActivityKindEnum,
        ActivityRequest,
        CustomerRequest,
        MoveStageRequest,
        OpportunityRequest,
        OpportunityStatusEnum,
    )

    org = world.org
    client = client_for(sdk, live_server, world, "rep")

    mine = call("opportunities.opportunities_list", client=client, page_size=50)
    assert {deal.owner for deal in mine.results} == {org.rep.pk}
    assert {deal.id for deal in mine.results} == {world.deals["rep"].pk, world.won.pk, world.lost_deal.pk}
    assert {deal.status for deal in mine.results} == {
        OpportunityStatusEnum.OPEN,
        OpportunityStatusEnum.WON,
        OpportunityStatusEnum.LOST,
    }

    customer = call(
        "customers.customers_create", client=client, body=CustomerRequest(name="Zhongshan Tools", region=org.sh.pk)
    )
    assert (customer.owner, customer.region_name, customer.stars) == (org.rep.pk, "Shanghai", None)

    deal = call(
        "opportunities.opportunities_create",
        client=client,
        body=OpportunityRequest(
            name="Five lathes", customer=customer.id, amount="12345.00", expected_close_date=date(2027, 6, 30)
        ),
    )
    assert (deal.owner, deal.region, deal.status, deal.amount) == (org.rep.pk, org.sh.pk, "open", "12345.00")
    assert deal.stage == org.stages[0].pk

    activity = call(
        "activities.activities_create",
        client=client,
        body=ActivityRequest(
            customer=customer.id, kind=ActivityKindEnum.VISIT, date=date(2027, 5, 13), opportunity=deal.id
        ),
    )
    assert (activity.owner, activity.opportunity, activity.customer_name) == (org.rep.pk, deal.id, "Zhongshan Tools")

    second = org.stages[1]
    moved = call(
        "opportunities.opportunities_move_stage_create",
        id=deal.id,
        client=client,
        body=MoveStageRequest(stage=second.pk, version=deal.version, evidence="Requirements signed off"),
    )
    assert (moved.stage, moved.probability, moved.version) == (second.pk, second.probability, deal.version + 1)
    won_stage = next(s for s in org.stages if s.is_won)
    won = call(
        "opportunities.opportunities_move_stage_create",
        id=deal.id,
        client=client,
        body=MoveStageRequest(stage=won_stage.pk, version=moved.version, evidence="Contract signed"),
    )
    assert (won.status, won.closed_on) == (OpportunityStatusEnum.WON, date(2027, 5, 14))
    history = call("opportunities.opportunities_history_list", id=deal.id, client=client)
    assert [row.new_stage for row in history if row.field == "stage"][-2:] == [second.pk, won_stage.pk]

    approve_world_plan(world)
    attainment_recompute(plan=world.plan)
    my_target = world.reps_by_user[org.rep.pk]
    rows = call("attainment.attainment_list", client=client, node=my_target.pk)
    assert [row.node for row in rows] == [my_target.pk]
    figures = rows[0].figures
    # Both won deals closed in FY2027 (today): the world's 5,000.00 and this 12,345.00.
    assert Decimal(figures.actual) == Decimal("17345.00")
    assert Decimal(figures.target) == my_target.amount
    assert figures.as_of == date(2027, 5, 14)


def test_a_manager_plans_splits_and_reads_his_team(sdk, live_server, world):
    from salesmgmt_client.models import (
        DimensionEnum,
        PatchedTargetNodeUpdateRequest,
        PlanStatusEnum,
        SplitMethodEnum,
        SplitRequestRequest,
        TargetPlanCreateRequest,
    )

    org = world.org
    client = client_for(sdk, live_server, world, "manager")

    team = call("opportunities.opportunities_list", client=client, page_size=50)
    assert {deal.owner for deal in team.results} == {org.rep.pk, org.rep_same_team.pk, org.rep_js.pk}
    assert world.deals["rep_other"].pk not in {deal.id for deal in team.results}

    metrics = call("metrics.metrics_list", client=client, is_active=True, page_size=50)
    revenue = next(m for m in metrics.results if m.code == "won_revenue")
    assert revenue.unit == "money" and revenue.is_builtin

    plan = call(
        "target_plans.target_plans_create",
        client=client,
        body=TargetPlanCreateRequest(metric=revenue.id, period_key="FY2027-Q3", total="300000.00", region=org.east.pk),
    )
    assert (plan.status, plan.total, plan.region_name, plan.approved_by_name) == (
        PlanStatusEnum.DRAFT,
        "300000.00",
        "East",
        None,
    )
    root = call("target_nodes.target_nodes_retrieve", id=plan.root, client=client)
    assert (root.split_method, root.segment, root.rep_name) == ("", "", None)

    split = call(
        "target_nodes.target_nodes_split_create",
        id=root.id,
        client=client,
        body=SplitRequestRequest(dimension=DimensionEnum.REGION, method=SplitMethodEnum.EQUAL, version=root.version),
    )
    parts = {part.region: part for part in split.children}
    assert set(parts) == {org.sh.pk, org.js.pk}
    assert {part.amount for part in parts.values()} == {"150000.00"}
    assert split.node.split_method == SplitMethodEnum.EQUAL and split.node.split_dimension == DimensionEnum.REGION

    shanghai = parts[org.sh.pk]
    edited = call(
        "target_nodes.target_nodes_partial_update",
        id=shanghai.id,
        client=client,
        body=PatchedTargetNodeUpdateRequest(amount="160000.00", rebalance=True, version=shanghai.version),
    )
    assert edited.amount == "160000.00"
    children = call("target_nodes.target_nodes_children_list", id=root.id, client=client)
    assert {part.region: part.amount for part in children.results} == {org.sh.pk: "160000.00", org.js.pk: "140000.00"}

    approve_world_plan(world)
    attainment_recompute(plan=world.plan)
    east = world.areas_by_region[org.east.pk]
    rows = {row.node: row for row in call("attainment.attainment_list", client=client, node=east.pk)}
    assert east.pk in rows and world.areas_by_region[org.north.pk].pk not in rows
    # East's won revenue in FY2027: the world's won deal of its rep, closed today.
    assert Decimal(rows[east.pk].figures.actual) == Decimal("5000.00")
