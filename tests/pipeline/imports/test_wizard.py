"""The browser wizard through the test client: upload -> mapping -> preview -> commit (Celery, eager) -> progress."""

import io
import re
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from celery import current_app
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from kombu.exceptions import OperationalError
from openpyxl import Workbook

from pipeline import importing
from pipeline.models import ImportJob, ImportStatus, Opportunity
from pipeline.tasks import import_commit
from salesmgmt import outbox
from salesmgmt.models import OutboxTask
from tests.conftest import csv_bytes
from tests.factories import make_deal
from tests.pipeline.imports.conftest import snapshot

pytestmark = pytest.mark.usefixtures("catalogue")

ZH_HEADER = ["商机编号", "客户", "负责人", "产品", "阶段", "预计成交日期", "金额", "备注"]


def upload(client, data: bytes, name="deals.csv", kind="opportunities"):
    return client.post(
        reverse("pipeline:import_start"), {"kind": kind, "file": SimpleUploadedFile(name, data)}, follow=False
    )


def mapping_post(job, **options):
    """The mapping form as the browser submits it: the guessed selects unchanged, plus the options."""
    table = importing.import_job_table(job, limit=1)
    data = {f"col_{i}": job.mapping.get(header, "") for i, header in enumerate(table.headers)}
    data.update({"date_order": "auto", **options})
    return data


@pytest.fixture
def manager_client(client, org):
    client.force_login(org.manager)
    return client


def test_upload_mapping_preview_errors_then_commit(org, manager_client, django_capture_on_commit_callbacks):
    data = csv_bytes(
        [
            ZH_HEADER,
            ["W-1", "华信科技", "rep", "Server X1", "需求确认", "01/03/2027", "1,234.50", "first"],
            ["W-2", "Acme Ltd", "rep_js", "STO", "方案呈现", "02/04/2027", "￥2,000", ""],
        ],
        encoding="gbk",
    )
    response = upload(manager_client, data)
    job = ImportJob.objects.get(created_by=org.manager)
    assert response.url == reverse("pipeline:import_mapping", args=[job.pk])
    # Chinese headers are recognised; the unknown 备注 column is left unmapped.
    assert job.mapping == {
        "商机编号": "external_id",
        "客户": "customer",
        "负责人": "owner",
        "产品": "product",
        "阶段": "stage",
        "预计成交日期": "close_date",
        "金额": "amount",
    }
    page = manager_client.get(response.url).content.decode()
    assert "华信科技" in page and 'value="customer" selected' in page

    response = manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job))
    assert response.url == reverse("pipeline:import_preview", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.error_count, [e["row"] for e in job.errors]) == (ImportStatus.VALIDATED, 2, [2, 3])
    page = manager_client.get(response.url).content.decode()
    assert page.count('data-testid="error-row"') == 2 and "ambiguous" in page
    assert 'data-testid="import-commit"' not in page
    before = snapshot()
    manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))  # a commit with errors is refused
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATED and snapshot() == before

    # The user says dates are day first; now the file is clean and can be imported.
    manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job, date_order="dmy"))
    page = manager_client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert 'data-testid="import-commit"' in page and "1234.50" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    assert response.url == reverse("pipeline:import_progress", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.total_rows) == (ImportStatus.DONE, 2, 2)
    assert job.result["created"] == {"opportunities": 2}
    first = Opportunity.objects.get(external_id="W-1")
    assert (first.expected_close_date, first.amount, first.owner) == (date(2027, 3, 1), Decimal("1234.50"), org.rep)
    assert Opportunity.objects.get(external_id="W-2").expected_close_date == date(2027, 4, 2)

    fragment = manager_client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="done"' in fragment and "hx-trigger" not in fragment  # polling stops
    detail = manager_client.get(reverse("pipeline:import_detail", args=[job.pk])).content.decode()
    assert re.search(r"<strong>2</strong>\s*opportunities", detail)


def test_create_missing_checkbox_creates_the_unknown_things(org, manager_client, django_capture_on_commit_callbacks):
    rows = [GOOD_ROWS[0], ["N-1", "Brand New Co", "Li Lei", "Needs confirmed", "2027-03-01", "700"]]
    job = _validated_job(manager_client, org, rows)
    assert {e["field"] for e in job.errors} == {"customer", "owner"}
    manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job, create_missing="on"))
    page = manager_client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert "new customer, new rep" in page
    assert re.search(r"<strong>1</strong>\s*reps", page) and re.search(r"<strong>1</strong>\s*customers", page)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    deal = Opportunity.objects.get(external_id="N-1")
    # The new rep sits in the manager's own region, so the manager still sees what he imported.
    assert (deal.owner.get_full_name(), deal.owner.region, deal.customer.owner) == ("Li Lei", org.east, deal.owner)
    assert Opportunity.objects.visible_to(org.manager).filter(pk=deal.pk).exists()


def test_mapping_errors_are_form_errors(org, manager_client):
    upload(manager_client, csv_bytes(GOOD_ROWS))
    job = ImportJob.objects.get()
    data = mapping_post(job)
    data["col_5"] = "stage"  # close_value -> stage: two columns feed the stage
    data["col_2"] = ""  # the owner is required
    page = manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), data).content.decode()
    assert "Two columns are mapped to" in page and "or choose a default owner or the region&#x27;s manager" in page
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED and job.mapping["sales_agent"] == "owner"


def test_progress_fragment_polls_while_running(org, manager_client):
    job = ImportJob.objects.create(
        kind="opportunities",
        status=ImportStatus.RUNNING,
        file="imports/x.csv",
        original_name="x.csv",
        created_by=org.manager,
        total_rows=8800,
        processed_rows=2200,
    )
    fragment = manager_client.get(reverse("pipeline:import_progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'hx-trigger="every 1s"' in html and 'value="2200" max="8800"' in html and "25%" in html
    assert "<html" not in html  # only the fragment
    assert "<html" in manager_client.get(reverse("pipeline:import_progress", args=[job.pk])).content.decode()


def _validated_job(client, org, rows):
    upload(client, csv_bytes(rows))
    job = ImportJob.objects.filter(created_by=org.manager).latest("created_at")
    client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job))
    job.refresh_from_db()
    return job


GOOD_ROWS = [
    ["opportunity_id", "account", "sales_agent", "deal_stage", "close_date", "close_value"],
    ["G-1", "Acme Ltd", "rep", "Won / payment", "2026-03-01", "500"],
    ["G-2", "Acme Ltd", "rep_js", "Needs confirmed", "2027-03-01", "700"],
]


def test_failure_during_commit_writes_nothing_and_marks_the_job_failed(
    org, manager_client, monkeypatch, django_capture_on_commit_callbacks
):
    job = _validated_job(manager_client, org, GOOD_ROWS)
    assert job.error_count == 0
    before = snapshot()

    def broken(customer_ids):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importing.writing, "customer_refresh_first_won", broken)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "disk full" in job.result["message"]
    assert snapshot() == before
    page = manager_client.get(reverse("pipeline:import_detail", args=[job.pk])).content.decode()
    assert "disk full" in page and "Nothing was written" in page


def test_data_changed_since_preview_fails_the_commit(org, manager_client, django_capture_on_commit_callbacks):
    job = _validated_job(manager_client, org, GOOD_ROWS)
    make_deal(owner=org.rep, external_id="G-2")
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and [e["row"] for e in job.errors] == [3]
    assert snapshot() == before


def test_commit_task_is_idempotent(org, manager_client, django_capture_on_commit_callbacks):
    job = _validated_job(manager_client, org, GOOD_ROWS)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    after_first = snapshot()
    import_commit(job.pk)
    import_commit.delay(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and snapshot() == after_first
    assert Opportunity.objects.filter(external_id__in=["G-1", "G-2"]).count() == 2


def test_broker_down_the_import_starts_once_it_is_back(
    org, manager_client, monkeypatch, django_capture_on_commit_callbacks
):
    """Started while Redis is down: the start is kept in the outbox, and the flush job sends it later."""
    job = _validated_job(manager_client, org, GOOD_ROWS)
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))
    page = manager_client.get(reverse("pipeline:import_progress", args=[job.pk])).content.decode()
    assert "hx-trigger" in page  # the page waits for the import; nothing was lost
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATED
    assert list(OutboxTask.objects.filter(name=import_commit.name).values_list("args", flat=True)) == [[job.pk]]
    monkeypatch.undo()  # the broker is back (here: eager again), and the beat job flushes the outbox
    outbox.flush(older_than=timedelta(0))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert not OutboxTask.objects.filter(name=import_commit.name).exists()


def test_manager_gets_row_errors_for_reps_outside_his_subtree(org, manager_client):
    rows = [*GOOD_ROWS, ["G-3", "Acme Ltd", "rep_other", "Needs confirmed", "2027-03-01", "700"]]
    job = _validated_job(manager_client, org, rows)
    assert [(e["row"], e["field"]) for e in job.errors] == [(4, "owner")]
    page = manager_client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert "outside your data scope" in page


def test_unreadable_upload_is_a_form_error(org, manager_client):
    response = upload(manager_client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), name="old.xls")
    assert response.status_code == 200
    assert "Excel 97-2003" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_rep_cannot_open_the_wizard(org, client):
    client.force_login(org.rep)
    response = client.get(reverse("pipeline:import_start"), follow=True)
    assert response.redirect_chain[0][0] == reverse("home")
    assert "Only managers, directors and admins may import data." in response.content.decode()
    upload(client, csv_bytes(GOOD_ROWS))
    assert not ImportJob.objects.exists()


def test_someone_elses_job_is_not_found(org, client):
    job = ImportJob.objects.create(
        kind="customers", file="imports/x.csv", original_name="x.csv", created_by=org.manager
    )
    client.force_login(org.manager_north)
    for name in ("import_detail", "import_mapping", "import_preview", "import_progress"):
        assert client.get(reverse(f"pipeline:{name}", args=[job.pk])).status_code == 404


def test_start_page_lists_recent_imports_in_few_queries(org, manager_client, django_assert_max_num_queries):
    for i in range(5):
        ImportJob.objects.create(
            kind="customers", file=f"imports/{i}.csv", original_name=f"f{i}.csv", created_by=org.manager
        )
    ImportJob.objects.create(kind="customers", file="imports/o.csv", original_name="other.csv", created_by=org.director)
    with django_assert_max_num_queries(8):
        page = manager_client.get(reverse("pipeline:import_start")).content.decode()
    assert page.count("f0.csv") == 1 and "f4.csv" in page and "other.csv" not in page


# --- issue 10: ragged rows and limits ------------------------------------------------------------

RAGGED = (
    b"opportunity_id,account,sales_agent,deal_stage,close_date,close_value\r\n"
    b"G-1,Acme Ltd,rep,Won / payment,2026-03-01,500\r\n"
    b"G-2,Acme Ltd,rep_js,Needs confirmed,2027-03-01,1,234.50\r\n"  # an unquoted thousands separator
    b"G-3,Acme Ltd,rep,Needs confirmed\r\n"  # trailing cells left out: read as empty
)


def test_a_ragged_csv_row_is_a_row_error_in_the_preview(org, manager_client):
    response = upload(manager_client, RAGGED)
    job = ImportJob.objects.get()
    assert response.url == reverse("pipeline:import_mapping", args=[job.pk])
    response = manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job))
    assert response.url == reverse("pipeline:import_preview", args=[job.pk])
    job.refresh_from_db()
    assert (job.total_rows, [e["row"] for e in job.errors]) == (3, [3])
    message = job.errors[0]["message"]
    assert message.startswith("Row 3 has 7 cells but the header has 6") and "“1,234.50”" in message
    page = manager_client.get(response.url).content.decode()
    assert page.count('data-testid="error-row"') == 1 and "1,234.50" in page
    before = snapshot()
    manager_client.post(reverse("pipeline:import_preview", args=[job.pk]))  # a file with a bad row imports nothing
    assert snapshot() == before


def xlsx_upload(rows: int) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(GOOD_ROWS[0])
    for i in range(rows):
        ws.append([f"X-{i}", *GOOD_ROWS[1][1:]])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("setting", "value", "data", "name", "message"),
    [
        ("IMPORT_MAX_ROWS", 20, csv_bytes([*GOOD_ROWS, *[GOOD_ROWS[1]] * 30]), "deals.csv", "more than 20 rows"),
        ("IMPORT_MAX_ROWS", 20, xlsx_upload(30), "deals.xlsx", "more than 20 rows"),
        ("IMPORT_MAX_COLUMNS", 5, csv_bytes(GOOD_ROWS), "deals.csv", "more than 5 columns"),
        ("IMPORT_MAX_BYTES", 100, csv_bytes(GOOD_ROWS), "deals.csv", "larger than 100"),
    ],
    ids=["csv-rows", "xlsx-rows", "columns", "bytes"],
)
def test_an_upload_over_a_limit_is_refused_at_once(org, manager_client, settings, setting, value, data, name, message):
    setattr(settings, setting, value)
    response = upload(manager_client, data, name=name)
    assert response.status_code == 200 and message in response.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists()


def test_required_mappings_are_checked_before_the_rows_are_read(org, manager_client, settings):
    upload(manager_client, csv_bytes([*GOOD_ROWS, *[GOOD_ROWS[1]] * 30]))
    job = ImportJob.objects.get()
    settings.IMPORT_MAX_ROWS = 5  # reading the rows would now stop at a limit
    data = mapping_post(job)
    data["col_2"] = ""  # the owner is required (no default owner chosen)
    response = manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), data)
    errors = response.context["form"].non_field_errors()
    # Not the row limit: no row was read.
    assert errors == ["Map a column to “Owner (rep)”, or choose a default owner or the region's manager."]
    response = manager_client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job))
    assert response.context["form"].non_field_errors() == ["The file has more than 5 rows; split it."]
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the commit lock is a PostgreSQL advisory lock")
def test_a_job_left_running_by_a_dead_worker_is_taken_over_but_not_one_a_live_worker_holds(org, manager_client):
    import psycopg

    from pipeline.importing.jobs import COMMIT_LOCK

    job = _validated_job(manager_client, org, GOOD_ROWS)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)  # claimed, then its worker died
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432, autocommit=True
    ) as live_worker:
        live_worker.execute("SELECT pg_advisory_lock(%s, %s)", [COMMIT_LOCK, job.pk])
        import_commit(job.pk)  # a duplicate delivery while the first worker lives: left alone
        job.refresh_from_db()
        assert job.status == ImportStatus.RUNNING
        assert not Opportunity.objects.filter(external_id__in=["G-1", "G-2"]).exists()
    # The worker died: its connection is gone, and PostgreSQL drops its locks once the backend has exited.
    with connection.cursor() as cursor:
        for _attempt in range(100):
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                [COMMIT_LOCK, job.pk],
            )
            if not cursor.fetchone()[0]:
                break
            time.sleep(0.05)
    import_commit(job.pk)  # redelivered after the worker died (its lock went with its connection)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert Opportunity.objects.filter(external_id__in=["G-1", "G-2"]).count() == 2
