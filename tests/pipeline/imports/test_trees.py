"""Regions and product lines created as trees from their columns, inside the importing user's scope; owners
from a default or a region's manager; generated product codes that never collide with a name or a code."""

from decimal import Decimal

import pytest

from crm.models import Customer, Product, ProductLine, Region
from pipeline.models import Opportunity
from salesmgmt.lib.tabular import normalise
from tests.conftest import csv_bytes
from tests.factories import ProductFactory, ProductLineFactory

HEADER = ["id", "大区", "省份", "城市", "客户名称", "成交日期", "销售额", "阶段"]


def _deal(n, region, state, city, customer):
    return [f"T-{n}", region, state, city, customer, "2027-01-05", "100", "Needs confirmed"]


def test_a_managers_new_regions_land_under_his_region_never_on_a_same_named_one_elsewhere(org, run_import):
    data = csv_bytes(
        [
            HEADER,
            _deal(1, "North", "Hebei", "Baoding", "Hebei Steel"),  # "North" is another area of the company
            _deal(2, "North", "Hebei", "Tangshan", "Tang Co"),
            _deal(3, "Shanghai", "", "", "Shanghai Co"),  # his own team: matched
            _deal(4, "Jiangsu", "Nanjing", "", "Nanjing Co"),  # a new region below his Jiangsu
        ]
    )
    out, err, error = run_import(data, "--user", "manager", "--create-missing", "--default-owner", "rep")
    assert error is None, err
    north_copy = Region.objects.get(name="North", parent=org.east)
    assert north_copy != org.north
    assert list(Region.objects.filter(parent=org.north)) == [org.bj]  # the real North is untouched
    hebei = Region.objects.get(parent=north_copy, name="Hebei")
    assert sorted(Region.objects.filter(parent=hebei).values_list("name", flat=True)) == ["Baoding", "Tangshan"]
    assert Customer.objects.get(name="Hebei Steel").region.parent == hebei
    assert Customer.objects.get(name="Shanghai Co").region == org.sh
    assert Customer.objects.get(name="Nanjing Co").region == Region.objects.get(parent=org.js, name="Nanjing")
    # Every created region, customer and deal is inside the manager's region: he sees all he imported.
    assert not Region.objects.exclude(path__startswith=org.east.path).exclude(
        pk__in=[org.hq.pk, org.north.pk, org.bj.pk]
    )
    assert Opportunity.objects.visible_to(org.manager).count() == 4
    assert Customer.objects.visible_to(org.manager).filter(name__in=["Hebei Steel", "Tang Co"]).count() == 2


def test_without_create_missing_a_region_outside_the_scope_is_a_row_error(org, run_import):
    data = csv_bytes([HEADER, _deal(1, "North", "", "", "Acme")])
    _out, err, error = run_import(data, "--user", "manager", "--default-owner", "rep")
    assert error is not None and "“North” is outside your data scope" in err
    assert not Opportunity.objects.exists()


def test_a_company_wide_user_matches_the_existing_tree(org, run_import):
    data = csv_bytes([HEADER, _deal(1, "North", "Beijing", "Haidian", "Haidian Co")])
    _out, err, error = run_import(data, "--user", "director", "--create-missing", "--default-owner", "rep_other")
    assert error is None, err
    assert Customer.objects.get(name="Haidian Co").region == Region.objects.get(parent=org.bj, name="Haidian")
    assert Region.objects.filter(name="North").count() == 1


def test_the_owner_of_a_row_without_a_rep_is_the_manager_of_its_region(org, run_import):
    data = csv_bytes([HEADER, _deal(1, "Beijing", "", "", "Bei Co"), _deal(2, "Jiangsu", "", "", "Su Co")])
    # Beijing has no manager: North's manager, the region above, owns the deal; Jiangsu's is East's.
    _out, err, error = run_import(data, "--user", "director", "--create-missing", "--owner-from-region-manager")
    assert error is None, err
    owners = dict(Opportunity.objects.values_list("external_id", "owner__username"))
    assert owners == {"T-1": "manager_north", "T-2": "manager"}
    # No default and no manager anywhere above: a row error, not a guess.
    org.north.manager = None
    org.north.save(update_fields=["manager"])
    org.hq.manager = None
    org.hq.save(update_fields=["manager"])
    _out, err, error = run_import(
        csv_bytes([HEADER, _deal(3, "Beijing", "", "", "Bei Co")]), "--user", "director", "--owner-from-region-manager"
    )
    assert error is not None and "no manager above its region" in err


def test_a_default_owner_outside_the_scope_is_refused(org, run_import):
    _out, _err, error = run_import(
        csv_bytes([HEADER, _deal(1, "Shanghai", "", "", "Acme")]), "--user", "manager", "--default-owner", "rep_other"
    )
    assert error is not None and "outside your data scope" in str(error)


def test_generated_product_codes_never_collide_with_a_name_or_a_code(org, run_import):
    line = ProductLineFactory(code="HW", name="Hardware")
    ProductFactory(line=line, name="Gadget X", code="GX")  # the name "Gadget X" is the key of code GADGET-X
    ProductFactory(line=line, name="Other", code="GADGET-X-2")
    header = ["id", "customer", "owner", "product", "category", "sub-category", "close date", "amount"]
    rows = [
        [f"C-{n}", "Acme", "rep", product, "Gadgets", "Small gadgets", "2027-01-05", "10"]
        for n, product in enumerate(["Gadget-X!", "Gadget X 3", "Gadgets", "Small gadgets"])
    ]
    _out, err, error = run_import(csv_bytes([header, *rows]), "--user", "manager", "--create-missing")
    assert error is None, err
    codes = dict(Product.objects.values_list("name", "code"))
    # GADGET-X is the name "Gadget X", -2 a code, -3 the name of the next new product ("Gadget X 3" keeps it:
    # its own name); a product named like a product line is still a product of its own.
    assert codes["Gadget-X!"] == "GADGET-X-4" and codes["Gadget X 3"] == "GADGET-X-3"
    keys: dict[str, set[int]] = {}
    for pk, name, code in Product.objects.values_list("pk", "name", "code"):
        for key in {normalise(name), normalise(code)}:
            keys.setdefault(key, set()).add(pk)
    assert all(len(pks) == 1 for pks in keys.values()), keys
    small = ProductLine.objects.get(name="Small gadgets")
    assert (small.parent.name, Product.objects.get(name="Gadget-X!").line) == ("Gadgets", small)
    line_keys: dict[str, set[int]] = {}
    for pk, name, code in ProductLine.objects.values_list("pk", "name", "code"):
        for key in {normalise(name), normalise(code)}:
            line_keys.setdefault(key, set()).add(pk)
    assert all(len(pks) == 1 for pks in line_keys.values()), line_keys

    # A later file naming a product by its generated code finds it.
    again = [header, ["C-9", "Acme", "rep", "GADGET-X-4", "", "", "2027-01-05", "5"]]
    _out, err, error = run_import(csv_bytes(again), "--user", "manager")
    assert error is None, err
    assert Opportunity.objects.get(external_id="C-9").lines.get().product.name == "Gadget-X!"
    assert Opportunity.objects.get(external_id="C-9").amount == Decimal("5")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [
                "Row ID",
                "Order ID",
                "Order Date",
                "Customer ID",
                "Customer Name",
                "Region",
                "State",
                "City",
                "Category",
                "Sub-Category",
                "Product Name",
                "Sales",
                "Profit",
            ],
            {
                "Row ID": "external_id",
                "Order Date": "close_date",
                "Customer Name": "customer",
                "Region": "region",
                "State": "state",
                "City": "city",
                "Category": "product_line",
                "Sub-Category": "product_subline",
                "Product Name": "product",
                "Sales": "amount",
            },
        ),
        (
            ["订单编号", "订单日期", "客户名称", "大区", "省份", "城市", "类别", "子类别", "产品名称", "销售额"],
            {
                "订单编号": "external_id",
                "订单日期": "close_date",
                "客户名称": "customer",
                "大区": "region",
                "省份": "state",
                "城市": "city",
                "类别": "product_line",
                "子类别": "product_subline",
                "产品名称": "product",
                "销售额": "amount",
            },
        ),
        (
            ["单号", "成交日期", "客户", "区域", "产品线", "产品", "金额"],
            {
                "单号": "external_id",
                "成交日期": "close_date",
                "客户": "customer",
                "区域": "region",
                "产品线": "product_line",
                "产品": "product",
                "金额": "amount",
            },
        ),
    ],
)
def test_the_mapping_guesses_superstore_like_headers_in_english_and_chinese(headers, expected):
    from pipeline.importing import guess_mapping

    assert guess_mapping(headers, "won_deals") == expected


def test_the_wizards_default_owner_is_picked_within_the_scope(org, client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from pipeline.models import ImportJob, ImportStatus
    from tests.pipeline.imports.test_wizard import mapping_post

    client.force_login(org.manager)
    data = csv_bytes([HEADER, _deal(1, "Shanghai", "", "", "Acme")])
    client.post(reverse("pipeline:import_start"), {"kind": "opportunities", "file": SimpleUploadedFile("a.csv", data)})
    job = ImportJob.objects.get()
    url = reverse("pipeline:import_mapping", args=[job.pk])
    # North's rep is not his to pick: a form error, nothing checked.
    response = client.post(url, mapping_post(job, create_missing="on", default_owner=str(org.rep_other.pk)))
    assert response.status_code == 200 and response.context["form"].errors["default_owner"]
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED
    # Without a default or the region-manager rule the file lacks its owner column.
    response = client.post(url, mapping_post(job, create_missing="on"))
    assert response.context["form"].non_field_errors() == [
        "Map a column to “Owner (rep)”, or choose a default owner or the region's manager."
    ]
    response = client.post(url, mapping_post(job, create_missing="on", owner_from_region_manager="on"))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.error_count == 0 and job.options["owner_from_region_manager"] is True
