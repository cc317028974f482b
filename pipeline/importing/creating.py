"""Creating what a checked plan names that does not exist yet (`create_missing`): regions, product lines,
products, reps and customers, before the deals that name them.

Set-based: each kind is inserted in bulk by crm's bulk services, a tree level per insert (a child needs its
parent's id, a region its parent's materialised path), with the audit rows `region_create`, `product_create`...
write, in bulk too; a file's 1,849 products cost a few queries, not a few per product. The names, codes and
places are the plan's: the checking step put a new region inside the importing user's subtree and gave the new
products and lines codes that collide with no other name or code (`resolving.assign_codes`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.utils.text import slugify

from crm.models import Customer, Product, ProductLine, Region, RegionKind, Role, User
from crm.services import (
    audit_bulk,
    product_bulk_create,
    product_line_bulk_create,
    region_bulk_create,
    user_create,
)
from pipeline.importing.plan import BATCH, New, Plan, ref_pk
from pipeline.models import ImportJob


def _unique(base: str, taken: set[str], limit: int) -> str:
    base = base[:limit] or "x"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = base[: limit - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def _unique_code(name: str, taken: set[str]) -> str:
    return _unique(slugify(name, allow_unicode=True).upper(), taken, 40)


def _split_name(name: str) -> tuple[str, str]:
    if " " in name.strip():
        first, last = name.strip().rsplit(" ", 1)
        return first[:150], last[:150]
    return name.strip()[:150], ""


def create_missing(*, plan: Plan, actor: User | None, job: ImportJob | None = None) -> Counter[str]:
    """Create the plan's new records, parents before what hangs on them, and give each New its id; returns
    how many were created, by the keys of `Plan.will_create`. Runs inside `import_apply`'s transaction."""
    created: Counter[str] = Counter()
    created["regions"] = _regions(plan.new["region"].values(), actor)
    created["product_lines"] = _product_lines(plan.new["product_line"].values(), actor)
    created["products"] = _products(plan.new["product"].values(), actor)
    created["users"] = _users(plan.new["user"].values(), actor)
    new_customers = list(plan.new["customer"].values())
    customers = [
        Customer(name=n.name, owner_id=ref_pk(n.attrs["owner"]), region_id=ref_pk(n.attrs["region"]))
        for n in new_customers
    ]
    customers_create(customers, actor=actor, job=job)
    for new, customer in zip(new_customers, customers, strict=True):
        new.pk = customer.pk
    created["customers"] = len(customers)
    return created


def customers_create(customers: list[Customer], *, actor: User | None, job: ImportJob | None) -> None:
    """Insert checked customers with the audit rows `customer_create` writes, tagged with the import job."""
    Customer.objects.bulk_create(customers, batch_size=BATCH)
    tag = {"import_job": job.pk} if job is not None else {}
    audit_bulk(actor=actor, action="customer.create", entries=((c, {"name": [None, c.name], **tag}) for c in customers))


def _regions(new: Iterable[New], actor: User | None) -> int:
    """The file's Region -> State -> City: each new region under an existing one (the importing user's own, its
    anchor) or a new one of the file. An area below the company's root, a team deeper, as before."""
    news = list(new)
    if not news:
        return 0
    existing = Region.objects.in_bulk({n.attrs["parent"] for n in news if isinstance(n.attrs["parent"], int)})
    codes = set(Region.objects.values_list("code", flat=True))
    made: dict[int, Region] = {}  # id(New) -> its region
    for n in news:  # a parent is planned before its children
        ref = n.attrs["parent"]
        parent = made[id(ref)] if isinstance(ref, New) else existing[ref] if ref is not None else None
        kind = RegionKind.AREA if parent is not None and parent.depth == 0 else RegionKind.TEAM
        region = Region(name=n.name, code=_unique_code(n.name, codes), kind=kind, parent=parent)
        # The depth it will have, for the kind of its children (region_bulk_create sets it again with the path).
        region.depth = parent.depth + 1 if parent is not None else 0
        made[id(n)] = region
    region_bulk_create(regions=list(made.values()), actor=actor)
    for n in news:
        n.pk = made[id(n)].pk
    return len(news)


def _product_lines(new: Iterable[New], actor: User | None) -> int:
    """Lines and their sub-lines (Category -> Sub-Category), a line under an existing one or a new one."""
    news = list(new)
    if not news:
        return 0
    existing = ProductLine.objects.in_bulk({ref_pk(n.attrs.get("parent")) for n in news} - {None})
    codes = set(ProductLine.objects.values_list("code", flat=True))
    made: dict[int, ProductLine] = {}
    for n in news:
        made[id(n)] = ProductLine(name=n.name, code=n.attrs.get("code") or _unique_code(n.name, codes))
    for n in news:
        ref = n.attrs.get("parent")
        made[id(n)].parent = made[id(ref)] if isinstance(ref, New) else existing[ref] if ref is not None else None
    product_line_bulk_create(lines=list(made.values()), actor=actor)
    for n in news:
        n.pk = made[id(n)].pk
    return len(news)


def _products(new: Iterable[New], actor: User | None) -> int:
    news = list(new)
    if not news:
        return 0
    codes = set(Product.objects.values_list("code", flat=True))
    # The plan's code differs from every product's name and code (`resolving.assign_codes`).
    products = [
        Product(line_id=ref_pk(n.attrs["line"]), name=n.name, code=n.attrs.get("code") or _unique_code(n.name, codes))
        for n in news
    ]
    product_bulk_create(products=products, actor=actor)
    for n, product in zip(news, products, strict=True):
        n.pk = product.pk
    return len(news)


def _users(new: Iterable[New], actor: User | None) -> int:
    """New reps, one at a time (a file names a few dozen at most; each is a login to set up)."""
    news = list(new)
    if not news:
        return 0
    usernames = set(User.objects.values_list("username", flat=True))
    regions = Region.objects.in_bulk({ref_pk(n.attrs["region"]) for n in news})
    for n in news:
        username = _unique(slugify(n.name, allow_unicode=True).replace("-", "_") or "rep", usernames, 150)
        first, last = _split_name(n.name)
        n.pk = user_create(
            username=username,
            password=None,
            role=Role.REP,
            region=regions[ref_pk(n.attrs["region"])],
            first_name=first,
            last_name=last,
            actor=actor,
        ).pk
    return len(news)
