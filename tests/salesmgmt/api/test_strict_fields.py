"""Request bodies take exactly the JSON types the schema gives (salesmgmt.fields): a boolean is true or false,
an id or integer a JSON integer, a date "YYYY-MM-DD", a decimal a string of digits matching the schema's pattern.
Anything else is a 400 naming the field, never silently coerced; and every field of every request body is one
of these strict fields, so no serializer is left out."""

import re
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import force_instance
from rest_framework import serializers

from crm.models import Contact, CustomerRating, ProductLine
from pipeline.models import Activity
from salesmgmt import fields as strict
from targets.api.serializers import CommitSerializer
from targets.models import AlertKind, AlertRule
from tests.factories import CustomerFactory

BOOLEAN = "Give true or false."
DECIMAL = 'Give the number as a string of digits, e.g. "1250.50".'


def loose_fields(serializer, where: str) -> list[str]:
    """The writable fields of a request body (nested bodies, list items and dict values included) that are
    not strict: DRF's own field would coerce what the schema forbids."""
    if isinstance(serializer, serializers.ListSerializer):
        return loose_fields(serializer.child, f"{where}[]")
    found = []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        path = f"{where}.{name}"
        if isinstance(field, serializers.ManyRelatedField) and isinstance(field, strict.StrictField):
            field, path = field.child_relation, f"{path}[]"
        elif isinstance(field, serializers.ListField | serializers.DictField):  # DRF's refuse other JSON types
            field, path = field.child, f"{path}[]"
        if isinstance(field, serializers.BaseSerializer):
            found += loose_fields(field, path)
        elif not isinstance(field, strict.StrictField):
            found.append(f"{path} ({type(field).__name__})")
    return found


def request_bodies() -> dict[str, serializers.BaseSerializer]:
    generator = SchemaGenerator()
    generator.parse(None, True)
    bodies = {}
    for path, _regex, method, view in generator._get_paths_and_endpoints():
        if method in ("POST", "PUT", "PATCH"):
            body = force_instance(view.schema.get_request_serializer())
            if isinstance(body, serializers.BaseSerializer):
                bodies[f"{method} {path}"] = body
    return bodies


def test_every_field_of_every_request_body_is_strict(db):
    bodies = request_bodies()
    assert len(bodies) > 40  # the walk found the API's bodies
    loose = [found for operation, body in bodies.items() for found in loose_fields(body, operation)]
    assert loose == []


# --- booleans -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, "true", "false", "yes", "on", "1", None, [], {}])
def test_a_boolean_is_true_or_false_only(org, api, value):
    response = api(org.admin).post(
        "/api/product-lines/", {"name": "Cloud", "code": "CLD", "is_key": value}, format="json"
    )
    assert response.status_code == 400
    if value is not None:
        assert response.json()["errors"] == {"is_key": [BOOLEAN]}
    assert not ProductLine.objects.filter(code="CLD").exists()


def test_a_boolean_as_json_is_taken(org, api):
    response = api(org.admin).post(
        "/api/product-lines/", {"name": "Cloud", "code": "CLD", "is_key": True}, format="json"
    )
    assert response.status_code == 201, response.content
    assert ProductLine.objects.get(code="CLD").is_key is True


def test_a_contact_is_a_decision_maker_by_true_only(org, api):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    url = f"/api/customers/{customer.pk}/contacts/"
    refused = api(org.rep).post(url, {"name": "Li Lei", "is_decision_maker": 1}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"is_decision_maker": [BOOLEAN]}
    assert not Contact.objects.exists()
    assert api(org.rep).post(url, {"name": "Li Lei", "is_decision_maker": True}, format="json").status_code == 201


# --- decimals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2.5, 3, "1e3", " 2.5", "+2.5", "2.", ".5", "2.555", "", "NaN", "Infinity"])
def test_a_threshold_is_a_string_of_digits(org, api, value):
    rule = AlertRule.objects.create(kind=AlertKind.PACE_GAP, threshold=Decimal("-10"))
    response = api(org.director).patch(f"/api/alert-rules/{rule.pk}/", {"threshold": value}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["threshold"]
    rule.refresh_from_db()
    assert rule.threshold == Decimal("-10")


def test_a_threshold_given_as_a_string_is_taken(org, api):
    rule = AlertRule.objects.create(kind=AlertKind.PACE_GAP, threshold=Decimal("-10"))
    response = api(org.director).patch(f"/api/alert-rules/{rule.pk}/", {"threshold": "-2.5"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["threshold"] == "-2.50"


@pytest.mark.parametrize("amount", [12.5, 12, "1e3", "12.345"])
def test_a_committed_amount_given_as_a_number_is_refused_with_the_message(amount):
    body = CommitSerializer(data={"amount": amount})
    assert not body.is_valid()
    message = DECIMAL if not isinstance(amount, str) or "e" in amount else None
    if message:
        assert body.errors == {"amount": [message]}
    assert CommitSerializer(data={"amount": "12.50"}).is_valid()


def test_the_decimal_pattern_of_the_schema_is_what_the_server_takes(schema):
    """Each string the schema's pattern matches is taken, and each it does not match is refused: a client
    generated from the schema, and schemathesis, cannot tell them apart from the server."""
    amount = schema["components"]["schemas"]["CommitRequest"]["properties"]["amount"]
    assert (amount["type"], amount["format"]) == ("string", "decimal")
    samples = ["0", "12", "12.5", "12.50", "-3", "-0.01", "9" * 16, "9" * 16 + ".99", "0012.5"]
    samples += ["9" * 17, "12.345", "1e3", " 12", "12 ", "+12", "12.", ".5", "-", ".", "", "1,000", "١٢"]
    for sample in samples:
        in_schema = re.fullmatch(amount["pattern"], sample) is not None
        taken = CommitSerializer(data={"amount": sample}).is_valid()
        assert in_schema == taken, sample


# --- strings, ids, dates, choices, lists ------------------------------------------------------------------


@pytest.mark.parametrize("reasons", [0, 5.5, ["Big account"], {"why": "Big account"}, True])
def test_a_rating_reason_is_text(org, api, reasons):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    response = api(org.rep).post(f"/api/customers/{customer.pk}/rate/", {"stars": 4, "reasons": reasons}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"reasons": ["Not a valid string."]}
    assert not CustomerRating.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("customer", "ID", "Incorrect type. Expected pk value, received string."),
        ("customer", "FLOAT", "Incorrect type. Expected pk value, received number."),
        ("date", "20260615", "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."),
        ("date", "2026-W25-1", "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."),
        ("kind", 1, '"1" is not a valid choice.'),
    ],
)
def test_ids_dates_and_choices_have_their_json_type(org, api, field, value, message):
    customer = CustomerFactory(owner=org.rep, region=org.sh)
    value = {"ID": str(customer.pk), "FLOAT": float(customer.pk)}.get(value, value)
    body = {"customer": customer.pk, "kind": "visit", "date": "2026-06-15", field: value}
    response = api(org.rep).post("/api/activities/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert not Activity.objects.exists()
    valid = {"customer": customer.pk, "kind": "visit", "date": "2026-06-15"}
    assert api(org.rep).post("/api/activities/", valid, format="json").status_code == 201


def test_a_list_of_ids_is_a_list(org, api):
    response = api(org.manager).post(
        "/api/review/meetings/", {"team": org.east.pk, "week": "2026-06-15", "attendees": {}}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["attendees"]


def test_a_query_string_still_reads_text(org, api):
    """Query parameters are text: the strict fields are for JSON bodies only (`?team=5` is the id 5)."""
    response = api(org.manager).get("/api/review/forecasts/rollup/", {"team": str(org.east.pk)})
    assert response.status_code == 200, response.content
    assert response.json()["team"] == org.east.pk
    assert api(org.manager).get("/api/review/forecasts/rollup/", {"team": "east"}).status_code == 400


def test_the_schema_documents_the_types(schema):
    components = schema["components"]["schemas"]
    assert components["ProductLineRequest"]["properties"]["is_key"]["type"] == "boolean"
    assert components["ContactRequest"]["properties"]["is_decision_maker"]["type"] == "boolean"
    threshold = components["PatchedAlertRuleUpdateRequest"]["properties"]["threshold"]
    assert (threshold["type"], threshold["format"], threshold["pattern"]) == (
        "string",
        "decimal",
        r"^-?[0-9]{1,16}(?:\.[0-9]{1,2})?$",
    )
    assert components["ActivityRequest"]["properties"]["customer"]["type"] == "integer"
    assert "never a JSON number" in schema["info"]["description"]
