"""Writes for the organisation and customers. Every function is atomic, validated and audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
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
