"""The API answers exactly what its schema says (issue 16): nullable names, blank enums and e-mails,
required response fields, enumerated orderings refused when unknown, strict pagination and filters, JSON
404s for paths that name no endpoint. Each rule is checked in the schema and in a real answer."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import ids, results

LIST_CODES = {"400", "401", "403", "404"}


@pytest.fixture
def director(org, api):
    return api(org.director)


def component(schema, name):
    return schema["components"]["schemas"][name]


def parameter(schema, path, name):
    return next(p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name)


# --- the schema ----------------------------------------------------------------------------------


def test_names_of_empty_relations_are_nullable_and_blank_choices_are_listed(schema):
    node = component(schema, "TargetNode")["properties"]
    for name in ("region_name", "product_line_name", "product_name", "rep_name", "owner_name"):
        assert node[name]["nullable"] is True, name
    for name in ("segment", "split_dimension", "split_method"):
        refs = {branch["$ref"].rsplit("/", 1)[1] for branch in node[name]["oneOf"]}
        assert "BlankEnum" in refs, name
    assert component(schema, "BlankEnum")["enum"] == [""]
    assert component(schema, "OpportunityHistory")["properties"]["old_stage_name"]["nullable"] is True
    plan = component(schema, "TargetPlan")["properties"]
    assert plan["approved_by_name"]["nullable"] is True and plan["region_name"]["nullable"] is True
    # Always there: the stage of a deal is never empty.
    assert "nullable" not in component(schema, "Opportunity")["properties"]["stage_name"]
    email = component(schema, "User")["properties"]["email"]
    assert {"type": "string", "maxLength": 0} in email["oneOf"]


def test_every_field_a_response_always_carries_is_required(schema):
    for name in ("Opportunity", "TargetNode", "TargetPlan", "Customer", "User", "Metric", "SplitResult"):
        schema_ = component(schema, name)
        assert set(schema_["required"]) == set(schema_["properties"]), name
    # An error's per-field messages come only with a validation error.
    assert component(schema, "Error")["required"] == ["code", "detail"]


def test_lists_declare_bad_input_and_pages_past_the_last(schema):
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation and any(p["name"] == "page" for p in operation.get("parameters", [])):
            assert set(operation["responses"]) >= LIST_CODES, path
            page = parameter(schema, path, "page")["schema"]
            assert page == {"type": "integer", "minimum": 1}, path


def test_orderings_are_enumerated(schema):
    ordering = parameter(schema, "/api/opportunities/", "ordering")
    assert (ordering["style"], ordering["explode"]) == ("form", False)
    assert {"amount_company", "-amount_company", "name", "-name"} <= set(ordering["schema"]["items"]["enum"])
    assert set(parameter(schema, "/api/target-plans/", "ordering")["schema"]["items"]["enum"]) >= {"total", "-total"}


def test_the_token_scheme_names_its_prefix(schema):
    token = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (token["type"], token["in"], token["name"], token["x-token-prefix"]) == (
        "apiKey",
        "header",
        "Authorization",
        "Token",
    )
    assert "`Authorization: Token <key>`" in token["description"]


# --- the answers ---------------------------------------------------------------------------------


def test_an_unknown_ordering_is_a_400_naming_the_choices(deals, director):
    response = director.get("/api/opportunities/", {"ordering": "-amount_company,secret_field"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "'secret_field'" in body["errors"]["ordering"][0] and "-amount_company" in body["errors"]["ordering"][0]
    amounts = [row["amount_company"] for row in results(director.get("/api/opportunities/?ordering=-amount_company"))]
    assert amounts == ["4000.00", "3000.00", "2000.00", "1000.00"]


@pytest.mark.parametrize(
    "query",
    ["page_size=10&page_size=20", "page_size=0", "page_size=ten", "page=0", "page=1.5", "page=last"],
)
def test_pages_and_page_sizes_are_whole_numbers_given_once(deals, director, query):
    response = director.get(f"/api/opportunities/?{query}")
    assert response.status_code == 400, query
    assert response.json()["code"] == "invalid"


def test_a_page_past_the_last_is_a_json_404_and_a_big_page_size_is_capped(deals, director):
    response = director.get("/api/opportunities/?page=3&page_size=2")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert len(results(director.get("/api/opportunities/?page_size=100000"))) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("owner=1&owner=2", "owner"),
        ("owner=99999999999999999999", "owner"),
        ("owner=0", "owner"),
        ("close_date_before=", "close_date_before"),
        ("status=", "status"),
    ],
)
def test_filters_refuse_what_the_schema_does_not_allow(deals, director, query, field):
    response = director.get(f"/api/opportunities/?{query}")
    assert response.status_code == 400, query
    assert field in response.json()["errors"]


def test_booleans_are_true_or_false(org, api):
    client = api(org.rep)
    assert client.get("/api/products/", {"is_active": "1"}).status_code == 400
    assert client.get("/api/products/", {"is_active": "true"}).status_code == 200


def test_a_query_serializer_reads_an_empty_value_as_a_bad_value(org, api):
    response = api(org.director).get("/api/review/funnel/", {"date_to": ""})
    assert response.status_code == 400
    assert "date_to" in response.json()["errors"]


def test_paths_that_name_no_endpoint_are_json_404s(deals, org):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(org.director)
    for method, path in (
        ("get", "/api/opportunities/1.5/"),
        ("get", "/api/no-such-thing/"),
        ("post", "/api/target-nodes/0.5/split/"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    # A real endpoint still checks the session's CSRF token.
    assert client.post("/api/customers/", {"name": "X"}, format="json").status_code == 403


def test_nulls_and_blanks_come_back_as_the_schema_says(org, api):
    from tests.factories import UserFactory

    UserFactory(username="noemail", email="", region=None)
    rows = {row["username"]: row for row in results(api(org.admin).get("/api/users/", {"page_size": 200}))}
    assert (rows["noemail"]["email"], rows["noemail"]["region_name"]) == ("", None)


# --- metrics -------------------------------------------------------------------------------------


def test_everyone_reads_the_metrics_and_nobody_writes_them(org, metrics, api):
    from targets.models import Metric

    retired = Metric.objects.create(code="old", name="Old metric", source="won_revenue", is_active=False)
    client = api(org.rep)
    listed = {row["code"]: row for row in results(client.get("/api/metrics/", {"page_size": 200}))}
    assert set(listed) == {m.code for m in metrics.values()} | {"old"}
    assert listed["won_revenue"]["unit"] == "money" and listed["won_revenue"]["is_builtin"] is True
    assert ids(client.get("/api/metrics/", {"is_active": "false"})) == {retired.pk}
    revenue = metrics["won_revenue"]
    assert client.get(f"/api/metrics/{revenue.pk}/").json()["display_name"] == revenue.name
    assert api(org.admin).post("/api/metrics/", {"code": "x", "name": "X"}, format="json").status_code == 405
    assert APIClient().get("/api/metrics/").status_code == 401


def test_only_the_named_fields_sort(org, api, schema):
    # Alert rules name their sortable fields; a computed label (DRF's default would offer it) is a 400, not a 500.
    client = api(org.director)
    assert client.get("/api/alert-rules/", {"ordering": "-get_kind_display"}).status_code == 400
    assert client.get("/api/alert-rules/", {"ordering": "-severity,kind"}).status_code == 200
    terms = set(parameter(schema, "/api/alert-rules/", "ordering")["schema"]["items"]["enum"])
    assert terms == {"kind", "-kind", "severity", "-severity", "threshold", "-threshold", "active", "-active"}
