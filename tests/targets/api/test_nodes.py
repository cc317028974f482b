"""The targets API over the breakdown tree: data scopes per role, lazy children, edits with optimistic
locking, split previews that write nothing, splits that add up exactly, commitments."""

from decimal import Decimal

import pytest

from crm.models import AuditLog
from targets.models import TargetNode
from tests.targets.api.conftest import fresh


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def snapshot(plan) -> dict:
    """Every node's (amount, version, owner, split): equal before/after means nothing was written."""
    return {
        n["id"]: (n["amount"], n["version"], n["owner_id"], n["split_dimension"])
        for n in TargetNode.objects.filter(plan=plan).values("id", "amount", "version", "owner_id", "split_dimension")
    }


# --- scopes ----------------------------------------------------------------------------------


def test_each_role_lists_only_the_targets_in_its_scope(api, org, plan, tree):
    everything = set(plan.nodes.values_list("pk", flat=True))
    assert ids(api(org.director).get("/api/target-nodes/", {"plan": plan.pk})) == everything
    east = {tree[k].pk for k in ("east", "sh", "js", "rep", "rep_sh2")}
    assert ids(api(org.manager).get("/api/target-nodes/", {"plan": plan.pk})) == east
    assert ids(api(org.manager_north).get("/api/target-nodes/")) == {tree["north"].pk}
    assert ids(api(org.rep).get("/api/target-nodes/")) == {tree["rep"].pk}
    assert ids(api(org.rep_other).get("/api/target-nodes/")) == set()
    # Filters narrow the scope, never widen it.
    assert ids(api(org.rep).get("/api/target-nodes/", {"owner": org.director.pk})) == set()
    assert ids(api(org.manager).get("/api/target-nodes/", {"region_within": org.east.pk})) == {
        tree[k].pk for k in ("east", "sh", "js", "rep", "rep_sh2")
    }


def test_a_target_outside_the_scope_is_a_404_on_every_route_and_nothing_changes(api, org, plan, tree):
    north = fresh(tree["north"])
    before = snapshot(plan)
    audits = AuditLog.objects.count()
    client = api(org.manager)
    base = f"/api/target-nodes/{north.pk}/"
    responses = [
        client.get(base),
        client.patch(base, {"amount": "1", "version": north.version, "rebalance": True}, format="json"),
        client.get(base + "children/"),
        client.post(base + "split-preview/", {"dimension": "rep", "method": "equal"}, format="json"),
        client.post(base + "split/", {"dimension": "rep", "method": "equal", "version": north.version}, format="json"),
        client.post(base + "split-leaves/", {"dimension": "month", "method": "equal"}, format="json"),
        client.post(base + "commit/", {"amount": "1"}, format="json"),
    ]
    for response in responses:
        assert response.status_code == 404, (response.request["PATH_INFO"], response.content)
        assert response.json()["code"] == "not_found"
    # A rep does not see his team's target either.
    assert api(org.rep).get(f"/api/target-nodes/{tree['sh'].pk}/").status_code == 404
    assert snapshot(plan) == before and AuditLog.objects.count() == audits


def test_lazy_tree_starts_at_the_top_the_user_sees(api, org, plan, tree):
    top = api(org.director).get("/api/target-nodes/", {"plan": plan.pk, "top": "true"}).json()["results"]
    assert [(n["id"], n["child_count"]) for n in top] == [(tree["root"].pk, 2)]
    top = api(org.manager).get("/api/target-nodes/", {"plan": plan.pk, "top": "true"}).json()["results"]
    assert [(n["id"], n["child_count"], n["owner"]) for n in top] == [(tree["east"].pk, 2, org.manager.pk)]

    children = api(org.manager).get(f"/api/target-nodes/{tree['east'].pk}/children/").json()
    assert [(c["region"], c["child_count"]) for c in children["results"]] == [(org.sh.pk, 2), (org.js.pk, 0)]
    assert sum(Decimal(c["amount"]) for c in children["results"]) == Decimal("600000")


def test_incomplete_leaves_filter(api, org, plan, tree):
    # Jiangsu has no manager, so its leaf has no owner (定责任 missing).
    assert ids(api(org.director).get("/api/target-nodes/", {"plan": plan.pk, "incomplete": "true"})) == {tree["js"].pk}
    row = api(org.director).get(f"/api/target-nodes/{tree['js'].pk}/").json()
    assert (row["is_leaf"], row["is_incomplete"], row["owner"]) == (True, True, None)


def test_the_node_list_costs_a_fixed_number_of_queries(api, org, plan, tree, django_assert_max_num_queries):
    client = api(org.manager)
    with django_assert_max_num_queries(4):
        response = client.get("/api/target-nodes/", {"plan": plan.pk, "page_size": 200})
    rows = response.json()["results"]
    assert len(rows) == 5 and all(r["region_name"] for r in rows)


# --- edits -----------------------------------------------------------------------------------


def test_patch_with_a_stale_version_is_a_409_and_changes_nothing(api, org, plan, tree):
    js = fresh(tree["js"])
    client = api(org.manager)
    ok = client.patch(f"/api/target-nodes/{js.pk}/", {"owner": org.rep_js.pk, "version": js.version}, format="json")
    assert ok.status_code == 200, ok.content
    assert (ok.json()["owner"], ok.json()["version"]) == (org.rep_js.pk, js.version + 1)

    before = snapshot(plan)
    stale = client.patch(
        f"/api/target-nodes/{js.pk}/", {"amount": "250000", "rebalance": True, "version": js.version}, format="json"
    )
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "conflict" and "Someone else changed this target" in body["detail"]
    assert snapshot(plan) == before


def test_patch_amount_keeps_the_parent_sum_or_rebalances(api, org, plan, tree):
    rep = fresh(tree["rep"])
    client = api(org.manager)
    refused = client.patch(f"/api/target-nodes/{rep.pk}/", {"amount": "100000", "version": rep.version}, format="json")
    assert refused.status_code == 400
    assert "add up to 300000.00" in refused.json()["errors"]["amount"][0]
    done = client.patch(
        f"/api/target-nodes/{rep.pk}/", {"amount": "100000", "rebalance": True, "version": rep.version}, format="json"
    )
    assert done.status_code == 200, done.content
    assert fresh(tree["rep_sh2"]).amount == Decimal("200000.00")
    assert api(org.manager).patch(f"/api/target-nodes/{rep.pk}/", {"amount": "1"}, format="json").json()["errors"] == {
        "version": ["This field is required."]
    }


def test_nobody_edits_his_own_target_through_the_api(api, org, plan, tree):
    east = fresh(tree["east"])
    response = api(org.manager).patch(
        f"/api/target-nodes/{east.pk}/", {"deadline": "2027-11-30", "version": east.version}, format="json"
    )
    assert response.status_code == 400
    assert "your own target" in response.json()["detail"]
    assert fresh(tree["east"]).deadline == east.deadline


# --- splits ----------------------------------------------------------------------------------


def test_split_preview_writes_nothing(api, org, plan, tree):
    before = snapshot(plan)
    audits = AuditLog.objects.count()
    response = api(org.manager).post(
        f"/api/target-nodes/{tree['js'].pk}/split-preview/", {"dimension": "month", "method": "equal"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [c["period_key"] for c in body["children"]][:2] == ["FY2027-M01", "FY2027-M02"]
    assert sum(Decimal(c["amount"]) for c in body["children"]) == Decimal("300000.00")
    assert body["children"][0]["deadline"] == "2027-01-31"
    assert snapshot(plan) == before and AuditLog.objects.count() == audits


def test_split_sums_exactly_and_names_suggested_owners(api, org, plan, tree):
    east = fresh(tree["east"])
    client = api(org.director)
    preview = client.post(
        f"/api/target-nodes/{east.pk}/split-preview/", {"dimension": "rep", "method": "equal"}, format="json"
    ).json()
    assert {c["owner_name"] for c in preview["children"]} == {str(org.rep), str(org.rep_same_team), str(org.rep_js)}

    response = client.post(
        f"/api/target-nodes/{east.pk}/split/",
        {"dimension": "rep", "method": "equal", "version": east.version},
        format="json",
    )
    assert response.status_code == 200, response.content
    children = response.json()["children"]
    amounts = sorted(Decimal(c["amount"]) for c in children)
    assert amounts == [Decimal("200000.00")] * 3 and sum(amounts) == east.amount
    assert response.json()["node"]["split_dimension"] == "rep"
    assert set(TargetNode.objects.filter(parent=east).values_list("pk", flat=True)) == {c["id"] for c in children}

    # Uneven: 1,200,000.00 / 7 months weighted by hand, and a stale version.
    root = fresh(tree["root"])
    weights = {"FY2027-M01": "1", "FY2027-M02": "1", "FY2027-M03": "1"}
    response = client.post(
        f"/api/target-nodes/{root.pk}/split-preview/",
        {"dimension": "month", "method": "weights", "basis": "manual", "weights": weights},
        format="json",
    )
    parts = [Decimal(c["amount"]) for c in response.json()["children"] if Decimal(c["amount"])]
    assert parts == [Decimal("400000.00")] * 3
    stale = client.post(
        f"/api/target-nodes/{root.pk}/split/",
        {"dimension": "quarter", "method": "equal", "version": root.version - 1},
        format="json",
    )
    assert stale.status_code == 409


def test_manual_amounts_must_add_up(api, org, plan, tree):
    js = fresh(tree["js"])
    response = api(org.manager).post(
        f"/api/target-nodes/{js.pk}/split/",
        {
            "dimension": "quarter",
            "method": "manual",
            "amounts": {"FY2027-Q1": "100000", "FY2027-Q2": "100000", "FY2027-Q3": "50000"},
            "version": js.version,
        },
        format="json",
    )
    assert response.status_code == 400
    assert "50000.00 is still unallocated" in response.json()["errors"]["amounts"][0]
    assert not TargetNode.objects.filter(parent=js).exists()
    odd = api(org.manager).post(
        f"/api/target-nodes/{js.pk}/split/",
        {
            "dimension": "quarter",
            "method": "manual",
            "amounts": {"FY2027-Q1": "100000.01", "FY2027-Q2": "99999.99", "FY2027-Q3": "50000", "FY2027-Q4": "50000"},
            "version": js.version,
        },
        format="json",
    )
    assert odd.status_code == 200
    assert sum(Decimal(c["amount"]) for c in odd.json()["children"]) == Decimal("300000.00")


def test_split_leaves_splits_every_leaf_under_a_node(api, org, plan, tree):
    response = api(org.manager).post(
        f"/api/target-nodes/{tree['sh'].pk}/split-leaves/", {"dimension": "quarter", "method": "equal"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["leaves"], response.json()["created"]) == (2, 8)
    quarters = TargetNode.objects.filter(parent=tree["rep"])
    assert sum(q.amount for q in quarters) == Decimal("150000.00") and quarters.count() == 4


@pytest.mark.parametrize("user", ["rep", "manager"])
def test_only_the_owner_commits(api, org, plan, tree, user):
    response = api(getattr(org, user)).post(
        f"/api/target-nodes/{tree['rep'].pk}/commit/", {"amount": "180000"}, format="json"
    )
    if user == "rep":
        assert response.status_code == 200, response.content
        assert response.json()["committed_amount"] == "180000.00"
    else:
        assert response.status_code == 400 and "Only the owner" in response.json()["detail"]
        assert fresh(tree["rep"]).committed_amount is None
