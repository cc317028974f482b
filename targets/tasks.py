"""Thin Celery tasks of the targets app: ids in, a service does the work, re-running changes nothing."""

from celery import shared_task


def _touches_of_deal(deal, owners) -> list:
    """(owner id, owner's region path, day) of every fact of the deal, for its owner and a previous one."""
    from pipeline.models import Collection

    days = [deal.closed_on, deal.expected_close_date]
    days += Collection.objects.filter(opportunity=deal).order_by().values_list("received_on", flat=True)
    touches = [(owner.pk, owner.region.path if owner.region_id else "", day) for owner in owners for day in days]
    customer = deal.customer
    if customer is not None and customer.first_won_on and customer.owner_id:
        cpath = customer.owner.region.path if customer.owner.region_id else ""
        touches.append((customer.owner_id, cpath, customer.first_won_on))
    return touches


@shared_task(name="targets.recompute_for_deal", ignore_result=True)
def recompute_for_deal(deal_id: int, previous_owner_id: int | None = None) -> int:
    """A deal was won, un-won, or a won deal changed: recompute the leaves it counts (or counted) for and
    their ancestors; `previous_owner_id` when the deal changed hands, so the old owner's targets lose it."""
    from crm.models import User
    from pipeline.models import Opportunity
    from targets.attainment import leaves_touched
    from targets.services.attainment import attainment_recompute

    deal = Opportunity.objects.select_related("owner__region", "customer__owner__region").filter(pk=deal_id).first()
    if deal is None:
        return 0
    owners = [deal.owner]
    if previous_owner_id and previous_owner_id != deal.owner_id:
        owners += User.objects.select_related("region").filter(pk=previous_owner_id)
    leaf_ids = leaves_touched(_touches_of_deal(deal, owners))
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    _enqueue_alerts_for(leaf_ids)
    return written


@shared_task(name="targets.recompute_for_collection", ignore_result=True)
def recompute_for_collection(collection_id: int) -> int:
    """A payment was recorded: recompute the leaves it counts for and their ancestors."""
    from pipeline.models import Collection
    from targets.attainment import leaves_touched
    from targets.services.attainment import attainment_recompute

    collection = Collection.objects.select_related("opportunity__owner__region").filter(pk=collection_id).first()
    if collection is None:
        return 0
    owner = collection.opportunity.owner
    path = owner.region.path if owner.region_id else ""
    leaf_ids = leaves_touched([(owner.pk, path, collection.received_on)])
    written = attainment_recompute(node_ids=leaf_ids) if leaf_ids else 0
    _enqueue_alerts_for(leaf_ids)
    return written


@shared_task(name="targets.recompute_plan", ignore_result=True)
def recompute_plan(plan_id: int) -> int:
    """A plan was approved or adjusted: rebuild its snapshots of today."""
    from targets.models import TargetPlan
    from targets.services.attainment import attainment_recompute

    plan = TargetPlan.objects.filter(pk=plan_id).first()
    if plan is None:
        return 0
    written = attainment_recompute(plan=plan)
    _enqueue_alerts(plan_id)
    return written


@shared_task(name="targets.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Nightly: rebuild today's snapshots of every approved plan from the facts."""
    from targets.services.attainment import attainment_recompute

    written = attainment_recompute()
    _enqueue_alerts()
    return written


def _enqueue_alerts(plan_id: int | None = None) -> None:
    from salesmgmt.lib import outbox

    outbox.enqueue_name("targets.evaluate_alerts", plan_id)


def _enqueue_alerts_for(leaf_ids) -> None:
    """Evaluate only the plans whose snapshots just changed (deal rules run in every evaluation);
    with none touched, everything, as the nightly reconcile does."""
    from targets.models import TargetNode

    plan_ids = sorted(set(TargetNode.objects.filter(pk__in=list(leaf_ids or ())).values_list("plan_id", flat=True)))
    for plan_id in plan_ids or [None]:
        _enqueue_alerts(plan_id)


@shared_task(name="targets.evaluate_alerts", ignore_result=True)
def evaluate_alerts(plan_id: int | None = None) -> int:
    """Snapshots or deals changed: upsert the firing alerts, resolve the others (idempotent)."""
    from targets.alerts import evaluate_alerts as evaluate

    return evaluate(plan_id)
