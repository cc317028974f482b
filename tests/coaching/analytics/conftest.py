"""Fixed sales of the persona company for the driver tests and pages: won deals in two quarters of 2026, and an
approved FY2026 signed-revenue plan split by region, rep and quarter."""

from datetime import date
from decimal import Decimal

import pytest

from targets.models import TargetNode
from targets.services import plan_approve, plan_create, plan_submit, target_split, target_split_leaves
from tests.factories import CustomerFactory, UserFactory, make_deal

Q1 = (date(2026, 1, 1), date(2026, 3, 31))
Q2 = (date(2026, 4, 1), date(2026, 6, 30))

# who, customer (index into that rep's customers), amount, close day.
WON = [
    ("rep", 0, "1000.10", date(2026, 2, 3)),
    ("rep", 1, "2000", date(2026, 4, 9)),
    ("rep", 1, "500.55", date(2026, 5, 9)),
    ("rep", 2, "700", date(2026, 6, 30)),
    ("rep_same_team", 0, "3000", date(2026, 1, 20)),
    ("rep_same_team", 0, "3300", date(2026, 5, 20)),
    ("rep_js", 0, "800", date(2026, 3, 1)),
    ("rep_other", 0, "9000", date(2026, 5, 5)),
]


@pytest.fixture
def sales(org):
    won = next(s for s in org.stages if s.is_won)
    customers = {}
    for who in ("rep", "rep_same_team", "rep_js", "rep_other"):
        owner = getattr(org, who)
        customers[who] = [CustomerFactory(owner=owner, region=owner.region) for _ in range(4)]
    for who, index, amount, day in WON:
        make_deal(owner=getattr(org, who), customer=customers[who][index], amount=amount, stage=won, close=day)
    # rep_js sold to a customer rep owns: it counts as covered for rep_js (and East once).
    make_deal(owner=org.rep_js, customer=customers["rep"][3], amount="100", stage=won, close=date(2026, 4, 2))
    return customers


@pytest.fixture
def approved_plan(org, metrics, sales):
    plan = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2026",
        total=Decimal("120000"),
        owner=org.director,
        actor=org.director,
    )
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    target_split_leaves(node=root, dimension="rep", method="equal", actor=org.director)
    target_split_leaves(node=root, dimension="quarter", method="equal", actor=org.director)
    for leaf in TargetNode.objects.filter(plan=plan, split_dimension=""):
        leaf.deadline = leaf.period_end
        leaf.owner = leaf.rep or org.director
        leaf.save(update_fields=["deadline", "owner"])
    approver = UserFactory(username="approver", role="admin")
    return plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=approver)
