"""Deal recomputes drained together: with a broker, a deal change's recompute waits in the outbox and one drain
runs every change then pending in one set-based pass. The figures equal a full rebuild, however the changes
were grouped; a second delivery of the drain changes nothing; the alerts of a drain are evaluated once."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipeline.services import opportunity_move_stage, opportunity_update
from salesmgmt import outbox
from salesmgmt.models import OutboxTask
from targets.attainment.services import attainment_recompute
from targets.tasks import recompute_for_deals
from tests.factories import make_deal
from tests.targets.attainment.test_incremental import TODAY, figures
from tests.targets.attainment.test_recompute import build_plan, node, won_stage

NAME = "targets.recompute_for_deal"


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


@pytest.fixture
def broker(monkeypatch):
    """A broker that records what the outbox sends instead of sending it (no worker runs it)."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, retry, **options: sent.append((name, args)))
    monkeypatch.setattr(outbox, "cache_shared", lambda: True)  # the drains run in this process: its cache is theirs
    return sent


def pending():
    return OutboxTask.objects.filter(name=NAME).count()


def changes(org, deals, django_capture_on_commit_callbacks):
    """Each deal changed in a transaction of its own (a request each), committed: won, a bigger amount, or
    handed to another owner (so the previous owner's targets must lose it)."""
    won = won_stage(org)
    for k, deal in enumerate(deals):
        with django_capture_on_commit_callbacks(execute=True):
            if k % 3 == 0:
                opportunity_move_stage(
                    opportunity=deal, stage=won, actor=org.director, evidence="Signed", closed_on=TODAY
                )
            elif k % 3 == 1:
                opportunity_update(opportunity=deal, data={"amount": deal.amount * 2}, actor=org.director)
            else:
                opportunity_update(opportunity=deal, data={"owner": org.rep_other}, actor=org.director)


def deals_of(org, n):
    reps = [org.rep, org.rep_js, org.rep_same_team]
    return [make_deal(owner=reps[k % 3], amount=str(100 * (k + 1)), close=date(2027, 3, 20)) for k in range(n)]


def test_changes_pile_up_and_one_drain_recomputes_them_all_as_a_rebuild_would(
    org, metrics, frozen, broker, django_capture_on_commit_callbacks
):
    plan = build_plan(org, metrics["won_revenue"])
    deals = deals_of(org, 6)
    attainment_recompute(plan=plan)
    OutboxTask.objects.all().delete()
    before = figures(plan)
    broker.clear()

    changes(org, deals, django_capture_on_commit_callbacks)
    # The first commit queued a drain; the other five found it queued (not started) and sent nothing. None ran
    # (no worker): the six changes wait in the outbox for that one drain.
    assert broker == [(outbox.DRAIN_TASK, [NAME])]
    assert pending() == 6
    assert figures(plan) == before

    broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.drain_queued(NAME) == 6
    assert pending() == 0
    after = figures(plan)
    assert after != before
    # The deals handed over left their previous owners' leaves for the new owner's (open, in March).
    assert after[node(plan, rep=org.rep_other, month=3).pk][2] == deals[2].amount + deals[5].amount
    assert after[node(plan, rep=org.rep_same_team, month=3).pk][2] == 0  # its only deal went to rep_other
    # One pass, one alert evaluation of every changed deal and the nodes they moved.
    evaluations = [args for name, args in broker if name == "targets.evaluate_alerts"]
    assert len(evaluations) == 1
    assert evaluations[0][2] == sorted(d.pk for d in deals)
    # Equal to a rebuild from the facts, which then writes nothing.
    assert attainment_recompute(plan=plan) == 0
    assert figures(plan) == after

    # The drain delivered again (redelivery, or another worker's drain): nothing to run, nothing changes.
    broker.clear()
    assert outbox.drain(NAME) == 0
    assert figures(plan) == after and broker == []


def test_a_drain_of_six_changes_costs_the_queries_of_a_drain_of_three(
    org, metrics, frozen, broker, django_capture_on_commit_callbacks
):
    plan = build_plan(org, metrics["won_revenue"])
    deals = deals_of(org, 9)
    attainment_recompute(plan=plan)
    OutboxTask.objects.all().delete()  # the deals' creation (a process fact) is not the change measured here
    counts = []
    for batch in (deals[:3], deals[3:9]):  # each with every kind of change
        changes(org, batch, django_capture_on_commit_callbacks)
        with CaptureQueriesContext(connection) as queries:
            assert outbox.drain(NAME) == len(batch)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert attainment_recompute(plan=plan) == 0


def test_a_change_of_a_deleted_deal_is_dropped_and_the_others_run(org, metrics, frozen):
    plan = build_plan(org, metrics["won_revenue"])
    deal = make_deal(owner=org.rep, amount="500", stage=won_stage(org), close=date(2027, 3, 10))
    assert recompute_for_deals([[deal.pk + 1000, None, [], None], [deal.pk]]) > 0  # a short argument list too
    assert figures(plan)[node(plan, rep=org.rep, month=3).pk][0] == Decimal("500")
    assert attainment_recompute(plan=plan) == 0


def test_leaves_touched_matches_every_touch_exactly_like_a_brute_force_check(org, metrics, frozen):
    """The leaves a drain recomputes: one query for all its touches, matched in memory; checked against a
    plain replay of the rule (day in the period, rep empty or the owner, region empty or on the team's path)
    over every leaf, for random touches."""
    import random

    from crm.models import Region
    from targets.attainment.reference import leaves_touched
    from targets.models import TargetNode

    by_region = build_plan(org, metrics["won_revenue"])  # region > rep > month
    build_plan(org, metrics["collections"], "FY2027-Q1", dimensions=("region", "month"))  # leaves without a rep
    assert by_region.nodes.count() > 10
    leaves = list(
        TargetNode.objects.leaves().values("id", "rep_id", "region_id", "period_start", "period_end", "plan__status")
    )
    paths = [r.path for r in Region.objects.all()] + [""]
    owners = [org.rep.pk, org.rep_js.pk, org.rep_other.pk, org.rep_same_team.pk, org.manager.pk]
    rng = random.Random(12)
    for _round in range(20):
        touches = [
            (
                rng.choice(owners),
                rng.choice(paths),
                rng.choice([None, date(2027, rng.randint(1, 12), rng.randint(1, 28))]),
            )
            for _k in range(rng.randint(1, 12))
        ]
        expected = sorted(
            leaf["id"]
            for leaf in leaves
            if leaf["plan__status"] == "approved"
            and any(
                day is not None
                and leaf["period_start"] <= day <= leaf["period_end"]
                and leaf["rep_id"] in (None, owner)
                and (leaf["region_id"] is None or str(leaf["region_id"]) in path.strip("/").split("/"))
                for owner, path, day in touches
            )
        )
        assert sorted(leaves_touched(touches)) == expected, touches
    assert any(leaves_touched([(org.rep.pk, org.sh.path, date(2027, 3, 3))]))


def test_a_drain_of_stage_moves_and_its_alert_evaluation_cost_a_bounded_number_of_queries_whatever_their_number(
    org, metrics, frozen, broker, django_capture_on_commit_callbacks
):
    """Deal moves of a busy second drained in one pass: the recompute of every touched leaf and ancestor, then
    one alert evaluation of those nodes and deals. Neither issues a query per deal or per node: 2 moves and 10
    cost the same queries (the evaluation: within a bound, the notifications of alerts it opens being queried
    only when some open)."""
    from targets.tasks import evaluate_alerts

    plan = build_plan(org, metrics["won_revenue"])
    deals = deals_of(org, 12)
    attainment_recompute(plan=plan)
    OutboxTask.objects.all().delete()
    drains, evaluations = [], []
    for batch in (deals[:2], deals[2:12]):
        for deal in batch:
            with django_capture_on_commit_callbacks(execute=True):
                opportunity_move_stage(opportunity=deal, stage=org.stages[1], actor=org.director, evidence="Met")
        broker.clear()
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            assert outbox.drain(NAME) == len(batch)
        drains.append(len(queries))
        (args,) = [args for name, args in broker if name == "targets.evaluate_alerts"]
        assert args[2] == sorted(d.pk for d in batch)
        with CaptureQueriesContext(connection) as queries:
            evaluate_alerts(*args)
        evaluations.append(len(queries))
    assert drains[0] == drains[1], drains
    assert max(drains) <= 30 and max(evaluations) <= 25, (drains, evaluations)  # 28 on SQLite, 29 on PostgreSQL
    assert attainment_recompute(plan=plan) == 0


def test_a_deal_change_touches_only_the_leaves_it_can_move(org, metrics, frozen, django_capture_on_commit_callbacks):
    """A move between open stages moves the deal's pipeline in the month it is expected to close (and, in a plan of
    stages reached, the day it entered the stage): not the months of its customer's other deals, whose segment
    (existing / new customer) stays as long as the customer's first win does. Winning the customer's first deal
    moves that first win: then the other deals' months are recomputed too."""
    from targets.attainment.reference import leaves_touched
    from targets.tasks import touches_of_deals

    revenue = build_plan(org, metrics["won_revenue"])
    won = won_stage(org)
    customer = make_deal(owner=org.rep, amount="100", stage=won, close=date(2027, 1, 20)).customer  # won in January
    make_deal(owner=org.rep, customer=customer, amount="200", close=date(2027, 5, 20))  # open, in May
    deal = make_deal(owner=org.rep, customer=customer, amount="300", close=date(2027, 3, 20))

    def touched(change) -> set[int]:
        touches, _deals = touches_of_deals([change])
        return set(leaves_touched(touches))

    opportunity_move_stage(opportunity=deal, stage=org.stages[1], actor=org.rep, evidence="Met")
    leaves = touched([deal.pk, None, ["2027-03-20"], None])
    assert node(revenue, rep=org.rep, month=3).pk in leaves
    assert node(revenue, rep=org.rep, month=5).pk not in leaves  # the other deal's month: its segment stays

    # A new customer's first win: its May deal counts as an existing customer's from then on.
    other = make_deal(owner=org.rep, amount="400", close=date(2027, 5, 25)).customer
    first = make_deal(owner=org.rep, customer=other, amount="500", close=date(2027, 3, 20))
    opportunity_move_stage(opportunity=first, stage=won, actor=org.rep, evidence="Signed", closed_on=TODAY)
    leaves = touched([first.pk, None, ["2027-03-20"], None])
    assert {node(revenue, rep=org.rep, month=m).pk for m in (3, 5)} <= leaves
    with django_capture_on_commit_callbacks(execute=True):
        recompute_for_deals([[first.pk, None, ["2027-03-20"], None], [deal.pk, None, ["2027-03-20"], None]])
    assert attainment_recompute(plan=revenue) == 0
