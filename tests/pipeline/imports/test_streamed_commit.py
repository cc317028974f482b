"""A job's commit on PostgreSQL writes the deals while it checks the rows (`jobs.DealStream`: another thread, its
own connection, one transaction): every deal as the sequential commit writes it, the deals naming what the file
creates after it, and nothing at all when a row checked late fails the file.

These run with `transaction=True`: the writing thread's connection sees only committed data, so the test's rows
are committed (and flushed after each test), as in production where the commit runs in a Celery worker.
"""

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Sum

from crm.models import AuditLog, Customer
from pipeline import importing
from pipeline.importing import checking, jobs, writing
from pipeline.models import ImportJob, ImportKind, ImportStatus, Opportunity, OpportunityHistory, OpportunityLine
from tests.conftest import csv_bytes
from tests.factories import make_deal

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the streamed commit is PostgreSQL's (SQLite: one connection)"
    ),
    pytest.mark.django_db(transaction=True),
]

ROWS = 1_200
HEADER = ["Deal ID", "Customer", "Owner", "Product", "Stage", "Amount", "Close"]
MAPPING = dict(
    zip(HEADER, ["external_id", "customer", "owner", "product", "stage", "amount", "close_date"], strict=True)
)


@pytest.fixture
def small_chunks(monkeypatch):
    """Streaming on; many hand-overs and chunks for a small file; the sizes of the hand-overs, the deals held back."""
    monkeypatch.setattr(jobs, "STREAM", True)
    monkeypatch.setattr(checking, "STREAM_EVERY", 100)
    monkeypatch.setattr(writing, "CHUNK", 250)
    handed: list[int] = []
    held: list[list] = []
    feed = jobs.DealStream.feed

    def spy(self, plan, items):
        handed.append(len(items))
        held[:] = [self.held]
        return feed(self, plan, items)

    monkeypatch.setattr(jobs.DealStream, "feed", spy)
    return SimpleNamespace(handed=handed, held=held)


def rows(org, catalogue, *, new_customer_every: int = 0) -> list[list]:
    won = next(s for s in org.stages if s.is_won)
    out = []
    for i in range(ROWS):
        customer = (
            f"New customer {i // new_customer_every}" if new_customer_every and i % new_customer_every == 0 else ""
        )
        out.append(
            [
                f"S-{i:05d}",
                customer or (catalogue.acme.name if i % 2 else catalogue.huaxin.name),
                "rep",
                catalogue.server.name if i % 3 else "",
                won.name,
                f"{1000 + i}.25",
                f"2026-{1 + i % 12:02d}-15",
            ]
        )
    return out


def checked_job(org, data: bytes, **options) -> ImportJob:
    job = importing.import_job_create(kind=ImportKind.OPPORTUNITIES, data=data, filename="d.csv", actor=org.manager)
    plan = importing.import_job_validate(job=job, mapping=MAPPING, options=options, actor=org.manager)
    assert plan.errors == []
    return job


def test_a_streamed_commit_writes_every_deal_as_checked(org, catalogue, small_chunks):
    data = rows(org, catalogue)
    job = checked_job(org, csv_bytes([HEADER, *data]))
    assert jobs.may_stream(job)

    job = importing.import_job_commit(job_id=job.pk)

    assert job.status == ImportStatus.DONE, job.result
    assert job.result["created"] == {"opportunities": ROWS}
    assert sum(small_chunks.handed) == ROWS and len(small_chunks.handed) >= ROWS // 100  # while checking
    assert small_chunks.held == [[]]
    deals = Opportunity.objects.filter(external_id__startswith="S-")
    assert deals.count() == ROWS
    assert deals.aggregate(s=Sum("amount"))["s"] == sum(Decimal(r[5]) for r in data)
    assert OpportunityHistory.objects.filter(opportunity__in=deals, field="stage").count() == ROWS
    assert OpportunityLine.objects.filter(opportunity__in=deals).count() == sum(1 for r in data if r[3])
    (audit,) = AuditLog.objects.filter(action="opportunity.import", object_id=str(job.pk))
    assert {pk for first, last in audit.changes["ids"] for pk in range(first, last + 1)} == set(
        deals.values_list("pk", flat=True)
    )
    assert Customer.objects.get(pk=catalogue.acme.pk).first_won_on is not None


def test_deals_naming_a_customer_the_file_creates_follow_it(org, catalogue, small_chunks):
    data = rows(org, catalogue, new_customer_every=97)
    job = checked_job(org, csv_bytes([HEADER, *data]), create_missing=True)

    job = importing.import_job_commit(job_id=job.pk)

    assert job.status == ImportStatus.DONE, job.result
    new = Customer.objects.filter(name__startswith="New customer")
    assert job.result["created"] == {"opportunities": ROWS, "customers": new.count()} and new.count() == 13
    (held,) = small_chunks.held  # the 13 deals of new customers waited for them
    assert sorted(item["external_id"] for item in held) == [f"S-{i:05d}" for i in range(0, ROWS, 97)]
    assert Opportunity.objects.filter(customer__in=new).count() == 13


def test_a_row_failing_late_rolls_back_the_deals_already_streamed(org, catalogue, small_chunks):
    data = rows(org, catalogue)
    job = checked_job(org, csv_bytes([HEADER, *data]))
    deal = make_deal(owner=org.rep)  # after the preview: the last row is now already imported
    Opportunity.objects.filter(pk=deal.pk).update(external_id=data[-1][0])

    job = importing.import_job_commit(job_id=job.pk)

    assert job.status == ImportStatus.FAILED
    assert "Nothing was imported" in job.result["message"]
    assert sum(small_chunks.handed) == ROWS - 1 and small_chunks.held == [[]]  # streamed, then rolled back
    assert Opportunity.objects.filter(external_id__startswith="S-").count() == 1  # the one made above
    assert not AuditLog.objects.filter(action="opportunity.import").exists()
