"""Coaching sessions of the persona company: the East manager with a rep of East itself, a rep of the Shanghai
sub-team and a rep of the Jiangsu sub-team; the North manager with the Beijing rep."""

from datetime import date
from types import SimpleNamespace

import pytest
import time_machine

from coaching import session_services as services
from crm.models import Role
from tests.factories import UserFactory

DAY = date(2026, 6, 10)


@pytest.fixture(autouse=True)
def _coaching_day():
    with time_machine.travel(DAY, tick=False):
        yield


def record(manager, rep, *, day=DAY, commitments=(), focus="Discovery questions"):
    return services.coaching_session_create(
        actor=manager,
        rep=rep,
        date=day,
        focus_kind="skill",
        focus=focus,
        observations="Talks too much.",
        commitments=[services.NewCommitment(what, due) for what, due in commitments],
    )


@pytest.fixture
def sessions(org):
    rep_east = UserFactory(username="rep_east", role=Role.REP, region=org.east)
    return SimpleNamespace(
        rep_east=rep_east,
        own=record(org.manager, rep_east, commitments=[("Call ten prospects", date(2026, 6, 20))]),
        sub=record(org.manager, org.rep, commitments=[("Send the proposal", date(2026, 6, 17))]),
        sub_js=record(org.manager, org.rep_js),
        other=record(org.manager_north, org.rep_other, commitments=[("Visit the CIO", date(2026, 6, 30))]),
    )
