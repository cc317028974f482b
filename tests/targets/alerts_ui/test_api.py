"""The alert, alert-rule and notification endpoints: scoped, filtered, transitions with clear errors, and
all of them in the OpenAPI schema."""

import pytest

from targets.models import AlertState, Notification
from tests.salesmgmt.api.test_schema import error_codes


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_the_list_is_scoped_and_filtered(org, alerts, api):
    assert ids(api(org.rep).get("/api/alerts/")) == {alerts.late.pk}
    assert ids(api(org.manager).get("/api/alerts/")) == {alerts.late.pk, alerts.stale.pk}
    director = api(org.director)
    assert ids(director.get("/api/alerts/", {"severity": "info"})) == {alerts.stale.pk}
    assert ids(director.get("/api/alerts/", {"kind": "close_date_passed"})) == {alerts.late.pk, alerts.late_other.pk}
    assert ids(director.get("/api/alerts/", {"owner": org.rep_other.pk})) == {alerts.late_other.pk}
    assert ids(director.get("/api/alerts/", {"state": "resolved"})) == set()
    assert director.get("/api/alerts/", {"state": "gone"}).status_code == 400


def test_the_detail_has_the_message_and_the_link(org, alerts, api):
    body = api(org.rep).get(f"/api/alerts/{alerts.late.pk}/").json()
    assert body["message"] == "Deal “Shanghai servers” is still open after its expected close date, March 1, 2027"
    assert body["link"] == f"/pipeline/deals/{alerts.late.opportunity_id}/"
    assert (body["kind"], body["severity"], body["state"], body["owner"]) == (
        "close_date_passed",
        "warning",
        "open",
        org.rep.pk,
    )
    zh = api(org.rep).get(f"/api/alerts/{alerts.stale.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh.status_code == 404  # not his deal
    zh = api(org.rep_js).get(f"/api/alerts/{alerts.stale.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "需求确认" in zh.json()["message"]


def test_acknowledge_then_resolve_and_the_refusals(org, alerts, api):
    client = api(org.manager)
    response = client.post(f"/api/alerts/{alerts.late.pk}/acknowledge/")
    assert response.status_code == 200 and response.json()["state"] == AlertState.ACKNOWLEDGED
    again = client.post(f"/api/alerts/{alerts.late.pk}/acknowledge/")
    assert again.status_code == 400
    assert again.json()["detail"] == "Only an open alert can be acknowledged."
    assert client.post(f"/api/alerts/{alerts.late.pk}/resolve/").json()["state"] == AlertState.RESOLVED
    assert client.post(f"/api/alerts/{alerts.late.pk}/resolve/").json() == {
        "detail": "This alert is already resolved.",
        "code": "invalid",
        "errors": {"non_field_errors": ["This alert is already resolved."]},
    }


def test_an_alert_outside_the_scope_is_a_404_everywhere(org, alerts, api):
    client = api(org.rep)
    assert client.get(f"/api/alerts/{alerts.late_other.pk}/").status_code == 404
    assert client.post(f"/api/alerts/{alerts.late_other.pk}/acknowledge/").status_code == 404
    assert client.post(f"/api/alerts/{alerts.late_other.pk}/resolve/").status_code == 404
    alerts.late_other.refresh_from_db()
    assert alerts.late_other.state == AlertState.OPEN


@pytest.mark.parametrize("who", ["rep", "manager"])
def test_rules_are_for_directors_and_admins(org, rules, api, who):
    client = api(getattr(org, who))
    rule = rules["pace_gap"]
    assert client.get("/api/alert-rules/").status_code == 403
    assert client.patch(f"/api/alert-rules/{rule.pk}/", {"severity": "info"}, format="json").status_code == 403
    rule.refresh_from_db()
    assert rule.severity == "warning"


def test_a_director_patches_a_rule_and_bad_values_are_400(org, rules, api):
    client = api(org.director)
    rule = rules["coverage"]
    assert len(client.get("/api/alert-rules/").json()["results"]) == 6
    response = client.patch(f"/api/alert-rules/{rule.pk}/", {"threshold": "2.5", "active": False}, format="json")
    assert response.status_code == 200
    assert (response.json()["threshold"], response.json()["active"]) == ("2.50", False)
    bad = client.patch(f"/api/alert-rules/{rule.pk}/", {"threshold": "-1"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"] == {"threshold": ["This threshold cannot be negative."]}
    bad = client.patch(f"/api/alert-rules/{rule.pk}/", {"severity": "panic"}, format="json")
    assert bad.status_code == 400 and "severity" in bad.json()["errors"]
    rule.refresh_from_db()
    assert (str(rule.threshold), rule.active, rule.severity) == ("2.50", False, "warning")
    assert api(org.admin).patch(f"/api/alert-rules/{rule.pk}/", {"active": True}, format="json").status_code == 200


def test_notifications_are_ones_own(org, alerts, api):
    client = api(org.manager)
    listed = client.get("/api/notifications/").json()["results"]
    assert {row["alert"] for row in listed} == {alerts.late.pk, alerts.stale.pk}
    assert all(not row["read"] and row["message"] for row in listed)
    assert client.get("/api/notifications/unread-count/").json() == {"unread": 2}
    first = listed[0]["id"]
    read = client.post(f"/api/notifications/{first}/read/")
    assert read.status_code == 200 and read.json()["read"] is True
    assert client.get("/api/notifications/unread-count/").json() == {"unread": 1}
    assert client.post("/api/notifications/read-all/").json() == {"marked": 1, "unread": 0}
    others = Notification.objects.get(recipient=org.rep)
    assert client.post(f"/api/notifications/{others.pk}/read/").status_code == 404
    others.refresh_from_db()
    assert others.read_at is None
    assert api(org.rep).get("/api/notifications/unread-count/").json() == {"unread": 1}


def test_anonymous_is_401(api, db):
    assert api().get("/api/notifications/").status_code == 401
    assert api().get("/api/alerts/").status_code == 401


def test_the_schema_has_the_alert_endpoints(schema):
    paths = schema["paths"]
    expected = {
        "/api/alerts/": {"get"},
        "/api/alerts/{id}/": {"get"},
        "/api/alerts/{id}/acknowledge/": {"post"},
        "/api/alerts/{id}/resolve/": {"post"},
        "/api/alert-rules/": {"get"},
        "/api/alert-rules/{id}/": {"get", "patch"},
        "/api/notifications/": {"get"},
        "/api/notifications/{id}/read/": {"post"},
        "/api/notifications/read-all/": {"post"},
        "/api/notifications/unread-count/": {"get"},
    }
    for url, methods in expected.items():
        assert set(paths[url]) - {"parameters"} == methods, url
    assert {"400", "404"} <= error_codes(paths["/api/alerts/{id}/acknowledge/"]["post"])
    assert "403" in error_codes(paths["/api/alert-rules/{id}/"]["patch"])
    params = {p["name"] for p in paths["/api/alerts/"]["get"]["parameters"]}
    assert {"state", "severity", "kind", "owner", "plan", "period", "page"} <= params
    assert "message" in schema["components"]["schemas"]["Alert"]["properties"]
