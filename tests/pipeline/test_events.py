"""The pipeline says what happened (domain events); targets subscribes its recomputes to them.

The pipeline names no targets task: the work is found through the subscriptions made in
`targets/apps.py`, recorded in the change's transaction (the outbox) and run after commit.
"""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from celery import shared_task

from pipeline import events
from pipeline.services import collection_create, opportunity_move_stage, opportunity_update
from salesmgmt.models import OutboxTask
from tests.factories import make_deal

ROOT = Path(__file__).resolve().parents[2]
SEEN: list = []


@shared_task(name="tests.coaching_like_listener")
def listener(deal_id, previous_owner_id, previous_close_days, previous_region_id):
    SEEN.append(deal_id)


@pytest.fixture
def frozen():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False) as traveller:
        yield traveller


@pytest.fixture
def second_subscriber():
    """Another app subscribing to the same event, as coaching would in its ready()."""
    SEEN.clear()
    events.deal_figures_changed.subscribe(listener)
    yield SEEN
    events.deal_figures_changed.unsubscribe(listener)


def pending():
    return sorted((row.name, row.args) for row in OutboxTask.objects.all())


def won_stage(org):
    return next(s for s in org.stages if s.is_won)


def test_targets_subscribes_its_recomputes_to_the_pipeline_events():
    assert events.deal_figures_changed.subscribers == ("targets.recompute_for_deal",)
    assert events.collection_recorded.subscribers == ("targets.recompute_for_collection",)
    assert events.import_committed.subscribers == ("targets.reconcile_all",)


def test_a_deal_edit_records_the_recompute_in_its_own_transaction(org, frozen):
    deal = make_deal(owner=org.rep, amount="300")
    OutboxTask.objects.all().delete()
    # The test's transaction never commits: the work is recorded, not yet run.
    opportunity_update(opportunity=deal, data={"amount": Decimal("450")}, actor=org.rep)
    assert pending() == [("targets.recompute_for_deal", [deal.pk, None, [], None])]


def test_a_payment_records_the_collection_recompute(org, frozen):
    deal = opportunity_move_stage(
        opportunity=make_deal(owner=org.rep, amount="300"),
        stage=won_stage(org),
        evidence="signed",
        closed_on=date(2027, 2, 10),
        actor=org.rep,
    )
    OutboxTask.objects.all().delete()
    collection = collection_create(opportunity=deal, received_on=date(2027, 3, 1), amount=Decimal("100"), actor=org.rep)
    assert pending() == [("targets.recompute_for_collection", [collection.pk])]


def test_a_second_app_subscribes_without_the_pipeline_changing(
    org, frozen, second_subscriber, django_capture_on_commit_callbacks
):
    deal = make_deal(owner=org.rep, amount="300")
    second_subscriber.clear()
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_update(opportunity=deal, data={"amount": Decimal("450")}, actor=org.rep)
    assert second_subscriber == [deal.pk]
    assert OutboxTask.objects.count() == 0  # both tasks ran (eagerly, no broker) and left no row behind


@pytest.fixture
def unsubscribed():
    """`deal_figures_changed` with no subscriber, through its public `unsubscribe` (subscribed again after)."""
    event = events.deal_figures_changed
    names = event.subscribers
    for name in names:
        event.unsubscribe(name)
    assert event.subscribers == ()
    yield event
    for name in names:
        event.subscribe(name)
    assert event.subscribers == names


def test_an_unsubscribed_event_records_nothing(org, frozen, unsubscribed):
    deal = make_deal(owner=org.rep, amount="300")
    opportunity_update(opportunity=deal, data={"amount": Decimal("450")}, actor=org.rep)
    assert pending() == []


def test_the_lower_apps_name_no_targets_task():
    """The dependency on targets is a subscription in targets, never a task name in crm or pipeline."""
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("crm", "pipeline")
        for path in (ROOT / app).rglob("*.py")
        if '"targets.' in path.read_text() or "'targets." in path.read_text()
    ]
    assert offenders == []
