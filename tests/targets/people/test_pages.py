"""The people changes page (transfer, new hire, deals moved by date) through the browser's requests, and the
original-vs-current figures on the plan tree, the weekly review and the API against an independent computation."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from coaching.review import build_review
from pipeline.models import Opportunity
from salesmgmt.lib import attainment as math
from targets.attainment.services import attainment_recompute
from targets.models import AdjustmentKind, AdjustmentRequest, TargetNode, TargetNodeAmount
from targets.services import adjustment_approve, transfer_propose
from tests.factories import make_deal
from tests.targets.people.conftest import assert_every_level_adds_up, months_of

D = date(2027, 5, 16)


def page(plan):
    return reverse("targets:people_changes", args=[plan.pk])


def transfer_data(org, **changes):
    data = {
        "action": "transfer",
        "t-from_rep": str(org.rep.pk),
        "t-to_rep": str(org.rep_same_team.pk),
        "t-effective": D.isoformat(),
        "t-amount": "",
        "t-reason": "Rep resigned",
    }
    data.update(changes)
    return data


def amounts(plan):
    return dict(TargetNode.objects.filter(plan=plan).values_list("pk", "amount"))


def test_a_manager_proposes_a_transfer_that_waits_in_the_approvers_list_and_shows_the_approver(
    org, plan, tree, approved, client_for
):
    manager, director = client_for(org.manager), client_for(org.director)
    html = manager.get(reverse("targets:plan_detail", args=[plan.pk])).content.decode()
    assert 'data-testid="people-changes"' in html
    response = manager.post(page(plan), transfer_data(org))
    adjustment = AdjustmentRequest.objects.get()
    assert response.status_code == 302 and response.url == reverse("targets:adjustment_detail", args=[adjustment.pk])
    assert adjustment.kind == AdjustmentKind.TRANSFER
    inbox = director.get(reverse("targets:adjustment_inbox")).context["to_decide"]
    assert [a.pk for a in inbox] == [adjustment.pk] and inbox[0].net == 0
    pending = manager.get(page(plan)).context["pending"]
    assert [(a.pk, summary["to_rep"]) for a, summary in pending] == [(adjustment.pk, str(org.rep_same_team))]
    response = director.post(reverse("targets:adjustment_approve", args=[adjustment.pk]), {"note": "Agreed"})
    assert response.status_code == 302
    detail = director.get(reverse("targets:adjustment_detail", args=[adjustment.pk])).content.decode()
    assert "Rep resigned" in detail and str(org.director) in detail
    assert 'data-testid="people-from">' + str(org.rep) in detail
    assert_every_level_adds_up(plan)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"t-effective": "2028-02-01"}, "within the plan"),
        ({"t-to_rep": "REP"}, "someone else"),
        ({"t-amount": "999999"}, "left from"),
    ],
)
def test_bad_input_on_the_page_is_a_form_error_and_changes_nothing(
    org, plan, tree, approved, client_for, changes, message
):
    before = amounts(plan)
    if changes.get("t-to_rep") == "REP":
        changes = {"t-to_rep": str(org.rep.pk)}
    response = client_for(org.manager).post(page(plan), transfer_data(org, **changes))
    assert response.status_code == 400 and message in response.content.decode()
    assert amounts(plan) == before and not AdjustmentRequest.objects.exists()


def test_reps_may_not_open_the_page_and_another_areas_manager_cannot_move_easts_targets(
    org, plan, tree, approved, client_for
):
    assert client_for(org.rep).get(page(plan)).status_code == 403
    response = client_for(org.manager_north).post(page(plan), transfer_data(org))
    assert response.status_code == 400 and not AdjustmentRequest.objects.exists()


def test_a_new_hire_is_proposed_on_the_page_with_a_ramp(org, plan, tree, approved, client_for):
    from tests.factories import UserFactory

    hire = UserFactory(username="hire", role="rep", region=org.sh, first_name="Hugo", last_name="Hire")
    data = {
        "action": "new_hire",
        "h-hire": str(hire.pk),
        "h-source": str(org.rep_same_team.pk),
        "h-start": "2027-06-01",
        "h-full_amount": "120000",
        "h-method": "ramped",
        "h-ramp": "50, 100",
        "h-reason": "Hired for Shanghai",
    }
    response = client_for(org.manager).post(page(plan), data)
    assert response.status_code == 302
    adjustment = AdjustmentRequest.objects.get()
    assert adjustment.kind == AdjustmentKind.NEW_HIRE and adjustment.details["ramp"] == [50, 100]
    adjustment_approve(adjustment=adjustment, actor=org.director)
    hired = months_of(plan, hire)
    assert hired["06"].amount == Decimal("5000.00") and hired["07"].amount == Decimal("10000.00")
    assert "05" not in hired
    assert_every_level_adds_up(plan)
    bad = client_for(org.manager).post(page(plan), {**data, "h-ramp": "50, 20"})
    assert bad.status_code == 400 and "never go down" in bad.content.decode()


def test_deals_are_listed_then_chosen_ones_move_by_date(org, plan, tree, approved, client_for):
    won = next(s for s in org.stages if s.is_won)
    early = make_deal(owner=org.rep, amount="1000", stage=won, close=date(2027, 5, 10))
    one = make_deal(owner=org.rep, amount="200", close=date(2027, 6, 20))
    two = make_deal(owner=org.rep, amount="300", close=date(2027, 7, 20))
    manager = client_for(org.manager)
    listed = manager.get(page(plan), {"deals-from_owner": org.rep.pk, "deals-effective": D.isoformat()})
    choices = {d.pk for d in listed.context["deals"].fields["deals"].queryset}
    assert choices == {one.pk, two.pk}  # won before D: not offered
    data = {
        "action": "deals",
        "deals-from_owner": str(org.rep.pk),
        "deals-to_owner": str(org.rep_js.pk),
        "deals-effective": D.isoformat(),
        "deals-deals": [str(one.pk)],
        "deals-reason": "Handover",
    }
    assert manager.post(page(plan), data).status_code == 302
    owners = dict(Opportunity.objects.values_list("pk", "owner_id"))
    assert owners == {early.pk: org.rep.pk, one.pk: org.rep_js.pk, two.pk: org.rep.pk}
    assert Opportunity.objects.get(pk=one.pk).region == org.js  # the new owner's team
    refused = manager.post(page(plan), {**data, "deals-deals": [str(early.pk)]})
    assert refused.status_code == 400 and owners == dict(Opportunity.objects.values_list("pk", "owner_id"))


def _independent(plan, node_ids, as_of):
    """Original targets straight from the version-1 rows, current from the nodes, actuals summed by hand."""
    v1 = dict(TargetNodeAmount.objects.filter(node_id__in=node_ids, version_from=1).values_list("node_id", "amount"))
    current = dict(TargetNode.objects.filter(pk__in=node_ids).values_list("pk", "amount"))
    return {pk: (v1.get(pk, Decimal(0)), current[pk]) for pk in node_ids}


@pytest.fixture
def moved(org, plan, tree, approved):
    """rep won 1,000 before D and 300 on D (moved to rep_same_team with his target from D)."""
    won = next(s for s in org.stages if s.is_won)
    make_deal(owner=org.rep, amount="1000", stage=won, close=date(2027, 5, 10))
    make_deal(owner=org.rep_same_team, amount="4000", stage=won, close=date(2027, 3, 10))
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=org.rep_same_team, effective=D, reason="Resigned", actor=org.manager
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)
    attainment_recompute(plan=plan)
    return {
        org.rep.pk: Decimal("1000"),
        org.rep_same_team.pk: Decimal("4000"),
        org.rep_js.pk: Decimal("0"),
    }


def test_tree_shows_attainment_against_original_and_current(org, plan, tree, moved, client_for):
    east = tree["east"]
    html = client_for(org.director).get(reverse("targets:node_children", args=[plan.pk, east.pk])).content.decode()
    reps = tree["reps"]
    figures = _independent(plan, [reps[r].pk for r in (org.rep, org.rep_same_team)], None)
    for rep in (org.rep, org.rep_same_team):
        node = reps[rep]
        original, current = figures[node.pk]
        assert original == Decimal("200000.00") and current != original
        actual = moved[rep.pk]
        shown = re.search(rf'data-testid="original-target-{node.pk}" data-value="([^"]+)"', html).group(1)
        assert Decimal(shown) == original
        shown = re.search(rf'data-testid="current-target-{node.pk}" data-value="([^"]+)"', html).group(1)
        assert Decimal(shown) == current
        rate = re.search(rf'data-testid="original-rate-{node.pk}" data-value="([^"]*)"', html).group(1)
        assert Decimal(rate) == (actual * 100 / original).quantize(Decimal("0.1"))
        rate = re.search(rf'data-testid="current-rate-{node.pk}" data-value="([^"]*)"', html).group(1)
        assert Decimal(rate) == math.percent(actual, current)


def test_api_gives_original_and_in_force_targets_with_their_attainment(org, plan, tree, moved, api):
    body = api(org.manager).get("/api/attainment/", {"node": tree["east"].pk}).json()
    rows = {r["node"]: r for r in body}
    reps = tree["reps"]
    for rep in (org.rep, org.rep_same_team, org.rep_js):
        node = TargetNode.objects.get(pk=reps[rep].pk)
        row = rows[node.pk]
        assert Decimal(row["original_target"]) == Decimal("200000.00")
        assert Decimal(row["target_in_force"]) == node.amount
        assert Decimal(row["original_attainment_pct"]) == math.percent(moved[rep.pk], Decimal("200000"))
        expected = math.percent(moved[rep.pk], node.amount)
        assert (row["attainment_in_force_pct"] and Decimal(row["attainment_in_force_pct"])) == expected
    east = rows[tree["east"].pk]
    assert Decimal(east["original_target"]) == Decimal(east["target_in_force"]) == Decimal("600000.00")


def test_review_rows_and_headline_show_original_beside_current(org, plan, tree, moved):
    review = build_review(org.manager, region=org.east, week=date(2027, 5, 15), rows_by="rep")
    rows = {r.key: r for r in review.rows}
    reps = tree["reps"]
    for rep in (org.rep, org.rep_same_team, org.rep_js):
        row = rows[f"rep:{rep.pk}"]
        node = TargetNode.objects.get(pk=reps[rep].pk)
        assert row.target == node.amount
        assert row.original_target == Decimal("200000.00")
        assert row.original_attainment_pct == math.percent(moved[rep.pk], Decimal("200000"))
    head = review.primary
    assert head.original_target == head.target == Decimal("600000.00")
    assert head.original_attainment_pct == math.percent(Decimal("5000"), Decimal("600000"))
    kept = type(review).from_snapshot(review.to_snapshot())
    assert {r.key: r.original_target for r in kept.rows} == {r.key: r.original_target for r in review.rows}


def test_a_transfer_to_the_team_from_the_page_needs_the_box_or_a_rep(org, plan, tree, approved, client_for):
    manager = client_for(org.manager)
    missing = manager.post(page(plan), transfer_data(org, **{"t-to_rep": ""}))
    assert missing.status_code == 400 and "give the target to the team" in missing.content.decode()
    assert not AdjustmentRequest.objects.exists()
    response = manager.post(page(plan), transfer_data(org, **{"t-to_rep": "", "t-to_team": "on"}))
    assert response.status_code == 302
    adjustment = AdjustmentRequest.objects.get()
    assert adjustment.details["to_rep"] is None
    detail = manager.get(response.url).content.decode()
    assert "the team (unassigned)" in detail


def test_the_adjustment_api_says_who_gives_who_receives_and_from_when(org, plan, tree, approved, api):
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=None, effective=D, reason="Resigned", actor=org.manager
    )
    body = api(org.director).get(f"/api/target-adjustments/{adjustment.pk}/").json()
    assert body["kind"] == "transfer" and body["reason"] == "Resigned"
    change = body["people_change"]
    assert (change["from_rep"], change["to_rep"], change["effective"]) == (org.rep.pk, None, "2027-05-16")
    assert (change["from_name"], change["to_name"]) == (str(org.rep), "the team (unassigned)")
    assert change["moved"] == adjustment.details["moved"] and change["ramp"] == []
    other = api(org.director).get("/api/target-adjustments/").json()
    rows = other["results"] if isinstance(other, dict) else other
    assert [r["people_change"] is not None for r in rows] == [True]


def test_the_review_page_shows_the_original_target_beside_the_one_in_force(org, plan, tree, moved, client_for):
    html = client_for(org.manager).get(f"/review/?region={org.east.pk}&by=rep").content.decode()
    row = re.search(rf'<tr data-testid="row-rep:{org.rep.pk}".*?</tr>', html, re.S).group(0)
    values = dict(re.findall(r'data-col="(\w+)" data-value="([^"]*)"', row))
    assert Decimal(values["original_target"]) == Decimal("200000.00")
    assert Decimal(values["original"]) == math.percent(Decimal("1000"), Decimal("200000"))
    assert Decimal(values["target"]) == TargetNode.objects.get(pk=tree["reps"][org.rep].pk).amount
    assert 'data-testid="tile-original"' in html
