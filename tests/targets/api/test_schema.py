"""The targets endpoints are in the OpenAPI schema, which still validates without warnings."""

from tests.salesmgmt.api.test_schema import error_codes


def test_targets_operations_and_their_errors(schema):
    paths = schema["paths"]
    expected = {
        "/api/target-plans/": {"get", "post"},
        "/api/target-plans/{id}/": {"get"},
        "/api/target-plans/{id}/submit/": {"post"},
        "/api/target-plans/{id}/approve/": {"post"},
        "/api/target-plans/{id}/return/": {"post"},
        "/api/target-plans/{id}/approvers/": {"get"},
        "/api/target-plans/{id}/versions/": {"get"},
        "/api/target-plans/{id}/diff/": {"get"},
        "/api/target-nodes/": {"get"},
        "/api/target-nodes/{id}/": {"get", "patch"},
        "/api/target-nodes/{id}/children/": {"get"},
        "/api/target-nodes/{id}/split-preview/": {"post"},
        "/api/target-nodes/{id}/split/": {"post"},
        "/api/target-nodes/{id}/split-leaves/": {"post"},
        "/api/target-nodes/{id}/commit/": {"post"},
        "/api/target-adjustments/": {"get", "post"},
        "/api/target-adjustments/{id}/": {"get"},
        "/api/target-adjustments/{id}/approve/": {"post"},
        "/api/target-adjustments/{id}/reject/": {"post"},
        "/api/action-plans/": {"get", "post"},
        "/api/action-plans/{id}/": {"get", "patch"},
    }
    for url, methods in expected.items():
        assert set(paths[url]) - {"parameters"} == methods, url
    # Where a version is checked, the conflict is declared.
    assert "409" in error_codes(paths["/api/target-nodes/{id}/"]["patch"])
    assert "409" in error_codes(paths["/api/target-nodes/{id}/split/"]["post"])
    assert "409" in error_codes(paths["/api/target-adjustments/{id}/approve/"]["post"])
    # Approval refused to the submitter (or anyone not above him) is a declared 403 with its message.
    for url in ("target-plans/{id}/approve/", "target-plans/{id}/return/", "target-adjustments/{id}/approve/"):
        operation = paths[f"/api/{url}"]["post"]
        assert "403" in error_codes(operation) and "403 for the submitter" in operation["description"], url
    plan_filters = {p["name"] for p in paths["/api/target-plans/"]["get"]["parameters"]}
    assert "awaiting_my_approval" in plan_filters


def test_diff_takes_from_and_to_and_money_is_a_decimal_string(schema):
    params = {p["name"]: p for p in schema["paths"]["/api/target-plans/{id}/diff/"]["get"]["parameters"]}
    assert params["from"]["required"] and params["to"]["required"]
    node = schema["components"]["schemas"]["TargetNode"]["properties"]
    assert (node["amount"]["type"], node["amount"]["format"], node["amount"]["readOnly"]) == ("string", "decimal", True)
    update = schema["components"]["schemas"]["PatchedTargetNodeUpdateRequest"]
    assert "version" in update["properties"]
