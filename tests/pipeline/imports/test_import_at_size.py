"""The fast import path at a size that runs quickly in the suite: 2,000 deals through the wizard's job commit, as CSV
and as XLSX, every deal compared with its row of the file; progress while it runs; closed deals' history dated at
their close date. (Speed itself is measured in `bench/bench_import_speed.py`.)"""

import io
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

from crm.models import AuditLog, Currency, Customer, ExchangeRate
from pipeline import importing
from pipeline.importing import ImportOptions, import_apply, import_validate, jobs, writing
from pipeline.models import ImportJob, ImportKind, ImportStatus, Opportunity, OpportunityHistory, OpportunityLine
from salesmgmt.lib.money import quantize
from salesmgmt.lib.tabular import Row as TableRow
from salesmgmt.lib.tabular import Table
from tests.conftest import csv_bytes
from tests.factories import CustomerFactory

pytestmark = pytest.mark.usefixtures("catalogue")

ROWS = 2_000
HEADER = ["Deal ID", "客户", "负责人", "产品", "阶段", "金额", "币种", "创建日期", "成交日期"]
MAPPING = {
    "Deal ID": "external_id",
    "客户": "customer",
    "负责人": "owner",
    "产品": "product",
    "阶段": "stage",
    "金额": "amount",
    "币种": "currency",
    "创建日期": "created_on",
    "成交日期": "close_date",
}
RATES = {date(2024, 1, 1): Decimal("7.1234"), date(2025, 1, 1): Decimal("6.98765")}


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def usd_rate(day: date) -> Decimal:
    return RATES[max(d for d in RATES if d <= day)]


@pytest.fixture
def company(org, catalogue):
    usd = Currency.objects.create(code="USD", name="US dollar")
    for valid_from, rate in RATES.items():
        ExchangeRate.objects.create(currency=usd, valid_from=valid_from, rate=rate)
    customers = [catalogue.acme, catalogue.huaxin] + [
        CustomerFactory(name=f"客户{i:02d} 有限公司", owner=org.rep_js, region=org.js) for i in range(30)
    ]
    return customers


def file_rows(org, customers, catalogue, prefix: str) -> list[list]:
    """Won, lost and open deals in company currency and in USD, with and without a product and a created date."""
    rng = random.Random(prefix)
    stages = {s.name: s for s in org.stages}
    won, lost, first = (
        next(s for s in org.stages if s.is_won),
        next(s for s in org.stages if s.is_lost),
        org.stages[0],
    )
    rows = []
    for i in range(ROWS):
        stage = rng.choice([won, won, won, lost, first, stages["Negotiation"]])
        created = date(2024, 1, 1) + timedelta(days=rng.randrange(700))
        closed = created + timedelta(days=rng.randrange(1, 200))
        rows.append(
            [
                f"{prefix}-{i:05d}",
                customers[rng.randrange(len(customers))].name,
                rng.choice(["rep", "rep_sh2", "rep_js"]),
                rng.choice([catalogue.server.name, catalogue.storage.code, ""]),
                stage.name_zh if i % 2 else stage.name,
                quantize(Decimal(rng.randrange(1, 10**9)) / 100),
                rng.choice(["", "USD"]),
                created if i % 5 else None,
                closed,
            ]
        )
    return rows


def as_csv(rows: list[list]) -> bytes:
    return csv_bytes([HEADER, *[[("" if v is None else str(v)) for v in row] for row in rows]])


def as_xlsx(rows: list[list]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for row in rows:
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in row])  # Excel keeps numbers as floats
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_2000_deals_through_the_job_commit_equal_their_rows(org, company, catalogue, client, monkeypatch, fmt):
    rows = file_rows(org, company, catalogue, prefix=fmt.upper())
    data = as_csv(rows) if fmt == "csv" else as_xlsx(rows)
    job = importing.import_job_create(kind=ImportKind.OPPORTUNITIES, data=data, filename=f"d.{fmt}", actor=org.manager)
    plan = importing.import_job_validate(job=job, mapping=MAPPING, options={}, actor=org.manager)
    assert plan.errors == [] and len(plan.items) == ROWS

    checked, pages = {}, {}
    validate, report_written = jobs.import_validate, writing.report_written
    client.force_login(org.manager)

    def page(job_id):
        """What the page polling the job shows now (while the import's transaction is open)."""
        response = client.get(reverse("pipeline:import_progress", args=[job_id]), headers={"HX-Request": "true"})
        return response.content.decode()

    def checking(*args, progress, **kwargs):
        def on_checked(n):
            progress(n)
            checked[n] = page(job.pk)

        return validate(*args, progress=on_checked, **kwargs)

    def on_written(job_id, n):
        report_written(job_id, n)
        pages[n] = page(job_id)

    monkeypatch.setattr(jobs, "import_validate", checking)
    monkeypatch.setattr(writing, "report_written", on_written)
    monkeypatch.setattr(writing, "CHUNK", 500)
    job = importing.import_job_commit(job_id=job.pk)
    assert job.status == ImportStatus.DONE, job.result
    assert job.result["created"] == {"opportunities": ROWS}

    # Progress: rows checked rise to the total, then rows written, a chunk at a time, shown on the page.
    assert list(checked) == sorted(checked) and max(checked) == ROWS and len(checked) >= 5
    assert "Checking rows: 500 of 2000 (25%)" in checked[500]
    assert sorted(pages) == [0, 500, 1000, 1500, 2000]
    assert "Writing rows: 1000 of 2000 (50%)" in pages[1000]
    assert 'value="1000"' in pages[1000]
    assert importing.import_job_written(ImportJob.objects.get(pk=job.pk)) is None  # done: the page says so

    deals = {o.external_id: o for o in Opportunity.objects.filter(external_id__startswith=f"{fmt.upper()}-")}
    assert len(deals) == ROWS
    customers = {c.name: c.pk for c in Customer.objects.all()}
    users = {"rep": org.rep, "rep_sh2": org.rep_same_team, "rep_js": org.rep_js}
    products = {catalogue.server.name: catalogue.server, catalogue.storage.code: catalogue.storage}
    stages = {key: s for s in org.stages for key in (s.name, s.name_zh)}
    lines = {line.opportunity_id: line for line in OpportunityLine.objects.filter(opportunity__in=deals.values())}
    history = defaultdict(list)
    for h in OpportunityHistory.objects.filter(opportunity__in=deals.values()):
        history[h.opportunity_id].append(h)
    # The job's audit row names its deals (their ids as runs), one row for the import, not one per deal.
    (audit,) = AuditLog.objects.filter(
        content_type=ContentType.objects.get_for_model(ImportJob), object_id=job.pk, action="opportunity.import"
    )
    assert (audit.actor_id, audit.changes["opportunities"]) == (org.manager.pk, [None, ROWS])
    assert {pk for first, last in audit.changes["ids"] for pk in range(first, last + 1)} == {
        deal.pk for deal in deals.values()
    }
    assert not AuditLog.objects.filter(
        content_type=ContentType.objects.get_for_model(Opportunity), action="opportunity.create"
    ).exists()
    first_won: dict[int, date] = {}
    for external_id, customer, owner, product, stage_name, amount, currency, created, close in rows:
        deal, stage = deals[external_id], stages[stage_name]
        rate = usd_rate(close) if currency == "USD" else Decimal(1)
        closed_on = close if stage.is_closed else None
        assert (
            deal.customer_id,
            deal.owner_id,
            deal.region_id,
            deal.stage_id,
            deal.amount,
            deal.currency_id,
            deal.amount_company,
            deal.expected_close_date,
            deal.closed_on,
            deal.probability,
            deal.forecast_category,
        ) == (
            customers[customer],
            users[owner].pk,
            users[owner].region_id,
            stage.pk,
            amount,
            currency or org.company.currency,
            quantize(amount * rate),
            close,
            closed_on,
            stage.probability,
            stage.forecast_category,
        ), external_id
        created_at = day_start(created) if created else (day_start(close) if closed_on else None)
        entered = day_start(closed_on) if closed_on else deal.created_at
        if created_at is not None:
            assert deal.created_at == created_at, external_id
        assert deal.stage_entered_at == entered, external_id
        assert [(h.field, h.new_stage_id, h.changed_at, h.changed_by_id) for h in history[deal.pk]] == [
            ("stage", stage.pk, entered, org.manager.pk)
        ], external_id
        if product:
            line = lines[deal.pk]
            assert (line.product_id, line.product_line_id, line.quantity, line.amount, line.amount_company) == (
                products[product].pk,
                products[product].line_id,
                Decimal(1),
                deal.amount,
                deal.amount_company,
            )
        else:
            assert deal.pk not in lines
        if stage.is_won:
            first_won[customers[customer]] = min(close, first_won.get(customers[customer], close))
    assert dict(Customer.objects.filter(pk__in=first_won).values_list("pk", "first_won_on")) == first_won


def test_closed_deals_change_stage_at_their_close_date(org):
    """A won or lost deal entered its stage the day it closed: its history row and `stage_entered_at` say that day,
    not the day it was created or imported; it was created then too when the file gives no created date."""
    won = next(s for s in org.stages if s.is_won)
    lost = next(s for s in org.stages if s.is_lost)
    headers = ["id", "owner", "stage", "amount", "created", "close"]
    rows = [
        ["H-1", "rep", won.name, "100", "2025-01-05", "2025-03-20"],
        ["H-2", "rep", lost.name, "100", "", "2025-04-02"],
        ["H-3", "rep", org.stages[1].name, "100", "2025-02-01", "2027-01-01"],
    ]
    table = Table(headers, [TableRow(n, row) for n, row in enumerate(rows, start=2)])
    mapping = dict(zip(headers, ["external_id", "owner", "stage", "amount", "created_on", "close_date"], strict=True))
    plan = import_validate(table=table, kind="opportunities", mapping=mapping, options=ImportOptions(), actor=None)
    import_apply(plan=plan, actor=None)
    h1, h2, h3 = Opportunity.objects.filter(external_id__startswith="H-").order_by("external_id")
    assert (h1.created_at, h1.stage_entered_at) == (day_start(date(2025, 1, 5)), day_start(date(2025, 3, 20)))
    assert (h2.created_at, h2.stage_entered_at) == (day_start(date(2025, 4, 2)), day_start(date(2025, 4, 2)))
    assert (h3.created_at, h3.stage_entered_at) == (day_start(date(2025, 2, 1)), day_start(date(2025, 2, 1)))
    assert [list(d.history.values_list("new_stage", "changed_at")) for d in (h1, h2, h3)] == [
        [(won.pk, day_start(date(2025, 3, 20)))],
        [(lost.pk, day_start(date(2025, 4, 2)))],
        [(org.stages[1].pk, day_start(date(2025, 2, 1)))],
    ]


def test_lookups_shared_by_rows_naming_the_same_things_keep_each_rows_errors(org):
    """What a row names is looked up once per distinct cell: rows naming a rep outside the importer's scope each
    get the error, and rows naming the same new product share the one product planned for creation."""
    headers = ["id", "owner", "product", "amount", "close"]
    rows = [
        ["M-1", "rep_other", "", "1", "2027-01-01"],
        ["M-2", "rep", "Gadget Z", "1", "2027-01-01"],
        ["M-3", "rep_other", "Gadget Z", "1", "2027-01-01"],
        ["M-4", "rep_js", "gadget-z", "1", "2027-01-01"],
    ]
    table = Table(headers, [TableRow(n, row) for n, row in enumerate(rows, start=2)])
    mapping = dict(zip(headers, ["external_id", "owner", "product", "amount", "close_date"], strict=True))
    plan = import_validate(
        table=table,
        kind="opportunities",
        mapping=mapping,
        options=ImportOptions(create_missing=True),
        actor=org.manager,
    )
    assert [(e.row, e.field) for e in plan.errors] == [(2, "owner"), (4, "owner")]
    assert "outside your data scope" in plan.errors[1].message
    assert [i["row"] for i in plan.items] == [3, 5]
    assert plan.items[0]["product"] is plan.items[1]["product"] is plan.new["product"]["gadgetz"]
    assert plan.will_create == {"opportunities": 2, "products": 1, "product_lines": 1}
