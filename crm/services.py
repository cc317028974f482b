"""Writes for the organisation and customers. Every function is atomic, validated and audited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, Model, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils.translation import gettext as _

from crm.models import (
    AuditLog,
    CompanySettings,
    Contact,
    Currency,
    Customer,
    CustomerRating,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    Role,
    Tier,
    User,
)
from crm.scopes import visible_regions, visible_users
from salesmgmt.lib.money import convert


def audit(*, actor: User | None, action: str, obj: Model, changes: dict | None = None) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        changes=changes or {},
    )


M = TypeVar("M", bound=Model)
BULK_BATCH = 500  # rows per statement of the bulk services


def audit_bulk(*, actor: User | None, action: str, entries: Iterable[tuple[Model, dict]]) -> None:
    """The rows `audit()` would write, one per (saved object, changes), in bulk: for objects created many at once."""
    actor = actor if getattr(actor, "pk", None) else None
    content_types: dict[type[Model], ContentType] = {}
    rows = []
    for obj, changes in entries:
        model = type(obj)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(model)
        rows.append(
            AuditLog(
                actor=actor, action=action, content_type=content_types[model], object_id=str(obj.pk), changes=changes
            )
        )
    AuditLog.objects.bulk_create(rows, batch_size=BULK_BATCH)


def _clean_many(objects: Sequence[Model], *, exclude: list[str]) -> None:
    """Each object's fields checked as `full_clean` would, without its queries: uniqueness is checked set-based by
    the caller, and the excluded foreign keys by the database (an object's parent may be created with it)."""
    errors: dict[str, list[str]] = {}
    for obj in objects:
        try:
            obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            label = str(getattr(obj, "name", obj))
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(f"{label}: {m}" for m in messages)
    if errors:
        raise ValidationError(errors)


def _check_unique_many(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> None:
    """No two of the objects, nor one of them and an existing row, share a value of a unique field: one query per
    field (and batch), with the message `full_clean` gives."""
    errors: dict[str, list[str]] = {}
    for field in fields:
        values = [getattr(obj, field) for obj in objects]
        taken = {v for v, n in Counter(values).items() if n > 1}
        for start in range(0, len(values), BULK_BATCH):
            batch = values[start : start + BULK_BATCH]
            taken |= set(model._default_manager.filter(**{f"{field}__in": batch}).values_list(field, flat=True))
        if taken:
            message = " ".join(objects[0].unique_error_message(model, (field,)).messages)
            errors[field] = [f"{v}: {message}" for v in sorted(taken)]
    if errors:
        raise ValidationError(errors)


def _in_levels(objects: Sequence[M], parent: str) -> Iterator[list[M]]:
    """The objects a level at a time, parents first: an object whose parent (the attribute `parent`) is one of
    the objects comes in the level after its parent's."""
    pending = list(objects)
    ids = {id(o) for o in objects}
    done: set[int] = set()
    while pending:
        waiting = ids - done
        level = [o for o in pending if id(getattr(o, parent)) not in waiting]
        if not level:  # a caller's mistake, not a user's
            raise ValueError("The parents of the records to create form a loop.")
        done |= {id(o) for o in level}
        pending = [o for o in pending if id(o) not in done]
        yield level


def _jsonable(value: object) -> object:
    if isinstance(value, (Decimal, date)):
        return str(value)
    if hasattr(value, "pk"):
        return str(value)
    return value


def diff(instance: Model, data: dict) -> dict[str, list[object]]:
    """{field: [old, new]} for the fields in `data` whose value differs from the instance's."""
    changes = {}
    for field, new in data.items():
        old = getattr(instance, field)
        if old != new:
            changes[field] = [_jsonable(old), _jsonable(new)]
    return changes


# --- regions -----------------------------------------------------------------------------


def _region_path(parent: Region | None, pk: int) -> str:
    return f"{parent.path if parent else '/'}{pk}/"


@transaction.atomic
def region_create(
    *,
    name: str,
    code: str,
    kind: str,
    parent: Region | None = None,
    manager: User | None = None,
    actor: User | None = None,
) -> Region:
    region = Region(name=name, code=code, kind=kind, parent=parent, manager=manager)
    region.full_clean(exclude=["path", "depth"])
    region.save()
    region.path = _region_path(parent, region.pk)
    region.depth = (parent.depth + 1) if parent else 0
    region.save(update_fields=["path", "depth"])
    audit(actor=actor, action="region.create", obj=region, changes={"name": [None, name]})
    return region


@transaction.atomic
def region_bulk_create(*, regions: Sequence[Region], actor: User | None = None) -> list[Region]:
    """Create many regions at once, as `region_create` does each (checked, path and depth set, audited): a level
    of the tree per insert. A region's parent is an existing region (with its path and depth) or one of
    `regions`, created first. Returns the regions, with their ids."""
    regions = list(regions)
    _clean_many(regions, exclude=["parent", "manager", "path", "depth"])
    _check_unique_many(Region, regions, ["code"])
    for level in _in_levels(regions, "parent"):
        Region.objects.bulk_create(level, batch_size=BULK_BATCH)
        # Each one's path from its parent's (set at the level above) and its own new id: one UPDATE per batch.
        parent = Region.objects.filter(pk=OuterRef("parent_id"))
        for start in range(0, len(level), BULK_BATCH):
            Region.objects.filter(pk__in=[r.pk for r in level[start : start + BULK_BATCH]]).update(
                path=Concat(
                    Coalesce(Subquery(parent.values("path")), Value("/")),
                    Cast("pk", CharField()),
                    Value("/"),
                    output_field=CharField(),
                ),
                depth=Coalesce(Subquery(parent.values("depth")) + 1, 0),
            )
        for region in level:
            region.path = _region_path(region.parent, region.pk)
            region.depth = (region.parent.depth + 1) if region.parent else 0
    audit_bulk(actor=actor, action="region.create", entries=((r, {"name": [None, r.name]}) for r in regions))
    return regions


@transaction.atomic
def region_move(*, region: Region, parent: Region | None, actor: User | None = None) -> Region:
    """Re-parent a region; the materialised paths of its whole subtree follow."""
    if parent is not None and parent.path.startswith(region.path):
        raise ValidationError(_("A region cannot be moved under itself or its own sub-region."))
    old_path, old_depth = region.path, region.depth
    region.parent = parent
    region.path = _region_path(parent, region.pk)
    region.depth = (parent.depth + 1) if parent else 0
    region.save(update_fields=["parent", "path", "depth"])
    for child in Region.objects.filter(path__startswith=old_path).exclude(pk=region.pk):
        child.path = region.path + child.path[len(old_path) :]
        child.depth = child.depth - old_depth + region.depth
        child.save(update_fields=["path", "depth"])
    audit(actor=actor, action="region.move", obj=region, changes={"path": [old_path, region.path]})
    return region


# --- users -------------------------------------------------------------------------------


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    role: str = Role.REP,
    region: Region | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    data_scope: str = "",
    actor: User | None = None,
) -> User:
    user = User(
        username=username,
        role=role,
        region=region,
        first_name=first_name,
        last_name=last_name,
        email=email,
        data_scope=data_scope,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    audit(actor=actor, action="user.create", obj=user, changes={"role": [None, role]})
    return user


# --- currency ----------------------------------------------------------------------------


def rate_on(currency_code: str, day: date) -> Decimal:
    """The rate in force on `day` (the latest one valid from on or before it)."""
    company = CompanySettings.load().currency
    if currency_code == company:
        return Decimal(1)
    rate = (
        ExchangeRate.objects.filter(currency_id=currency_code, valid_from__lte=day)
        .order_by("-valid_from")
        .values_list("rate", flat=True)
        .first()
    )
    if rate is None:
        raise ValidationError(
            _("No exchange rate for %(currency)s on or before %(day)s; add one under exchange rates.")
            % {"currency": currency_code, "day": day}
        )
    return rate


def to_company_currency(amount: Decimal, currency_code: str, day: date) -> Decimal:
    return convert(amount, rate_on(currency_code, day))


def ensure_company_currency() -> Currency:
    code = CompanySettings.load().currency
    currency, _created = Currency.objects.get_or_create(code=code, defaults={"name": code})
    return currency


# --- customers ---------------------------------------------------------------------------


def _check_owner_and_region(*, actor: User | None, owner: User, region: Region | None) -> None:
    if actor is None:
        return
    if not visible_users(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot assign records to %(user)s.") % {"user": owner}})
    if region is not None and not visible_regions(actor).filter(pk=region.pk).exists():
        raise ValidationError({"region": _("Region %(region)s is outside your scope.") % {"region": region}})


@transaction.atomic
def customer_create(
    *,
    name: str,
    region: Region,
    owner: User,
    industry: str = "",
    tier: str = Tier.C,
    notes: str = "",
    external_id: str = "",
    actor: User | None = None,
) -> Customer:
    _check_owner_and_region(actor=actor, owner=owner, region=region)
    customer = Customer(
        name=name.strip(),
        region=region,
        owner=owner,
        industry=industry,
        tier=tier,
        notes=notes,
        external_id=external_id,
    )
    customer.full_clean()
    customer.save()
    audit(actor=actor, action="customer.create", obj=customer, changes={"name": [None, customer.name]})
    return customer


CUSTOMER_EDITABLE = ("name", "region", "owner", "industry", "tier", "notes")


@transaction.atomic
def customer_update(*, customer: Customer, data: dict, actor: User | None) -> Customer:
    data = {k: v for k, v in data.items() if k in CUSTOMER_EDITABLE}
    _check_owner_and_region(actor=actor, owner=data.get("owner", customer.owner), region=data.get("region"))
    changes = diff(customer, data)
    if not changes:
        return customer
    for field, value in data.items():
        setattr(customer, field, value)
    customer.full_clean()
    customer.save(update_fields=[*changes.keys(), "updated_at"])
    audit(actor=actor, action="customer.update", obj=customer, changes=changes)
    return customer


@transaction.atomic
def contact_create(
    *,
    customer: Customer,
    name: str,
    title: str = "",
    phone: str = "",
    email: str = "",
    is_decision_maker: bool = False,
    actor: User | None = None,
) -> Contact:
    contact = Contact(
        customer=customer, name=name, title=title, phone=phone, email=email, is_decision_maker=is_decision_maker
    )
    contact.full_clean()
    contact.save()
    audit(actor=actor, action="contact.create", obj=customer, changes={"contact": [None, name]})
    return contact


@transaction.atomic
def customer_rate(*, customer: Customer, stars: int, reasons: str, actor: User) -> CustomerRating:
    """5星评级: rate a big account 1-5 stars; reasons are mandatory so the rating can be reviewed."""
    if not reasons or not reasons.strip():
        raise ValidationError({"reasons": _("Give the reasons for the rating.")})
    previous = customer.ratings.first()
    rating = CustomerRating(customer=customer, stars=stars, reasons=reasons.strip(), rated_by=actor)
    rating.full_clean()
    rating.save()
    audit(
        actor=actor,
        action="customer.rate",
        obj=customer,
        changes={"stars": [previous.stars if previous else None, stars]},
    )
    return rating


# --- product catalogue (admin) -----------------------------------------------------------

PRODUCT_LINE_EDITABLE = ("name", "code", "is_key")
PRODUCT_EDITABLE = ("line", "name", "code", "list_price", "unit_cost", "is_active")


@transaction.atomic
def product_line_create(
    *, name: str, code: str, is_key: bool = False, parent: ProductLine | None = None, actor: User | None = None
) -> ProductLine:
    line = ProductLine(name=name.strip(), code=code.strip(), is_key=is_key, parent=parent)
    line.full_clean()
    line.save()
    audit(actor=actor, action="product_line.create", obj=line, changes={"name": [None, line.name]})
    return line


@transaction.atomic
def product_line_bulk_create(*, lines: Sequence[ProductLine], actor: User | None = None) -> list[ProductLine]:
    """Create many product lines at once, as `product_line_create` does each: a line's parent is an existing line
    or one of `lines`, created first. Returns the lines, with their ids."""
    lines = list(lines)
    for line in lines:
        line.name, line.code = line.name.strip(), line.code.strip()
    _clean_many(lines, exclude=["parent"])
    _check_unique_many(ProductLine, lines, ["name", "code"])
    for level in _in_levels(lines, "parent"):
        ProductLine.objects.bulk_create(level, batch_size=BULK_BATCH)
    audit_bulk(actor=actor, action="product_line.create", entries=((li, {"name": [None, li.name]}) for li in lines))
    return lines


@transaction.atomic
def product_line_update(*, product_line: ProductLine, data: dict, actor: User | None) -> ProductLine:
    data = {k: v for k, v in data.items() if k in PRODUCT_LINE_EDITABLE}
    changes = diff(product_line, data)
    if not changes:
        return product_line
    for field, value in data.items():
        setattr(product_line, field, value)
    product_line.full_clean()
    product_line.save(update_fields=list(changes))
    audit(actor=actor, action="product_line.update", obj=product_line, changes=changes)
    return product_line


@transaction.atomic
def product_create(
    *,
    line: ProductLine,
    name: str,
    code: str,
    list_price: Decimal = Decimal("0"),
    unit_cost: Decimal = Decimal("0"),
    is_active: bool = True,
    actor: User | None = None,
) -> Product:
    product = Product(
        line=line, name=name.strip(), code=code.strip(), list_price=list_price, unit_cost=unit_cost, is_active=is_active
    )
    product.full_clean()
    product.save()
    audit(actor=actor, action="product.create", obj=product, changes={"name": [None, product.name]})
    return product


@transaction.atomic
def product_bulk_create(*, products: Sequence[Product], actor: User | None = None) -> list[Product]:
    """Create many products at once, as `product_create` does each; their lines exist. Returns the products,
    with their ids."""
    products = list(products)
    for product in products:
        product.name, product.code = product.name.strip(), product.code.strip()
        if product.list_price < 0 or product.unit_cost < 0:
            raise ValidationError(_("%(product)s: prices cannot be negative.") % {"product": product.name})
    _clean_many(products, exclude=["line"])
    _check_unique_many(Product, products, ["name", "code"])
    Product.objects.bulk_create(products, batch_size=BULK_BATCH)
    audit_bulk(actor=actor, action="product.create", entries=((p, {"name": [None, p.name]}) for p in products))
    return products


@transaction.atomic
def product_update(*, product: Product, data: dict, actor: User | None) -> Product:
    data = {k: v for k, v in data.items() if k in PRODUCT_EDITABLE}
    changes = diff(product, data)
    if not changes:
        return product
    for field, value in data.items():
        setattr(product, field, value)
    product.full_clean()
    product.save(update_fields=list(changes))
    audit(actor=actor, action="product.update", obj=product, changes=changes)
    return product
