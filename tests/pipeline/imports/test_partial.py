"""Partial import (HubSpot's and Salesforce's "import the good rows, download the errors"): the good rows are
committed in one transaction, the bad ones are handed back in the uploaded format (CSV or XLSX) with their row
number and the reason, and nothing of a bad row is written, not even the customer or product it named."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from crm.models import Customer, Product
from pipeline.models import ImportJob, ImportStatus, Opportunity
from tests.conftest import csv_bytes
from tests.pipeline.imports.conftest import snapshot
from tests.pipeline.imports.test_wizard import mapping_post

pytestmark = pytest.mark.usefixtures("catalogue")

HEADER = ["opportunity_id", "account", "sales_agent", "deal_stage", "close_date", "close_value", "product"]
ROWS = [
    ["P-1", "Acme Ltd", "rep", "Won / payment", "2026-03-01", "500", "Server X1"],
    ["P-2", "Ghost Co", "rep", "Needs confirmed", "not a date", "700", ""],  # would create Ghost Co
    ["P-3", "Acme Ltd", "rep_other", "Needs confirmed", "2027-01-05", "100", ""],  # North's rep: out of scope
    ["P-4", "New Co", "rep", "Needs confirmed", "2027-01-05", "12.345", "New Gadget"],
    ["P-5", "Acme Ltd", "rep", "Needs confirmed", "2027-01-05", "abc", "Phantom Product"],  # would create it
    ["P-1", "Acme Ltd", "rep", "Needs confirmed", "2027-01-05", "1", ""],
]
# Row number in the file (the header is row 1) -> the reason the rejected-rows file gives.
REASONS = {
    3: "close_date: “not a date” is not a date (use e.g. 2017-03-01).",
    4: "sales_agent: “rep_other” is outside your data scope: you cannot import records for them.",
    6: "close_value: “abc” is not a number.",
    7: "opportunity_id: Duplicate id: row 2 has the same id.",
}


@pytest.fixture
def manager_client(client, org):
    client.force_login(org.manager)
    return client


def _upload_and_check(client, org, data, name, **options):
    client.post(reverse("pipeline:import_start"), {"kind": "opportunities", "file": SimpleUploadedFile(name, data)})
    job = ImportJob.objects.filter(created_by=org.manager).latest("created_at")
    response = client.post(reverse("pipeline:import_mapping", args=[job.pk]), mapping_post(job, **options))
    assert response.status_code == 302
    job.refresh_from_db()
    return job


def _commit(client, job, capture):
    with capture(execute=True):
        client.post(reverse("pipeline:import_preview", args=[job.pk]))
    job.refresh_from_db()
    return job


def _assert_only_the_good_rows_were_written():
    assert sorted(Opportunity.objects.values_list("external_id", flat=True)) == ["P-1", "P-4"]
    assert Opportunity.objects.get(external_id="P-4").amount == Decimal("12.35")  # 12.345 rounded half up
    assert Opportunity.objects.get(external_id="P-1").closed_on == date(2026, 3, 1)
    assert Customer.objects.filter(name="New Co").exists() and Product.objects.filter(name="New Gadget").exists()
    # What only a bad row named was planned, then left out: never half-applied.
    assert not Customer.objects.filter(name="Ghost Co").exists()
    assert not Product.objects.filter(name="Phantom Product").exists()


def test_partial_csv_import_commits_the_good_rows_and_hands_back_the_bad_ones(
    org, manager_client, django_capture_on_commit_callbacks
):
    data = csv_bytes([HEADER, *ROWS], delimiter=";")
    job = _upload_and_check(manager_client, org, data, "deals.csv", create_missing="on", on_errors="skip_bad_rows")
    assert (job.status, job.result["good_rows"], job.result["rejected_rows"]) == (ImportStatus.VALIDATED, 2, 4)
    assert job.result["rounded_rows"] == 1
    page = manager_client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert "2 rows will be imported; 4 rows with errors will be left out." in page
    assert "1 amount had more than two decimals" in page
    assert 'data-testid="import-commit"' in page

    job = _commit(manager_client, job, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE, job.result
    assert (job.result["imported_rows"], job.result["rejected_rows"]) == (2, 4)
    # The new product goes in the "Imported products" line (the file names no line).
    assert job.result["created"] == {"customers": 1, "product_lines": 1, "products": 1, "opportunities": 2}
    _assert_only_the_good_rows_were_written()

    detail = manager_client.get(reverse("pipeline:import_detail", args=[job.pk])).content.decode()
    assert re.search(r"2 imported, 4 rejected\s*— <a href=\"[^\"]+/rejected/\"", detail)
    response = manager_client.get(reverse("pipeline:import_rejected", args=[job.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="deals-rejected.csv"'
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))  # the uploaded separator
    assert lines[0] == [*HEADER, "Row in the uploaded file", "Reason"]
    assert lines[1:] == [[*ROWS[number - 2], str(number), reason] for number, reason in REASONS.items()]


def test_partial_xlsx_import_hands_back_an_xlsx_with_the_cells_as_read(
    org, manager_client, django_capture_on_commit_callbacks
):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        amount = row[5]
        sheet.append([*row[:5], float(amount) if re.fullmatch(r"[\d.]+", amount) else amount, row[6] or None])
    out = io.BytesIO()
    book.save(out)
    job = _upload_and_check(
        manager_client, org, out.getvalue(), "deals.xlsx", create_missing="on", on_errors="skip_bad_rows"
    )
    job = _commit(manager_client, job, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE and job.rejected_file.name.endswith("deals-rejected.xlsx")
    _assert_only_the_good_rows_were_written()

    response = manager_client.get(reverse("pipeline:import_rejected", args=[job.pk]))
    rejected = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    cells = [list(row) for row in rejected.iter_rows(values_only=True)]
    assert cells[0] == [*HEADER, "Row in the uploaded file", "Reason"]
    assert [(row[0], row[5], row[-2], row[-1]) for row in cells[1:]] == [
        ("P-2", 700, 3, REASONS[3]),  # numbers stay numbers
        ("P-3", 100, 4, REASONS[4]),
        ("P-5", "abc", 6, REASONS[6]),
        ("P-1", 1, 7, REASONS[7]),
    ]


def test_all_or_nothing_stays_the_default(org, manager_client, django_capture_on_commit_callbacks):
    job = _upload_and_check(manager_client, org, csv_bytes([HEADER, *ROWS]), "deals.csv", create_missing="on")
    page = manager_client.get(reverse("pipeline:import_mapping", args=[job.pk])).content.decode()
    assert re.search(r'value="all_or_nothing"[^>]*checked', page)
    page = manager_client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert 'data-testid="import-commit"' not in page
    before = snapshot()
    job = _commit(manager_client, job, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.VALIDATED and snapshot() == before and not job.rejected_file
    assert manager_client.get(reverse("pipeline:import_rejected", args=[job.pk])).status_code == 404


def test_a_file_whose_every_row_is_bad_imports_nothing(org, manager_client, django_capture_on_commit_callbacks):
    bad = [ROWS[1], ROWS[2]]
    job = _upload_and_check(manager_client, org, csv_bytes([HEADER, *bad]), "deals.csv", on_errors="skip_bad_rows")
    before = snapshot()
    response = manager_client.post(reverse("pipeline:import_preview", args=[job.pk]), follow=True)
    assert "Every row has errors" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATED and snapshot() == before


def test_the_rejected_rows_of_someone_elses_job_are_not_found(org, client, django_capture_on_commit_callbacks):
    client.force_login(org.manager)
    job = _upload_and_check(client, org, csv_bytes([HEADER, *ROWS]), "deals.csv", on_errors="skip_bad_rows")
    job = _commit(client, job, django_capture_on_commit_callbacks)
    assert job.rejected_file
    client.force_login(org.manager_north)
    assert client.get(reverse("pipeline:import_rejected", args=[job.pk])).status_code == 404


def test_the_command_imports_the_good_rows_and_writes_the_rejected_file(org, run_import, tmp_path):
    rejected = tmp_path / "rejected.csv"
    out, err, error = run_import(
        csv_bytes([HEADER, *ROWS]),
        "--user",
        "manager",
        "--create-missing",
        "--skip-bad-rows",
        "--rejected-file",
        str(rejected),
    )
    assert error is None, err
    assert "Imported 2 rows, rejected 4" in out and "1 amounts had more than two decimals" in out
    _assert_only_the_good_rows_were_written()
    lines = list(csv.reader(io.StringIO(rejected.read_text("utf-8-sig"))))
    assert [(line[0], line[-2], line[-1]) for line in lines[1:]] == [
        (ROWS[n - 2][0], str(n), reason) for n, reason in REASONS.items()
    ]
