"""Writing a checked plan in one transaction: the planned regions, product lines, products, reps and customers
(`creating`), then the bulk-created customers or deals with the rows `pipeline.services.opportunity_create` would
leave."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
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
from salesmgmt import freshness


@transaction.atomic
def import_apply(
    *, plan: Plan, actor: User | None, job: ImportJob | None = None, deals: DealWriter | None = None
) -> dict[str, int]:
    """Write a checked plan in one transaction; returns what was created, by kind. `deals`: the writer that has
    written some of the file's deals already in this transaction (a streamed commit, `jobs._commit`); the plan's
    deals are added to them."""
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
        created["opportunities"] = _apply_deals(plan, actor, job, deals)
        if created["opportunities"]:
            # Many deals at once: attainment is rebuilt from the facts (after commit), not deal by deal.
            events.import_committed.publish()
    if job is not None:
        audit(actor=actor, action="import.commit", obj=job, changes={k: [None, v] for k, v in created.items() if v})
    return {k: v for k, v in created.items() if v}


# Deals are written this many at a time (each chunk: the deals, then their lines and stage history), and the job's
# progress moves after each chunk. Small enough that a streamed commit (`jobs.DealStream`) writes while it checks.
CHUNK = 2_500


def _apply_deals(plan: Plan, actor: User | None, job: ImportJob | None, deals: DealWriter | None = None) -> int:
    """The deals of the plan (after those `deals` has written already, when given): see `DealWriter`."""
    if deals is None:
        deals = DealWriter(pipeline_id=plan.pipeline_id, actor=actor, job=job, expected=len(plan.items))
    try:
        deals.write(plan.items)
        return deals.finish()
    finally:
        deals.close()


class DealWriter:
    """Writes deals and, for each, what `opportunity_create` leaves: its product line and its stage-history row, a
    chunk at a time without model objects (COPY on PostgreSQL), in the transaction of the thread that made it. A
    closed deal's stage change is dated at its close date (the day it was won or lost), not at its creation or the
    import. `write` as often as items come (the commit of a job streams them as they are checked), then `finish`
    (and `close` in any case).

    The audit: a job's deals are named by one audit row of the job ("opportunity.import": how many, and their ids
    as runs), not one row each (a row, its JSON and its two foreign-key checks were a seventh of the database's
    work per deal); without a job (the import commands) each deal has its "opportunity.create" row, as
    `opportunity_create` writes.

    On PostgreSQL the chunks are written on a second thread over this thread's connection: while the database
    inserts a chunk and checks its foreign keys, this thread builds the rows of the next one."""

    def __init__(self, *, pipeline_id: int | None, actor: User | None, job: ImportJob | None, expected: int):
        assert pipeline_id is not None  # a deal import's plan names its pipeline
        ensure_company_currency()
        day_starts_reset()
        self.pipeline_id = pipeline_id
        self.actor, self.job = actor, job
        self.actor_id = actor.pk if actor is not None else None
        self.now = timezone.now()
        self.opportunity_type_id = ContentType.objects.get_for_model(Opportunity).pk
        self.line_of: dict[int, int] = {}  # product id -> its line id
        self.stages: dict[int, tuple[str, bool]] = {}  # stage id -> (history value, won)
        self.won_customers: set[int] = set()
        self.expected = expected  # deals to come, about: ids are taken for at most a chunk of them ahead
        self.buffer: list[dict[str, Any]] = []
        self.ids: list[int] = []  # of the deals written
        self.written = 0
        self.db = connections[DEFAULT_DB_ALIAS]  # this thread's connection, in the import's transaction
        self.next_ids = self._take_ids()
        self.writer = _Writer(self.db)
        if job is not None:
            report_written(job.pk, 0)  # not what an earlier, failed run of the job left

    def _take_ids(self) -> list[int] | None:
        return _new_ids(self.db, Opportunity, min(CHUNK, self.expected - len(self.ids)))

    def write(self, items: Sequence[dict[str, Any]]) -> None:
        self.buffer.extend(items)
        while len(self.buffer) >= CHUNK:
            chunk, self.buffer = self.buffer[:CHUNK], self.buffer[CHUNK:]
            self._chunk(chunk)

    def finish(self) -> int:
        """Write what is left, wait for the writes, audit; returns how many deals were written."""
        if self.buffer:
            chunk, self.buffer = self.buffer, []
            self._chunk(chunk)
        self._wait()
        job = self.job
        if job is not None and self.written:
            audit(
                actor=self.actor,
                action="opportunity.import",
                obj=job,
                changes={"opportunities": [None, self.written], "ids": _ranges(self.ids)},
            )
        won = sorted(self.won_customers)
        for start in range(0, len(won), FIRST_WON_BATCH):
            customer_refresh_first_won(won[start : start + FIRST_WON_BATCH])
        return self.written

    def close(self) -> None:
        self.writer.close()

    def _wait(self) -> None:
        self.writer.wait()
        if self.job is not None and self.writer.done > self.written:
            report_written(self.job.pk, self.writer.done)
        self.written = self.writer.done

    def _chunk(self, chunk: list[dict[str, Any]]) -> None:
        missing = {ref_pk(i["product"]) for i in chunk if i["product"] is not None} - self.line_of.keys()
        if missing:
            self._wait()  # the connection is free
            self.line_of.update(Product.objects.filter(pk__in=missing).values_list("id", "line_id"))
        ids: list[int] | None = None
        if self.next_ids is not None:
            if len(self.next_ids) < len(chunk):  # more deals than expected
                self._wait()
                self.next_ids += _new_ids(self.db, Opportunity, len(chunk) - len(self.next_ids)) or []
            ids, self.next_ids = self.next_ids[: len(chunk)], self.next_ids[len(chunk) :]
        deals, lines, history, audits = self._rows(chunk, ids)
        # This chunk's rows were built while the one before was written: once that is done (and reported, while
        # the connection is free), this one goes.
        self._wait()
        if ids is None:  # not PostgreSQL: the rows that need the deal's id are made once it is written
            ids = bulk_insert(Opportunity, DEAL_COLUMNS, deals, now=self.now, ids=True)
            lines, history, audits = self._dependents(chunk, ids, deals)
            deals = []
        self.ids.extend(ids)
        if self.next_ids is not None and not self.next_ids and len(self.ids) < self.expected:
            self.next_ids = self._take_ids()
        self.writer.submit(self.now, ids, deals, lines, history, audits)

    def _rows(self, chunk: list[dict[str, Any]], ids: list[int] | None) -> tuple[list, list, list, list]:
        stages, pipeline_id, now = self.stages, self.pipeline_id, self.now
        deals: list[tuple] = []
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
            customer_id = ref_pk(item["customer"])
            if customer_id is not None and stages[stage.pk][1]:
                self.won_customers.add(customer_id)
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
        if ids is None:
            return deals, [], [], []
        return (deals, *self._dependents(chunk, ids, deals))

    def _dependents(
        self, chunk: list[dict[str, Any]], ids: list[int], deals: list[tuple] | None = None
    ) -> tuple[list, list, list]:
        """The line, stage-history row (and without a job, audit row) of each deal."""
        if deals is None:
            deals = self._rows(chunk, None)[0]
        one, actor_id, line_of, stages = Decimal(1), self.actor_id, self.line_of, self.stages
        with_audit = self.job is None
        lines, history, audits = [], [], []
        for item, deal, pk in zip(chunk, deals, ids, strict=True):
            amount, stage_id = deal[6], deal[5]
            if item["product"] is not None:
                product_id = ref_pk(item["product"])
                lines.append((pk, line_of[product_id], product_id, one, amount, deal[8]))
            history.append((pk, "stage", "", stages[stage_id][0], stage_id, actor_id, deal[17]))
            if with_audit:
                audits.append((actor_id, "opportunity.create", self.opportunity_type_id, str(pk), _amount_json(amount)))
        return lines, history, audits


def _amount_json(amount: Decimal) -> dict[str, Any]:
    return {"amount": [None, str(amount)]}


def _ranges(ids: Sequence[int]) -> list[list[int]]:
    """Ids as [first, last] runs of consecutive ids: [3, 4, 5, 9] -> [[3, 5], [9, 9]]."""
    runs: list[list[int]] = []
    for pk in sorted(ids):
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


class _Writer:
    """Writes chunks of rows (deals, lines, history, audit) in order, on PostgreSQL on one worker thread over the
    importing thread's connection (shared for the time of the import: Django allows it once told), elsewhere at
    once. The importing thread uses the connection only while no chunk is being written (`wait`)."""

    def __init__(self, db: BaseDatabaseWrapper):
        self.db = db
        self.done = 0
        self.pending: list[Future[int]] = []
        self.pool: ThreadPoolExecutor | None = None
        if db.vendor == "postgresql":
            db.inc_thread_sharing()
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")

    def submit(self, now: datetime, ids: list[int], deals: list, lines: list, history: list, audits: list) -> None:
        if self.pool is None:
            self.done += self._write(now, ids, deals, lines, history, audits)
        else:
            self.pending.append(self.pool.submit(self._write, now, ids, deals, lines, history, audits))

    def wait(self) -> None:
        """Until every chunk submitted is written; a failed chunk's error is raised here."""
        while self.pending:
            self.done += self.pending.pop(0).result()

    def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            for future in self.pending:  # after an error: the chunks under way end before the rollback
                future.cancel()
            pool.shutdown(wait=True)
            self.pending = []
            self.db.dec_thread_sharing()

    def _write(self, now: datetime, ids: list[int], deals: list, lines: list, history: list, audits: list) -> int:
        db = self.db
        if deals:
            bulk_insert(Opportunity, DEAL_COLUMNS, deals, now=now, ids=ids, db=db)
        bulk_insert(OpportunityLine, LINE_COLUMNS, lines, now=now, db=db)
        bulk_insert(OpportunityHistory, HISTORY_COLUMNS, history, now=now, db=db)
        bulk_insert(AuditLog, AUDIT_COLUMNS, audits, now=now, db=db)
        _check_foreign_keys(db)
        return len(ids)


def _check_foreign_keys(db: BaseDatabaseWrapper) -> None:
    """Check the foreign keys of what was written so far now, not all at commit (Django's are deferred): the
    progress after each chunk then includes that work, a good half of the database's. Nothing else changes: the
    constraints are deferred again, and a violation still rolls the whole import back."""
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _new_ids(db: BaseDatabaseWrapper, model: type[Model], n: int) -> list[int] | None:
    """`n` new ids from the table's sequence (PostgreSQL), in one query; None elsewhere (the ids come as the rows
    are inserted)."""
    if db.vendor != "postgresql":
        return None
    if n <= 0:
        return []
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, n],
        )
        return [r[0] for r in cursor.fetchall()]


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
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    now: datetime,
    ids: bool | Sequence[int] = False,
    db: BaseDatabaseWrapper | None = None,
) -> list[int]:
    """Insert rows (tuples of `columns`, Python values; the other columns get their defaults) as fast as the
    database allows: on PostgreSQL one COPY, with the ids taken from the table's sequence first when `ids` is True
    (or the given ids: one per row, from `_new_ids`), elsewhere bulk_create. Returns the new ids in the order of
    `rows` when `ids` is set."""
    if not rows:
        return []
    db = db if db is not None else connections[DEFAULT_DB_ALIAS]
    defaults = _defaults(model, columns, now)
    if db.vendor != "postgresql":
        objects = [model(**dict(zip(columns, row, strict=True)), **defaults) for row in rows]
        model._default_manager.bulk_create(objects, batch_size=BATCH)
        return [o.pk for o in objects] if ids else []
    meta = model._meta
    fields = {f.attname: f for f in meta.concrete_fields}
    encoders = {c: f.encoder for c, f in fields.items() if isinstance(f, JSONField)}
    json_at = [i for i, c in enumerate(columns) if c in encoders]
    extra = tuple(json.dumps(v, cls=encoders[c]) if c in encoders else v for c, v in defaults.items())
    names = [str(fields[c].column) for c in (*columns, *defaults)]
    quote = db.ops.quote_name
    new_ids: list[int] = []
    if ids is True:
        new_ids = _new_ids(db, model, len(rows)) or []
    elif ids:
        new_ids = list(ids)
        if len(new_ids) != len(rows):
            raise ValueError("One id per row.")
    with db.cursor() as cursor:
        if ids:
            names.insert(0, str(meta.pk.column))
        sql = f"COPY {quote(meta.db_table)} ({', '.join(map(quote, names))}) FROM STDIN"
        if json_at:  # JSON as its text: COPY parses it into the jsonb column
            rows = [_json_cells(row, json_at, [encoders[columns[i]] for i in json_at]) for row in rows]
        freshness.changed_on(db)  # COPY passes by the statement wrapper: every cached page is stale after the commit
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
