"""Fixed data of the forecast call and meeting tests: the persona company's deals around June 2026 (FY2026-M06
with a fiscal year starting in January), each with the figure it should add, so a test can sum them in plain
Python beside the selectors' SQL."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.factories import make_deal

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday of June 2026: the week of Monday 2026-06-08.
CALL_DAY = datetime(2026, 6, 10, 10, 0, tzinfo=SHANGHAI)
JUNE = (date(2026, 6, 1), date(2026, 6, 30))


@dataclass(frozen=True)
class Spec:
    owner: str  # the persona attribute (org.rep...)
    amount: str
    state: str  # won / lost / open
    category: str  # forecast category
    close: date


SPECS = [
    Spec("rep", "1000.10", "won", "closed", date(2026, 6, 5)),
    Spec("rep", "500", "won", "closed", date(2026, 5, 20)),  # won in May: not June's
    Spec("rep", "2000", "open", "commit", date(2026, 6, 20)),
    Spec("rep", "300", "open", "commit", date(2026, 7, 5)),  # expected in July
    Spec("rep", "700.45", "open", "best_case", date(2026, 6, 25)),
    Spec("rep", "900", "open", "pipeline", date(2026, 6, 28)),  # pipeline category: in neither
    Spec("rep", "800", "lost", "commit", date(2026, 6, 12)),  # lost: out
    Spec("rep_same_team", "1500", "open", "commit", date(2026, 6, 15)),
    Spec("rep_same_team", "250", "won", "closed", date(2026, 6, 2)),
    Spec("rep_js", "400", "open", "best_case", date(2026, 6, 30)),
    Spec("rep_other", "5000", "open", "commit", date(2026, 6, 10)),
]


def expected(owner: str, specs=SPECS) -> dict[str, Decimal]:
    """The deal-based forecast of June for one persona, replayed from the specs."""
    start, end = JUNE
    won = sum(
        (Decimal(s.amount) for s in specs if s.owner == owner and s.state == "won" and start <= s.close <= end),
        Decimal(0),
    )
    in_june = [s for s in specs if s.owner == owner and s.state == "open" and start <= s.close <= end]
    commit = won + sum((Decimal(s.amount) for s in in_june if s.category == "commit"), Decimal(0))
    best = commit + sum((Decimal(s.amount) for s in in_june if s.category == "best_case"), Decimal(0))
    return {"won": won, "commit": commit, "best_case": best}


def stage_of(org, state):
    if state == "won":
        return next(s for s in org.stages if s.is_won)
    if state == "lost":
        return next(s for s in org.stages if s.is_lost)
    return org.stages[0]


@pytest.fixture
def call_day(time_machine):
    time_machine.move_to(CALL_DAY, tick=False)


@pytest.fixture
def call_deals(org, call_day):
    """The deals of `SPECS`, created through the pipeline service."""
    deals = []
    for spec in SPECS:
        owner = getattr(org, spec.owner)
        category = "commit" if spec.category == "closed" else spec.category
        deals.append(
            make_deal(
                owner=owner,
                amount=spec.amount,
                stage=stage_of(org, spec.state),
                close=spec.close,
                forecast_category=category,
            )
        )
    return deals
