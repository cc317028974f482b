"""Thin Celery tasks of the targets app: ids in, a service does the work, re-running changes nothing."""

from collections import defaultdict

from celery import shared_task

from salesmgmt import outbox
from targets.models import MetricSource


def _touch(owner_id: int, region, day, sources: frozenset[str] | None = None) -> tuple:
    """(owner id, region path, day, metric sources): where a fact of that owner, credited to that team, on that day
    may count (in plans of those metrics' sources only; None: any)."""
    return (owner_id, region.path if region is not None else "", day, sources)


COLLECTED = frozenset({MetricSource.COLLECTIONS.value})
CREATED = frozenset({MetricSource.DEALS_CREATED.value})
STAGES_REACHED = frozenset({MetricSource.STAGE_REACHED.value})


def _first_win_may_have_moved(deal, first_won_on, previous_days) -> bool:
    """Whether a deal's change may have moved its customer's first win (`first_won_on`, as it is now: the earliest
    close of the customer's won deals). Only then can the segment of the customer's other deals change.

    A move between open stages cannot: the deal was not won and is not, so the earliest win is the same. In
    general the first win moved only if this deal is it now (won, closed on that day), or it was it before and is
    no longer: then it closed, before, on a day earlier than the first win now (or the customer has none now),
    and that day is one of its previous days or its expected close (which closing set to the close day)."""
    if first_won_on is None:
        return True
    if deal.closed_on is not None and deal.closed_on <= first_won_on:
        return True
    from datetime import date

    days = [deal.expected_close_date, deal.closed_on, *(date.fromisoformat(d) for d in previous_days or ())]
    return any(day is not None and day < first_won_on for day in days)


def touches_of_deals(changes: list[list]) -> tuple[set[tuple], list[int]]:
    """(owner id, team path, day) of every fact of the changed deals, for their owners and teams and the previous
    ones; and the ids of the deals that still exist. `changes`: the `deal_figures_changed` arguments of each
    change (deal id, previous owner id, previous days, previous region id). Six queries whatever their number."""
    from datetime import date

    from django.utils import timezone

    from crm.models import Region
    from pipeline.models import Collection, Opportunity, OpportunityHistory

    deals = Opportunity.objects.select_related("region", "customer__owner__region").in_bulk({c[0] for c in changes})
    previous_regions = Region.objects.in_bulk({c[3] for c in changes if len(c) > 3 and c[3]})
    # Days of facts of one kind of metric only: collections (by the day received), deals created, stages reached
    # (the days the deals entered their stages). A leaf of another metric's plan is not moved by them.
    only: defaultdict[int, list[tuple[date, frozenset[str]]]] = defaultdict(list)
    for deal_id, day in Collection.objects.filter(opportunity_id__in=list(deals)).values_list(
        "opportunity_id", "received_on"
    ):
        only[deal_id].append((day, COLLECTED))
    for deal_id, day in (
        OpportunityHistory.objects.filter(opportunity_id__in=list(deals), new_stage__isnull=False)
        .order_by()
        .values_list("opportunity_id", "changed_at__date")
        .distinct()
    ):
        only[deal_id].append((day, STAGES_REACHED))
    touches: set[tuple] = set()
    customers: set[int] = set()  # those whose first win may have moved
    defaults = [None, None, [], None]  # a change may leave out its trailing arguments, as the task's call may
    for deal_id, previous_owner_id, previous_days, previous_region_id in (
        [*c, *defaults[len(c) :]][:4] for c in changes
    ):
        deal = deals.get(deal_id)
        if deal is None:
            continue
        owner_ids = [deal.owner_id]
        if previous_owner_id and previous_owner_id != deal.owner_id:
            owner_ids.append(previous_owner_id)
        regions = [deal.region]
        if previous_region_id and previous_region_id != deal.region_id and previous_region_id in previous_regions:
            regions.append(previous_regions[previous_region_id])
        # Its own days (closed, expected, before): any metric's; those of one kind of facts: that metric's.
        days: list[tuple[date | None, frozenset[str] | None]] = [
            (deal.closed_on, None),
            (deal.expected_close_date, None),
        ]
        days += [(date.fromisoformat(day), None) for day in previous_days or ()]
        days += [(timezone.localdate(deal.created_at), CREATED), *only[deal_id]]
        touches.update(_touch(o, r, day, sources) for o in owner_ids for r in regions for day, sources in days)
        customer = deal.customer
        if customer is not None and customer.first_won_on and customer.owner_id:
            touches.add(_touch(customer.owner_id, customer.owner.region, customer.first_won_on))
        if customer is not None and _first_win_may_have_moved(deal, customer.first_won_on, previous_days):
            customers.add(customer.pk)
    # Winning (or un-winning) may move a customer's first win: the segment (existing / new) of the customer's
    # other deals can change with it, so their leaves are recomputed too (one query for all the customers).
    others = (
        Opportunity.objects.filter(customer_id__in=customers, stage__is_lost=False)
        .order_by()
        .values_list("owner_id", "region__path", "closed_on", "expected_close_date")
    )
    for owner_id, path, closed_on, expected in others if customers else ():
        touches.update((owner_id, path or "", day, None) for day in (closed_on, expected) if day)
    return touches, sorted(deals)


@outbox.drained_together("targets.recompute_for_deal")
def recompute_for_deals(changes: list[list]) -> int:
    """Deals' figures moved (`recompute_for_deal`'s arguments, one list per change): recompute, in one pass,
    the leaves they count (or counted) for and their ancestors, then evaluate the alerts of those nodes and
    deals once. The figures come from the facts as they are now, whatever the changes' order or grouping, so
    running changes together (or again) equals running them one by one."""
    from targets.attainment.reference import leaves_touched
    from targets.attainment.services import attainment_recompute

    touches, deal_ids = touches_of_deals(changes)
    leaf_ids = leaves_touched(touches)
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    if deal_ids:
        _enqueue_alerts_for(leaf_ids, deal_ids=deal_ids)
    return written


@shared_task(name="targets.recompute_for_deal", ignore_result=True)
def recompute_for_deal(
    deal_id: int, previous_owner_id: int | None = None, previous_days=(), previous_region_id: int | None = None
) -> int:
    """A deal's figures moved (won or un-won, a won deal's amount, an open deal's amount, probability or
    expected close): recompute the leaves it counts (or counted) for and their ancestors.
    `previous_owner_id` when the deal changed hands, so the old owner's targets lose it; `previous_days`
    (ISO dates) where it counted before (an expected close date moved, a close date cleared);
    `previous_region_id` when the team it is credited to changed (`pipeline.services.credited_team`).
    Enqueued through the outbox, these calls run together (`recompute_for_deals`); a message sent as this
    task (one published before the change to draining) runs alone."""
    return recompute_for_deals([[deal_id, previous_owner_id, list(previous_days or ()), previous_region_id]])


@shared_task(name="targets.recompute_for_collection", ignore_result=True)
def recompute_for_collection(collection_id: int) -> int:
    """A payment was recorded: recompute the leaves it counts for and their ancestors."""
    from pipeline.models import Collection
    from targets.attainment.reference import leaves_touched
    from targets.attainment.services import attainment_recompute

    collection = Collection.objects.select_related("opportunity__region").filter(pk=collection_id).first()
    if collection is None:
        return 0
    deal = collection.opportunity
    leaf_ids = leaves_touched([_touch(deal.owner_id, deal.region, collection.received_on)])
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    _enqueue_alerts_for(leaf_ids)
    return written


@shared_task(name="targets.recompute_for_activity", ignore_result=True)
def recompute_for_activity(activity_id: int) -> int:
    """A visit, call or meeting was logged: recompute the leaves it counts for (its owner and his team)."""
    from pipeline.models import Activity
    from targets.attainment.reference import leaves_touched
    from targets.attainment.services import attainment_recompute

    activity = Activity.objects.select_related("owner__region").filter(pk=activity_id).first()
    if activity is None:
        return 0
    leaf_ids = leaves_touched([_touch(activity.owner_id, activity.owner.region, activity.date)])
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    _enqueue_alerts_for(leaf_ids)
    return written


@shared_task(name="targets.recompute_plan", ignore_result=True)
def recompute_plan(plan_id: int) -> int:
    """A plan was approved or adjusted: rebuild its snapshots of today."""
    from targets.attainment.services import attainment_recompute
    from targets.models import TargetPlan

    plan = TargetPlan.objects.filter(pk=plan_id).first()
    if plan is None:
        return 0
    written = attainment_recompute(plan=plan)
    _enqueue_alerts(plan_id)
    return written


@shared_task(name="targets.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Nightly: rebuild today's snapshots of every approved plan from the facts."""
    from targets.attainment.services import attainment_recompute

    written = attainment_recompute()
    _enqueue_alerts()
    return written


def _enqueue_alerts(plan_id: int | None = None) -> None:
    from salesmgmt import outbox

    outbox.enqueue_name("targets.evaluate_alerts", plan_id)


def _enqueue_alerts_for(leaf_ids, *, deal_ids=()) -> None:
    """Evaluate the alerts of what just changed: the recomputed leaves, their ancestors and the deal."""
    from salesmgmt import outbox
    from targets.attainment.reference import with_ancestors

    node_ids = with_ancestors(leaf_ids)
    if not node_ids and not deal_ids:
        return
    outbox.enqueue_name("targets.evaluate_alerts", None, node_ids, sorted(deal_ids))


@shared_task(name="targets.evaluate_alerts", ignore_result=True)
def evaluate_alerts(plan_id: int | None = None, node_ids=None, deal_ids=None) -> int:
    """Snapshots or deals changed: upsert the firing alerts, resolve the others (idempotent).
    Everything, one plan, or only the given nodes and deals (see `targets.alerts.evaluation.evaluate_alerts`)."""
    from targets.alerts.evaluation import evaluate_alerts as evaluate

    return evaluate(plan_id, node_ids, deal_ids)


@shared_task(name="targets.send_alert_emails", ignore_result=True)
def send_alert_emails(notification_ids: list[int]) -> int:
    """Alerts just opened: e-mail the people who want it (each row claimed first, so sending twice is a no-op)."""
    from targets.alerts.notifications import notifications_email

    return notifications_email(notification_ids=notification_ids)
