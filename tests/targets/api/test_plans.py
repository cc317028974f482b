"""The targets API over plans (lifecycle), adjustments and versions, and action plans."""

from decimal import Decimal

from crm.models import AuditLog
from targets.models import ActionPlan, ActionStatus, AdjustmentRequest, PlanStatus, TargetPlan
from tests.targets.amounts import amounts_in
from tests.targets.api.conftest import fresh

# --- plans -----------------------------------------------------------------------------------


def test_plans_are_created_through_the_service_with_its_rules(api, org, metrics):
    director = api(org.director)
    created = director.post(
        "/api/target-plans/",
        {"metric": metrics["won_revenue"].pk, "period_key": "FY2027", "total": "1200000"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["total"], body["owner"], body["region"]) == (
        "draft",
        "1200000.00",
        org.director.pk,
        None,
    )
    plan = TargetPlan.objects.get(pk=body["id"])
    assert body["root"] == plan.nodes.get(parent__isnull=True).pk

    manager = api(org.manager)
    refused = manager.post(
        "/api/target-plans/",
        {"metric": metrics["collections"].pk, "period_key": "FY2027", "total": "10"},
        format="json",
    )
    assert refused.status_code == 400 and "company-wide" in refused.json()["errors"]["region"][0]
    # A region outside his scope does not "exist" for him.
    north = manager.post(
        "/api/target-plans/",
        {"metric": metrics["collections"].pk, "period_key": "FY2027", "total": "10", "region": org.north.pk},
        format="json",
    )
    assert north.status_code == 400 and "does not exist" in north.json()["errors"]["region"][0]
    regional = manager.post(
        "/api/target-plans/",
        {"metric": metrics["collections"].pk, "period_key": "FY2027-Q2", "total": "10", "region": org.east.pk},
        format="json",
    )
    assert regional.status_code == 201, regional.content
    assert (regional.json()["region"], regional.json()["owner"], regional.json()["period_end"]) == (
        org.east.pk,
        org.manager.pk,
        "2027-06-30",
    )
    bad = director.post(
        "/api/target-plans/", {"metric": metrics["won_revenue"].pk, "period_key": "2027", "total": "-1"}, format="json"
    )
    assert bad.status_code == 400 and set(bad.json()["errors"]) <= {"period_key", "total"}


def test_plans_are_listed_by_scope(api, org, plan, tree):
    assert [p["id"] for p in api(org.manager).get("/api/target-plans/").json()["results"]] == [plan.pk]
    assert api(org.rep_other).get("/api/target-plans/").json()["results"] == []
    assert api(org.rep_other).get(f"/api/target-plans/{plan.pk}/").status_code == 404
    assert api(org.rep_other).post(f"/api/target-plans/{plan.pk}/submit/").status_code == 404


def test_plan_lifecycle_submit_return_approve(api, org, plan, tree):
    client, admin = api(org.director), api(org.admin)
    submitted = client.post(f"/api/target-plans/{plan.pk}/submit/").json()
    assert (submitted["status"], submitted["submitted_by"]) == ("submitted", org.director.pk)
    # The director submitted it: he neither approves nor sends it back (403, naming who may).
    for action, data in (("approve", {}), ("return", {"reason": "oops"})):
        own = client.post(f"/api/target-plans/{plan.pk}/{action}/", data, format="json")
        assert own.status_code == 403 and own.json()["detail"].startswith("You submitted this plan"), own.content
        assert str(org.admin) in own.json()["detail"]
    incomplete = admin.post(f"/api/target-plans/{plan.pk}/approve/")
    assert incomplete.status_code == 400 and "Jiangsu" in incomplete.json()["detail"]
    assert admin.post(f"/api/target-plans/{plan.pk}/return/", {"reason": ""}, format="json").status_code == 400
    back = admin.post(f"/api/target-plans/{plan.pk}/return/", {"reason": "Jiangsu needs an owner"}, format="json")
    assert back.json()["status"] == "draft"
    js = fresh(tree["js"])
    client.patch(f"/api/target-nodes/{js.pk}/", {"owner": org.rep_js.pk, "version": js.version}, format="json")
    client.post(f"/api/target-plans/{plan.pk}/submit/")
    refused = api(org.manager).post(f"/api/target-plans/{plan.pk}/approve/")  # a manager is not above a director
    assert refused.status_code == 403 and "Only someone above the plan's submitter" in refused.json()["detail"]
    approved = admin.post(f"/api/target-plans/{plan.pk}/approve/").json()
    assert (approved["status"], approved["current_version"], approved["submitted_by"], approved["approved_by"]) == (
        PlanStatus.APPROVED,
        1,
        org.director.pk,
        org.admin.pk,
    )


# --- adjustments and versions ----------------------------------------------------------------


def test_an_adjustment_creates_a_version_and_the_diff_lists_exactly_the_changed_targets(api, org, approved, tree):
    plan = approved
    manager, director = api(org.manager), api(org.director)
    proposal = manager.post(
        "/api/target-adjustments/",
        {
            "plan": plan.pk,
            "kind": "reallocation",
            "reason": "Key account moved to Jiangsu",
            "changes": [{"node": tree["rep"].pk, "amount": "100000"}, {"node": tree["js"].pk, "amount": "350000"}],
        },
        format="json",
    )
    assert proposal.status_code == 201, proposal.content
    adjustment = proposal.json()
    assert (adjustment["status"], adjustment["based_on_version"]) == ("pending", 1)
    assert {c["node"]: c["new"] for c in adjustment["changes"]} == {
        tree["rep"].pk: "100000.00",
        tree["js"].pk: "350000.00",
    }
    # The proposer cannot approve his own proposal.
    own = manager.post(f"/api/target-adjustments/{adjustment['id']}/approve/", {}, format="json")
    assert own.status_code == 403 and "other than the proposer" in own.json()["detail"]

    decided = director.post(f"/api/target-adjustments/{adjustment['id']}/approve/", {"note": "OK"}, format="json")
    assert decided.status_code == 200, decided.content
    assert (decided.json()["status"], decided.json()["resulting_version"]) == ("approved", 2)

    versions = director.get(f"/api/target-plans/{plan.pk}/versions/").json()
    assert [(v["version"], v["total"], v["adjustment"]) for v in versions] == [
        (1, "1200000.00", None),
        (2, "1200000.00", adjustment["id"]),
    ]
    assert versions[1]["reason"] == "Key account moved to Jiangsu" and versions[1]["approver"] == org.director.pk

    diff = director.get(f"/api/target-plans/{plan.pk}/diff/", {"from": 1, "to": 2}).json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert {(c["node"], c["old"], c["new"], c["delta"]) for c in diff["changes"]} == {
        (tree["rep"].pk, "150000.00", "100000.00", "-50000.00"),
        (tree["sh"].pk, "300000.00", "250000.00", "-50000.00"),
        (tree["js"].pk, "300000.00", "350000.00", "50000.00"),
    }
    assert amounts_in(plan, 2)[tree["sh"].pk] == Decimal("250000.00")
    # The diff is scoped too: the rep sees only his own target's change.
    assert [
        c["node"] for c in api(org.rep).get(f"/api/target-plans/{plan.pk}/diff/?from=1&to=2").json()["changes"]
    ] == [tree["rep"].pk]
    beyond = director.get(f"/api/target-plans/{plan.pk}/diff/", {"from": 1, "to": 3})
    assert beyond.status_code == 400 and beyond.json()["errors"] == {"to": ["The plan has versions 1 to 2."]}
    assert director.get(f"/api/target-plans/{plan.pk}/diff/", {"from": "x"}).status_code == 400


def test_adjustments_cannot_touch_targets_outside_the_scope(api, org, approved, tree):
    response = api(org.manager).post(
        "/api/target-adjustments/",
        {
            "plan": approved.pk,
            "kind": "reallocation",
            "reason": "x",
            "changes": [{"node": tree["north"].pk, "amount": "500000"}, {"node": tree["js"].pk, "amount": "400000"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["errors"]["changes.0.node"][0]
    assert not AdjustmentRequest.objects.exists()


def test_rejecting_needs_a_note_and_leaves_the_plan_alone(api, org, approved, tree):
    proposal = (
        api(org.manager)
        .post(
            "/api/target-adjustments/",
            {
                "plan": approved.pk,
                "kind": "total_change",
                "reason": "Launch",
                "changes": [{"node": tree["js"].pk, "amount": "320000"}],
            },
            format="json",
        )
        .json()
    )
    director = api(org.director)
    assert director.post(f"/api/target-adjustments/{proposal['id']}/reject/", {}, format="json").status_code == 400
    rejected = director.post(f"/api/target-adjustments/{proposal['id']}/reject/", {"note": "Not now"}, format="json")
    assert rejected.json()["status"] == "rejected"
    approved.refresh_from_db()
    assert approved.current_version == 1 and fresh(tree["js"]).amount == Decimal("300000.00")
    listed = director.get("/api/target-adjustments/", {"status": "rejected"}).json()["results"]
    assert [a["id"] for a in listed] == [proposal["id"]]


def test_draft_plans_have_no_versions(api, org, plan, tree):
    assert api(org.director).get(f"/api/target-plans/{plan.pk}/versions/").json() == []
    response = api(org.director).get(f"/api/target-plans/{plan.pk}/diff/", {"from": 1, "to": 2})
    assert response.status_code == 400 and "no approved version" in response.json()["detail"]


# --- action plans ----------------------------------------------------------------------------


def test_action_plans_crud_within_the_scope(api, org, plan, tree):
    rep = api(org.rep)
    created = rep.post(
        "/api/action-plans/",
        {"node": tree["rep"].pk, "activity": "Visit the top 10 customers", "due_date": "2027-05-31"},
        format="json",
    )
    assert created.status_code == 201, created.content
    action = created.json()
    assert (action["owner"], action["status"], action["created_by"]) == (org.rep.pk, "open", org.rep.pk)

    late = rep.post(
        "/api/action-plans/",
        {"node": tree["rep"].pk, "activity": "Too late", "due_date": "2028-01-31"},
        format="json",
    )
    assert late.status_code == 400 and "due_date" in late.json()["errors"]
    # Another rep's target is not even a valid id for him.
    other = rep.post(
        "/api/action-plans/",
        {"node": tree["rep_sh2"].pk, "activity": "x", "due_date": "2027-05-31"},
        format="json",
    )
    assert other.status_code == 400 and "does not exist" in other.json()["errors"]["node"][0]

    done = rep.patch(f"/api/action-plans/{action['id']}/", {"status": "cancelled"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == ActionStatus.CANCELLED
    assert AuditLog.objects.filter(action="action_plan.update").exists()
    assert [
        a["id"] for a in api(org.manager).get("/api/action-plans/", {"node": tree["rep"].pk}).json()["results"]
    ] == [action["id"]]
    outsider = api(org.manager_north)
    assert outsider.get(f"/api/action-plans/{action['id']}/").status_code == 404
    assert outsider.patch(f"/api/action-plans/{action['id']}/", {"status": "done"}, format="json").status_code == 404
    assert rep.delete(f"/api/action-plans/{action['id']}/").status_code == 405
    assert ActionPlan.objects.get(pk=action["id"]).status == ActionStatus.CANCELLED


def test_lists_cost_a_fixed_number_of_queries(api, org, approved, tree, django_assert_max_num_queries):
    client = api(org.manager)
    for amount in ("310000", "320000"):
        client.post(
            "/api/target-adjustments/",
            {
                "plan": approved.pk,
                "kind": "total_change",
                "reason": "x",
                "changes": [{"node": tree["js"].pk, "amount": amount}],
            },
            format="json",
        )
    client.post(
        "/api/action-plans/", {"node": tree["sh"].pk, "activity": "Review", "due_date": "2027-05-01"}, format="json"
    )
    # An adjustment's change rows are checked against the targets' scope: two queries more, once per page. A
    # plan's total for a manager is the sum of the top of what he sees, found from the region part of his scope:
    # one query more (reading that part), once per page.
    lists = (("/api/target-plans/", 1, 4), ("/api/target-adjustments/", 2, 5), ("/api/action-plans/", 1, 3))
    for url, count, queries in lists:
        with django_assert_max_num_queries(queries):
            rows = client.get(url).json()["results"]
        assert len(rows) == count, url
