"""Thin Celery tasks of the targets app: ids in, a service does the work, re-running changes nothing."""

from celery import shared_task


def _touch(owner_id: int, region, day) -> tuple:
    """(owner id, region path, day): where a fact of that owner, credited to that team, on that day may count."""
    return (owner_id, region.path if region is not None else "", day)


def _touches_of_deal(deal, owner_ids, regions) -> list:
    """(owner id, team path, day) of every fact of the deal, for its owner and team and previous ones."""
    from django.utils import timezone

    from pipeline.models import Collection, Opportunity, OpportunityHistory

    days = [deal.closed_on, deal.expected_close_date]
    days += Collection.objects.filter(opportunity=deal).order_by().values_list("received_on", flat=True)
    # Process measures: the day it was created and the days it entered its stages.
    days.append(timezone.localdate(deal.created_at))
    days += set(
        OpportunityHistory.objects.filter(opportunity=deal, new_stage__isnull=False)
        .order_by()
        .values_list("changed_at__date", flat=True)
    )
    touches = [_touch(owner_id, region, day) for owner_id in owner_ids for region in regions for day in days]
    customer = deal.customer
    if customer is not None and customer.first_won_on and customer.owner_id:
        touches.append(_touch(customer.owner_id, customer.owner.region, customer.first_won_on))
    if customer is not None:
        # Winning (or un-winning) may move the customer's first win: the segment (existing / new) of the
        # customer's other deals can change with it, so their leaves are recomputed too (one query).
        others = (
            Opportunity.objects.filter(customer=customer, stage__is_lost=False)
            .exclude(pk=deal.pk)
            .order_by()
            .values_list("owner_id", "region__path", "closed_on", "expected_close_date")
        )
        for owner_id, path, closed_on, expected in others:
            touches += [(owner_id, path or "", day) for day in {closed_on, expected} if day]
    return touches


@shared_task(name="targets.recompute_for_deal", ignore_result=True)
def recompute_for_deal(
    deal_id: int, previous_owner_id: int | None = None, previous_days=(), previous_region_id: int | None = None
) -> int:
    """A deal's figures moved (won or un-won, a won deal's amount, an open deal's amount, probability or
    expected close): recompute the leaves it counts (or counted) for and their ancestors.
    `previous_owner_id` when the deal changed hands, so the old owner's targets lose it; `previous_days`
    (ISO dates) where it counted before (an expected close date moved, a close date cleared);
    `previous_region_id` when the team it is credited to changed (`pipeline.services.credited_team`)."""
    from datetime import date

    from crm.models import Region
    from pipeline.models import Opportunity
    from targets.attainment.reference import leaves_touched
    from targets.attainment.services import attainment_recompute

    deal = Opportunity.objects.select_related("region", "customer__owner__region").filter(pk=deal_id).first()
    if deal is None:
        return 0
    owner_ids = [deal.owner_id]
    if previous_owner_id and previous_owner_id != deal.owner_id:
        owner_ids.append(previous_owner_id)
    regions = [deal.region]
    if previous_region_id and previous_region_id != deal.region_id:
        regions += Region.objects.filter(pk=previous_region_id)
    touches = _touches_of_deal(deal, owner_ids, regions)
    for day in previous_days or ():
        touches += [_touch(o, r, date.fromisoformat(day)) for o in owner_ids for r in regions]
    leaf_ids = leaves_touched(touches)
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    _enqueue_alerts_for(leaf_ids, deal_ids=[deal.pk])
    return written


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
