"""What the tests read back of a plan's amounts, straight from the tables (the oracle the services are
checked against, so it does not call them)."""

from decimal import Decimal

from django.db.models import Q, Sum

from targets.models import TargetNode, TargetNodeAmount


def amounts_in(plan, version: int) -> dict[int, Decimal]:
    """{node id: amount} as approved in `version` (1 = the original plan), from the amount rows."""
    rows = TargetNodeAmount.objects.filter(plan=plan, version_from__lte=version).filter(
        Q(version_to__isnull=True) | Q(version_to__gt=version)
    )
    return dict(rows.values_list("node_id", "amount"))


def leaf_sums(plan, *fields: str) -> list[dict]:
    """The plan's leaves (their current amounts) summed by `fields`: [{field: value, ..., "amount": ...}]."""
    leaves = TargetNode.objects.filter(plan=plan, split_dimension="")
    return list(leaves.order_by(*fields).values(*fields).annotate(amount=Sum("amount")))
