"""The browser wizard's ImportJob from upload to commit: keep the file and a guessed mapping, check it with the
chosen mapping and options, then queue the commit, which checks again and writes, with progress on the job."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, BinaryIO, cast

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.models import User
from pipeline.importing.checking import PREVIEW_ROWS, import_validate
from pipeline.importing.fields import check_mapping, fields_for, guess_mapping
from pipeline.importing.plan import ImportOptions, New, Plan
from pipeline.importing.rejected import rejected_file_name, rejected_rows_file
from pipeline.importing.writing import DealWriter, import_apply
from pipeline.models import ImportJob, ImportKind, ImportStatus
from pipeline.tasks import import_commit
from salesmgmt import outbox
from salesmgmt.lib.tabular import Limits, Table, TabularError, read_table

logger = logging.getLogger(__name__)

MAX_STORED_ERRORS = 1000


def can_import(user: User | AnonymousUser | None) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_manager_or_above)


def _check_may_import(actor: User | None) -> None:
    if not can_import(actor):
        raise PermissionDenied(_("Only managers, directors and admins may import data."))


def read_upload(
    data: bytes | BinaryIO,
    name: str,
    *,
    limit: int | None = None,
    count_all: bool = False,
    check_headers: Callable[[list[str]], None] | None = None,
) -> Table:
    """The file read within the import limits of settings.py (IMPORT_MAX_BYTES, _ROWS, _COLUMNS), stopping at
    the first one crossed. ValidationError when it cannot be read or crosses a limit."""
    try:
        return read_table(
            data, name, limit=limit, limits=Limits.from_settings(), count_all=count_all, check_headers=check_headers
        )
    except TabularError as exc:
        raise ValidationError(str(exc))


def import_job_table(
    job: ImportJob, *, limit: int | None = None, check_headers: Callable[[list[str]], None] | None = None
) -> Table:
    with job.file.open("rb") as handle:  # a FieldFile: it passes reads and seeks on to the open file
        return read_upload(cast(BinaryIO, handle), job.original_name, limit=limit, check_headers=check_headers)


def import_job_create(*, kind: str, data: bytes, filename: str, actor: User) -> ImportJob:
    """Step 1: keep the uploaded file and guess the mapping. A file that cannot be read is refused."""
    _check_may_import(actor)
    fields_for(kind)
    # Every row is counted (cheap) so a file over the row limit is refused here, not after the mapping.
    table = read_upload(data, filename, limit=PREVIEW_ROWS, count_all=True)
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


def import_job_validate(*, job: ImportJob, mapping: dict[str, str], options: dict, actor: User) -> Plan:
    """Steps 2-3: save the mapping and options, check every row, keep the errors and a preview on the job."""
    _check_may_import(actor)
    if job.status not in EDITABLE_STATUSES:
        raise ValidationError(_("This import has already run; upload the file again to start over."))
    checked: dict[str, str] = {}

    # Before any data row is read: a required field left unmapped costs nothing.
    opts = ImportOptions.from_dict(options)

    def check_headers(headers: list[str]) -> None:
        checked.update(check_mapping(mapping, headers, job.kind, owner_optional=opts.owner_optional))

    table = import_job_table(job, check_headers=check_headers)
    mapping = check_mapping(checked, table.headers, job.kind, owner_optional=opts.owner_optional)
    job.mapping, job.options, job.status = mapping, opts.to_dict(), ImportStatus.MAPPED
    job.save(update_fields=["mapping", "options", "status"])
    plan = import_validate(table=table, kind=job.kind, mapping=mapping, options=opts, actor=actor)
    job.status = ImportStatus.VALIDATED
    job.total_rows = plan.total_rows
    job.processed_rows = 0
    _keep_errors(job, plan)
    # A partial import creates only what its good rows need: the preview says so.
    kept = plan.good_rows_only() if opts.skip_bad_rows else plan
    job.result = {
        "preview": _jsonable(plan.preview),
        "will_create": kept.will_create,
        "to_create": kept.to_create(),
        "date_order": plan.date_order,
        "notice": plan.notice,
        "rounded_rows": plan.rounded_rows,
        "good_rows": len(plan.items),
        "rejected_rows": len(plan.rejected_rows()),
    }
    job.save(update_fields=["status", "total_rows", "processed_rows", "error_count", "errors", "result"])
    return plan


def _keep_errors(job: ImportJob, plan: Plan) -> None:
    job.errors = [e.as_dict() for e in plan.errors[:MAX_STORED_ERRORS]]
    job.error_count = len(plan.errors)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value)
    return value


def import_job_start(*, job: ImportJob, actor: User) -> None:
    """Step 4: queue the commit of a checked job without errors (runs at once without a broker)."""
    _check_may_import(actor)
    if job.status != ImportStatus.VALIDATED:
        raise ValidationError(_("Only a checked import can be started."))
    if job.error_count and not ImportOptions.from_dict(job.options).skip_bad_rows:
        raise ValidationError(
            _("Fix the %(n)s errors first: a file with bad rows is never imported.") % {"n": job.error_count}
        )
    if job.error_count and not (job.result or {}).get("good_rows"):
        raise ValidationError(_("Every row has errors: there is nothing to import."))
    if (job.result or {}).pop("queue_error", None):
        job.save(update_fields=["result"])
    # Through the outbox like all background work: sent after commit and, if the broker is down, sent
    # again by the flush job, so the import starts (and its progress page stops waiting) once it is back.
    outbox.enqueue_name(import_commit.name, job.pk)


def _set_progress(job_id: int, n: int) -> None:
    ImportJob.objects.filter(pk=job_id).update(processed_rows=n)


# The first key of the PostgreSQL advisory locks held while an import commits (the second is the job's id).
COMMIT_LOCK = 7_301_001


@contextmanager
def _committing_alone(job_id: int) -> Iterator[bool]:
    """Whether this process alone commits the job: on PostgreSQL a session advisory lock held for the commit,
    released by the database when the process dies. A redelivered commit task (its worker was killed: Celery
    gives the message to another worker, `acks_late`) then finds a job still RUNNING with no lock held and takes
    it over; while the first worker lives, the lock keeps a duplicate delivery out. (Needs session-level
    connections: PgBouncer in session mode, not transaction mode.)"""
    if connection.vendor != "postgresql":
        yield True  # development: tasks run in-process, one at a time
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [COMMIT_LOCK, job_id])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [COMMIT_LOCK, job_id])


def import_job_commit(*, job_id: int) -> ImportJob | None:
    """The commit task's body: claim the job (a job done or failed, or running in another live worker, is left
    alone), check every row again (data may have changed since the preview) with progress, then write in one
    transaction. Any failure leaves nothing written and the job FAILED with the message. A job left RUNNING by a
    worker that died is taken over (its transaction rolled back: nothing of it was written)."""
    with _committing_alone(job_id) as alone:
        if not alone:
            return ImportJob.objects.filter(pk=job_id).first()
        claimable = [ImportStatus.VALIDATED]
        if connection.vendor == "postgresql":
            claimable.append(ImportStatus.RUNNING)  # nobody holds its lock: its worker died
        # A job with bad rows is committed only as a partial import (its options say so).
        claimed = (
            ImportJob.objects.filter(pk=job_id, status__in=claimable)
            .filter(Q(error_count=0) | Q(options__skip_bad_rows=True))
            .update(status=ImportStatus.RUNNING, processed_rows=0)
        )
        job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
        if not claimed or job is None:
            return job
        return _commit(job)


# Off: measured slower. On a lightly loaded 2-core machine (load 4-5) 20,000 deals committed at 2,306 rows/s streamed
# against 3,625 checked then written (XLSX 1,994 against 2,980): the checking thread and the writing threads share
# one GIL, and the check took three times as long. Kept, tested, for a Python without a GIL or a check moved to
# another process (`bench_import_speed` with BENCH_IMPORT_STREAM=1 measures it).
STREAM = False


def may_stream(job: ImportJob) -> bool:
    """Whether a commit writes the deals while it checks the rows (`DealStream`): when STREAM is on, on PostgreSQL,
    for deals, when the commit is not inside a transaction already (a test's: the stream's own connection could not
    see its data)."""
    return (
        STREAM
        and job.kind != ImportKind.CUSTOMERS
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


class DealStream:
    """The deals of a commit written while its rows are checked: the checked rows' deals go to a thread that writes
    them in a transaction of its own connection, so the database inserts (and checks the foreign keys of) what is
    checked while this thread checks the next rows, the two processors busy at once. The import stays one
    transaction: the thread commits only once every row is checked and the rest of the plan applied
    (`import_apply`: what the file creates, the deals that name it, the audit), and rolls everything back when
    the check fails the file or anything raises. A deal naming something the file creates waits for the rest."""

    STREAMED = ("customer", "owner", "region", "product")  # a deal whose refs are all existing records streams
    WAIT = 0.5  # seconds between two looks at whether the writing thread is still there, while the queue is full

    def __init__(self, job: ImportJob):
        self.job = job
        self.held: list[dict] = []  # the deals naming a record the file creates: written with the rest of the plan
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4)  # a few thousand rows each at most
        self.result: dict[str, int] | None = None
        self.error: BaseException | None = None
        self.zone, self.language = timezone.get_current_timezone(), translation.get_language()
        self.thread = threading.Thread(target=self._run, name=f"import-{job.pk}", daemon=True)
        self.thread.start()

    def feed(self, plan: Plan, items: list[dict]) -> None:
        streamed = []
        for item in items:
            if any(isinstance(item[k], New) for k in self.STREAMED):
                self.held.append(item)
            else:
                streamed.append(item)
        if streamed:
            self._put(("deals", (plan.pipeline_id, plan.total_rows, streamed)))

    def apply(self, plan: Plan) -> dict[str, int]:
        """Write the rest of the plan and commit; what was created (as `import_apply` returns), or its error."""
        self._put(("apply", replace(plan, items=self.held)))
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def abort(self) -> None:
        """Roll back whatever was written (after an error here); once done, nothing."""
        with contextlib.suppress(queue.Empty):
            while True:  # the deals not written yet never will be
                self.queue.get_nowait()
        while self.thread.is_alive():
            try:
                self.queue.put(("abort", None), timeout=self.WAIT)
                break
            except queue.Full:
                continue
        self.thread.join()

    def _put(self, message: tuple[str, Any]) -> None:
        while True:
            if not self.thread.is_alive():  # it failed: its error says why
                raise self.error if self.error is not None else RuntimeError(_("The import's writing thread stopped."))
            try:
                self.queue.put(message, timeout=self.WAIT)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        timezone.activate(self.zone)
        translation.activate(self.language)
        job, actor = self.job, self.job.created_by
        deals: DealWriter | None = None
        try:
            with transaction.atomic():
                try:
                    while True:
                        what, payload = self.queue.get()
                        if what == "deals":
                            pipeline_id, expected, items = payload
                            if deals is None:
                                deals = DealWriter(pipeline_id=pipeline_id, actor=actor, job=job, expected=expected)
                            deals.write(items)
                        elif what == "apply":
                            self.result = import_apply(plan=payload, actor=actor, job=job, deals=deals)
                            break
                        else:
                            raise _Aborted()
                finally:
                    if deals is not None:  # its writes end inside the transaction, so they roll back with it
                        deals.close()
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the checking thread, which fails the job with it
            self.error = exc
        finally:
            connections.close_all()  # this thread's own connection


class _Aborted(Exception):
    pass


def _commit(job: ImportJob) -> ImportJob:
    stream = DealStream(job) if may_stream(job) else None
    try:
        return _check_and_write(job, stream)
    finally:
        if stream is not None:
            stream.abort()  # when it did not commit (an error, or the process stopped): roll it back


def _check_and_write(job: ImportJob, stream: DealStream | None) -> ImportJob:
    job_id = job.pk
    try:
        table = import_job_table(job)
        options = ImportOptions.from_dict(job.options)
        plan = import_validate(
            table=table,
            kind=job.kind,
            mapping=job.mapping,
            options=options,
            actor=job.created_by,
            progress=lambda n: _set_progress(job_id, n),
            on_items=stream.feed if stream is not None else None,
        )
        rejected = plan.rejected_rows()
        rejected_file = b""
        if plan.errors:
            _keep_errors(job, plan)
            if not options.skip_bad_rows:
                raise ValidationError(
                    _("The data changed since the preview: %(n)s rows now have errors. Nothing was imported.")
                    % {"n": len(plan.errors)}
                )
            if not plan.items:
                raise ValidationError(_("Every row has errors: nothing was imported."))
            # Partial import: the good rows in one transaction, the bad ones (and whatever only they would
            # have created) left out and handed back as a file.
            rejected_file = rejected_rows_file(table, rejected)
            plan = plan.good_rows_only()
        if stream is not None:
            created = stream.apply(plan)
        else:
            created = import_apply(plan=plan, actor=job.created_by, job=job)
    except Exception as exc:  # any failure: the transaction rolled back; show why on the job
        if stream is not None:
            stream.abort()
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
    job.result = {
        "created": created,
        "date_order": plan.date_order,
        "imported_rows": len(plan.items),
        "rejected_rows": len(rejected),
        "rounded_rows": plan.rounded_rows,
    }
    job.finished_at = timezone.now()
    fields = ["status", "processed_rows", "total_rows", "result", "finished_at", "errors", "error_count"]
    if rejected_file:
        name = rejected_file_name(job.original_name, table.format)
        job.rejected_file.save(name, ContentFile(rejected_file), save=False)
        fields.append("rejected_file")
    job.save(update_fields=fields)
    return job
