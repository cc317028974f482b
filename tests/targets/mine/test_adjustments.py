"""Adjustments (季度目标动态调整): propose, the approver's inbox, approve into a new version, reject."""

from decimal import Decimal

import pytest
from django.urls import reverse

from targets.models import AdjustmentKind, AdjustmentRequest, AdjustmentStatus, TargetPlan
from targets.services import adjustment_propose
from tests.targets.mine.conftest import fresh


def propose(client, node, amounts: dict, *, kind="reallocation", reason="Key account moved"):
    data = {"kind": kind, "reason": reason}
    data.update({f"new_{n.pk}": str(a) for n, a in amounts.items()})
    return client.post(reverse("targets:adjustment_propose", args=[node.pk]), data)


def east_amounts(tree, org, **changes):
    """The current amounts of East's three reps, with some changed."""
    reps = tree["reps"]
    amounts = {reps[r]: fresh(reps[r]).amount for r in (org.rep, org.rep_same_team, org.rep_js)}
    for who, amount in changes.items():
        amounts[reps[getattr(org, who)]] = Decimal(amount)
    return amounts


def inbox_ids(client, key="to_decide"):
    return [a.pk for a in client.get(reverse("targets:adjustment_inbox")).context[key]]


def test_the_form_lists_the_parts_with_their_amounts(org, tree, approved, client_for):
    response = client_for(org.manager).get(reverse("targets:adjustment_propose", args=[tree["east"].pk]))
    form = response.context["form"]
    assert [p.pk for p, _field in form.rows()] == [n.pk for n in tree["east"].children.order_by("path")]
    assert response.context["parts_total"] == Decimal("600000")
    html = response.content.decode()
    assert 'data-current="200000.00"' in html and 'data-testid="total-status"' in html


def test_propose_then_approve_makes_a_new_version_and_the_diff_shows_exactly_the_changed_targets(
    org, plan, tree, approved, client_for
):
    manager, director = client_for(org.manager), client_for(org.director)
    response = propose(manager, tree["east"], east_amounts(tree, org, rep="230000", rep_same_team="170000"))
    adjustment = AdjustmentRequest.objects.get()
    assert response.status_code == 302 and response.url == reverse("targets:adjustment_detail", args=[adjustment.pk])
    assert (adjustment.kind, adjustment.status, adjustment.proposer) == ("reallocation", "pending", org.manager)
    assert {c["node"] for c in adjustment.changes} == {tree["reps"][org.rep].pk, tree["reps"][org.rep_same_team].pk}

    # The proposer cannot approve his own proposal; it waits in the director's inbox.
    assert adjustment.pk not in inbox_ids(manager) and adjustment.pk in inbox_ids(manager, "mine")
    detail = manager.get(reverse("targets:adjustment_detail", args=[adjustment.pk]))
    assert detail.context["can_approve"] is False and 'data-testid="approve"' not in detail.content.decode()
    response = manager.post(reverse("targets:adjustment_approve", args=[adjustment.pk]))
    assert response.status_code == 400 and "other than the proposer" in response.content.decode()
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING and fresh(tree["reps"][org.rep]).amount == Decimal("200000")

    assert adjustment.pk in inbox_ids(director)
    response = director.post(reverse("targets:adjustment_approve", args=[adjustment.pk]), {"note": "OK"})
    compare = reverse("targets:plan_compare", args=[plan.pk])
    assert response.status_code == 302 and response.url == f"{compare}?a=1&b=2"
    plan.refresh_from_db()
    assert plan.current_version == 2 and plan.total == Decimal("1200000")

    response = director.get(response.url)
    rows = {r["node"].pk: r for r in response.context["rows"]}
    assert set(rows) == {tree["reps"][org.rep].pk, tree["reps"][org.rep_same_team].pk}
    rep_row = rows[tree["reps"][org.rep].pk]
    assert (rep_row["old"], rep_row["new"], rep_row["delta"], rep_row["pct"]) == (
        Decimal("200000"),
        Decimal("230000"),
        Decimal("30000"),
        Decimal("15.0"),
    )
    assert rows[tree["reps"][org.rep_same_team].pk]["pct"] == Decimal("-15.0")
    # The default comparison is the original against the version in force.
    assert {r["node"].pk for r in director.get(compare).context["rows"]} == set(rows)


def test_a_reallocation_must_keep_the_total(org, tree, approved, client_for):
    response = propose(client_for(org.manager), tree["east"], east_amounts(tree, org, rep="250000"))
    assert response.status_code == 400
    assert "keeps the plan total" in response.content.decode()
    assert not AdjustmentRequest.objects.exists()


def test_bad_amounts_and_a_missing_reason_are_form_errors(org, tree, approved, client_for):
    amounts = east_amounts(tree, org)
    amounts[tree["reps"][org.rep]] = "a lot"
    response = propose(client_for(org.manager), tree["east"], amounts, reason="")
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "reason" in errors and f"new_{tree['reps'][org.rep].pk}" in errors
    response = propose(client_for(org.manager), tree["east"], east_amounts(tree, org))
    assert response.status_code == 400 and "Change at least one target" in response.content.decode()
    assert not AdjustmentRequest.objects.exists()


def test_a_draft_plan_is_not_adjusted(org, tree, client_for):
    response = client_for(org.manager).get(reverse("targets:adjustment_propose", args=[tree["east"].pk]))
    assert 'data-testid="not-approved"' in response.content.decode()
    response = propose(client_for(org.manager), tree["east"], east_amounts(tree, org, rep="230000", rep_js="170000"))
    assert response.status_code == 400 and "Only an approved plan" in response.content.decode()


def test_a_change_of_total_needs_a_director(org, plan, tree, approved, client_for):
    # The director proposes more for one rep: the East area and the plan total grow with it.
    propose(client_for(org.director), tree["east"], east_amounts(tree, org, rep="250000"), kind="total_change")
    adjustment = AdjustmentRequest.objects.get()
    assert adjustment.kind == AdjustmentKind.TOTAL_CHANGE
    manager = client_for(org.manager)
    assert adjustment.pk not in inbox_ids(manager)
    detail = manager.get(reverse("targets:adjustment_detail", args=[adjustment.pk]))
    assert 'data-testid="approve"' not in detail.content.decode()
    response = manager.post(reverse("targets:adjustment_approve", args=[adjustment.pk]))
    assert response.status_code == 400 and "director" in response.content.decode()
    assert TargetPlan.objects.get(pk=plan.pk).total == Decimal("1200000")

    admin = client_for(org.admin)
    assert adjustment.pk in inbox_ids(admin)
    assert admin.post(reverse("targets:adjustment_approve", args=[adjustment.pk])).status_code == 302
    plan.refresh_from_db()
    assert (plan.total, plan.current_version) == (Decimal("1250000"), 2)
    rows = admin.get(reverse("targets:plan_compare", args=[plan.pk]), {"a": 1, "b": 2}).context["rows"]
    assert {r["node"].pk for r in rows} == {tree["root"].pk, tree["east"].pk, tree["reps"][org.rep].pk}


def test_reject_needs_a_reason_and_changes_nothing(org, plan, tree, approved, client_for):
    rep, same = tree["reps"][org.rep], tree["reps"][org.rep_same_team]
    adjustment = adjustment_propose(
        plan=approved,
        kind="reallocation",
        reason="r",
        changes=[{"node": rep, "amount": "210000"}, {"node": same, "amount": "190000"}],
        actor=org.manager,
    )
    director = client_for(org.director)
    url = reverse("targets:adjustment_reject", args=[adjustment.pk])
    response = director.post(url, {"note": ""})
    assert response.status_code == 400 and "note" in response.context["form"].errors
    assert director.post(url, {"note": "Not this quarter"}).status_code == 302
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.approver) == (AdjustmentStatus.REJECTED, org.director)
    plan.refresh_from_db()
    assert plan.current_version == 1 and fresh(rep).amount == Decimal("200000")


@pytest.mark.parametrize("who", ["rep", "rep_same_team", "manager_north"])
def test_adjustments_out_of_reach(who, org, tree, approved, client_for):
    rep, same = tree["reps"][org.rep], tree["reps"][org.rep_same_team]
    adjustment = adjustment_propose(
        plan=approved,
        kind="reallocation",
        reason="r",
        changes=[{"node": rep, "amount": "210000"}, {"node": same, "amount": "190000"}],
        actor=org.manager,
    )
    client = client_for(getattr(org, who))
    if who == "manager_north":
        # He sees the plan but none of the East targets: the rows are hidden, he cannot approve.
        response = client.get(reverse("targets:adjustment_detail", args=[adjustment.pk]))
        assert response.context["rows"] == [] and response.context["hidden"] == 2
        assert adjustment.pk not in inbox_ids(client)
        assert client.post(reverse("targets:adjustment_approve", args=[adjustment.pk])).status_code == 400
    else:
        # Reps do not see proposals (they list colleagues' targets) nor the area's parts.
        assert client.get(reverse("targets:adjustment_detail", args=[adjustment.pk])).status_code == 404
        assert client.post(reverse("targets:adjustment_approve", args=[adjustment.pk])).status_code == 404
        assert client.get(reverse("targets:adjustment_propose", args=[tree["east"].pk])).status_code == 404
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING


def test_a_manager_sees_the_net_change_of_his_targets_not_of_hidden_ones(org, tree, approved, client_for):
    # The director moves 30,000 from East to North: East's manager sees East's row and its change only.
    propose(client_for(org.director), tree["root"], {tree["east"]: "570000", tree["north"]: "630000"})
    adjustment = AdjustmentRequest.objects.get()
    manager, director = client_for(org.manager), client_for(org.director)
    detail = manager.get(reverse("targets:adjustment_detail", args=[adjustment.pk]))
    html = detail.content.decode()
    assert detail.context["hidden"] == 1 and detail.context["net"] == Decimal("-30000")
    assert "Net change of the targets you see" in html and "Net change of the plan total" not in html
    assert director.get(reverse("targets:adjustment_detail", args=[adjustment.pk])).context["net"] == Decimal("0")

    assert client_for(org.admin).post(reverse("targets:adjustment_approve", args=[adjustment.pk])).status_code == 302
    [decided] = manager.get(reverse("targets:adjustment_inbox")).context["decided"]
    assert (decided.net, decided.partial) == (Decimal("-30000"), True)
    [seen_whole] = director.get(reverse("targets:adjustment_inbox")).context["decided"]
    assert (seen_whole.net, seen_whole.partial) == (Decimal("0"), False)
