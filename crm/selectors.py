"""Reads for the customer screens. Everything starts from `Customer.objects.visible_to(user)`.

The customer page also lists deals and activities; it reaches them through the reverse relations
(`customer.opportunities`, `customer.activities`) and their `visible_to`, so crm never imports pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext as _

from crm.models import Customer, CustomerRating, Segment, User
from crm.scopes import region_subtree


def customers_visible(user: User) -> QuerySet[Customer]:
    return Customer.objects.visible_to(user).select_related("region", "owner")


def _latest_stars() -> Subquery:
    return Subquery(
        CustomerRating.objects.filter(customer=OuterRef("pk")).order_by("-rated_at", "-id").values("stars")[:1]
    )


def customer_list(user: User, filters: dict) -> QuerySet[Customer]:
    """Visible customers narrowed by the list filters; each carries `latest_stars` (one query)."""
    qs = customers_visible(user).annotate(latest_stars=_latest_stars())
    if filters.get("q"):
        q = filters["q"].strip()
        qs = qs.filter(Q(name__icontains=q) | Q(industry__icontains=q) | Q(external_id__iexact=q))
    if filters.get("region") is not None:
        qs = qs.filter(region__in=region_subtree(filters["region"]))
    if filters.get("owner") is not None:
        qs = qs.filter(owner=filters["owner"])
    if filters.get("tier"):
        qs = qs.filter(tier=filters["tier"])
    if filters.get("segment") == Segment.EXISTING:
        qs = qs.filter(first_won_on__isnull=False)
    elif filters.get("segment") == Segment.NEW:
        qs = qs.filter(first_won_on__isnull=True)
    return qs.order_by("name", "id")


def customer_deals(user: User, customer: Customer) -> QuerySet:
    """The customer's deals the user may see (a visible customer may have deals of other reps)."""
    return (
        customer.opportunities.visible_to(user)
        .select_related("stage", "owner", "pipeline")
        .order_by("stage__is_lost", "stage__is_won", "expected_close_date", "id")
    )


def customer_activities(user: User, customer: Customer) -> QuerySet:
    return customer.activities.visible_to(user).select_related("owner", "opportunity").order_by("-date", "-id")


def customer_ratings(customer: Customer) -> list[CustomerRating]:
    return list(customer.ratings.select_related("rated_by").order_by("-rated_at", "-id"))


def customer_export_header() -> list[str]:
    return [
        _("ID"),
        _("Name"),
        _("Region"),
        _("Owner"),
        _("Tier"),
        _("Segment"),
        _("Industry"),
        _("First won deal on"),
        _("Stars"),
        _("External id"),
    ]


def customer_export_rows(qs: QuerySet[Customer]) -> Iterator[list[object]]:
    segment_labels = dict(Segment.choices)
    for c in qs.iterator(chunk_size=2000):
        yield [
            c.pk,
            c.name,
            c.region.name,
            str(c.owner),
            c.get_tier_display(),
            str(segment_labels[c.segment]),
            c.industry,
            c.first_won_on,
            getattr(c, "latest_stars", None),
            c.external_id,
        ]
