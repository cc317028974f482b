"""`manage.py import_opportunities`: every row is checked first; a bad row means nothing is written."""

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from openpyxl import Workbook

from crm.models import Currency, Customer, ExchangeRate, Product, Role, User
from pipeline.models import Opportunity, OpportunityHistory, OpportunityLine
from pipeline.services import opportunity_create
from tests.conftest import csv_bytes
from tests.datasets import DATA
from tests.factories import make_deal
from tests.pipeline.imports.conftest import snapshot
from tests.pipeline.test_open_deals import assert_close_day_exactly_on_closed_deals

HEADER = ["opportunity_id", "account", "sales_agent", "product", "deal_stage", "close_date", "close_value"]

pytestmark = pytest.mark.usefixtures("catalogue")


def deals(*rows):
    return csv_bytes([HEADER, *rows])


def assert_rejected(result, before, *fragments):
    out, err, exc = result
    assert exc is not None, out
    assert "nothing was imported" in str(exc)
    for fragment in fragments:
        assert fragment in err, err
    assert snapshot() == before


def test_good_file_imports_like_the_service(org, run_import):
    out, err, exc = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "Server X1", "Needs confirmed", "2027-03-01", "1,234.50"],
            ["D-2", "华信科技", "rep_sh2", "STO", "Won / payment", "2026-02-01", "800"],
        )
    )
    assert exc is None, err
    assert "2 opportunities" in out
    open_deal = Opportunity.objects.get(external_id="D-1")
    reference = opportunity_create(
        name="reference",
        customer=open_deal.customer,
        owner=org.rep,
        amount=Decimal("1234.50"),
        expected_close_date=date(2027, 3, 1),
        lines=[{"product": open_deal.lines.get().product, "amount": Decimal("1234.50")}],
        actor=org.admin,
    )
    same = (
        "stage_id",
        "probability",
        "forecast_category",
        "amount",
        "amount_company",
        "region_id",
        "expected_close_date",
        "closed_on",
        "pipeline_id",
        "currency_id",
    )
    assert {f: getattr(open_deal, f) for f in same} == {f: getattr(reference, f) for f in same}
    assert list(open_deal.history.values_list("field", "new_value")) == [("stage", "Needs confirmed")]
    assert open_deal.lines.get().product.code == "SRV"

    won = Opportunity.objects.get(external_id="D-2")
    assert (won.stage.is_won, won.closed_on, won.expected_close_date) == (True, date(2026, 2, 1), date(2026, 2, 1))
    assert (won.probability, won.forecast_category) == (100, "closed")
    assert Customer.objects.get(name="华信科技").first_won_on == date(2026, 2, 1)


def test_bad_dates_are_reported_with_their_rows(run_import):
    before = snapshot()
    result = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-02-30", "100"],
            ["D-2", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
            ["D-3", "Acme Ltd", "rep", "SRV", "Needs confirmed", "soon", "100"],
        )
    )
    assert_rejected(result, before, "Row 2, close_date “2027-02-30”", "Row 4, close_date “soon”")
    assert "Row 3" not in result[1]


def test_ambiguous_dates_need_a_date_order(run_import):
    rows = deals(
        ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "01/03/2027", "100"],
        ["D-2", "Acme Ltd", "rep", "SRV", "Needs confirmed", "02/04/2027", "100"],
    )
    before = snapshot()
    assert_rejected(run_import(rows), before, "Row 2", "Row 3", "ambiguous")
    _out, err, exc = run_import(rows, "--date-order", "dmy")
    assert exc is None, err
    assert Opportunity.objects.get(external_id="D-2").expected_close_date == date(2027, 4, 2)


def test_date_order_decided_by_the_file_when_one_value_tells(run_import):
    _out, err, exc = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "01/03/2027", "100"],
            ["D-2", "Acme Ltd", "rep", "SRV", "Needs confirmed", "25/04/2027", "100"],
        )
    )
    assert exc is None, err
    assert Opportunity.objects.get(external_id="D-1").expected_close_date == date(2027, 3, 1)


def test_unknown_product_is_an_error_unless_opted_in(run_import):
    rows = deals(
        ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
        ["D-2", "Acme Ltd", "rep", "Quantum Box", "Needs confirmed", "2027-03-01", "100"],
        ["D-3", "Acme Ltd", "rep", "Quantum Box", "Needs confirmed", "2027-03-01", "100"],
    )
    before = snapshot()
    assert_rejected(run_import(rows), before, "Row 3, product “Quantum Box”: Unknown product", "Row 4")
    _out, err, exc = run_import(rows, "--create-missing")
    assert exc is None, err
    product = Product.objects.get(name="Quantum Box")
    assert product.line.code == "IMPORTED"
    assert OpportunityLine.objects.filter(product=product).count() == 2


def test_unknown_rep_is_an_error_unless_opted_in(org, run_import):
    rows = deals(["D-1", "Acme Ltd", "Wang Fang", "SRV", "Needs confirmed", "2027-03-01", "100"])
    before = snapshot()
    assert_rejected(run_import(rows), before, "Row 2, sales_agent “Wang Fang”: Unknown rep")
    _out, err, exc = run_import(rows, "--create-missing")
    assert exc is None, err
    rep = User.objects.get(first_name="Wang", last_name="Fang")
    # A new rep sits where the deal's customer is, with no usable password until an admin sets one.
    assert (rep.role, rep.region, rep.has_usable_password()) == (Role.REP, org.sh, False)
    assert Opportunity.objects.get(external_id="D-1").owner == rep


def test_unknown_customer_is_created_only_when_opted_in(org, run_import):
    rows = deals(["D-1", "New Co", "rep_js", "SRV", "Needs confirmed", "2027-03-01", "100"])
    before = snapshot()
    assert_rejected(run_import(rows), before, "Row 2, account “New Co”: Unknown customer")
    _out, err, exc = run_import(rows, "--create-missing")
    assert exc is None, err
    customer = Customer.objects.get(name="New Co")
    assert (customer.owner, customer.region) == (org.rep_js, org.js)


def test_duplicate_ids_in_the_file_and_in_the_database(org, run_import):
    make_deal(owner=org.rep, external_id="OLD-1")
    before = snapshot()
    result = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
            ["OLD-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
            ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
        )
    )
    assert_rejected(result, before, "Row 3, opportunity_id “OLD-1”: Already imported", "Row 4", "row 2 has the same id")


def test_reimporting_the_same_file_says_already_imported(run_import):
    rows = deals(
        ["D-1", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
        ["D-2", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
    )
    assert run_import(rows)[2] is None
    before = snapshot()
    assert_rejected(run_import(rows), before, "Row 2", "Row 3", "looks already imported")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_excel_damaged_csv_is_read(org, run_import, encoding):
    # Chinese headers, `;` separators, "1,234.50" and "￥1,200", ids with apostrophes, trailing blanks.
    rows = [
        ["商机编号", "客户", "负责人", "产品", "阶段", "预计成交日期", "金额", "", ""],
        ["'0001", "华信科技", "rep", "Server X1", "需求确认", "2027年3月1日", "1,234.50", "", ""],
        ["'0002", "Acme Ltd", "rep_sh2", "Storage S2", "商务谈判", "2027/4/15", "￥1,200", "", ""],
        ["", "", "", "", "", "", "", "", ""],
        ["", "", "", "", "", "", "", "", ""],
    ]
    _out, err, exc = run_import(csv_bytes(rows, delimiter=";", encoding=encoding))
    assert exc is None, err
    first, second = Opportunity.objects.filter(external_id__in=["0001", "0002"]).order_by("external_id")
    assert (first.customer.name, first.amount, first.expected_close_date) == (
        "华信科技",
        Decimal("1234.50"),
        date(2027, 3, 1),
    )
    assert (second.stage.name_zh, second.amount, second.owner) == ("商务谈判", Decimal("1200.00"), org.rep_same_team)


def test_excel_damaged_csv_with_a_scientific_notation_id_imports_nothing(run_import):
    rows = [
        ["商机编号", "客户", "负责人", "金额"],
        ["123456789012", "华信科技", "rep", "1,234.50"],
        ["123456789013", "华信科技", "rep", "1,000"],
        ["1.23457E+11", "华信科技", "rep", "900"],
    ]
    before = snapshot()
    result = run_import(csv_bytes(rows, delimiter=";", encoding="gbk"))
    assert_rejected(result, before, "Row 4, 商机编号 “1.23457E+11”", "damaged by Excel")


def test_gbk_fixture_file(org, run_import):
    """A file as Excel on a Chinese Windows saves it: GBK, `;`, thousands separators, a trailing blank row."""
    _out, err, exc = run_import((DATA / "deals_gbk_semicolon.csv").read_bytes())
    assert exc is None, err
    deal = Opportunity.objects.get(external_id="GBK-2")
    assert (deal.customer.name, deal.owner, deal.amount) == ("华信科技", org.rep_same_team, Decimal("12345.60"))


def test_manager_cannot_import_deals_for_reps_outside_his_subtree(org, run_import):
    before = snapshot()
    result = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep_js", "SRV", "Needs confirmed", "2027-03-01", "100"],
            ["D-2", "Acme Ltd", "rep_other", "SRV", "Needs confirmed", "2027-03-01", "100"],
        ),
        "--user",
        "manager",
    )
    assert_rejected(result, before, "Row 3, sales_agent “rep_other”", "outside your data scope")
    assert "Row 2" not in result[1]


def test_reps_may_not_import(run_import):
    _out, _err, exc = run_import(deals(), "--user", "rep")
    assert "may not import" in str(exc)


def test_xlsx_round_trip(org, run_import):
    wb = Workbook()
    ws = wb.active
    ws.append(["Deal ID", "Customer", "Owner", "Product", "Stage", "Close date", "Amount", "Created"])
    ws.append(["X-1", "Acme Ltd", "rep", "Server X1", "Won / payment", datetime(2026, 1, 15), 1500.5, 45000])
    ws.append(["X-2", "华信科技", "rep_sh2", None, "Negotiation", "2027-05-01", 2000, None])
    ws.append([None] * 8)
    buffer = io.BytesIO()
    wb.save(buffer)
    _out, err, exc = run_import(buffer.getvalue(), "--mapping", "Deal ID=external_id", name="deals.xlsx")
    assert exc is None, err
    won = Opportunity.objects.get(external_id="X-1")
    assert (won.closed_on, won.amount, timezone.localdate(won.created_at)) == (
        date(2026, 1, 15),
        Decimal("1500.50"),
        date(2023, 3, 15),
    )
    assert Opportunity.objects.get(external_id="X-2").expected_close_date == date(2027, 5, 1)


def test_xls_file_is_read(org, run_import):
    """tests/data/deals.xls: an Excel 97-2003 workbook with a date cell and numeric amounts."""
    _out, err, exc = run_import((DATA / "deals.xls").read_bytes(), name="deals.xls")
    assert exc is None, err
    won = Opportunity.objects.get(external_id="XLS-1")
    assert (won.customer.name, won.closed_on, won.amount) == ("华信科技", date(2026, 2, 1), Decimal("1500.50"))
    assert Opportunity.objects.get(external_id="XLS-2").expected_close_date == date(2027, 5, 1)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        ((DATA / "corrupt.xls").read_bytes(), "corrupt.xls", "Excel 97-2003"),
        (b"opportunity_id,account\r\nD-1,Acme Ltd\r\n", "renamed.xls", "damaged or renamed"),
    ],
)
def test_corrupt_xls_is_refused_with_a_message(run_import, data, name, message):
    before = snapshot()
    _out, _err, exc = run_import(data, name=name)
    assert message in str(exc)
    assert snapshot() == before


@time_machine.travel(datetime(2026, 6, 1, 12, 0), tick=False)
def test_won_deals_need_date_and_amount_and_are_converted(org, run_import):
    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2025, 1, 1), rate=Decimal("7.10"))
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7.00"))
    header = ["id", "customer", "owner", "won on", "amount", "currency"]
    before = snapshot()
    result = run_import(
        csv_bytes(
            [header, ["W-1", "Acme Ltd", "rep", "", "100", "USD"], ["W-2", "Acme Ltd", "rep", "2025-06-01", "", ""]]
        ),
        "--kind",
        "won_deals",
        "--mapping",
        "won on=close_date",
    )
    assert_rejected(
        result,
        before,
        "Row 2, won on: A won or lost deal needs its close date",
        "Row 3, amount: A won deal needs its amount",
    )
    _out, err, exc = run_import(
        csv_bytes(
            [
                header,
                ["W-1", "Acme Ltd", "rep", "2025-06-01", "100", "USD"],
                ["W-2", "Acme Ltd", "rep", "2026-03-01", "100", "usd"],
            ]
        ),
        "--kind",
        "won_deals",
        "--mapping",
        "won on=close_date",
    )
    assert exc is None, err
    w1, w2 = Opportunity.objects.filter(external_id__startswith="W-").order_by("external_id")
    assert (w1.stage.is_won, w1.amount_company, w2.amount_company) == (True, Decimal("710.00"), Decimal("700.00"))
    assert Customer.objects.get(name="Acme Ltd").first_won_on == date(2025, 6, 1)
    assert OpportunityHistory.objects.filter(opportunity=w1, new_stage=w1.stage).count() == 1


def test_customers_import(org, run_import):
    rows = [
        ["客户编号", "客户名称", "负责人", "区域", "行业", "客户等级"],
        ["C-1", "远航物流", "rep", "SH", "物流", "大客户"],
        ["C-2", "Acme Ltd", "rep", "SH", "", "B"],
        ["C-3", "金桥实业", "rep_js", "", "制造", "Z"],
    ]
    before = snapshot()
    assert_rejected(
        run_import(csv_bytes(rows), "--kind", "customers"),
        before,
        "Row 3, 客户名称 “Acme Ltd”: Already imported",
        "Row 4, 客户等级 “Z”",
    )
    del rows[2]
    rows[2][5] = "A"
    _out, err, exc = run_import(csv_bytes(rows), "--kind", "customers")
    assert exc is None, err
    first, second = Customer.objects.filter(external_id__in=["C-1", "C-3"]).order_by("external_id")
    assert (first.tier, first.region, first.industry) == ("KA", org.sh, "物流")
    assert (second.tier, second.region, second.owner) == ("A", org.js, org.rep_js)


def test_unknown_region_is_created_inside_the_managers_region_when_opted_in(org, run_import):
    rows = [["name", "owner", "region"], ["Zhejiang Co", "rep_js", "Zhejiang"]]
    before = snapshot()
    assert_rejected(run_import(csv_bytes(rows), "--kind", "customers", "--user", "manager"), before, "Unknown region")
    _out, err, exc = run_import(csv_bytes(rows), "--kind", "customers", "--user", "manager", "--create-missing")
    assert exc is None, err
    customer = Customer.objects.get(name="Zhejiang Co")
    assert customer.region.parent == org.east
    assert Customer.objects.visible_to(org.manager).filter(pk=customer.pk).exists()


def test_an_import_of_deals_queues_one_rebuild_of_attainment(run_import):
    from salesmgmt.models import OutboxTask

    OutboxTask.objects.all().delete()
    _out, err, exc = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "SRV", "Won / payment", "2027-03-01", "100"],
            ["D-2", "Acme Ltd", "rep", "SRV", "Needs confirmed", "2027-03-01", "100"],
        )
    )
    assert exc is None, err
    # Not one recompute per deal: one rebuild of every plan from the facts, after the import commits.
    assert list(OutboxTask.objects.values_list("name", flat=True)) == ["targets.reconcile_all"]


def test_imported_deals_have_a_close_day_only_when_won_or_lost(run_import):
    _out, err, exc = run_import(
        deals(
            ["D-1", "Acme Ltd", "rep", "Server X1", "Needs confirmed", "2027-03-01", "100"],
            ["D-2", "Acme Ltd", "rep", "Server X1", "Won / payment", "2026-02-01", "200"],
            ["D-3", "Acme Ltd", "rep", "Server X1", "Lost", "2026-02-01", "300"],
        )
    )
    assert exc is None, err
    assert Opportunity.objects.count() == 3
    assert_close_day_exactly_on_closed_deals()
    assert list(Opportunity.objects.open().values_list("external_id", flat=True)) == ["D-1"]
