"""A plan whose single target the rep owns (his manager is East's), on 15 March 2027."""

from datetime import date

import pytest
import time_machine

from targets.services import plan_approve, plan_create, plan_submit

TODAY = date(2027, 3, 15)


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


def won(org):
    return next(s for s in org.stages if s.is_won)


@pytest.fixture
def plan(org, metrics, frozen):
    """FY2027 signed revenue of 1,200,000, one node owned by the rep (whose manager is East's), approved."""
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="1200000", owner=org.director, actor=org.director
    )
    plan.nodes.update(owner=org.rep)
    return plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
