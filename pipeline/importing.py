"""Import services: customers, opportunities and historical won deals from CSV / XLSX / XLS files.

The flow is the same for the browser wizard, `manage.py import_opportunities` and `manage.py import_maven`:

1. `read_table` (salesmgmt.lib.tabular) turns the file into headers and rows;
2. a mapping says which column feeds which field (`guess_mapping` proposes one from the headers);
3. `import_validate` checks every row *without writing anything*: it parses dates, amounts and ids, finds
   reps, regions, products, customers and stages, applies the importing user's data scope and collects
   row-level errors. Unknown reps, regions, products and customers are errors unless `create_missing` is
   set, in which case they are planned for creation (never silently);
4. only a plan without errors is applied, by `import_apply`, in one `transaction.atomic`: a file with bad
   rows never half-imports.

Duplicate ids: an `external_id` repeated in the file, or one that already exists in the database, is a row
error. Re-importing the same file therefore fails with an "already imported" error on every row and writes
nothing (`import_maven` uses this to be idempotent: it only feeds rows whose id is new).

Deals are bulk-created for speed (the Maven file has 8,800 rows) but end up exactly as
`pipeline.services.opportunity_create` leaves them: amount in company currency at the rate of the close
date, probability and forecast category from the stage, `closed_on` for won/lost, one product line when a
product is given, the initial-stage history row, an audit row, and `first_won_on` refreshed set-based.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import (
    AuditLog,
    CompanySettings,
    Currency,
    Customer,
    DataScope,
    ExchangeRate,
    ImportJob,
    ImportKind,
    ImportStatus,
    Product,
    ProductLine,
    Region,
    RegionKind,
    Role,
    Tier,
    User,
)
from crm.scopes import visible_regions, visible_users
from crm.services import (
    audit,
    ensure_company_currency,
    product_create,
    product_line_create,
    region_create,
    user_create,
)
from pipeline.models import Opportunity, OpportunityHistory, OpportunityLine, Pipeline, Stage
from pipeline.services import customer_refresh_first_won, pipeline_ensure_default
from salesmgmt.lib.money import ZERO, convert
from salesmgmt.lib.tabular import (
    DATE_ORDERS,
    Table,
    TabularError,
    cell_text,
    detect_date_order,
    normalise,
    parse_date,
    parse_decimal,
    parse_identifier,
    read_table,
)

logger = logging.getLogger(__name__)

MAX_ROWS = 100_000
MAX_STORED_ERRORS = 1000
PREVIEW_ROWS = 20
BATCH = 500
PROGRESS_EVERY = 250
IMPORTED_LINE_CODE = "IMPORTED"


# --- fields and mapping ------------------------------------------------------------------


@dataclass(frozen=True)
class ImportField:
    name: str
    label: str
    synonyms: tuple[str, ...] = ()
    required: bool = False


def _f(name, label, synonyms: str, required=False) -> ImportField:
    # Synonyms are compared through `normalise`, so "sales agent", "Sales_Agent" and "salesagent" are one.
    return ImportField(name, label, tuple(synonyms.split()), required)


_EXTERNAL_ID = _f(
    "external_id",
    gettext_lazy("External id"),
    "external_id opportunity_id deal_id id ref reference customer_id account_id 外部编号 商机编号 商机id 编号 单号 "
    "客户编号",
)
_OWNER = _f(
    "owner",
    gettext_lazy("Owner (rep)"),
    "owner sales_agent agent rep sales_rep salesperson sales account_owner 负责人 销售 销售代表 销售人员 业务员 "
    "归属人 客户经理",
    required=True,
)
_REGION = _f(
    "region",
    gettext_lazy("Region / team"),
    "region area office regional_office territory team 区域 大区 地区 片区 团队 省区",
)
DEAL_FIELDS = (
    _EXTERNAL_ID,
    _f(
        "name",
        gettext_lazy("Deal name"),
        "name opportunity opportunity_name deal deal_name title 商机 商机名称 项目 项目名称 名称",
    ),
    _f(
        "customer",
        gettext_lazy("Customer"),
        "customer account account_name company client customer_name 客户 客户名称 公司 公司名称 单位",
    ),
    _OWNER,
    _REGION,
    _f("product", gettext_lazy("Product"), "product product_name item sku 产品 产品名称 商品"),
    _f("product_line", gettext_lazy("Product line"), "product_line series product_series line 产品线 系列"),
    _f(
        "amount",
        gettext_lazy("Amount"),
        "amount value close_value deal_value deal_amount revenue total 金额 合同金额 商机金额 成交金额 销售额 签约额",
    ),
    _f("currency", gettext_lazy("Currency"), "currency 币种 货币"),
    _f("stage", gettext_lazy("Stage"), "stage deal_stage sales_stage status 阶段 销售阶段 商机阶段 状态"),
    _f(
        "close_date",
        gettext_lazy("Close date (expected, or actual for won/lost)"),
        "close_date expected_close_date closing_date closed_on close won_date 预计成交日期 成交日期 结单日期 签约日期 "
        "关闭日期 赢单日期",
    ),
    _f(
        "created_on",
        gettext_lazy("Created / engaged on"),
        "created created_on created_at create_date creation_date engage_date start_date 创建日期 创建时间",
    ),
    _f("lost_reason", gettext_lazy("Lost reason"), "lost_reason loss_reason 输单原因 丢单原因"),
    _f("next_step", gettext_lazy("Next step"), "next_step 下一步 下一步计划"),
)
CUSTOMER_FIELDS = (
    _EXTERNAL_ID,
    _f(
        "name",
        gettext_lazy("Customer name"),
        "name customer customer_name account account_name company client 客户 客户名称 公司 公司名称 名称",
        required=True,
    ),
    _OWNER,
    _REGION,
    _f("industry", gettext_lazy("Industry"), "industry sector vertical 行业 所属行业"),
    _f("tier", gettext_lazy("Tier"), "tier level grade class 等级 客户等级 级别 分级"),
    _f("notes", gettext_lazy("Notes"), "notes note remark remarks comment comments 备注"),
)
WON_DEAL_REQUIRED = ("amount", "close_date")


def fields_for(kind: str) -> tuple[ImportField, ...]:
    if kind == ImportKind.CUSTOMERS:
        return CUSTOMER_FIELDS
    if kind in (ImportKind.OPPORTUNITIES, ImportKind.WON_DEALS):
        return DEAL_FIELDS
    raise ValidationError(_("Unknown import kind “%(kind)s”.") % {"kind": kind})


def required_fields(kind: str) -> set[str]:
    required = {f.name for f in fields_for(kind) if f.required}
    if kind == ImportKind.WON_DEALS:
        required |= set(WON_DEAL_REQUIRED)
    return required


def guess_mapping(headers: list[str], kind: str) -> dict[str, str]:
    """{column: field} from the header names (English and Chinese synonyms); each field used once."""
    by_key = {}
    for f in fields_for(kind):
        for synonym in (f.name, str(f.label), *f.synonyms):
            by_key.setdefault(normalise(synonym), f.name)
    mapping, used = {}, set()
    for header in headers:
        name = by_key.get(normalise(header))
        if name and name not in used:
            mapping[header] = name
            used.add(name)
    return mapping


def check_mapping(mapping: dict[str, str], headers: list[str], kind: str) -> dict[str, str]:
    """The mapping without ignored columns; raises ValidationError on unknown columns or fields, a field
    fed by two columns, or a required field left unmapped."""
    names = {f.name: f for f in fields_for(kind)}
    clean, errors = {}, []
    for column, name in mapping.items():
        if not name:
            continue
        if column not in headers:
            errors.append(_("The file has no column “%(column)s”.") % {"column": column})
        elif name not in names:
            errors.append(_("“%(field)s” is not a field of this import.") % {"field": name})
        elif name in clean.values():
            errors.append(_("Two columns are mapped to “%(field)s”; map one.") % {"field": names[name].label})
        else:
            clean[column] = name
    for name in sorted(required_fields(kind) - set(clean.values())):
        errors.append(_("Map a column to “%(field)s”: it is required.") % {"field": names[name].label})
    if errors:
        raise ValidationError(errors)
    return clean


# --- options, errors, plan ---------------------------------------------------------------


@dataclass
class ImportOptions:
    create_missing: bool = False
    date_order: str = "auto"  # auto | dmy | mdy
    pipeline_id: int | None = None
    # Empty amounts of open deals: "zero", or "list_price" (an estimate from the product's list price).
    missing_amount: str = "zero"

    @classmethod
    def from_dict(cls, data: dict | None) -> ImportOptions:
        data = data or {}
        options = cls(
            create_missing=bool(data.get("create_missing", False)),
            date_order=data.get("date_order") or "auto",
            pipeline_id=data.get("pipeline_id") or None,
            missing_amount=data.get("missing_amount") or "zero",
        )
        if options.date_order not in DATE_ORDERS:
            raise ValidationError(_("Unknown date order “%(order)s”.") % {"order": options.date_order})
        if options.missing_amount not in ("zero", "list_price"):
            raise ValidationError(_("Unknown rule for missing amounts."))
        return options

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RowError:
    row: int
    field: str
    column: str
    value: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self):
        where = self.column or self.field
        value = f" “{self.value}”" if self.value else ""
        return _("Row %(row)s, %(where)s%(value)s: %(message)s") % {
            "row": self.row,
            "where": where,
            "value": value,
            "message": self.message,
        }


@dataclass(eq=False)
class New:
    """Something the file names that does not exist yet and will be created (create_missing)."""

    what: str  # region | user | product_line | product | customer
    name: str
    row: int
    attrs: dict = field(default_factory=dict)
    pk: int | None = None


def _pk(ref):
    return ref.pk if isinstance(ref, New) else ref


@dataclass
class Plan:
    kind: str
    total_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    new: dict[str, dict[str, New]] = field(default_factory=lambda: defaultdict(dict))
    preview: list[dict] = field(default_factory=list)
    date_order: str = "auto"
    pipeline_id: int | None = None
    notice: str = ""
    already_imported: int = 0

    @property
    def will_create(self) -> dict[str, int]:
        """Counts by the same keys `import_apply` returns: regions, product_lines, products, users,
        customers, opportunities."""
        counts = Counter({f"{what}s": len(items) for what, items in self.new.items()})
        counts["customers" if self.kind == ImportKind.CUSTOMERS else "opportunities"] += len(self.items)
        return {k: v for k, v in counts.items() if v}


def can_import(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_manager_or_above)


# --- lookups -----------------------------------------------------------------------------


class _Lookups:
    """Everything rows are matched against, loaded once (a handful of queries, not one per row)."""

    def __init__(self, *, actor, options: ImportOptions, kind: str):
        self.actor = actor
        self.options = options
        self.all_scope = actor is None or actor.effective_scope == DataScope.ALL

        self.users = {}
        self.usernames = {}
        self.user_keys = defaultdict(set)
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

        self.regions = {}
        self.region_keys = defaultdict(set)
        for r in Region.objects.values("id", "name", "code", "parent_id", "depth"):
            self.regions[r["id"]] = r
            for key in filter(None, (normalise(r["name"]), normalise(r["code"]))):
                self.region_keys[key].add(r["id"])
        self.visible_region_ids = None if self.all_scope else set(visible_regions(actor).values_list("id", flat=True))

        self.products = {}
        self.product_keys = defaultdict(set)
        for p in Product.objects.values("id", "name", "code", "line_id", "list_price"):
            self.products[p["id"]] = p
            for key in filter(None, (normalise(p["name"]), normalise(p["code"]))):
                self.product_keys[key].add(p["id"])
        self.line_keys = defaultdict(set)
        self.lines = {}
        for line in ProductLine.objects.values("id", "name", "code"):
            self.lines[line["id"]] = line
            for key in filter(None, (normalise(line["name"]), normalise(line["code"]))):
                self.line_keys[key].add(line["id"])

        customers = Customer.objects.all() if self.all_scope else Customer.objects.visible_to(actor)
        self.customers = {}
        self.customer_keys = defaultdict(set)
        self.customer_ext = {}
        for c in customers.values("id", "name", "external_id", "region_id", "owner_id"):
            self.customers[c["id"]] = c
            self.customer_keys[normalise(c["name"])].add(c["id"])
            if c["external_id"]:
                self.customer_ext[c["external_id"]] = c["id"]

        self.company_currency = CompanySettings.load().currency
        self.currencies = set(Currency.objects.values_list("code", flat=True)) | {self.company_currency}
        self.rates = defaultdict(list)
        for code, valid_from, rate in ExchangeRate.objects.order_by("currency_id", "valid_from").values_list(
            "currency_id", "valid_from", "rate"
        ):
            self.rates[code].append((valid_from, rate))

        self.pipeline = None
        self.stages = []
        if kind != ImportKind.CUSTOMERS:
            if options.pipeline_id:
                self.pipeline = Pipeline.objects.filter(pk=options.pipeline_id).first()
                if self.pipeline is None:
                    raise ValidationError(_("The chosen pipeline does not exist."))
            else:
                self.pipeline = pipeline_ensure_default()
            self.stages = list(self.pipeline.stages.order_by("order"))
        self.stage_keys = {}
        for stage in self.stages:
            for key in filter(None, (normalise(stage.name), normalise(stage.name_zh))):
                self.stage_keys.setdefault(key, stage)

        self.root_region_ids = [r["id"] for r in self.regions.values() if r["parent_id"] is None]

    def user_name(self, ref) -> str:
        if isinstance(ref, New):
            return ref.name
        u = self.users[ref]
        return f"{u['first_name']} {u['last_name']}".strip() or u["username"]

    def customer_name(self, ref) -> str:
        if ref is None:
            return ""
        return ref.name if isinstance(ref, New) else self.customers[ref]["name"]

    def product_name(self, ref) -> str:
        if ref is None:
            return ""
        return ref.name if isinstance(ref, New) else self.products[ref]["name"]

    def rate(self, code: str, day: date) -> Decimal | None:
        if code == self.company_currency:
            return Decimal(1)
        rates = self.rates.get(code, [])
        i = bisect.bisect_right(rates, day, key=lambda r: r[0])
        return rates[i - 1][1] if i else None


class _Row:
    """One row being validated: its values by field and the errors found so far."""

    def __init__(self, number: int, values: dict, columns: dict[str, str], errors: list[RowError]):
        self.number = number
        self.values = values
        self.columns = columns
        self.errors = errors
        self.failed = False

    def raw(self, name: str):
        column = self.columns.get(name)
        return self.values.get(column) if column else None

    def text(self, name: str) -> str:
        return cell_text(self.raw(name))

    def error(self, name: str, message) -> None:
        self.failed = True
        self.errors.append(RowError(self.number, name, self.columns.get(name, ""), self.text(name), str(message)))


# --- validation --------------------------------------------------------------------------


def import_validate(
    *,
    table: Table,
    kind: str,
    mapping: dict[str, str],
    options: ImportOptions,
    actor,
    progress: Callable[[int], None] | None = None,
) -> Plan:
    """Check every row; nothing is written (except the default pipeline on a fresh database)."""
    mapping = check_mapping(mapping, table.headers, kind)
    if len(table.rows) > MAX_ROWS:
        raise ValidationError(_("The file has more than %(max)s rows; split it.") % {"max": MAX_ROWS})
    if not table.rows:
        raise ValidationError(_("The file has a header but no data rows."))
    columns = {name: column for column, name in mapping.items()}
    lookups = _Lookups(actor=actor, options=options, kind=kind)
    plan = Plan(kind=kind, total_rows=len(table.rows), pipeline_id=lookups.pipeline.pk if lookups.pipeline else None)

    date_columns = [columns[n] for n in ("close_date", "created_on") if n in columns]
    order = options.date_order
    if order == "auto":
        order = detect_date_order(value for _n, rec in table.records() for c in date_columns for value in [rec[c]])
        order = order or "auto"
    plan.date_order = order

    existing_ids = _existing_external_ids(table, columns, kind)
    seen_ids: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    validate_row = _validate_customer if kind == ImportKind.CUSTOMERS else _validate_deal
    for i, (number, values) in enumerate(table.records(), start=1):
        row = _Row(number, values, columns, plan.errors)
        item = validate_row(
            row, kind, lookups, plan, order=order, existing_ids=existing_ids, seen_ids=seen_ids, seen_names=seen_names
        )
        if item is not None and not row.failed:
            plan.items.append(item)
            if len(plan.preview) < PREVIEW_ROWS:
                plan.preview.append(item.pop("_preview"))
            else:
                item.pop("_preview", None)
        if progress and i % PROGRESS_EVERY == 0:
            progress(i)
    if progress:
        progress(plan.total_rows)
    if plan.already_imported == plan.total_rows:
        plan.notice = _(
            "Every id in this file already exists: the file looks already imported. Nothing will be written."
        )
    return plan


def _existing_external_ids(table: Table, columns: dict[str, str], kind: str) -> set[str]:
    column = columns.get("external_id")
    if not column:
        return set()
    ids = set()
    for _n, record in table.records():
        try:
            value = parse_identifier(record[column])
        except ValueError:
            continue
        if value:
            ids.add(value)
    model = Customer if kind == ImportKind.CUSTOMERS else Opportunity
    found = set()
    ids = sorted(ids)
    for start in range(0, len(ids), BATCH):
        found.update(
            model.objects.filter(external_id__in=ids[start : start + BATCH]).values_list("external_id", flat=True)
        )
    return found


def _check_external_id(row: _Row, existing_ids: set[str], seen_ids: dict[str, int], plan: Plan, what: str) -> str:
    try:
        external_id = parse_identifier(row.raw("external_id"))
    except ValueError as exc:
        row.error("external_id", exc)
        return ""
    if not external_id:
        return ""
    if len(external_id) > 80:
        row.error("external_id", _("Ids are at most 80 characters."))
    elif external_id in seen_ids:
        row.error("external_id", _("Duplicate id: row %(row)s has the same id.") % {"row": seen_ids[external_id]})
    elif external_id in existing_ids:
        row.error("external_id", _("Already imported: a %(what)s with this id exists.") % {"what": what})
        plan.already_imported += 1
    seen_ids.setdefault(external_id, row.number)
    return external_id


def _scope_error(row: _Row, name: str, label: str) -> None:
    row.error(name, _("“%(name)s” is outside your data scope: you cannot import records for them.") % {"name": label})


def _resolve_region(row: _Row, lookups: _Lookups, plan: Plan):
    """The region named in the row: an id, a New region, or None when the cell is empty."""
    text = row.text("region")
    if not text:
        return None
    key = normalise(text)
    ids = lookups.region_keys.get(key, set())
    if len(ids) > 1:
        row.error("region", _("Several regions match “%(name)s”; use the region code.") % {"name": text})
        return None
    if ids:
        (region_id,) = ids
        if lookups.visible_region_ids is not None and region_id not in lookups.visible_region_ids:
            _scope_error(row, "region", text)
            return None
        return region_id
    if key in plan.new["region"]:
        return plan.new["region"][key]
    if not lookups.options.create_missing:
        row.error("region", _("Unknown region. Add it first, or tick “create missing”."))
        return None
    if lookups.all_scope:
        parent = lookups.root_region_ids[0] if len(lookups.root_region_ids) == 1 else None
    elif lookups.actor.region_id in (lookups.visible_region_ids or ()):
        parent = lookups.actor.region_id
    else:
        row.error("region", _("You may only create regions inside your own region, and you have none."))
        return None
    new = New("region", text[:120], row.number, {"parent": parent})
    plan.new["region"][key] = new
    return new


def _resolve_owner(row: _Row, lookups: _Lookups, plan: Plan, *, default_region):
    text = row.text("owner")
    if not text:
        row.error("owner", _("The owner (rep) is required."))
        return None
    key = normalise(text)
    # An exact username wins over names (two people may share a name, never a username).
    username_match = lookups.usernames.get(text.casefold())
    ids = {username_match} if username_match else lookups.user_keys.get(key, set())
    if len(ids) > 1:
        row.error("owner", _("Several users match “%(name)s”; use the username.") % {"name": text})
        return None
    if ids:
        (user_id,) = ids
        if not lookups.users[user_id]["is_active"]:
            row.error("owner", _("User “%(name)s” is inactive.") % {"name": text})
            return None
        if lookups.visible_user_ids is not None and user_id not in lookups.visible_user_ids:
            _scope_error(row, "owner", text)
            return None
        return user_id
    if key in plan.new["user"]:
        return plan.new["user"][key]
    if not lookups.options.create_missing:
        row.error("owner", _("Unknown rep. Add the user first, or tick “create missing”."))
        return None
    region = default_region if default_region is not None else (lookups.actor.region_id if lookups.actor else None)
    if region is None:
        row.error("owner", _("A new rep needs a region: map a region column."))
        return None
    new = New("user", text[:150], row.number, {"region": region})
    plan.new["user"][key] = new
    return new


def _owner_region(lookups: _Lookups, owner):
    if isinstance(owner, New):
        return owner.attrs["region"]
    return lookups.users[owner]["region_id"]


def _region_name(lookups: _Lookups, ref) -> str:
    if ref is None:
        return ""
    return ref.name if isinstance(ref, New) else lookups.regions[ref]["name"]


def _resolve_product(row: _Row, lookups: _Lookups, plan: Plan):
    text = row.text("product")
    if not text:
        return None
    key = normalise(text)
    ids = lookups.product_keys.get(key, set())
    if len(ids) > 1:
        row.error("product", _("Several products match “%(name)s”; use the product code.") % {"name": text})
        return None
    if ids:
        return next(iter(ids))
    if key in plan.new["product"]:
        return plan.new["product"][key]
    if not lookups.options.create_missing:
        row.error("product", _("Unknown product. Add it first, or tick “create missing”."))
        return None
    line_text = row.text("product_line")
    line = None
    if line_text:
        line_ids = lookups.line_keys.get(normalise(line_text), set())
        if line_ids:
            line = next(iter(line_ids))
        else:
            line = plan.new["product_line"].setdefault(
                normalise(line_text), New("product_line", line_text[:120], row.number)
            )
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


def _resolve_customer(row: _Row, lookups: _Lookups, plan: Plan, *, owner, region):
    text = row.text("customer")
    if not text:
        return None
    if text in lookups.customer_ext:
        return lookups.customer_ext[text]
    key = normalise(text)
    ids = lookups.customer_keys.get(key, set())
    if len(ids) > 1:
        row.error(
            "customer", _("Several customers are called “%(name)s”; use the customer's external id.") % {"name": text}
        )
        return None
    if ids:
        return next(iter(ids))
    if key in plan.new["customer"]:
        return plan.new["customer"][key]
    if not lookups.options.create_missing:
        row.error("customer", _("Unknown customer. Import the customers first, or tick “create missing”."))
        return None
    if owner is None:
        return None
    new = New("customer", text[:200], row.number, {"owner": owner, "region": region or _owner_region(lookups, owner)})
    if new.attrs["region"] is None:
        row.error("customer", _("A new customer needs a region: its owner has none; map a region column."))
        return None
    plan.new["customer"][key] = new
    return new


def _customer_region(lookups: _Lookups, ref):
    if ref is None:
        return None
    return ref.attrs["region"] if isinstance(ref, New) else lookups.customers[ref]["region_id"]


def _parse_date(row: _Row, name: str, order: str) -> date | None:
    try:
        return parse_date(row.raw(name), order=order)
    except ValueError as exc:
        row.error(name, exc)
        return None


def _max_length(row: _Row, name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        row.error(name, _("At most %(limit)s characters.") % {"limit": limit})
    return value


def _known_customer(lookups: _Lookups, text: str):
    if not text:
        return None
    if text in lookups.customer_ext:
        return lookups.customer_ext[text]
    ids = lookups.customer_keys.get(normalise(text), ())
    return next(iter(ids)) if len(ids) == 1 else None


def _resolve_stage(row: _Row, kind, lookups: _Lookups) -> Stage | None:
    text = row.text("stage")
    if text:
        stage = lookups.stage_keys.get(normalise(text))
        if stage is None:
            row.error(
                "stage",
                _("Unknown stage in pipeline “%(pipeline)s”. Stages: %(stages)s.")
                % {"pipeline": lookups.pipeline.name, "stages": ", ".join(s.name for s in lookups.stages)},
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


def _validate_deal(row: _Row, kind, lookups: _Lookups, plan: Plan, *, order, existing_ids, seen_ids, seen_names):
    external_id = _check_external_id(row, existing_ids, seen_ids, plan, _("deal"))
    region = _resolve_region(row, lookups, plan)
    # A new rep sits in the row's region, else in the region of the (existing) customer of the deal.
    default_region = (
        region if region is not None else _customer_region(lookups, _known_customer(lookups, row.text("customer")))
    )
    owner = _resolve_owner(row, lookups, plan, default_region=default_region)
    customer = _resolve_customer(row, lookups, plan, owner=owner, region=region)
    product = _resolve_product(row, lookups, plan)
    stage = _resolve_stage(row, kind, lookups)
    close_date = _parse_date(row, "close_date", order)
    created_on = _parse_date(row, "created_on", order)
    try:
        amount = parse_decimal(row.raw("amount"))
    except ValueError as exc:
        row.error("amount", exc)
        amount = ZERO
    if amount is not None and amount < 0:
        row.error("amount", _("The amount cannot be negative."))
    currency = (row.text("currency") or lookups.company_currency).upper()
    if currency not in lookups.currencies:
        row.error("currency", _("Unknown currency “%(code)s”.") % {"code": currency})

    closed_on, expected_close = None, close_date
    if stage is not None and stage.is_closed:
        if close_date is None and not row.text("close_date"):
            row.error("close_date", _("A won or lost deal needs its close date."))
        closed_on = close_date
    if amount is None:
        if stage is not None and stage.is_won:
            row.error("amount", _("A won deal needs its amount."))
        elif lookups.options.missing_amount == "list_price" and product is not None and not isinstance(product, New):
            amount = lookups.products[product]["list_price"]
        else:
            amount = ZERO
    day = closed_on or expected_close or timezone.localdate()
    rate = lookups.rate(currency, day) if currency in lookups.currencies else None
    if rate is None and currency in lookups.currencies:
        row.error(
            "currency",
            _("No exchange rate for %(currency)s on or before %(day)s; add one under exchange rates.")
            % {"currency": currency, "day": day},
        )
    deal_region = region if region is not None else _customer_region(lookups, customer)
    if deal_region is None and owner is not None:
        deal_region = _owner_region(lookups, owner)
        if deal_region is None:
            row.error("region", _("The deal needs a region: its customer's or its owner's."))
    lost_reason = _max_length(row, "lost_reason", row.text("lost_reason"), 200)
    next_step = _max_length(row, "next_step", row.text("next_step"), 200)
    name = row.text("name")
    if not name:
        parts = [lookups.customer_name(customer), lookups.product_name(product)]
        name = (" · ".join(p for p in parts if p) or external_id or str(_("Imported deal")))[:200]
    name = _max_length(row, "name", name, 200)
    if row.failed:
        return None
    created_at = timezone.make_aware(datetime.combine(created_on, datetime.min.time())) if created_on else None
    return {
        "row": row.number,
        "name": name,
        "customer": customer,
        "owner": owner,
        "region": deal_region,
        "product": product,
        "stage": stage,
        "amount": amount,
        "currency": currency,
        "amount_company": convert(amount, rate),
        "expected_close_date": expected_close,
        "closed_on": closed_on,
        "created_at": created_at,
        "external_id": external_id,
        "lost_reason": lost_reason if stage.is_lost else "",
        "next_step": next_step,
        "_preview": {
            "row": row.number,
            "cells": [
                name,
                lookups.customer_name(customer),
                lookups.user_name(owner),
                lookups.product_name(product),
                stage.display_name,
                amount,
                closed_on or expected_close or "",
            ],
            "new": [
                what
                for what, ref in (("customer", customer), ("owner", owner), ("product", product), ("region", region))
                if isinstance(ref, New)
            ],
        },
    }


TIER_WORDS = {
    **{normalise(v): v for v in Tier.values},
    normalise("大客户"): Tier.KEY,
    normalise("key"): Tier.KEY,
    normalise("key account"): Tier.KEY,
    normalise("A类"): Tier.A,
    normalise("B类"): Tier.B,
    normalise("C类"): Tier.C,
}


def _validate_customer(row: _Row, kind, lookups: _Lookups, plan: Plan, *, order, existing_ids, seen_ids, seen_names):
    external_id = _check_external_id(row, existing_ids, seen_ids, plan, _("customer"))
    name = row.text("name")
    if not name:
        row.error("name", _("The customer name is required."))
    else:
        _max_length(row, "name", name, 200)
        key = normalise(name)
        if key in seen_names:
            row.error("name", _("Duplicate customer: row %(row)s has the same name.") % {"row": seen_names[key]})
        elif lookups.customer_keys.get(key):
            row.error("name", _("Already imported: a customer with this name exists."))
        seen_names.setdefault(key, row.number)
    region = _resolve_region(row, lookups, plan)
    owner = _resolve_owner(row, lookups, plan, default_region=region)
    if region is None and owner is not None:
        region = _owner_region(lookups, owner)
        if region is None:
            row.error("region", _("The customer needs a region: its owner has none; map a region column."))
    industry = _max_length(row, "industry", row.text("industry"), 80)
    tier = Tier.C
    if row.text("tier"):
        tier = TIER_WORDS.get(normalise(row.text("tier")))
        if tier is None:
            row.error("tier", _("Unknown tier; use KA (大客户), A, B or C."))
    if row.failed:
        return None
    return {
        "row": row.number,
        "name": name,
        "owner": owner,
        "region": region,
        "industry": industry,
        "tier": tier,
        "notes": row.text("notes"),
        "external_id": external_id,
        "_preview": {
            "row": row.number,
            "cells": [name, lookups.user_name(owner), _region_name(lookups, region), industry, tier],
            "new": [what for what, ref in (("owner", owner), ("region", region)) if isinstance(ref, New)],
        },
    }


# --- applying ----------------------------------------------------------------------------


def _unique(base: str, taken: set[str], limit: int) -> str:
    base = base[:limit] or "x"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = base[: limit - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def _split_name(name: str) -> tuple[str, str]:
    if " " in name.strip():
        first, last = name.strip().rsplit(" ", 1)
        return first[:150], last[:150]
    return name.strip()[:150], ""


@transaction.atomic
def import_apply(*, plan: Plan, actor, job: ImportJob | None = None) -> dict[str, int]:
    """Write a checked plan in one transaction; returns what was created, by kind."""
    if plan.errors:
        raise ValidationError(_("The file has %(n)s errors; nothing was imported.") % {"n": len(plan.errors)})
    actor = actor if getattr(actor, "pk", None) else None
    created = Counter()

    region_codes = set(Region.objects.values_list("code", flat=True))
    parents = Region.objects.in_bulk([n.attrs["parent"] for n in plan.new["region"].values() if n.attrs["parent"]])
    for new in plan.new["region"].values():
        parent = parents.get(new.attrs["parent"])
        code = _unique(slugify(new.name, allow_unicode=True).upper(), region_codes, 40)
        kind = RegionKind.AREA if parent is not None and parent.depth == 0 else RegionKind.TEAM
        new.pk = region_create(name=new.name, code=code, kind=kind, parent=parent, actor=actor).pk
        created["regions"] += 1

    line_codes = set(ProductLine.objects.values_list("code", flat=True))
    for new in plan.new["product_line"].values():
        code = new.attrs.get("code") or _unique(slugify(new.name, allow_unicode=True).upper(), line_codes, 40)
        new.pk = product_line_create(name=new.name, code=code, actor=actor).pk
        created["product_lines"] += 1
    product_codes = set(Product.objects.values_list("code", flat=True))
    lines = ProductLine.objects.in_bulk({_pk(n.attrs["line"]) for n in plan.new["product"].values()})
    for new in plan.new["product"].values():
        code = _unique(slugify(new.name, allow_unicode=True).upper(), product_codes, 40)
        new.pk = product_create(line=lines[_pk(new.attrs["line"])], name=new.name, code=code, actor=actor).pk
        created["products"] += 1

    usernames = set(User.objects.values_list("username", flat=True))
    regions = Region.objects.in_bulk({_pk(n.attrs["region"]) for n in plan.new["user"].values()})
    for new in plan.new["user"].values():
        username = _unique(slugify(new.name, allow_unicode=True).replace("-", "_") or "rep", usernames, 150)
        first, last = _split_name(new.name)
        user = user_create(
            username=username,
            password=None,
            role=Role.REP,
            region=regions[_pk(new.attrs["region"])],
            first_name=first,
            last_name=last,
            actor=actor,
        )
        new.pk = user.pk
        created["users"] += 1

    customer_type = ContentType.objects.get_for_model(Customer)
    new_customers = [
        Customer(name=n.name, owner_id=_pk(n.attrs["owner"]), region_id=_pk(n.attrs["region"]))
        for n in plan.new["customer"].values()
    ]
    if plan.kind == ImportKind.CUSTOMERS:
        new_customers += [
            Customer(
                name=item["name"],
                owner_id=_pk(item["owner"]),
                region_id=_pk(item["region"]),
                industry=item["industry"],
                tier=item["tier"],
                notes=item["notes"],
                external_id=item["external_id"],
            )
            for item in plan.items
        ]
    Customer.objects.bulk_create(new_customers, batch_size=BATCH)
    for new, customer in zip(plan.new["customer"].values(), new_customers, strict=False):
        new.pk = customer.pk
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor=actor,
                action="customer.create",
                content_type=customer_type,
                object_id=str(c.pk),
                changes=_changes({"name": [None, c.name]}, job),
            )
            for c in new_customers
        ],
        batch_size=BATCH,
    )
    created["customers"] = len(new_customers)

    if plan.kind != ImportKind.CUSTOMERS:
        created["opportunities"] = _apply_deals(plan, actor, job)
    if job is not None:
        audit(actor=actor, action="import.commit", obj=job, changes={k: [None, v] for k, v in created.items() if v})
    return {k: v for k, v in created.items() if v}


def _changes(changes: dict, job: ImportJob | None) -> dict:
    if job is not None:
        changes["import_job"] = job.pk
    return changes


def _apply_deals(plan: Plan, actor, job: ImportJob | None) -> int:
    ensure_company_currency()
    pipeline_id = plan.pipeline_id
    now = timezone.now()
    products = Product.objects.in_bulk({_pk(i["product"]) for i in plan.items if i["product"] is not None})
    opportunities = []
    for item in plan.items:
        stage: Stage = item["stage"]
        at = item["created_at"] or now
        opportunities.append(
            Opportunity(
                name=item["name"],
                customer_id=_pk(item["customer"]),
                owner_id=_pk(item["owner"]),
                region_id=_pk(item["region"]),
                pipeline_id=pipeline_id,
                stage=stage,
                amount=item["amount"],
                currency_id=item["currency"],
                amount_company=item["amount_company"],
                expected_close_date=item["expected_close_date"],
                closed_on=item["closed_on"],
                probability=stage.probability,
                forecast_category=stage.forecast_category,
                lost_reason=item["lost_reason"],
                next_step=item["next_step"],
                external_id=item["external_id"],
                created_at=at,
                stage_entered_at=at,
            )
        )
    Opportunity.objects.bulk_create(opportunities, batch_size=BATCH)
    lines, history, audits = [], [], []
    opportunity_type = ContentType.objects.get_for_model(Opportunity)
    for item, opp in zip(plan.items, opportunities, strict=True):
        if item["product"] is not None:
            product = products[_pk(item["product"])]
            lines.append(
                OpportunityLine(
                    opportunity=opp,
                    product_line_id=product.line_id,
                    product=product,
                    quantity=Decimal(1),
                    amount=opp.amount,
                    amount_company=opp.amount_company,
                )
            )
        history.append(
            OpportunityHistory(
                opportunity=opp,
                field="stage",
                old_value="",
                new_value=opp.stage.name[:200],
                new_stage=opp.stage,
                changed_by=actor,
                changed_at=opp.created_at,
            )
        )
        audits.append(
            AuditLog(
                actor=actor,
                action="opportunity.create",
                content_type=opportunity_type,
                object_id=str(opp.pk),
                changes=_changes({"amount": [None, str(opp.amount)]}, job),
            )
        )
    OpportunityLine.objects.bulk_create(lines, batch_size=BATCH)
    OpportunityHistory.objects.bulk_create(history, batch_size=BATCH)
    AuditLog.objects.bulk_create(audits, batch_size=BATCH)
    won_customers = sorted({o.customer_id for o in opportunities if o.customer_id and o.stage.is_won})
    for start in range(0, len(won_customers), BATCH):
        customer_refresh_first_won(won_customers[start : start + BATCH])
    return len(opportunities)


# --- jobs (the browser wizard) -----------------------------------------------------------


def _check_may_import(actor) -> None:
    if not can_import(actor):
        raise PermissionDenied(_("Only managers, directors and admins may import data."))


def read_upload(data: bytes, name: str, *, limit: int | None = None) -> Table:
    try:
        return read_table(data, name, limit=limit)
    except TabularError as exc:
        raise ValidationError(str(exc))


def import_job_table(job: ImportJob, *, limit: int | None = None) -> Table:
    with job.file.open("rb") as handle:
        data = handle.read()
    return read_upload(data, job.original_name, limit=limit)


def import_job_create(*, kind: str, data: bytes, filename: str, actor) -> ImportJob:
    """Step 1: keep the uploaded file and guess the mapping. A file that cannot be read is refused."""
    _check_may_import(actor)
    fields_for(kind)
    table = read_upload(data, filename, limit=PREVIEW_ROWS)
    if not table.rows:
        raise ValidationError(_("The file has a header but no data rows."))
    job = ImportJob(
        kind=kind,
        original_name=filename[:255],
        created_by=actor,
        mapping=guess_mapping(table.headers, kind),
        options=ImportOptions().to_dict(),
    )
    job.file.save(filename.rsplit("/", 1)[-1][:100] or "import.csv", ContentFile(data), save=False)
    job.save()
    return job


EDITABLE_STATUSES = (ImportStatus.UPLOADED, ImportStatus.MAPPED, ImportStatus.VALIDATED)


def import_job_validate(*, job: ImportJob, mapping: dict[str, str], options: dict, actor) -> Plan:
    """Steps 2-3: save the mapping and options, check every row, keep the errors and a preview on the job."""
    _check_may_import(actor)
    if job.status not in EDITABLE_STATUSES:
        raise ValidationError(_("This import has already run; upload the file again to start over."))
    table = import_job_table(job)
    mapping = check_mapping(mapping, table.headers, job.kind)
    opts = ImportOptions.from_dict(options)
    job.mapping, job.options, job.status = mapping, opts.to_dict(), ImportStatus.MAPPED
    job.save(update_fields=["mapping", "options", "status"])
    plan = import_validate(table=table, kind=job.kind, mapping=mapping, options=opts, actor=actor)
    job.status = ImportStatus.VALIDATED
    job.total_rows = plan.total_rows
    job.processed_rows = 0
    job.error_count = len(plan.errors)
    job.errors = [e.as_dict() for e in plan.errors[:MAX_STORED_ERRORS]]
    job.result = {
        "preview": _jsonable(plan.preview),
        "will_create": plan.will_create,
        "date_order": plan.date_order,
        "notice": plan.notice,
    }
    job.save(update_fields=["status", "total_rows", "processed_rows", "error_count", "errors", "result"])
    return plan


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value)
    return value


def import_job_start(*, job: ImportJob, actor) -> None:
    """Step 4: queue the commit of a checked job without errors (runs at once without a broker)."""
    _check_may_import(actor)
    if job.status != ImportStatus.VALIDATED:
        raise ValidationError(_("Only a checked import can be started."))
    if job.error_count:
        raise ValidationError(
            _("Fix the %(n)s errors first: a file with bad rows is never imported.") % {"n": job.error_count}
        )
    if (job.result or {}).pop("queue_error", None):
        job.save(update_fields=["result"])
    transaction.on_commit(lambda: _enqueue_commit(job.pk))


def _enqueue_commit(job_id: int) -> None:
    from pipeline.tasks import import_commit

    try:
        import_commit.delay(job_id)
    except Exception:  # the broker is unreachable: the job stays checked and can be started again
        logger.exception("Could not queue import %s", job_id)
        job = ImportJob.objects.get(pk=job_id)
        job.result = {**(job.result or {}), "queue_error": _("The import could not be queued; try again shortly.")}
        job.save(update_fields=["result"])


def _set_progress(job_id: int, n: int) -> None:
    ImportJob.objects.filter(pk=job_id).update(processed_rows=n)


def import_job_commit(*, job_id: int) -> ImportJob | None:
    """The commit task's body: claim the job (a job already running, done or failed is left alone), check
    every row again (data may have changed since the preview) with progress, then write in one transaction.
    Any failure leaves nothing written and the job FAILED with the message."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.VALIDATED, error_count=0).update(
        status=ImportStatus.RUNNING, processed_rows=0
    )
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    try:
        table = import_job_table(job)
        plan = import_validate(
            table=table,
            kind=job.kind,
            mapping=job.mapping,
            options=ImportOptions.from_dict(job.options),
            actor=job.created_by,
            progress=lambda n: _set_progress(job_id, n),
        )
        if plan.errors:
            job.errors = [e.as_dict() for e in plan.errors[:MAX_STORED_ERRORS]]
            job.error_count = len(plan.errors)
            raise ValidationError(
                _("The data changed since the preview: %(n)s rows now have errors. Nothing was imported.")
                % {"n": len(plan.errors)}
            )
        created = import_apply(plan=plan, actor=job.created_by, job=job)
    except Exception as exc:  # any failure: the transaction rolled back; show why on the job
        if not isinstance(exc, ValidationError | PermissionDenied):
            logger.exception("Import %s failed", job_id)
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        job.status = ImportStatus.FAILED
        job.result = {**(job.result or {}), "message": message}
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "result", "finished_at", "errors", "error_count"])
        return job
    job.status = ImportStatus.DONE
    job.processed_rows = job.total_rows = plan.total_rows
    job.result = {"created": created, "date_order": plan.date_order}
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "processed_rows", "total_rows", "result", "finished_at"])
    return job
