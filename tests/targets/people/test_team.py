"""A leaver nobody replaces yet: his remaining target goes to the team, unassigned (no rep, no owner, nobody's facts
count for it), and a new hire later takes his target from it. Totals hold to the cent; attainment is computed on
either path (the SQL statement on PostgreSQL, the reference elsewhere) without counting the team twice."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from targets.attainment.services import attainment_recompute
from targets.models import LatestAttainment, TargetNode
from targets.planning.people import new_hire_propose, transfer_propose
from targets.planning.selectors import original_targets
from targets.services import adjustment_approve
from tests.factories import UserFactory, make_deal
from tests.targets.people.conftest import assert_every_level_adds_up, months_of

D = date(2027, 5, 16)


def won(org):
    return next(s for s in org.stages if s.is_won)


def test_a_leavers_target_goes_to_the_team_unassigned_and_a_new_hire_takes_it_later(org, plan, tree, approved):
    before = months_of(plan, org.rep)
    make_deal(owner=org.rep, amount="1000", stage=won(org), close=date(2027, 5, 10))
    make_deal(owner=org.rep_same_team, amount="700", stage=won(org), close=date(2027, 6, 10))
    adjustment = transfer_propose(
        plan=plan, from_rep=org.rep, to_rep=None, effective=D, reason="Resigned, not replaced yet", actor=org.manager
    )
    assert adjustment.details["to_rep"] is None
    adjustment_approve(adjustment=adjustment, actor=org.director)
    assert_every_level_adds_up(plan)
    slot = TargetNode.objects.get(plan=plan, parent=tree["east"], unassigned=True)
    assert (slot.rep_id, slot.owner_id) == (None, None) and "Unassigned" in slot.label
    leaves = {n.period_start.strftime("%m"): n for n in TargetNode.objects.filter(parent=slot)}
    assert set(leaves) == {"05", "06", "07", "08", "09", "10", "11", "12"}
    assert leaves["06"].amount == before["06"].amount and months_of(plan, org.rep)["06"].amount == 0
    assert original_targets([slot.pk]) == {slot.pk: Decimal(0)}

    attainment_recompute(plan=plan, as_of=date(2027, 6, 30))
    latest = dict(LatestAttainment.objects.values_list("node_id", "actual"))
    assert latest[slot.pk] == 0 and latest[leaves["06"].pk] == 0  # nobody's facts count for it
    assert latest[tree["east"].pk] == Decimal("1700.00")  # the team counted once
    assert latest[tree["reps"][org.rep].pk] == Decimal("1000.00")

    hire = UserFactory(username="hire", role="rep", region=org.sh)
    adjustment = new_hire_propose(
        plan=plan,
        hire=hire,
        source=None,
        start=date(2027, 7, 1),
        full_amount="120000",
        reason="Replacement hired",
        actor=org.manager,
    )
    adjustment_approve(adjustment=adjustment, actor=org.director)
    assert_every_level_adds_up(plan)
    hired = months_of(plan, hire)
    slot_leaves = {n.period_start.strftime("%m"): n for n in TargetNode.objects.filter(parent=slot)}
    for m, node in hired.items():
        assert node.amount + slot_leaves[m].amount == leaves[m].amount
    assert set(hired) == {"07", "08", "09", "10", "11", "12"}


def test_a_new_hire_from_a_team_without_unassigned_target_is_refused(org, plan, tree, approved):
    hire = UserFactory(username="hire", role="rep", region=org.sh)
    with pytest.raises(ValidationError) as refused:
        new_hire_propose(plan=plan, hire=hire, source=None, start=D, full_amount="1000", reason="x", actor=org.manager)
    assert "no unassigned target" in refused.value.message_dict["source"][0]
