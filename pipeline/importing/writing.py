"""Writing a checked plan in one transaction: the planned regions, product lines, products, reps and customers
(`creating`), then the bulk-created customers or deals with the rows `pipeline.services.opportunity_create` would
leave."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection, transaction
from django.db.models import JSONField, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import AuditLog, Customer, Product, User
from crm.services import audit, ensure_company_currency
from pipeline import events
from pipeline.importing.checking import day_start, day_starts_reset
from pipeline.importing.creating import create_missing, customers_create
from pipeline.importing.plan import BATCH, Plan, ref_pk
from pipeline.models import ImportJob, ImportKind, ImportStatus, Opportunity, OpportunityHistory, OpportunityLine, Stage
from pipeline.services import customer_refresh_first_won


@transaction.atomic
def import_apply(*, plan: Plan, actor: User | None, job: ImportJob | None = None) -> dict[str, int]:
    """Write a checked plan in one transaction; returns what was created, by kind."""
    if plan.errors:
        raise ValidationError(_("The file has %(n)s errors; nothing was imported.") % {"n": len(plan.errors)})
    actor = actor if getattr(actor, "pk", None) else None
    created = create_missing(plan=plan, actor=actor, job=job)
    if plan.kind == ImportKind.CUSTOMERS:
        customers = [
            Customer(
                name=item["name"],
                owner_id=ref_pk(item["owner"]),
                region_id=ref_pk(item["region"]),
                industry=item["industry"],
                tier=item["tier"],
                notes=item["notes"],
                external_id=item["external_id"],
            )
            for item in plan.items
        ]
        customers_create(customers, actor=actor, job=job)
        created["customers"] += len(customers)
    else:
        created["opportunities"] = _apply_deals(plan, actor, job)
        if created["opportunities"]:
            # Many deals at once: attainment is rebuilt from the facts (after commit), not deal by deal.
            events.import_committed.publish()
    if job is not None:
        audit(actor=actor, action="import.commit", obj=job, changes={k: [None, v] for k, v in created.items() if v})
    return {k: v for k, v in created.items() if v}


# Deals are written this many at a time (each chunk: the deals, then their lines, stage history and audit rows), and
# the job's progress moves after each chunk.
CHUNK = 10_000


def _apply_deals(plan: Plan, actor: User | None, job: ImportJob | None) -> int:
    """The deals of the plan and, for each, what `opportunity_create` leaves: its product line, its stage-history
    row and its audit row, written a chunk at a time without model objects (COPY on PostgreSQL). A closed deal's
    stage change is dated at its close date (the day it was won or lost), not at its creation or the import."""
    ensure_company_currency()
    day_starts_reset()
    pipeline_id = plan.pipeline_id
    assert pipeline_id is not None  # a deal import's plan names its pipeline
    now = timezone.now()
    line_of = dict(
        Product.objects.filter(
            pk__in={ref_pk(i["product"]) for i in plan.items if i["product"] is not None}
        ).values_list("id", "line_id")
    )
    opportunity_type_id = ContentType.objects.get_for_model(Opportunity).pk
    actor_id = actor.pk if actor is not None else None
    stages: dict[int, tuple[str, bool]] = {}  # stage id -> (history value, won)
    one = Decimal(1)
    won_customers: set[int] = set()
    written = 0
    if job is not None:
        report_written(job.pk, 0)  # not what an earlier, failed run of the job left
    tag = {"import_job": job.pk} if job is not None else {}

    def changes(amount: Decimal) -> dict[str, Any]:
        return {"amount": [None, str(amount)], **tag}

    for start in range(0, len(plan.items), CHUNK):
        chunk = plan.items[start : start + CHUNK]
        deals, entered = [], []
        for item in chunk:
            stage: Stage = item["stage"]
            if stage.pk not in stages:
                stages[stage.pk] = (stage.name[:200], stage.is_won)
            closed_on = item["closed_on"]
            created_at = item["created_at"]
            if closed_on is not None:
                at = day_start(closed_on)
                created_at = created_at or at  # a deal closed long ago was not created today
            else:
                at = created_at = created_at or now
            entered.append(at)
            customer_id = ref_pk(item["customer"])
            if customer_id is not None and stages[stage.pk][1]:
                won_customers.add(customer_id)
            deals.append(
                (
                    item["name"],
                    customer_id,
                    ref_pk(item["owner"]),
                    ref_pk(item["region"]),
                    pipeline_id,
                    stage.pk,
                    item["amount"],
                    item["currency"],
                    item["amount_company"],
                    item["expected_close_date"],
                    closed_on,
                    stage.probability,
                    stage.forecast_category,
                    item["lost_reason"],
                    item["next_step"],
                    item["external_id"],
                    created_at,
                    at,
                )
            )
        ids = bulk_insert(Opportunity, DEAL_COLUMNS, deals, now=now, ids=True)
        lines, history, audits = [], [], []
        for item, deal, pk, at in zip(chunk, deals, ids, entered, strict=True):
            amount, amount_company, stage_id = deal[6], deal[8], deal[5]
            if item["product"] is not None:
                product_id = ref_pk(item["product"])
                lines.append((pk, line_of[product_id], product_id, one, amount, amount_company))
            history.append((pk, "stage", "", stages[stage_id][0], stage_id, actor_id, at))
            audits.append((actor_id, "opportunity.create", opportunity_type_id, str(pk), changes(amount)))
        bulk_insert(OpportunityLine, LINE_COLUMNS, lines, now=now)
        bulk_insert(OpportunityHistory, HISTORY_COLUMNS, history, now=now)
        bulk_insert(AuditLog, AUDIT_COLUMNS, audits, now=now)
        _check_foreign_keys()
        written += len(chunk)
        if job is not None:
            report_written(job.pk, written)
    won = sorted(won_customers)
    for start in range(0, len(won), FIRST_WON_BATCH):
        customer_refresh_first_won(won[start : start + FIRST_WON_BATCH])
    return written


def _check_foreign_keys() -> None:
    """Check the foreign keys of what was written so far now, not all at commit (Django's are deferred): the
    progress after each chunk then includes that work, a good half of the database's. Nothing else changes: the
    constraints are deferred again, and a violation still rolls the whole import back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


FIRST_WON_BATCH = 5_000
DEAL_COLUMNS = (
    "name",
    "customer_id",
    "owner_id",
    "region_id",
    "pipeline_id",
    "stage_id",
    "amount",
    "currency_id",
    "amount_company",
    "expected_close_date",
    "closed_on",
    "probability",
    "forecast_category",
    "lost_reason",
    "next_step",
    "external_id",
    "created_at",
    "stage_entered_at",
)
LINE_COLUMNS = ("opportunity_id", "product_line_id", "product_id", "quantity", "amount", "amount_company")
HISTORY_COLUMNS = ("opportunity_id", "field", "old_value", "new_value", "new_stage_id", "changed_by_id", "changed_at")
AUDIT_COLUMNS = ("actor_id", "action", "content_type_id", "object_id", "changes")


def _defaults(model: type[Model], given: Sequence[str], now: datetime) -> dict[str, Any]:
    """What the model's other columns hold when a row is created (defaults, "" for blank text, `now` for
    auto_now): one value each, for every row."""
    defaults: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.primary_key or f.attname in given:
            continue
        value = now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
        if value is None and not f.null:
            raise ImproperlyConfigured(f"{model.__name__}.{f.attname} needs a value in a bulk insert.")
        defaults[f.attname] = value
    return defaults


def bulk_insert(
    model: type[Model], columns: Sequence[str], rows: Sequence[tuple], *, now: datetime, ids: bool = False
) -> list[int]:
    """Insert rows (tuples of `columns`, Python values; the other columns get their defaults) as fast as the
    database allows: on PostgreSQL one COPY with the ids taken from the table's sequence first (when `ids`),
    elsewhere bulk_create. Returns the new ids in the order of `rows` when `ids` is set."""
    if not rows:
        return []
    defaults = _defaults(model, columns, now)
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(columns, row, strict=True)), **defaults) for row in rows]
        model._default_manager.bulk_create(objects, batch_size=BATCH)
        return [o.pk for o in objects] if ids else []
    meta = model._meta
    fields = {f.attname: f for f in meta.concrete_fields}
    encoders = {c: f.encoder for c, f in fields.items() if isinstance(f, JSONField)}
    json_at = [i for i, c in enumerate(columns) if c in encoders]
    extra = tuple(json.dumps(v, cls=encoders[c]) if c in encoders else v for c, v in defaults.items())
    names = [str(fields[c].column) for c in (*columns, *defaults)]
    quote = connection.ops.quote_name
    new_ids: list[int] = []
    with connection.cursor() as cursor:
        if ids:
            names.insert(0, str(meta.pk.column))
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            new_ids = [r[0] for r in cursor.fetchall()]
        sql = f"COPY {quote(meta.db_table)} ({', '.join(map(quote, names))}) FROM STDIN"
        if json_at:  # JSON as its text: COPY parses it into the jsonb column
            rows = [_json_cells(row, json_at, [encoders[columns[i]] for i in json_at]) for row in rows]
        with cursor.copy(sql) as copy:
            write = copy.write_row
            if ids:
                for pk, row in zip(new_ids, rows, strict=True):
                    write((pk, *row, *extra))
            else:
                for row in rows:
                    write((*row, *extra))
    return new_ids


def _json_cells(row: tuple, at: list[int], encoders: list) -> tuple:
    cells = list(row)
    for i, encoder in zip(at, encoders, strict=True):
        cells[i] = json.dumps(cells[i], cls=encoder)
    return tuple(cells)


# How many deals of a running job are written: kept in the cache (shared by the worker and the web processes
# when Redis is configured), since the job's own row only changes when the import's transaction commits.
def _written_key(job_id: int) -> str:
    return f"import-job:{job_id}:written"


def report_written(job_id: int, n: int) -> None:
    cache.set(_written_key(job_id), n, timeout=24 * 3600)


def import_job_written(job: ImportJob) -> int | None:
    """The deals of a running import written so far, once every row is checked (inside the import's transaction,
    not committed yet); None before, after, or when not known (a cache the worker does not share)."""
    if job.status != ImportStatus.RUNNING or not job.total_rows or job.processed_rows < job.total_rows:
        return None
    return cache.get(_written_key(job.pk))
