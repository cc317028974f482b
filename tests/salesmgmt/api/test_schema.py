"""The OpenAPI schema validates without warnings and declares the JSON errors of every operation."""

from rest_framework.test import APIClient

ERROR_REF = "#/components/schemas/Error"
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(schema):
    for url, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield url, method, operation


def error_codes(operation) -> set[str]:
    return {
        code
        for code, response in operation["responses"].items()
        if response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == ERROR_REF
    }


def test_every_operation_declares_its_json_errors(schema):
    for url, method, operation in operations(schema):
        codes = error_codes(operation)
        assert "429" in codes, (method, url)  # throttled or locked out (salesmgmt.security)
        if url == "/api/auth/token/":
            assert codes == {"400", "429"}
            continue
        assert {"401", "403"} <= codes, (method, url)
        if method in ("post", "put", "patch"):
            assert "400" in codes, (method, url)
        if "{id}" in url:
            assert "404" in codes, (method, url)


def test_conflicts_are_declared_where_the_version_is_checked(schema):
    paths = schema["paths"]
    assert "409" in error_codes(paths["/api/opportunities/{id}/"]["patch"])
    assert "409" in error_codes(paths["/api/opportunities/{id}/move-stage/"]["post"])


def test_bodies_are_json_and_deletion_is_not_offered(schema):
    for _url, _method, operation in operations(schema):
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}
    assert "delete" not in schema["paths"]["/api/opportunities/{id}/"]
    assert "put" not in schema["paths"]["/api/opportunities/{id}/"]
    assert "delete" not in schema["paths"]["/api/customers/{id}/"]


def test_money_is_a_decimal_string_and_computed_amounts_are_read_only(schema):
    opportunity = schema["components"]["schemas"]["Opportunity"]["properties"]
    assert opportunity["amount"]["type"] == "string"
    assert opportunity["amount"]["format"] == "decimal"
    assert opportunity["amount_company"]["readOnly"] is True
    assert opportunity["weighted_amount"]["readOnly"] is True
    request = schema["components"]["schemas"]["OpportunityRequest"]["properties"]
    assert "amount_company" not in request and "weighted_amount" not in request


def test_token_endpoint_is_documented(schema):
    operation = schema["paths"]["/api/auth/token/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/AuthTokenRequest")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Token")


def test_schema_and_docs_are_served(org):
    client = APIClient()
    client.force_authenticate(org.rep)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/opportunities/{id}/move-stage/" in response.json()["paths"]
    assert client.get("/api/docs/").status_code == 200
