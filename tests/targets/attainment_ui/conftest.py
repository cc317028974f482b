"""The "my targets" fixtures (FY2027 split to the reps, frozen on 2027-05-15) plus stored snapshots."""

from datetime import date
from decimal import Decimal

import pytest

from targets.models import AttainmentSnapshot
from tests.targets.mine import conftest as mine

# The "my targets" fixtures, shared rather than copied.
tree = mine.tree
approved = mine.approved

DAY = date(2027, 5, 14)


@pytest.fixture(autouse=True)
def _frozen_day(my_targets_day):
    """Every test here runs at `MY_TARGETS_DAY` (tests/targets/conftest.py), as the "my targets" tests do."""


def snap(node, actual, *, as_of=DAY, open_pipeline="0"):
    return AttainmentSnapshot.objects.create(
        node=node,
        as_of=as_of,
        actual=Decimal(actual),
        target=node.amount,
        weighted_pipeline=Decimal("0"),
        open_pipeline=Decimal(open_pipeline),
    )


@pytest.fixture
def snapshots(org, tree, approved):
    """FY2027 is 37 % elapsed on DAY: rep ahead of time, rep_same_team a little behind, rep_js far behind."""
    reps = tree["reps"]
    return {
        "old_rep": snap(reps[org.rep], "10000", as_of=date(2027, 4, 30)),
        "rep": snap(reps[org.rep], "90000"),
        "same_team": snap(reps[org.rep_same_team], "60000"),
        "js": snap(reps[org.rep_js], "20000"),
        "east": snap(tree["east"], "170000"),
    }
