"""The review's flow tests: a week of changes in May 2026, seen on 2026-05-10 (Q2 is the current quarter)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal

TZ = ZoneInfo("Asia/Shanghai")
BEFORE = datetime(2026, 4, 20, 10, 0, tzinfo=TZ)
DURING = datetime(2026, 5, 6, 10, 0, tzinfo=TZ)
TODAY = datetime(2026, 5, 10, 15, 0, tzinfo=TZ)


@pytest.fixture
def week(org):
    """Per rep: a deal won this week, one pushed out, one untouched and one new; then the clock stops on TODAY.

    Defaults of the page: window 2026-05-03 .. 2026-05-10, period Q2 2026."""
    won_stage = next(s for s in org.stages if s.is_won)
    deals = {}
    with time_machine.travel(BEFORE, tick=False):
        for user in (org.rep, org.rep_same_team, org.rep_js, org.rep_other):
            deals[user.username, "won"] = make_deal(
                owner=user, amount="100", close=date(2026, 6, 1), name=f"Won {user}"
            )
            deals[user.username, "slip"] = make_deal(
                owner=user, amount="200", close=date(2026, 6, 1), name=f"Slip {user}"
            )
            deals[user.username, "stay"] = make_deal(
                owner=user, amount="50", close=date(2026, 6, 1), name=f"Stay {user}"
            )
    with time_machine.travel(DURING, tick=False):
        for user in (org.rep, org.rep_same_team, org.rep_js, org.rep_other):
            deals[user.username, "new"] = make_deal(
                owner=user, amount="400", close=date(2026, 6, 1), name=f"New {user}"
            )
            deals[user.username, "won"] = opportunity_move_stage(
                opportunity=deals[user.username, "won"],
                stage=won_stage,
                evidence="Signed",
                closed_on=date(2026, 5, 6),
                actor=user,
            )
            deals[user.username, "slip"] = opportunity_update(
                opportunity=deals[user.username, "slip"], data={"expected_close_date": date(2026, 9, 1)}, actor=user
            )
    with time_machine.travel(TODAY, tick=False):
        yield deals
