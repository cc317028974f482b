"""A rep leaves or moves team in the middle of an approved plan: his remaining target goes to another rep from a
date (prorated by days in the month that straddles it), through propose -> approve -> a new version; the plan total
never changes, at any level; deals move owner by date so attainment is credited by date."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.exceptions import ValidationError

from crm.models import AuditLog
from pipeline.models import Opportunity, OpportunityHistory
from pipeline.services import deals_reassign
from targets.attainment.reference import compute_actuals
from targets.models import AdjustmentKind, AdjustmentRequest, AdjustmentStatus, TargetNode
from targets.planning.approvals import ApprovalRefused
from targets.planning.people import new_hire_propose, remaining_part, transfer_propose
from targets.planning.selectors import original_targets
from targets.services import adjustment_approve, adjustment_reject
from tests.factories import UserFactory, make_deal
from tests.targets.people.conftest import assert_every_level_adds_up, months_of

D = date(2027, 5, 16)  # 16 of May's 31 days are on or after it


def snapshot_amounts(plan):
    return dict(TargetNode.objects.filter(plan=plan).values_list("pk", "amount"))


def test_remaining_part_is_prorated_by_days_and_rounded_half_up_once():
    assert remaining_part(Decimal("310.00"), date(2027, 5, 1), date(2027, 5, 31), D, 2) == Decimal("160.00")
    assert remaining_part(Decimal("100.00"), date(2027, 5, 1), date(2027, 5, 31), D, 2) == Decimal("51.61")
    assert remaining_part(Decimal("100.00"), date(2027, 6, 1), date(2027, 6, 30), D, 2) == Decimal("100.00")
    assert remaining_part(Decimal("100.00"), date(2027, 4, 1), date(2027, 4, 30), D, 2) == Decimal("0.00")
    assert remaining_part(Decimal("7"), date(2027, 5, 1), date(2027, 5, 31), D, 0) == Decimal("4")


def test_transfer_moves_the_remaining_target_keeps_the_total_at_every_level_and_needs_someone_above(
    org, plan, tree, approved
):
    before = months_of(plan, org.rep)
    peer_before = months_of(plan, org.rep_same_team)
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=org.rep_same_team, effective=D, reason="Rep resigned", actor=org.manager
    )
    assert adjustment.kind == AdjustmentKind.TRANSFER and adjustment.status == AdjustmentStatus.PENDING
    # Nothing changes before approval.
    assert months_of(plan, org.rep)["05"].amount == before["05"].amount

    # The proposer does not approve his own; a peer manager of another area is not above him.
    with pytest.raises(ValidationError):
        adjustment_approve(adjustment=adjustment, actor=org.manager)
    with pytest.raises(ValidationError):
        adjustment_approve(adjustment=adjustment, actor=org.manager_north)
    adjustment_approve(adjustment=adjustment, actor=org.director, note="OK")
    adjustment.refresh_from_db()
    assert (adjustment.approver, adjustment.resulting_version, adjustment.reason) == (org.director, 2, "Rep resigned")

    after = months_of(plan, org.rep)
    peer_after = months_of(plan, org.rep_same_team)
    may = before["05"].amount
    moved_may = (may * 16 / 31).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    # Before the date: unchanged; the straddling month: the part before D stays; after: all gone.
    for m in ("01", "02", "03", "04"):
        assert after[m].amount == before[m].amount and peer_after[m].amount == peer_before[m].amount
    assert after["05"].amount == may - moved_may
    assert peer_after["05"].amount == peer_before["05"].amount + moved_may
    for m in ("06", "07", "08", "09", "10", "11", "12"):
        assert after[m].amount == 0
        assert peer_after[m].amount == peer_before[m].amount + before[m].amount
    moved = moved_may + sum(before[m].amount for m in ("06", "07", "08", "09", "10", "11", "12"))
    assert Decimal(adjustment.details["moved"]) == moved
    assert TargetNode.objects.get(pk=tree["east"].pk).amount == Decimal("600000.00")
    plan.refresh_from_db()
    assert plan.total == Decimal("1200000.00") and plan.current_version == 2
    assert_every_level_adds_up(plan)
    # The original plan is kept (version 1) beside the version in force.
    originals = original_targets([after["06"].pk, tree["reps"][org.rep].pk])
    assert originals[after["06"].pk] == before["06"].amount
    assert originals[tree["reps"][org.rep].pk] == Decimal("200000.00")
    assert AuditLog.objects.filter(action="target_adjustment.propose_transfer").count() == 1


def test_transfer_to_a_rep_without_a_target_adds_his_targets_at_zero_and_reject_withdraws_them(
    org, plan, tree, approved
):
    newcomer = UserFactory(username="newcomer", role="rep", region=org.sh)
    amounts = snapshot_amounts(plan)
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=newcomer, effective=D, reason="Territory handover", actor=org.manager
    )
    added = TargetNode.objects.filter(plan=plan, rep=newcomer)
    # His rep target and his months from May: added at zero while pending (the totals do not move).
    assert added.count() == 1 + 8 and set(added.values_list("amount", flat=True)) == {Decimal(0)}
    assert all(amounts[pk] == a for pk, a in snapshot_amounts(plan).items() if pk in amounts)
    adjustment_reject(adjustment=adjustment, actor=org.director, note="Wait for the contract")
    assert not TargetNode.objects.filter(plan=plan, rep=newcomer).exists()
    assert snapshot_amounts(plan) == amounts

    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=newcomer, effective=D, reason="Territory handover", actor=org.manager
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)
    assert_every_level_adds_up(plan)
    new_node = TargetNode.objects.get(plan=plan, rep=newcomer, parent=tree["east"])
    assert new_node.amount == Decimal(adjustment.details["moved"]) and new_node.owner == newcomer
    # A target added by an adjustment had none in the original plan.
    assert original_targets([new_node.pk]) == {new_node.pk: Decimal(0)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"effective": date(2028, 1, 1)}, "effective"),
        ({"effective": date(2026, 12, 31)}, "effective"),
        ({"to_rep": "rep"}, "to_rep"),
        ({"amount": "900000"}, "amount"),
        ({"reason": "  "}, "reason"),
        ({"to_rep": "rep_other"}, "to_rep"),  # not in East
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(org, plan, tree, approved, change, field):
    amounts = snapshot_amounts(plan)
    args = {"effective": D, "to_rep": org.rep_same_team, "reason": "Resigned", "amount": None}
    args.update(change)
    if isinstance(args["to_rep"], str):
        args["to_rep"] = getattr(org, args["to_rep"])
    with pytest.raises(ValidationError) as refused:
        transfer_propose(plan=plan, from_rep=org.rep, actor=org.manager, **args)
    assert field in refused.value.message_dict
    assert all(refused.value.message_dict[field])
    assert snapshot_amounts(plan) == amounts and not AdjustmentRequest.objects.exists()


def test_amount_more_than_what_is_left_names_what_is_left(org, plan, tree, approved):
    with pytest.raises(ValidationError) as refused:
        transfer_propose(
            plan=plan,
            from_rep=org.rep,
            to_rep=org.rep_same_team,
            effective=D,
            reason="Resigned",
            amount="200000",
            actor=org.manager,
        )
    assert "left" in refused.value.message_dict["amount"][0]


def test_a_partial_amount_is_spread_over_the_remaining_months_and_the_total_holds(org, plan, tree, approved):
    adjustment = transfer_propose(
        plan=plan,
        from_rep=org.rep,
        to_rep=org.rep_same_team,
        effective=D,
        reason="Half the accounts",
        amount="50000.01",
        actor=org.manager,
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)
    rep = TargetNode.objects.get(pk=tree["reps"][org.rep].pk)
    peer = TargetNode.objects.get(pk=tree["reps"][org.rep_same_team].pk)
    assert rep.amount == Decimal("200000.00") - Decimal("50000.01")
    assert peer.amount == Decimal("200000.00") + Decimal("50000.01")
    assert_every_level_adds_up(plan)


def test_a_manager_cannot_transfer_targets_of_another_team(org, plan, tree, approved):
    north_rep_peer = UserFactory(username="bj2", role="rep", region=org.bj)
    with pytest.raises(ValidationError) as refused:
        transfer_propose(
            plan=plan,
            from_rep=org.rep_other,
            to_rep=north_rep_peer,
            effective=D,
            reason="Not mine",
            actor=org.manager,
        )
    assert "outside your regions" in str(refused.value)
    with pytest.raises(ValidationError):
        transfer_propose(plan=plan, from_rep=org.rep, to_rep=org.rep_same_team, effective=D, reason="x", actor=org.rep)
    assert not AdjustmentRequest.objects.exists()


def test_a_manager_may_not_approve_a_peer_managers_transfer(org, plan, tree, approved):
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=org.rep_same_team, effective=D, reason="Resigned", actor=org.director
    )
    # Proposed by a director: a manager is not above him.
    with pytest.raises(ApprovalRefused):
        adjustment_approve(adjustment=adjustment, actor=org.manager)
    adjustment_approve(adjustment=adjustment, actor=org.admin)
    assert AdjustmentRequest.objects.get().status == AdjustmentStatus.APPROVED


def won(org):
    return next(s for s in org.stages if s.is_won)


def test_deals_move_owner_by_date_and_attainment_is_credited_by_date(org, plan, tree, approved):
    before = make_deal(owner=org.rep, amount="1000", stage=won(org), close=date(2027, 5, 10))
    on_the_day = make_deal(owner=org.rep, amount="300", stage=won(org), close=D)
    open_deal = make_deal(owner=org.rep, amount="500", close=date(2027, 6, 20))
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=org.rep_same_team, effective=D, reason="Resigned", actor=org.manager
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)

    with pytest.raises(ValidationError) as refused:
        deals_reassign(
            from_owner=org.rep,
            to_owner=org.rep_same_team,
            effective=D,
            reason="Resigned",
            actor=org.manager,
            deal_ids=[before.pk],
        )
    assert "closed before" in str(refused.value)
    moved = deals_reassign(
        from_owner=org.rep, to_owner=org.rep_same_team, effective=D, reason="Resigned", actor=org.manager
    )
    assert moved == 2
    assert Opportunity.objects.get(pk=before.pk).owner == org.rep
    assert {d.owner for d in Opportunity.objects.filter(pk__in=[on_the_day.pk, open_deal.pk])} == {org.rep_same_team}
    history = OpportunityHistory.objects.get(opportunity=on_the_day, field="owner")
    assert (history.old_value, history.new_value) == (str(org.rep.pk), str(org.rep_same_team.pk))
    assert "Resigned" in history.reason and history.changed_by == org.manager

    _nodes, figures = compute_actuals(plan, date(2027, 5, 31))
    rep_may = months_of(plan, org.rep)["05"]
    peer_may = months_of(plan, org.rep_same_team)["05"]
    assert figures[rep_may.pk].actual == Decimal("1000.00")  # won before D: stays with the old rep
    assert figures[peer_may.pk].actual == Decimal("300.00")  # won on D: the new rep's
    assert figures[tree["reps"][org.rep].pk].actual == Decimal("1000.00")
    assert figures[tree["east"].pk].actual == Decimal("1300.00")
    assert figures[months_of(plan, org.rep_same_team)["06"].pk].open_pipeline == Decimal("500.00")


def test_reassigning_deals_is_scoped_and_refuses_bad_input(org, plan, tree, approved):
    deal = make_deal(owner=org.rep_other, amount="500", close=date(2027, 6, 20))
    with pytest.raises(ValidationError):
        deals_reassign(from_owner=org.rep_other, to_owner=org.rep, effective=D, reason="x", actor=org.manager)
    with pytest.raises(ValidationError):
        deals_reassign(from_owner=org.rep, to_owner=org.rep, effective=D, reason="x", actor=org.manager)
    with pytest.raises(ValidationError):
        deals_reassign(from_owner=org.rep_other, to_owner=org.rep, effective=D, reason="x", actor=org.rep)
    assert Opportunity.objects.get(pk=deal.pk).owner == org.rep_other


def test_new_hire_gets_a_ramped_target_from_a_peer_and_the_total_holds(org, plan, tree, approved):
    hire = UserFactory(username="hire", role="rep", region=org.sh)
    peer = months_of(plan, org.rep_same_team)
    adjustment = new_hire_propose(
        plan=plan,
        hire=hire,
        source=org.rep_same_team,
        start=D,
        full_amount="120000",
        ramp=[25, 50, 75, 100],
        reason="New hire in Shanghai",
        actor=org.manager,
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)
    hired = months_of(plan, hire)
    # Each month's share of the full target (the peer's months are equal: 10,000), prorated and ramped.
    assert set(hired) == {"05", "06", "07", "08", "09", "10", "11", "12"}
    prorated = (Decimal("10000") * 16 / 31).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert hired["05"].amount == (prorated * 25 / 100).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("1290.32")
    assert hired["06"].amount == Decimal("5000.00")
    assert hired["07"].amount == Decimal("7500.00")
    assert hired["08"].amount == hired["12"].amount == Decimal("10000.00")
    after = months_of(plan, org.rep_same_team)
    for m, node in hired.items():
        assert after[m].amount + node.amount == peer[m].amount
    assert_every_level_adds_up(plan)
    assert set(original_targets([n.pk for n in hired.values()]).values()) == {Decimal(0)}
    assert adjustment.details["ramp"] == [25, 50, 75, 100]


def test_new_hire_taking_more_than_the_peer_has_is_refused(org, plan, tree, approved):
    hire = UserFactory(username="hire", role="rep", region=org.sh)
    amounts = snapshot_amounts(plan)
    with pytest.raises(ValidationError) as refused:
        new_hire_propose(
            plan=plan,
            hire=hire,
            source=org.rep_same_team,
            start=D,
            full_amount="500000",
            reason="Too much",
            actor=org.manager,
        )
    assert "full_amount" in refused.value.message_dict
    assert snapshot_amounts(plan) == amounts and not TargetNode.objects.filter(rep=hire).exists()


def test_moving_deals_records_their_recompute_and_running_it_credits_the_new_rep(
    org, plan, tree, approved, django_capture_on_commit_callbacks
):
    from salesmgmt import outbox
    from salesmgmt.models import OutboxTask
    from targets.attainment.services import attainment_recompute
    from targets.models import LatestAttainment

    open_deal = make_deal(owner=org.rep, amount="500", close=date(2027, 6, 20))
    attainment_recompute(plan=plan)
    rep_june = months_of(plan, org.rep)["06"]
    peer_june = months_of(plan, org.rep_same_team)["06"]
    assert LatestAttainment.objects.get(node=rep_june).open_pipeline == Decimal("500.00")
    OutboxTask.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        deals_reassign(
            from_owner=org.rep, to_owner=org.rep_same_team, effective=D, reason="Resigned", actor=org.manager
        )
    # The deal event, recorded in the move's transaction: where it counted (the old owner) and counts now.
    recorded = [(row.name, row.args) for row in OutboxTask.objects.all()]
    assert recorded == [("targets.recompute_for_deal", [open_deal.pk, org.rep.pk, [], None])]
    outbox.dispatch()  # what runs after the commit (tasks are eager without a broker)
    figures = dict(LatestAttainment.objects.values_list("node_id", "open_pipeline"))
    assert figures[rep_june.pk] == 0 and figures[peer_june.pk] == Decimal("500.00")


def test_proposing_a_transfer_costs_the_same_queries_for_more_months(org, plan, tree, approved):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_to_propose(rep, day):
        with CaptureQueriesContext(connection) as queries:
            adjustment = transfer_propose(
                plan=plan, from_rep=rep, to_rep=org.rep_js, effective=day, reason="Moves", actor=org.manager
            )
        return len(queries), len(adjustment.changes)

    eight, changes_eight = queries_to_propose(org.rep, D)  # May to December
    twelve, changes_twelve = queries_to_propose(org.rep_same_team, date(2027, 1, 1))  # the whole year
    assert (changes_eight, changes_twelve) == (16, 24)
    assert eight == twelve
