"""Finding what a row names (rep, region, product, customer, stage) among what exists and the importing user may
see, or planning it new when `create_missing` is set (never silently)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Literal

from django.core.exceptions import ValidationError
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import (
    CompanySettings,
    Currency,
    Customer,
    DataScope,
    ExchangeRate,
    Product,
    ProductLine,
    Region,
    User,
)
from crm.scopes import visible_regions, visible_users
from pipeline.importing.plan import ImportOptions, New, Plan, Ref, Row
from pipeline.models import ImportKind, Pipeline, Stage
from pipeline.services import pipeline_ensure_default
from salesmgmt.lib.tabular import normalise

IMPORTED_LINE_CODE = "IMPORTED"


# One row of a `.values()` query, by column name.
Record = Mapping[str, Any]


def _index(rows: Iterable[Record], *key_fields: str) -> tuple[dict[int, Record], defaultdict[str, set[int]]]:
    """The rows by id, and the ids by each non-empty normalised key field (name, code)."""
    by_id: dict[int, Record] = {}
    keys: defaultdict[str, set[int]] = defaultdict(set)
    for row in rows:
        by_id[row["id"]] = row
        for key in filter(None, (normalise(row[name]) for name in key_fields)):
            keys[key].add(row["id"])
    return by_id, keys


def _name(ref: Ref | None, rows: dict[int, Record]) -> str:
    if ref is None:
        return ""
    return ref.name if isinstance(ref, New) else rows[ref]["name"]


class Lookups:
    """Everything rows are matched against, loaded once (a handful of queries, not one per row)."""

    def __init__(self, *, actor: User | None, options: ImportOptions, kind: str):
        self.actor = actor
        self.options = options
        self.all_scope = actor is None or actor.effective_scope == DataScope.ALL

        self.users: dict[int, Record] = {}
        self.usernames: dict[str, int] = {}
        self.user_keys: defaultdict[str, set[int]] = defaultdict(set)
        for u in User.objects.values(
            "id", "username", "first_name", "last_name", "employee_code", "email", "is_active", "region_id"
        ):
            self.users[u["id"]] = u
            self.usernames[u["username"].casefold()] = u["id"]
            keys = {
                u["username"],
                f"{u['first_name']} {u['last_name']}",
                f"{u['last_name']}{u['first_name']}",
                u["employee_code"],
                u["email"],
            }
            for key in filter(None, map(normalise, keys)):
                self.user_keys[key].add(u["id"])
        self.visible_user_ids = None if self.all_scope else set(visible_users(actor).values_list("id", flat=True))

        self.regions, self.region_keys = _index(
            Region.objects.values("id", "name", "code", "parent_id", "depth", "path", "manager_id"), "name", "code"
        )
        # The regions below each region by normalised name and code: State and City are matched among the
        # children of the region above them, never across the company.
        self.region_children: defaultdict[int, defaultdict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        for r in self.regions.values():
            if r["parent_id"] is not None:
                for key in filter(None, (normalise(r["name"]), normalise(r["code"]))):
                    self.region_children[r["parent_id"]][key].add(r["id"])
        self.visible_region_ids = None if self.all_scope else set(visible_regions(actor).values_list("id", flat=True))

        self.products, self.product_keys = _index(
            Product.objects.values("id", "name", "code", "line_id", "list_price"), "name", "code"
        )
        self.lines, self.line_keys = _index(
            ProductLine.objects.values("id", "name", "code", "parent_id"), "name", "code"
        )

        customers = Customer.objects.all() if self.all_scope else Customer.objects.visible_to(actor)
        self.customers: dict[int, Record] = {}
        self.customer_keys: defaultdict[str, set[int]] = defaultdict(set)
        self.customer_ext: dict[str, int] = {}
        for c in customers.values("id", "name", "external_id", "region_id", "owner_id"):
            self.customers[c["id"]] = c
            self.customer_keys[normalise(c["name"])].add(c["id"])
            if c["external_id"]:
                self.customer_ext[c["external_id"]] = c["id"]

        self.company_currency = CompanySettings.load().currency
        self.currencies = set(Currency.objects.values_list("code", flat=True)) | {self.company_currency}
        self.rates: defaultdict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for code, valid_from, rate in ExchangeRate.objects.order_by("currency_id", "valid_from").values_list(
            "currency_id", "valid_from", "rate"
        ):
            self.rates[code].append((valid_from, rate))

        self.pipeline: Pipeline | None = None
        self.stages: list[Stage] = []
        if kind != ImportKind.CUSTOMERS:
            if options.pipeline_id:
                self.pipeline = Pipeline.objects.filter(pk=options.pipeline_id).first()
                if self.pipeline is None:
                    raise ValidationError(_("The chosen pipeline does not exist."))
            else:
                self.pipeline = pipeline_ensure_default()
            self.stages = list(self.pipeline.stages.order_by("order"))
        self.stage_keys: dict[str, Stage] = {}
        for stage in self.stages:
            for key in filter(None, (normalise(stage.name), normalise(stage.name_zh))):
                self.stage_keys.setdefault(key, stage)

        self.root_region_ids = [r["id"] for r in self.regions.values() if r["parent_id"] is None]
        self.default_owner: int | None = None
        if options.default_owner_id:
            owner = self.users.get(options.default_owner_id)
            if owner is None or not owner["is_active"]:
                raise ValidationError(_("The default owner is not an active user."))
            if self.visible_user_ids is not None and owner["id"] not in self.visible_user_ids:
                raise ValidationError(_("The default owner is outside your data scope."))
            self.default_owner = owner["id"]

    def region_manager(self, ref: Ref | None) -> int | None:
        """The manager of a region, else of the nearest region above it that has one (a new region: of
        the existing region it is created under)."""
        while isinstance(ref, New):
            ref = ref.attrs["parent"]
        region_id: int | None = ref
        while region_id is not None:
            region = self.regions[region_id]
            if region["manager_id"]:
                return region["manager_id"]
            region_id = region["parent_id"]
        return None

    def user_name(self, ref: Ref) -> str:
        if isinstance(ref, New):
            return ref.name
        u = self.users[ref]
        return f"{u['first_name']} {u['last_name']}".strip() or u["username"]

    def customer_name(self, ref: Ref | None) -> str:
        return _name(ref, self.customers)

    def product_name(self, ref: Ref | None) -> str:
        return _name(ref, self.products)

    def region_name(self, ref: Ref | None) -> str:
        return _name(ref, self.regions)

    def rate(self, code: str, day: date) -> Decimal | None:
        if code == self.company_currency:
            return Decimal(1)
        rates = self.rates.get(code, [])
        i = bisect.bisect_right(rates, day, key=lambda r: r[0])
        return rates[i - 1][1] if i else None


# By the `what` of a New: a name several records match, and a name none does (without create_missing).
_AMBIGUOUS = {
    "region": gettext_lazy("Several regions match “%(name)s”; use the region code."),
    "user": gettext_lazy("Several users match “%(name)s”; use the username."),
    "product": gettext_lazy("Several products match “%(name)s”; use the product code."),
    "customer": gettext_lazy("Several customers are called “%(name)s”; use the customer's external id."),
}
_UNKNOWN = {
    "region": gettext_lazy("Unknown region. Add it first, or tick “create missing”."),
    "user": gettext_lazy("Unknown rep. Add the user first, or tick “create missing”."),
    "product": gettext_lazy("Unknown product. Add it first, or tick “create missing”."),
    "customer": gettext_lazy("Unknown customer. Import the customers first, or tick “create missing”."),
}


class _Match(Enum):
    PLAN_NEW = "plan_new"


_PLAN_NEW: Final = _Match.PLAN_NEW  # what `_match` returns when the caller is to plan a New

# `accept(row, lookups, text, id)`: whether the one existing record that matches may be used.
Accept = Callable[[Row, "Lookups", str, int], bool]


def _match(
    row: Row,
    lookups: Lookups,
    plan: Plan,
    *,
    name: str,
    what: str,
    text: str,
    key: str,
    ids: Collection[int],
    accept: Accept | None = None,
) -> Ref | Literal[_Match.PLAN_NEW] | None:
    """The one existing id in `ids` (if `accept(row, lookups, text, id)` agrees), else the New planned for `key` by
    an earlier row, else _PLAN_NEW when `create_missing` is set. None after a row error in `name`: several match,
    `accept` refused the match, or nothing matches and `create_missing` is off."""
    if len(ids) > 1:
        row.error(name, _AMBIGUOUS[what] % {"name": text})
        return None
    if ids:
        (found,) = ids
        return found if accept is None or accept(row, lookups, text, found) else None
    if key in plan.new[what]:
        return plan.new[what][key]
    if not lookups.options.create_missing:
        row.error(name, _UNKNOWN[what])
        return None
    return _PLAN_NEW


def _in_scope(row: Row, name: str, text: str, found: int, visible_ids: set[int] | None) -> bool:
    if visible_ids is None or found in visible_ids:
        return True
    row.error(name, _("“%(name)s” is outside your data scope: you cannot import records for them.") % {"name": text})
    return False


def _region_allowed(row: Row, lookups: Lookups, text: str, region_id: int) -> bool:
    return _in_scope(row, "region", text, region_id, lookups.visible_region_ids)


def _owner_allowed(row: Row, lookups: Lookups, text: str, user_id: int) -> bool:
    if not lookups.users[user_id]["is_active"]:
        row.error("owner", _("User “%(name)s” is inactive.") % {"name": text})
        return False
    return _in_scope(row, "owner", text, user_id, lookups.visible_user_ids)


REGION_LEVELS = ("region", "state", "city")
PATH_SEPARATOR = " › "


def _region_anchor(row: Row, lookups: Lookups) -> tuple[bool, int | None]:
    """(allowed, parent) for a new top-level region of the file: under the importing user's own region
    (the single root for a company-wide scope). (False, None) after a row error: a scoped user without a
    region may create none."""
    if lookups.all_scope:
        return True, lookups.root_region_ids[0] if len(lookups.root_region_ids) == 1 else None
    if lookups.actor is not None and lookups.actor.region_id in (lookups.visible_region_ids or ()):
        return True, lookups.actor.region_id
    row.error("region", _("You may only create regions inside your own region, and you have none."))
    return False, None


def _own_subtree(lookups: Lookups, ids: set[int]) -> set[int]:
    """The ids inside the importing user's own region (and below); all of them for a company-wide scope."""
    if lookups.all_scope or lookups.actor is None or lookups.actor.region_id not in lookups.regions:
        return ids
    prefix = lookups.regions[lookups.actor.region_id]["path"]
    return {i for i in ids if lookups.regions[i]["path"].startswith(prefix)}


def _region_label(lookups: Lookups, parent: Ref | None, name: str) -> str:
    if parent is None:
        return name
    above = parent.attrs["label"] if isinstance(parent, New) else lookups.regions[parent]["name"]
    return f"{above}{PATH_SEPARATOR}{name}"


def resolve_region(row: Row, lookups: Lookups, plan: Plan) -> Ref | None:
    """The region the row names: an id, a New region, or None when the cells are empty.

    The region, state and city columns are levels of one path (Region -> State -> City): the first filled
    one is looked up by name or code, each next one among the children of the one above. With "create
    missing", a user with a limited scope has the first level looked up only inside his own region, and
    what is not found is created there as a subtree: a same-named region elsewhere in the company is never
    matched. Without it, a region outside the scope is a row error."""
    levels = [(name, row.text(name)) for name in REGION_LEVELS if row.text(name)]
    if not levels:
        return None
    (first_field, text), below = levels[0], levels[1:]
    key = normalise(text)
    ids = lookups.region_keys.get(key, set())
    if lookups.options.create_missing:
        ids = _own_subtree(lookups, ids)
    region = _match(
        row, lookups, plan, name=first_field, what="region", text=text, key=key, ids=ids, accept=_region_allowed
    )
    if region is _PLAN_NEW:
        allowed, parent = _region_anchor(row, lookups)
        if not allowed:
            return None
        region = New(
            "region", text[:120], row.number, {"parent": parent, "label": _region_label(lookups, parent, text[:120])}
        )
        plan.new["region"][key] = region
    for field, text in below:
        if region is None:
            return None
        key = f"{key}/{normalise(text)}" if isinstance(region, New) else f"#{region}/{normalise(text)}"
        ids = lookups.region_children[region].get(normalise(text), set()) if not isinstance(region, New) else set()
        child = _match(row, lookups, plan, name=field, what="region", text=text, key=key, ids=ids)
        if child is _PLAN_NEW:
            label = _region_label(lookups, region, text[:120])
            child = New("region", text[:120], row.number, {"parent": region, "label": label})
            plan.new["region"][key] = child
        region = child
    return region


def resolve_owner(row: Row, lookups: Lookups, plan: Plan, *, default_region: Ref | None) -> Ref | None:
    text = row.text("owner")
    if not text:
        return _owner_by_rule(row, lookups, default_region)
    key = normalise(text)
    # An exact username wins over names (two people may share a name, never a username).
    username_match = lookups.usernames.get(text.casefold())
    ids = {username_match} if username_match else lookups.user_keys.get(key, set())
    owner = _match(row, lookups, plan, name="owner", what="user", text=text, key=key, ids=ids, accept=_owner_allowed)
    if owner is not _PLAN_NEW:
        return owner
    region = default_region if default_region is not None else (lookups.actor.region_id if lookups.actor else None)
    if region is None:
        row.error("owner", _("A new rep needs a region: map a region column."))
        return None
    new = New("user", text[:150], row.number, {"region": region})
    plan.new["user"][key] = new
    return new


def _owner_by_rule(row: Row, lookups: Lookups, region: Ref | None) -> int | None:
    """The owner of a row that names none: the manager of its region (nearest up the tree) when chosen,
    else the default owner; a row error when the options give none."""
    options = lookups.options
    if options.owner_from_region_manager:
        manager = lookups.region_manager(region)
        if manager is not None:
            name = lookups.user_name(manager)
            return manager if _owner_allowed(row, lookups, name, manager) else None
    if lookups.default_owner is not None:
        return lookups.default_owner
    if options.owner_from_region_manager:
        row.error("owner", _("No rep in the row and no manager above its region: choose a default owner."))
    else:
        row.error("owner", _("The owner (rep) is required."))
    return None


def owner_region(lookups: Lookups, owner: Ref) -> Ref | None:
    if isinstance(owner, New):
        return owner.attrs["region"]
    return lookups.users[owner]["region_id"]


def _resolve_line(row: Row, lookups: Lookups, plan: Plan, field: str, parent: Ref | None) -> Ref | None:
    """The product line a cell names (by name or code, company-wide: lines have no scope), or a New line
    under `parent` (a sub-line below the file's product line)."""
    text = row.text(field)
    if not text:
        return parent
    key = normalise(text[:120])
    ids = lookups.line_keys.get(key) or lookups.line_keys.get(normalise(text), set())
    if ids:
        return min(ids)
    if key not in plan.new["product_line"]:
        above = parent.attrs["label"] if isinstance(parent, New) else lookups.lines[parent]["name"] if parent else ""
        label = f"{above}{PATH_SEPARATOR}{text[:120]}" if above else text[:120]
        plan.new["product_line"][key] = New("product_line", text[:120], row.number, {"parent": parent, "label": label})
    return plan.new["product_line"][key]


def resolve_product(row: Row, lookups: Lookups, plan: Plan) -> Ref | None:
    text = row.text("product")
    if not text:
        return None
    # Names are kept to 120 characters: a longer one matches the product created from its first 120.
    key = normalise(text)
    ids = lookups.product_keys.get(key) or lookups.product_keys.get(normalise(text[:120]), set())
    product = _match(row, lookups, plan, name="product", what="product", text=text, key=key, ids=ids)
    if product is not _PLAN_NEW:
        return product
    # Product line -> sub-line (e.g. Category -> Sub-Category): a new product goes in the deepest one.
    line = _resolve_line(row, lookups, plan, "product_subline", _resolve_line(row, lookups, plan, "product_line", None))
    if line is None:
        imported = lookups.line_keys.get(normalise(IMPORTED_LINE_CODE))
        line = (
            next(iter(imported))
            if imported
            else plan.new["product_line"].setdefault(
                normalise(IMPORTED_LINE_CODE),
                New("product_line", str(_("Imported products")), row.number, {"code": IMPORTED_LINE_CODE}),
            )
        )
    new = New("product", text[:120], row.number, {"line": line})
    plan.new["product"][key] = new
    return new


CODE_LENGTH = 40


def _code(name: str, taken: set[str], own: str) -> str:
    """A code from a name (upper-case slug, up to 40 characters) whose matching key is not in `taken` (the
    keys of every other name and code), with -2, -3... when it is; the code's key joins `taken`."""
    base = slugify(name, allow_unicode=True).upper()[:CODE_LENGTH].strip("-") or "X"
    candidate, n = base, 1
    while normalise(candidate) in taken and normalise(candidate) != own:
        n += 1
        suffix = f"-{n}"
        candidate = base[: CODE_LENGTH - len(suffix)].rstrip("-") + suffix
    taken.add(normalise(candidate))
    return candidate


def assign_codes(lookups: Lookups, plan: Plan) -> None:
    """Give the new products and product lines their codes once every row is checked: a product is matched
    by its name or its code, so a generated code must differ (as a matching key) from every other product's
    name and code, the new ones of this file included; the same for product lines."""
    for what, existing in (("product_line", lookups.lines), ("product", lookups.products)):
        new = plan.new[what]
        taken = {key for r in existing.values() for key in (normalise(r["name"]), normalise(r["code"]))}
        taken |= {normalise(n.name) for n in new.values()}
        for n in new.values():
            if "code" in n.attrs:
                taken.add(normalise(n.attrs["code"]))
        for n in new.values():
            if "code" not in n.attrs:
                n.attrs["code"] = _code(n.name, taken, normalise(n.name))
            if what == "product":
                n.attrs["label"] = f"{n.name} ({n.attrs['code']})"


def resolve_customer(row: Row, lookups: Lookups, plan: Plan, *, owner: Ref | None, region: Ref | None) -> Ref | None:
    text = row.text("customer")
    if not text:
        return None
    if text in lookups.customer_ext:
        return lookups.customer_ext[text]
    key = normalise(text)
    ids = lookups.customer_keys.get(key, set())
    customer = _match(row, lookups, plan, name="customer", what="customer", text=text, key=key, ids=ids)
    if customer is not _PLAN_NEW:
        return customer
    if owner is None:
        return None
    new = New("customer", text[:200], row.number, {"owner": owner, "region": region or owner_region(lookups, owner)})
    if new.attrs["region"] is None:
        row.error("customer", _("A new customer needs a region: its owner has none; map a region column."))
        return None
    plan.new["customer"][key] = new
    return new


def customer_region(lookups: Lookups, ref: Ref | None) -> Ref | None:
    if ref is None:
        return None
    return ref.attrs["region"] if isinstance(ref, New) else lookups.customers[ref]["region_id"]


def known_customer(lookups: Lookups, text: str) -> int | None:
    """The existing customer a cell names, without row errors (None when none or several match)."""
    if not text:
        return None
    if text in lookups.customer_ext:
        return lookups.customer_ext[text]
    ids = lookups.customer_keys.get(normalise(text), ())
    return next(iter(ids)) if len(ids) == 1 else None


def resolve_stage(row: Row, kind: str, lookups: Lookups) -> Stage | None:
    text = row.text("stage")
    if text:
        stage = lookups.stage_keys.get(normalise(text))
        if stage is None:
            row.error(
                "stage",
                _("Unknown stage in pipeline “%(pipeline)s”. Stages: %(stages)s.")
                % {
                    "pipeline": lookups.pipeline.name if lookups.pipeline else "",
                    "stages": ", ".join(s.name for s in lookups.stages),
                },
            )
        elif kind == ImportKind.WON_DEALS and not stage.is_won:
            row.error("stage", _("Historical won deals must be in a won stage."))
        return stage
    if kind == ImportKind.WON_DEALS:
        stage = next((s for s in lookups.stages if s.is_won), None)
        if stage is None:
            row.error("stage", _("The pipeline has no won stage."))
        return stage
    if not lookups.stages:
        row.error("stage", _("The pipeline has no stages."))
        return None
    return lookups.stages[0]
