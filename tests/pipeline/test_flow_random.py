"""The pipeline flow over random histories: deals created, moved through stages, won, lost, reopened, their
amount, close date, owner and forecast category changed, through the real services with the clock moved by
time-machine. For a director and a manager, over random windows:

(a) start + inflows − outflows = end to the cent, overall and per forecast category;
(b) start and end equal a plain-Python replay of what the test did (not of the history table);
(c) every box's drill-down lists its deals, and their amounts add up to the box.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import flow as F
from pipeline.models import ForecastCategory
from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal

TZ = ZoneInfo("Asia/Shanghai")
ORIGIN = datetime(2026, 4, 1, 9, 0, tzinfo=TZ)
PERIOD = (date(2026, 4, 1), date(2026, 6, 30))
CLOSE_DATES = [
    date(2026, 3, 31),
    date(2026, 4, 1),
    date(2026, 5, 15),
    date(2026, 6, 30),
    date(2026, 7, 1),
    date(2026, 8, 20),
]
CATEGORIES = [ForecastCategory.PIPELINE, ForecastCategory.BEST_CASE, ForecastCategory.COMMIT, ForecastCategory.OMITTED]
OWNERS = ["rep", "rep_js", "rep_other"]
EAST = {"rep", "rep_js", "rep_sh2", "manager"}

amounts = st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False)
operation = st.one_of(
    st.tuples(st.just("amount"), amounts),
    st.tuples(st.just("close"), st.sampled_from(CLOSE_DATES)),
    st.tuples(st.just("owner"), st.sampled_from(OWNERS)),
    st.tuples(st.just("category"), st.sampled_from(CATEGORIES)),
    st.tuples(st.just("stage"), st.integers(min_value=0, max_value=5)),
    st.tuples(st.just("stage"), st.integers(min_value=0, max_value=5)),
)
step = st.tuples(
    st.integers(min_value=0, max_value=4),  # which deal
    st.integers(min_value=1, max_value=60),  # hours since the previous step
    operation,
    st.tuples(st.sampled_from(OWNERS), amounts, st.sampled_from(CLOSE_DATES)),  # if the deal is new: how
)


def replay_state(log, t):
    """The deal's state at t from the test's own log: the last state set before t (None: not yet created)."""
    state = None
    for moment, snapshot in log:
        if moment < t:
            state = snapshot
    return state


def replay_pipeline(logs, t, in_scope):
    """{category: (total, count)} of the period's open pipeline at t, by the replay."""
    out = {}
    for log in logs.values():
        s = replay_state(log, t)
        if s and s["stage"] == "open" and PERIOD[0] <= s["close"] <= PERIOD[1] and in_scope(s["owner"]):
            total, count = out.get(s["cat"], (Decimal(0), 0))
            out[s["cat"]] = (total + s["amount"], count + 1)
    return out


def box_figures(box):
    return {
        c: (box.by_category[c], box.count_by_category[c]) for c in box.count_by_category if box.count_by_category[c]
    }


def listed_value(key, change):
    old, new = change.value
    if key == F.START:
        return old
    if key in (F.NEW, F.MOVED_IN):
        return new if key == F.NEW else old
    if key in (F.INCREASED, F.DECREASED):
        return abs(change.delta)
    return new


def run(org, steps, window):
    users = {u.username: u for u in (org.rep, org.rep_js, org.rep_other, org.rep_same_team, org.manager)}
    stages = org.stages
    deals, logs = {}, {}
    moment = ORIGIN
    for index, hours, (kind, value), (owner, amount, close) in steps:
        moment += timedelta(hours=hours)
        with time_machine.travel(moment, tick=False):
            today = moment.date()
            if index not in deals:
                deal = make_deal(owner=users[owner], amount=str(amount), close=close, actor=org.director)
                state = {
                    "stage": "open",
                    "amount": amount,
                    "close": close,
                    "owner": owner,
                    "cat": deal.forecast_category,
                }
                deals[index], logs[index] = deal, [(moment, state)]
                continue
            deal = deals[index].__class__.objects.get(pk=deals[index].pk)
            state = dict(logs[index][-1][1])
            if kind == "stage":
                target = stages[value]
                if target.pk == deal.stage_id:
                    continue
                deal = opportunity_move_stage(
                    opportunity=deal,
                    stage=target,
                    actor=org.director,
                    evidence="evidence",
                    lost_reason="reason",
                    closed_on=today,
                    reason="test",
                )
                state["stage"] = "won" if target.is_won else "lost" if target.is_lost else "open"
                state["cat"] = target.forecast_category
                if target.is_won or target.is_lost:
                    state["close"] = today
            else:
                name = {"close": "expected_close_date", "category": "forecast_category"}.get(kind, kind)
                new = users[value] if kind == "owner" else value
                deal = opportunity_update(opportunity=deal, data={name: new}, actor=org.director, reason="test")
                state[{"close": "close", "category": "cat"}.get(kind, kind)] = value
            deals[index] = deal
            logs[index].append((moment, state))
    return logs


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    steps=st.lists(step, min_size=1, max_size=18),
    window=st.tuples(st.integers(min_value=0, max_value=45), st.integers(min_value=0, max_value=30)),
)
def test_flow_balances_and_its_ends_match_a_replay(org, steps, window):
    with transaction.atomic():
        logs = run(org, steps, window)
        date_from = PERIOD[0] + timedelta(days=window[0])
        date_to = date_from + timedelta(days=window[1])
        t0 = datetime.combine(date_from, datetime.min.time(), tzinfo=TZ)
        t1 = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
        for user, in_scope in ((org.director, lambda o: True), (org.manager, lambda o: o in EAST)):
            kwargs = {"period_start": PERIOD[0], "period_end": PERIOD[1], "date_from": date_from, "date_to": date_to}
            result = F.pipeline_flow(user, **kwargs, deals_per_box=0)
            # (a) balance, overall and per category
            assert result.computed_end() == result.end.total
            for category in result.categories:
                assert result.computed_end(category) == result.end.by_category.get(category, Decimal(0))
            assert result.boxes[F.CATEGORY_IN].total == result.boxes[F.CATEGORY_OUT].total
            # (b) the ends against the replay
            assert box_figures(result.start) == replay_pipeline(logs, t0, in_scope)
            assert box_figures(result.end) == replay_pipeline(logs, t1, in_scope)
            # (c) the drill-down of every box adds up to the box
            for key, box in result.boxes.items():
                listed = F.flow_deals(user, box=key, **kwargs, limit=1000)
                assert len(listed) == box.count, key
                assert sum((listed_value(key, d) for d in listed), Decimal(0)) == box.total, key
        transaction.set_rollback(True)
