"""Product lines and products: read for everyone, write for admins; exchange rates read-only."""

from datetime import date
from decimal import Decimal

from crm.models import AuditLog, Currency, ExchangeRate, Product, ProductLine
from tests.conftest import results
from tests.factories import ProductFactory


def test_everyone_reads_the_catalogue(org, api):
    product = ProductFactory(name="CRM Suite")
    for user in (org.rep, org.manager, org.director):
        client = api(user)
        assert [row["name"] for row in results(client.get("/api/products/"))] == ["CRM Suite"]
        assert results(client.get("/api/product-lines/"))[0]["id"] == product.line_id
    assert results(api(org.rep).get("/api/products/"))[0]["list_price"] == "1000.00"


def test_only_an_admin_writes_the_catalogue(org, api):
    for user in (org.rep, org.manager, org.director):
        response = api(user).post("/api/product-lines/", {"name": "Cloud", "code": "CLD"}, format="json")
        assert response.status_code == 403
        assert response.json() == {"detail": "Only an administrator may change this.", "code": "permission_denied"}
    assert not ProductLine.objects.exists()

    admin = api(org.admin)
    line = admin.post("/api/product-lines/", {"name": "Cloud", "code": "CLD", "is_key": True}, format="json")
    assert line.status_code == 201
    product = admin.post(
        "/api/products/",
        {"line": line.json()["id"], "name": "Cloud Pro", "code": "CP", "list_price": "99.90"},
        format="json",
    )
    assert product.status_code == 201, product.content
    assert Product.objects.get(code="CP").list_price == Decimal("99.90")

    pk = product.json()["id"]
    assert api(org.rep).patch(f"/api/products/{pk}/", {"is_active": False}, format="json").status_code == 403
    assert admin.patch(f"/api/products/{pk}/", {"is_active": False}, format="json").json()["is_active"] is False
    assert AuditLog.objects.filter(action="product.update", object_id=str(pk), actor=org.admin).exists()
    assert admin.delete(f"/api/products/{pk}/").status_code == 405


def test_duplicate_code_is_a_400_not_a_500(org, api):
    ProductFactory(code="DUP")
    response = api(org.admin).post(
        "/api/products/", {"line": ProductLine.objects.get().pk, "name": "Again", "code": "DUP"}, format="json"
    )
    assert response.status_code == 400
    assert "code" in response.json()["errors"]


def test_exchange_rates_are_read_only(org, api):
    usd = Currency.objects.create(code="USD", name="US dollar")
    ExchangeRate.objects.create(currency=usd, valid_from=date(2026, 1, 1), rate=Decimal("7.1"))
    rows = results(api(org.rep).get("/api/exchange-rates/?currency=USD"))
    assert [(r["currency"], r["valid_from"], r["rate"]) for r in rows] == [("USD", "2026-01-01", "7.10000000")]
    assert api(org.admin).post("/api/exchange-rates/", {}, format="json").status_code == 405
