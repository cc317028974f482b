"""The public Tableau "Sample - Superstore" file (9,994 order lines, US) through the browser wizard as it is:
no edit of the file, no admin step. A manager of the North area uploads it as historical won deals, keeps the
guessed mapping, only picks a default owner and ticks "create missing"; the preview lists every region,
product line, product and customer to create and says how many amounts were rounded; the commit imports
every line, with the file's Region -> State -> City as a subtree of his own region and Category ->
Sub-Category as product lines. The won total is checked against pandas, independently of the import code."""

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Customer, Product, ProductLine, Region
from pipeline.models import ImportJob, ImportKind, ImportStatus, Opportunity
from pipeline.selectors import STATUS_WON, deals_visible, filter_status, totals
from salesmgmt.lib.money import quantize
from tests.datasets import SUPERSTORE, needs_superstore
from tests.pipeline.imports.test_wizard import mapping_post

pytestmark = [needs_superstore, pytest.mark.xdist_group("superstore")]

GUESSED = {
    "Row ID": "external_id",
    "Order Date": "close_date",
    "Customer Name": "customer",
    "City": "city",
    "State": "state",
    "Region": "region",
    "Category": "product_line",
    "Sub-Category": "product_subline",
    "Product Name": "product",
    "Sales": "amount",
}


def _expected():
    """What the file holds, read by pandas as text: the sum of the lines each rounded half up to the cent,
    how many lines rounding changes, and the distinct names of what the import is to create."""
    df = pd.read_csv(SUPERSTORE, dtype=str, keep_default_na=False)
    df = df.apply(lambda column: column.str.replace("\u00a0", " ").str.strip())
    exact = df["Sales"].map(Decimal)
    cents = exact.map(lambda d: d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return {
        "total": sum(cents, Decimal(0)),
        "rounded": int((cents != exact).sum()),
        "rows": len(df),
        "regions": df["Region"].nunique()
        + len(df[["Region", "State"]].drop_duplicates())
        + len(df[["Region", "State", "City"]].drop_duplicates()),
        "lines": df["Category"].nunique() + df["Sub-Category"].nunique(),
        # Names are matched ignoring case, spaces and - _ . / ( ): "DAX Wood Document Frame." is the product
        # "DAX Wood Document Frame" (1,850 names, 1,849 products).
        "products": df["Product Name"]
        .str.slice(0, 120)
        .str.casefold()
        .str.replace(r"[\s_\-./()]+", "", regex=True)
        .nunique(),
        "customers": df["Customer Name"].nunique(),
        "sub_categories": df.groupby("Sub-Category")["Category"].first().to_dict(),
    }


def test_the_superstore_sample_imports_through_the_wizard_as_it_is(org, client, django_capture_on_commit_callbacks):
    expected = _expected()
    client.force_login(org.manager_north)
    data = SUPERSTORE.read_bytes()
    response = client.post(
        reverse("pipeline:import_start"),
        {"kind": ImportKind.WON_DEALS, "file": SimpleUploadedFile("Sample-Superstore.csv", data)},
    )
    job = ImportJob.objects.get(created_by=org.manager_north)
    assert response.url == reverse("pipeline:import_mapping", args=[job.pk])
    assert job.mapping == GUESSED  # Ship Date, Sales's neighbours and the ids of other things stay unmapped

    # The guessed mapping unchanged; only the default owner and "create missing".
    post = mapping_post(job, create_missing="on", default_owner=str(org.rep_other.pk))
    response = client.post(reverse("pipeline:import_mapping", args=[job.pk]), post)
    assert response.status_code == 302, response.content.decode()[:3000]
    job.refresh_from_db()
    assert (job.status, job.error_count, job.total_rows) == (ImportStatus.VALIDATED, 0, expected["rows"])
    assert job.result["date_order"] == "mdy"
    assert job.result["rounded_rows"] == expected["rounded"]
    will_create = job.result["will_create"]
    assert will_create == {
        "regions": expected["regions"],
        "product_lines": expected["lines"],
        "products": expected["products"],
        "customers": expected["customers"],
        "opportunities": expected["rows"],
    }
    page = client.get(reverse("pipeline:import_preview", args=[job.pk])).content.decode()
    assert f"{expected['rounded']} amounts had more than two decimals" in page
    # Every record to create is listed before the commit, regions with the path they land on.
    assert "North › West › California › Los Angeles" in page
    assert "Furniture › Bookcases" in page and "Claire Gute" in page
    assert "Bush Somerset Collection Bookcase (BUSH-SOMERSET-COLLECTION-BOOKCASE)" in page
    assert page.count("<li>") >= sum(n for k, n in will_create.items() if k != "opportunities")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("pipeline:import_preview", args=[job.pk]))
    assert response.url == reverse("pipeline:import_progress", args=[job.pk])
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.result
    assert job.result["imported_rows"] == expected["rows"] and job.result["rejected_rows"] == 0

    won = Opportunity.objects.visible_to(org.manager_north).won()
    assert won.count() == expected["rows"]
    assert sum(won.values_list("amount_company", flat=True), Decimal(0)) == expected["total"]  # exact, per line
    # The won total the manager's pages show (SQLite sums decimals as floats: to the cent it is exact).
    shown = totals(filter_status(deals_visible(org.manager_north), STATUS_WON))
    assert (shown["count"], quantize(shown["total"])) == (expected["rows"], expected["total"])
    assert set(won.values_list("owner", flat=True).distinct()) == {org.rep_other.pk}

    # Region -> State -> City under the manager's own area; the company's East is not the file's East.
    areas = Region.objects.filter(parent=org.north, name__in=["West", "East", "Central", "South"])
    assert areas.count() == 4
    file_east = areas.get(name="East")
    assert file_east != org.east and not Region.objects.filter(parent=org.east).exclude(pk__in=[org.sh.pk, org.js.pk])
    kentucky = Region.objects.get(parent__in=areas, name="Kentucky")
    henderson = Region.objects.get(parent=kentucky, name="Henderson")
    claire = Customer.objects.get(name="Claire Gute")
    assert claire.region.path.startswith(org.north.path) and claire.owner == org.rep_other
    assert Region.objects.filter(path__startswith=org.north.path).count() == 1 + 1 + expected["regions"]  # + Beijing
    assert henderson.path.startswith(org.north.path)

    # Category -> Sub-Category as product lines, each product in its sub-category.
    for sub, category in expected["sub_categories"].items():
        assert ProductLine.objects.get(name=sub).parent.name == category
    bookcase = Product.objects.get(name="Bush Somerset Collection Bookcase")
    assert (bookcase.line.name, bookcase.line.parent.name) == ("Bookcases", "Furniture")
    first = Opportunity.objects.get(external_id="1")
    assert (first.amount, first.closed_on.isoformat(), first.customer, first.lines.get().product) == (
        Decimal("261.96"),
        "2016-11-08",
        claire,
        bookcase,
    )
