"""What a plan shows as its total, to whom: the plan total to those who see its root target, else their
part (the sum of their top visible targets), labelled as such; the plan list and editor pages, the API
list, detail and versions all agree, and nobody is shown a total of targets they cannot see."""

import re
from decimal import Decimal

import pytest

from targets.services import adjustment_approve, adjustment_propose, node_update, plan_create
from tests.targets.api.conftest import fresh

PLAN, PART = "plan", "part"


def page_total(client, url: str, testid: str) -> tuple[Decimal, bool]:
    """The total a page shows (its data-value) and whether it is labelled "your part"."""
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    cell = rf'<(?:td|dd)[^>]*data-testid="{testid}"[^>]*data-value="([^"]+)"[^>]*>(.*?)</(?:td|dd)>'
    match = re.search(cell, html, re.S)
    assert match, f"no {testid} on {url}"
    return Decimal(match.group(1)), "your part" in match.group(2)


def api_total(api, user, plan) -> tuple[Decimal, str]:
    body = api(user).get(f"/api/target-plans/{plan.pk}/").json()
    listed = {p["id"]: p for p in api(user).get("/api/target-plans/").json()["results"]}[plan.pk]
    assert (listed["total"], listed["total_scope"]) == (body["total"], body["total_scope"])
    return Decimal(body["total"]), body["total_scope"]


@pytest.mark.parametrize(
    ("persona", "expected", "scope"),
    [
        ("director", "1200000", PLAN),
        ("manager", "600000", PART),  # East, under the company root he cannot see
        ("manager_north", "600000", PART),
    ],
)
def test_the_plan_pages_and_the_api_show_the_same_total(api, client, org, plan, tree, persona, expected, scope):
    user = getattr(org, persona)
    assert api_total(api, user, plan) == (Decimal(expected), scope)
    client.force_login(user)
    as_part = scope == PART
    assert page_total(client, "/targets/plans/", f"plan-total-{plan.pk}") == (Decimal(expected), as_part)
    assert page_total(client, f"/targets/plans/{plan.pk}/", "plan-total") == (Decimal(expected), as_part)
    assert page_total(client, f"/targets/plans/{plan.pk}/grid/", "plan-total") == (Decimal(expected), as_part)


def test_a_rep_is_shown_his_part_and_has_no_plan_pages(api, client, org, plan, tree):
    assert api_total(api, org.rep, plan) == (Decimal("150000"), PART)
    client.force_login(org.rep)
    assert client.get("/targets/plans/").status_code == 403
    assert client.get(f"/targets/plans/{plan.pk}/").status_code == 403


def test_the_root_is_given_only_to_those_who_can_open_it(api, org, plan, tree):
    director = api(org.director).get(f"/api/target-plans/{plan.pk}/").json()
    assert director["root"] == tree["root"].pk
    assert api(org.director).get(f"/api/target-nodes/{director['root']}/").status_code == 200
    assert api(org.manager).get(f"/api/target-plans/{plan.pk}/").json()["root"] is None
    assert api(org.manager).get(f"/api/target-nodes/{tree['root'].pk}/").status_code == 404


def test_a_regional_plan_shows_its_manager_the_plan_total(api, org, metrics):
    east = plan_create(
        metric=metrics["collections"], period_key="FY2027", total=Decimal("500000"), region=org.east, actor=org.manager
    )
    assert api_total(api, org.manager, east) == (Decimal("500000"), PLAN)
    assert api(org.rep).get(f"/api/target-plans/{east.pk}/").status_code == 404  # nothing of it is his yet


def test_a_part_counts_a_target_inside_another_visible_one_once(api, client, org, plan, tree):
    """North's manager is given East (as owner) and a Shanghai rep's target below it, with Shanghai between
    them out of his sight: his part is North plus East, the rep's target is inside East already."""
    for key, owner in (("east", org.manager_north), ("rep", org.rep_other)):
        node = fresh(tree[key])
        node_update(node=node, owner=owner, expected_version=node.version, actor=org.director)
    assert api_total(api, org.manager_north, plan) == (Decimal("1200000"), PART)
    client.force_login(org.manager_north)
    assert page_total(client, "/targets/plans/", f"plan-total-{plan.pk}") == (Decimal("1200000"), True)


def test_ordering_by_total_orders_by_what_each_user_is_shown(api, org, plan, tree, metrics):
    plan_create(
        metric=metrics["collections"], period_key="FY2027", total=Decimal("1000000"), region=org.east, actor=org.manager
    )
    # By plan totals the East plan (1,000,000) would come before the company plan (1,200,000); the
    # manager is shown 600,000 of the company plan, and sorting must not reveal more.
    listed = api(org.manager).get("/api/target-plans/", {"ordering": "total"}).json()["results"]
    assert [(p["total"], p["total_scope"]) for p in listed] == [("600000.00", PART), ("1000000.00", PLAN)]
    listed = api(org.director).get("/api/target-plans/", {"ordering": "-total"}).json()["results"]
    assert [p["total"] for p in listed] == ["1200000.00", "1000000.00"]


def test_versions_give_each_user_the_total_he_is_shown(api, org, approved, tree):
    adjustment = adjustment_propose(
        plan=approved,
        kind="total_change",
        reason="Jiangsu launch",
        changes=[{"node": fresh(tree["js"]), "amount": Decimal("320000")}],
        actor=org.manager,
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)

    def versions(user):
        body = api(user).get(f"/api/target-plans/{approved.pk}/versions/").json()
        return [(v["version"], v["total"], v["total_scope"]) for v in body]

    assert versions(org.director) == [(1, "1200000.00", PLAN), (2, "1220000.00", PLAN)]
    assert versions(org.manager) == [(1, "600000.00", PART), (2, "620000.00", PART)]
    assert versions(org.manager_north) == [(1, "600000.00", PART), (2, "600000.00", PART)]
    assert api_total(api, org.manager, approved) == (Decimal("620000"), PART)


def test_the_schema_declares_the_total_as_returned(api, org):
    schema = api(org.director).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    plan = schema["components"]["schemas"]["TargetPlan"]["properties"]
    assert "your part" in plan["total"]["description"]
    assert plan["total"]["readOnly"] is True
    scope = plan["total_scope"]
    if "allOf" in scope:  # a named enum component
        scope = schema["components"]["schemas"][scope["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert scope["enum"] == [PLAN, PART]
    version = schema["components"]["schemas"]["PlanVersion"]["properties"]
    assert {"total", "total_scope"} <= set(version)
