"""The import wizard in a real browser with a small file shaped like Tableau's Superstore sample: upload as won
deals, keep the guessed mapping, pick a default owner with the search picker, tick "create missing" and
"import the good rows", read in the preview what will be created and how many amounts are rounded, import,
and download the rejected row with its reason."""

from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from crm.models import ProductLine, Region
from pipeline.models import Opportunity
from tests.browser.plugin import login, pick
from tests.conftest import csv_bytes
from tests.pipeline.imports.test_superstore import GUESSED

HEADER = ["Row ID", "Order ID", "Order Date", "Ship Date", "Customer Name", "Country", "City", "State", "Region",
          "Category", "Sub-Category", "Product Name", "Sales", "Quantity", "Profit"]  # fmt: skip
ROWS = [
    ["1", "CA-1", "11/8/2016", "11/11/2016", "Claire Gute", "United States", "Henderson", "Kentucky", "South",
     "Furniture", "Bookcases", "Bush Somerset Collection Bookcase", "261.96", "2", "41.9136"],
    ["2", "CA-2", "6/16/2016", "6/20/2016", "Darrin Van Huff", "United States", "Los Angeles", "California", "West",
     "Office Supplies", "Labels", "Self-Adhesive Address Labels", "14.62", "2", "6.8714"],
    ["3", "CA-3", "10/11/2015", "10/18/2015", "Sean O'Donnell", "United States", "Fort Lauderdale", "Florida",
     "South", "Furniture", "Tables", "Bretford CR4500 Series Slim Rectangular Table", "957.5775", "5", "-383.031"],
    ["4", "CA-4", "10/11/2015", "10/18/2015", "Sean O'Donnell", "United States", "Fort Lauderdale", "Florida",
     "South", "Office Supplies", "Storage", "Eldon Fold 'N Roll Cart System", "n/a", "2", "2.5164"],
]  # fmt: skip


def test_a_manager_imports_a_superstore_like_file_through_the_wizard(page, org, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"  # the upload and the rejected rows stay out of the checkout
    path = tmp_path / "superstore-small.csv"
    path.write_bytes(csv_bytes([HEADER, *ROWS]))
    login(page, "manager")
    page.goto("/pipeline/import/")
    page.select_option("select[name=kind]", "won_deals")
    page.set_input_files("input[name=file]", str(path))
    page.get_by_test_id("upload-submit").click()

    # The mapping as guessed from the headers; only the options are touched.
    form = page.get_by_test_id("mapping-form")
    expect(form).to_be_visible()
    guessed = {HEADER[i]: page.locator(f"select[name=col_{i}]").input_value() for i in range(len(HEADER))}
    assert guessed == {**dict.fromkeys(HEADER, ""), **GUESSED}  # as for the real Superstore file
    # A name no other user's contains: the picker's option is found by its text (the factories' names are random).
    owner = org.rep_same_team
    owner.first_name, owner.last_name = "Superstore", "Defaultowner"
    owner.save(update_fields=["first_name", "last_name"])
    pick(page, "default_owner", "Defaultowner", "Superstore Defaultowner")
    page.get_by_label("Create missing reps, regions, products and customers").check()
    page.locator("input[name=on_errors][value=skip_bad_rows]").check()
    page.get_by_test_id("mapping-submit").click()

    # The preview: what is left out, what is rounded, everything that will be created, with where it lands.
    expect(page.get_by_test_id("import-partial")).to_contain_text("3 rows will be imported; 1 row with errors")
    expect(page.get_by_test_id("import-rounded")).to_contain_text("1 amount had more than two decimals")
    expect(page.get_by_test_id("error-row")).to_contain_text("is not a number")
    created = page.get_by_test_id("import-to-create")
    for text in (
        "East › South › Florida › Fort Lauderdale",
        "East › West › California",
        "Furniture › Tables",
        "Bush Somerset Collection Bookcase (BUSH-SOMERSET-COLLECTION-BOOKCASE)",
        "Sean O'Donnell",
    ):
        expect(created).to_contain_text(text)
    expect(created).not_to_contain_text("Eldon Fold")  # only the rejected row names it
    page.get_by_test_id("import-commit").click()

    progress = page.get_by_test_id("import-progress")
    expect(progress).to_have_attribute("data-status", "done")
    expect(progress).to_contain_text("3 imported, 1 rejected")
    with page.expect_download() as download_info:
        page.get_by_test_id("download-rejected").click()
    download = download_info.value
    assert download.suggested_filename == "superstore-small-rejected.csv"
    lines = Path(download.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == ",".join(HEADER) + ",Row in the uploaded file,Reason"
    assert lines[1:] == [",".join(ROWS[3]) + ",5,Sales: “n/a” is not a number."]

    deals = Opportunity.objects.won()
    assert sorted(deals.values_list("amount", flat=True)) == [Decimal("14.62"), Decimal("261.96"), Decimal("957.58")]
    assert set(deals.values_list("owner", flat=True)) == {org.rep_same_team.pk}
    assert Region.objects.get(name="Fort Lauderdale").path.startswith(org.east.path)
    assert ProductLine.objects.get(name="Tables").parent.name == "Furniture"
