"""Reads for the customer screens. Everything starts from `Customer.objects.visible_to(user)`.

The customer page also lists deals and activities; it reaches them through the reverse relations
(`customer.opportunities`, `customer.activities`) and their `visible_to`, so crm never imports pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Concat, Trim
from django.utils.translation import gettext as _

from crm.models import Customer, CustomerRating, Region, Segment, User
from crm.scopes import region_subtree, visible_users

# A search picker lists at most this many matches: the user types more to narrow them down.
PICK_LIMIT = 20


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


# --- search pickers (crm.forms.SearchSelect): who and which customer a user may pick --------------


def pickable_people(user: User, *, roles: Iterable[str] = (), within: Region | None = None) -> QuerySet[User]:
    """The people `user` may pick: those of his data scope, narrowed to some roles and to a region's subtree
    (where he may always pick himself). Forms validate against it; the search endpoint lists from it."""
    qs = visible_users(user)
    roles = list(roles)
    if roles:
        qs = qs.filter(role__in=roles)
    if within is not None:
        qs = qs.filter(Q(region__in=region_subtree(within)) | Q(pk=user.pk))
    return qs


def _terms(text: str) -> list[str]:
    return text.split()[:4]


def people_matching(people: QuerySet[User], text: str) -> QuerySet[User]:
    """`people` whose name, username or employee code holds every word of `text`, by name."""
    for term in _terms(text):
        people = people.filter(
            Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(username__icontains=term)
            | Q(employee_code__icontains=term)
        )
    return people.select_related("region").order_by("first_name", "last_name", "username", "pk")


def people_named(people: QuerySet[User], text: str) -> QuerySet[User]:
    """`people` called exactly `text` (username, employee code or full name, any case): what a form takes
    from a name typed without picking it from the list."""
    text = text.strip()
    full_name = Trim(Concat("first_name", Value(" "), "last_name"))
    return (
        people.annotate(picker_full_name=full_name)
        .filter(Q(username__iexact=text) | Q(employee_code__iexact=text) | Q(picker_full_name__iexact=text))
        .order_by("pk")
    )


def customers_matching(customers: QuerySet[Customer], text: str) -> QuerySet[Customer]:
    """`customers` whose name holds every word of `text` (or whose external id is `text`), by name."""
    text = text.strip()
    if text:
        words = Q()
        for term in _terms(text):
            words &= Q(name__icontains=term)
        customers = customers.filter(words | Q(external_id__iexact=text))
    return customers.select_related("region").order_by("name", "pk")


def customers_named(customers: QuerySet[Customer], text: str) -> QuerySet[Customer]:
    """`customers` called exactly `text` (name or external id, any case)."""
    text = text.strip()
    return customers.filter(Q(name__iexact=text) | Q(external_id__iexact=text)).order_by("pk")
