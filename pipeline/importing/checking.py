"""Checking every row of a file without writing anything: ids, dates, amounts, and what each row names
(`resolving`), collected into a Plan with row-level errors."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, tzinfo
from decimal import Decimal, Inexact, localcontext
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Customer, Tier, User
from pipeline.importing import resolving
from pipeline.importing.fields import check_mapping
from pipeline.importing.plan import BATCH, ImportOptions, New, Plan, Row, RowError
from pipeline.importing.resolving import (
    Lookups,
    assign_codes,
    customer_region,
    known_customer,
    owner_region,
    resolve_stage,
)
from pipeline.models import ImportKind, Opportunity
from salesmgmt.lib.money import ZERO, convert
from salesmgmt.lib.tabular import Table, detect_date_order, normalise, parse_date, parse_decimal, parse_identifier

PREVIEW_ROWS = 20
STREAM_EVERY = 2_000  # rows checked between two hand-overs of their items (`import_validate`'s on_items)
PROGRESS_EVERY = 250  # rows at least between two progress reports (and about 50 reports a file at most: each is a
# commit of the job row)
DEAL_WORD, CUSTOMER_WORD = gettext_lazy("deal"), gettext_lazy("customer")


def import_validate(
    *,
    table: Table,
    kind: str,
    mapping: dict[str, str],
    options: ImportOptions,
    actor: User | None,
    progress: Callable[[int], None] | None = None,
    on_items: Callable[[Plan, list[dict[str, Any]]], None] | None = None,
) -> Plan:
    """Check every row; nothing is written (except the default pipeline on a fresh database). `on_items` is
    handed the good rows' items as they are checked, a few thousand at a time (all of them by the end)."""
    mapping = check_mapping(mapping, table.headers, kind, owner_optional=options.owner_optional)
    if len(table.rows) > settings.IMPORT_MAX_ROWS:  # tables built in code; files are refused as they are read
        raise ValidationError(_("The file has more than %(max)s rows; split it.") % {"max": settings.IMPORT_MAX_ROWS})
    if not table.rows:
        raise ValidationError(_("The file has a header but no data rows."))
    columns = {name: column for column, name in mapping.items()}
    lookups = Lookups(actor=actor, options=options, kind=kind)
    day_starts_reset()
    plan = Plan(kind=kind, total_rows=len(table.rows), pipeline_id=lookups.pipeline.pk if lookups.pipeline else None)

    date_columns = [columns[n] for n in ("close_date", "created_on") if n in columns]
    order = options.date_order
    if order == "auto":
        order = detect_date_order(value for c in date_columns for value in _column(table, c)) or "auto"
    plan.date_order = order

    existing_ids = _existing_external_ids(table, columns, kind)
    validate_row = _validate_customer if kind == ImportKind.CUSTOMERS else _validate_deal
    every = max(PROGRESS_EVERY, len(table.rows) // 50)
    _MEMOS[id(plan)] = {}
    try:
        _check_rows(table, plan, validate_row, columns, lookups, kind, order, existing_ids, progress, every, on_items)
    finally:
        _MEMOS.pop(id(plan), None)
    if progress:
        progress(plan.total_rows)
    assign_codes(lookups, plan)
    if plan.already_imported == plan.total_rows:
        plan.notice = _(
            "Every id in this file already exists: the file looks already imported. Nothing will be written."
        )
    return plan


def _check_rows(
    table: Table,
    plan: Plan,
    validate_row: Callable[..., dict[str, Any] | None],
    columns: dict[str, str],
    lookups: Lookups,
    kind: str,
    order: str,
    existing_ids: set[str],
    progress: Callable[[int], None] | None,
    every: int,
    on_items: Callable[[Plan, list[dict[str, Any]]], None] | None = None,
) -> None:
    seen_ids: dict[str, int] = {}
    handed = 0  # items given to on_items so far
    seen_names: dict[str, int] = {}
    headers = table.headers
    for i, read in enumerate(table.rows, start=1):
        if read.problem:  # a ragged CSV row: its cells cannot be matched to the columns
            plan.errors.append(RowError(read.number, "", "", "", read.problem))
            continue
        row = Row(read.number, dict(zip(headers, read.values, strict=False)), columns, plan.errors)
        item = validate_row(
            row, kind, lookups, plan, order=order, existing_ids=existing_ids, seen_ids=seen_ids, seen_names=seen_names
        )
        if item is not None and not row.failed:
            plan.items.append(item)
            preview = item.pop("_preview")  # built only for the rows shown (it translates a stage's name)
            if len(plan.preview) < PREVIEW_ROWS:
                plan.preview.append(preview())
        if progress and i % every == 0:
            progress(i)
        if on_items is not None and i % STREAM_EVERY == 0 and len(plan.items) > handed:
            on_items(plan, plan.items[handed:])
            handed = len(plan.items)
    if on_items is not None and len(plan.items) > handed:
        on_items(plan, plan.items[handed:])


def _existing_external_ids(table: Table, columns: dict[str, str], kind: str) -> set[str]:
    column = columns.get("external_id")
    if not column:
        return set()
    ids: set[str] = set()
    for cell in _column(table, column):
        try:
            value = parse_identifier(cell)
        except ValueError:
            continue
        if value:
            ids.add(value)
    model = Customer if kind == ImportKind.CUSTOMERS else Opportunity
    found: set[str] = set()
    ordered = sorted(ids)
    if connection.vendor == "postgresql" and ordered:  # one query for the whole file (an array parameter)
        db_table, quote = model._meta.db_table, connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {quote(db_table)} WHERE external_id <> '' AND external_id = ANY(%s)",
                [ordered],
            )
            return {r[0] for r in cursor.fetchall()}
    for start in range(0, len(ordered), BATCH):
        found.update(
            model.objects.filter(external_id__in=ordered[start : start + BATCH]).values_list("external_id", flat=True)
        )
    return found


def _column(table: Table, column: str) -> Iterator[Any]:
    """The cells of one column, in the rows whose cells could be read (not the ragged ones)."""
    at = table.headers.index(column)
    for row in table.rows:
        if not row.problem:
            yield row.values[at] if at < len(row.values) else None


# What a row names is looked up once per distinct set of cells, not once per row: 100,000 deals name a few
# hundred reps, customers and products. A lookup is kept only when it raised no row error (a row with an error
# runs it again, so every such row gets its own error), and it depends on nothing else than the cells listed
# here and its other arguments: a resolver that reads another cell must have it added, or its lookups would be
# shared by rows that differ in that cell. A New planned by the first row is returned again, as `_match` would.
RESOLVED_BY = {
    "region": resolving.REGION_LEVELS,
    "owner": ("owner",),
    "customer": ("customer",),
    "product": ("product", "product_line", "product_subline"),
}
_MEMO_LIMIT = 200_000  # distinct keys kept at most per import (a file of unique names gains nothing past it)


def _memoised(what: str, resolve: Callable[..., Any]) -> Callable[..., Any]:
    fields = RESOLVED_BY[what]

    def memoised(row: Row, lookups: Lookups, plan: Plan, *args: Any, **kwargs: Any) -> Any:
        memo = _MEMOS.get(id(plan))
        if memo is None:
            return resolve(row, lookups, plan, *args, **kwargs)
        cells = (row.text(fields[0]),) if len(fields) == 1 else tuple(map(row.text, fields))  # as resolvers read
        key = (what, cells, args, tuple(kwargs.items())) if args or kwargs else (what, cells)
        try:
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable argument
            return resolve(row, lookups, plan, *args, **kwargs)
        errors = len(row.errors)
        result = resolve(row, lookups, plan, *args, **kwargs)
        if len(row.errors) == errors and len(memo) < _MEMO_LIMIT:
            memo[key] = result
        return result

    return memoised


_MEMOS: dict[int, dict[tuple, Any]] = {}  # by id(plan), while its import_validate runs
resolve_region = _memoised("region", resolving.resolve_region)
resolve_owner = _memoised("owner", resolving.resolve_owner)
resolve_customer = _memoised("customer", resolving.resolve_customer)
resolve_product = _memoised("product", resolving.resolve_product)


def _check_external_id(row: Row, existing_ids: set[str], seen_ids: dict[str, int], plan: Plan, what: object) -> str:
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


class _DayStarts(threading.local):
    """Per thread: the start of each day seen, for the time zone they were computed in."""

    zone: tzinfo | None = None
    starts: dict[date, datetime]


_DAY_STARTS = _DayStarts()


def day_starts_reset() -> None:
    """Before an import's rows: day_start() then answers in the time zone active now (looked up once, not per
    row: it costs more than the rest of a row's dates)."""
    zone = timezone.get_current_timezone()
    if _DAY_STARTS.zone != zone or len(_DAY_STARTS.starts) > 10_000:
        _DAY_STARTS.zone, _DAY_STARTS.starts = zone, {}


def day_start(day: date) -> datetime:
    """The start of a day in the time zone of the import (`day_starts_reset`), an aware datetime: how imported
    dates are kept."""
    start = _DAY_STARTS.starts.get(day) if _DAY_STARTS.zone is not None else None
    if start is None:
        if _DAY_STARTS.zone is None:
            day_starts_reset()
        start = _DAY_STARTS.starts[day] = timezone.make_aware(
            datetime.combine(day, datetime.min.time()), _DAY_STARTS.zone
        )
    return start


# Parsed cells, by type too (True == 1, but True is no date): a file has a few hundred distinct days.
_DATES: dict[tuple[type, Any, str], date | None] = {}


def parse_amount(value: Any) -> tuple[Decimal | None, bool]:
    """(the amount rounded half up to the cent, whether rounding changed it: "22.368" -> 22.37, True;
    "261.9600" -> 261.96, False). `parse_decimal` rounds with `quantize`, which flags Inexact exactly when
    non-zero digits were dropped."""
    with localcontext() as context:
        context.clear_flags()
        amount = parse_decimal(value)
        return amount, bool(context.flags[Inexact])


def _parse_date(row: Row, name: str, order: str) -> date | None:
    value = row.raw(name)
    try:
        return _DATES[type(value), value, order]
    except (KeyError, TypeError):
        pass
    try:
        day = parse_date(value, order=order)
    except ValueError as exc:
        row.error(name, exc)
        return None
    if len(_DATES) > 10_000:
        _DATES.clear()
    with contextlib.suppress(TypeError):  # an unhashable cell is not kept
        _DATES[type(value), value, order] = day
    return day


def _max_length(row: Row, name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        row.error(name, _("At most %(limit)s characters.") % {"limit": limit})
    return value


def _validate_deal(
    row: Row,
    kind: str,
    lookups: Lookups,
    plan: Plan,
    *,
    order: str,
    existing_ids: set[str],
    seen_ids: dict[str, int],
    seen_names: dict[str, int],
) -> dict[str, Any] | None:
    external_id = _check_external_id(row, existing_ids, seen_ids, plan, DEAL_WORD)
    region = resolve_region(row, lookups, plan)
    # A new rep sits in the row's region, else in the region of the (existing) customer of the deal.
    default_region = (
        region if region is not None else customer_region(lookups, known_customer(lookups, row.text("customer")))
    )
    owner = resolve_owner(row, lookups, plan, default_region=default_region)
    customer = resolve_customer(row, lookups, plan, owner=owner, region=region)
    product = resolve_product(row, lookups, plan)
    stage = resolve_stage(row, kind, lookups)
    close_date = _parse_date(row, "close_date", order)
    created_on = _parse_date(row, "created_on", order)
    try:
        amount, rounded = parse_amount(row.raw("amount"))
    except ValueError as exc:
        row.error("amount", exc)
        amount, rounded = ZERO, False
    plan.rounded_rows += rounded
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
    # 业绩归属: a deal counts for its owner's team (`pipeline.services.credited_team`); a region column names
    # where a new rep or customer sits, never where an existing rep's deal counts.
    deal_region = owner_region(lookups, owner) if owner is not None else None
    if deal_region is None and owner is not None:
        row.error(
            "owner", _("%(owner)s belongs to no team: put them in a region first.") % {"owner": row.text("owner")}
        )
    lost_reason = _max_length(row, "lost_reason", row.text("lost_reason"), 200)
    next_step = _max_length(row, "next_step", row.text("next_step"), 200)
    name = row.text("name")
    if not name:
        parts = [lookups.customer_name(customer), lookups.product_name(product)]
        name = (" · ".join(p for p in parts if p) or external_id or str(_("Imported deal")))[:200]
    name = _max_length(row, "name", name, 200)
    if row.failed or owner is None or stage is None or amount is None or rate is None:  # None: after a row error
        return None
    created_at = day_start(created_on) if created_on else None
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
        "_preview": lambda: {
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


def _validate_customer(
    row: Row,
    kind: str,
    lookups: Lookups,
    plan: Plan,
    *,
    order: str,
    existing_ids: set[str],
    seen_ids: dict[str, int],
    seen_names: dict[str, int],
) -> dict[str, Any] | None:
    external_id = _check_external_id(row, existing_ids, seen_ids, plan, CUSTOMER_WORD)
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
    region = resolve_region(row, lookups, plan)
    owner = resolve_owner(row, lookups, plan, default_region=region)
    if region is None and owner is not None:
        region = owner_region(lookups, owner)
        if region is None:
            row.error("region", _("The customer needs a region: its owner has none; map a region column."))
    industry = _max_length(row, "industry", row.text("industry"), 80)
    tier: str | None = Tier.C
    if row.text("tier"):
        tier = TIER_WORDS.get(normalise(row.text("tier")))
        if tier is None:
            row.error("tier", _("Unknown tier; use KA (大客户), A, B or C."))
    if row.failed or owner is None:  # None: after a row error
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
        "_preview": lambda: {
            "row": row.number,
            "cells": [name, lookups.user_name(owner), lookups.region_name(region), industry, tier],
            "new": [what for what, ref in (("owner", owner), ("region", region)) if isinstance(ref, New)],
        },
    }
