"""The alert list (scope, filters, counts, paging), acknowledge/resolve from a row, the rules page, the
notification centre and its settings, and the bell in the nav."""

import re

import pytest
from django.urls import reverse

from targets.alerts.services import alert_acknowledge
from targets.models import AlertKind, AlertRule, AlertSeverity, AlertState, Notification, NotificationPreference

from .conftest import htmx

LIST = "/targets/alerts/"


def row_ids(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-testid="alert-(\d+)"', response.content.decode())}


def nav_count(response) -> int:
    return int(re.search(r'data-testid="nav-unread" data-count="(\d+)"', response.content.decode()).group(1))


def action(alert, name):
    return reverse("targets:alert_action", args=[alert.pk, name])


# --- the list ---------------------------------------------------------------------------------------


def test_each_person_sees_the_alerts_of_their_scope(org, alerts, client_for):
    assert row_ids(client_for(org.rep).get(LIST)) == {alerts.late.pk}
    assert row_ids(client_for(org.rep_other).get(LIST)) == {alerts.late_other.pk}
    assert row_ids(client_for(org.manager).get(LIST)) == {alerts.late.pk, alerts.stale.pk}
    assert row_ids(client_for(org.director).get(LIST)) == {alerts.late.pk, alerts.late_other.pk, alerts.stale.pk}


def test_a_row_says_what_is_wrong_and_links_to_the_deal(org, alerts, client_for):
    html = client_for(org.manager).get(LIST).content.decode()
    assert "Deal “Shanghai servers” is still open after its expected close date" in html
    assert f'href="/pipeline/deals/{alerts.late.opportunity_id}/"' in html
    assert 'data-severity="warning"' in html and 'data-severity="info"' in html


def test_filters_and_counts(org, alerts, client_for):
    client = client_for(org.director)
    alert_acknowledge(alert=alerts.late, actor=org.director)
    alerts.late_other.state = AlertState.RESOLVED
    alerts.late_other.save(update_fields=["state"])

    assert row_ids(client.get(LIST)) == {alerts.late.pk, alerts.stale.pk}  # default: open and acknowledged
    assert row_ids(client.get(LIST, {"state": "resolved"})) == {alerts.late_other.pk}
    assert row_ids(client.get(LIST, {"state": "all"})) == {alerts.late.pk, alerts.late_other.pk, alerts.stale.pk}
    assert row_ids(client.get(LIST, {"severity": AlertSeverity.INFO})) == {alerts.stale.pk}
    assert row_ids(client.get(LIST, {"kind": "close_date_passed", "state": "all"})) == {
        alerts.late.pk,
        alerts.late_other.pk,
    }
    assert row_ids(client.get(LIST, {"owner": org.rep_js.pk})) == {alerts.stale.pk}
    html = client.get(LIST).content.decode()
    counts = dict(re.findall(r'data-testid="count-(\w+)" data-count="(\d+)"', html))
    assert counts == {"open": "1", "acknowledged": "1", "resolved": "1"}


def test_an_owner_outside_the_scope_is_a_filter_error_not_a_leak(org, alerts, client_for):
    response = client_for(org.manager).get(LIST, {"owner": org.rep_other.pk})
    assert 'data-testid="error-owner"' in response.content.decode()
    assert row_ids(response) == {alerts.late.pk, alerts.stale.pk}  # the other filters still apply


def test_the_list_is_paged_with_few_queries(org, alerts, client_for, django_assert_max_num_queries, monkeypatch):
    monkeypatch.setattr("targets.views.alerts.ALERTS_PAGE_SIZE", 2)
    client = client_for(org.director)
    with django_assert_max_num_queries(14):
        first = client.get(LIST)
    second = client.get(LIST, {"page": 2})
    assert len(row_ids(first)) == 2 and len(row_ids(second)) == 1
    assert row_ids(first).isdisjoint(row_ids(second))


# --- acknowledge / resolve ----------------------------------------------------------------------------


def test_acknowledge_from_the_row_swaps_it_and_the_bell(org, alerts, client_for):
    client = client_for(org.manager)
    assert nav_count(client.get(LIST)) == 2
    response = htmx(client, action(alerts.late, "acknowledge"))
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith(f'<tr id="alert-{alerts.late.pk}"')
    assert 'data-state="acknowledged"' in html
    assert 'hx-swap-oob="true"' in html and nav_count(response) == 1  # its notification is read
    alerts.late.refresh_from_db()
    assert (alerts.late.state, alerts.late.acknowledged_by) == (AlertState.ACKNOWLEDGED, org.manager)


def test_an_invalid_transition_is_explained_on_the_row(org, alerts, client_for):
    client = client_for(org.rep)
    htmx(client, action(alerts.late, "resolve"))
    response = htmx(client, action(alerts.late, "acknowledge"))
    assert response.status_code == 200
    assert "Only an open alert can be acknowledged." in response.content.decode()
    response = htmx(client, action(alerts.late, "resolve"))
    assert "This alert is already resolved." in response.content.decode()


def test_without_htmx_the_action_redirects_back_with_a_message(org, alerts, client_for):
    client = client_for(org.rep)
    response = client.post(action(alerts.late, "resolve"), {"next": LIST + "?state=all"}, follow=True)
    assert response.redirect_chain[-1][0] == LIST + "?state=all"
    assert "Alert resolved." in response.content.decode()


def test_an_alert_outside_the_scope_is_a_404(org, alerts, client_for):
    client = client_for(org.rep)
    assert htmx(client, action(alerts.late_other, "acknowledge")).status_code == 404
    assert client.post(action(alerts.stale, "resolve")).status_code == 404
    alerts.late_other.refresh_from_db()
    assert alerts.late_other.state == AlertState.OPEN


# --- rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["rep", "manager"])
def test_only_directors_and_admins_edit_rules(org, rules, client_for, who):
    client = client_for(getattr(org, who))
    assert client.get("/targets/alerts/rules/").status_code == 403
    rule = rules["coverage"]
    assert client.post(f"/targets/alerts/rules/{rule.pk}/", {f"rule-{rule.pk}-severity": "info"}).status_code == 403
    rule.refresh_from_db()
    assert rule.severity == AlertSeverity.WARNING


def test_a_director_changes_a_rule(org, rules, client_for):
    client = client_for(org.director)
    rule = rules["coverage"]
    assert f'data-testid="rule-{rule.pk}"' in client.get("/targets/alerts/rules/").content.decode()
    prefix = f"rule-{rule.pk}"
    data = {f"{prefix}-threshold": "2.5", f"{prefix}-severity": "critical", f"{prefix}-active": "on"}
    response = client.post(f"/targets/alerts/rules/{rule.pk}/", data, HTTP_HX_REQUEST="true")
    assert 'data-testid="rule-saved"' in response.content.decode()
    rule.refresh_from_db()
    assert (str(rule.threshold), rule.severity, rule.active) == ("2.50", "critical", True)
    client.post(f"/targets/alerts/rules/{rule.pk}/", {f"{prefix}-threshold": "2.5", f"{prefix}-severity": "info"})
    rule.refresh_from_db()
    assert rule.active is False  # an unticked box


def test_a_bad_threshold_is_shown_on_the_rule(org, rules, client_for):
    client = client_for(org.director)
    rule = rules["coverage"]
    prefix = f"rule-{rule.pk}"
    response = client.post(
        f"/targets/alerts/rules/{rule.pk}/",
        {f"{prefix}-threshold": "-1", f"{prefix}-severity": "warning", f"{prefix}-active": "on"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert 'data-testid="error-threshold"' in html and "This threshold cannot be negative." in html
    response = client.post(
        f"/targets/alerts/rules/{rule.pk}/", {f"{prefix}-threshold": "lots", f"{prefix}-severity": "warning"}
    )
    assert response.status_code == 400 and "Enter a number." in response.content.decode()
    rule.refresh_from_db()
    assert (str(rule.threshold), rule.active) == ("3.00", True)


# --- notification centre -----------------------------------------------------------------------------


def test_the_centre_lists_own_notifications_unread_first(org, alerts, client_for):
    client = client_for(org.manager)
    mine = list(Notification.objects.filter(recipient=org.manager).order_by("id"))
    Notification.objects.filter(pk=mine[0].pk).update(read_at="2027-03-15T02:00:00Z")
    html = client.get("/targets/notifications/").content.decode()
    shown = [int(pk) for pk in re.findall(r'data-testid="notification-(\d+)"', html)]
    assert shown == [mine[1].pk, mine[0].pk]
    assert f'data-testid="notification-{Notification.objects.get(recipient=org.rep).pk}"' not in html
    assert "<strong>" in html.split(f'data-testid="notification-{mine[1].pk}"')[1].split("</li>")[0]


def test_marking_read_lowers_the_count_in_the_nav(org, alerts, client_for):
    client = client_for(org.manager)
    assert nav_count(client.get("/targets/notifications/")) == 2
    one = Notification.objects.filter(recipient=org.manager).first()
    response = client.post(f"/targets/notifications/{one.pk}/read/", HTTP_HX_REQUEST="true")
    assert nav_count(response) == 1
    assert nav_count(client.get("/targets/notifications/")) == 1
    client.post("/targets/notifications/read-all/")
    assert nav_count(client.get(LIST)) == 0
    other = Notification.objects.get(recipient=org.rep)
    assert client.post(f"/targets/notifications/{other.pk}/read/").status_code == 404
    other.refresh_from_db()
    assert other.read_at is None


def test_the_nav_bell_costs_one_count_query(org, alerts, client_for, django_assert_num_queries):
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = org.manager
    with django_assert_num_queries(1):
        html = Template("{% load alert_tags %}{% nav_unread %}").render(Context({"request": request}))
    assert 'data-count="2"' in html


def test_notification_settings_are_saved_per_kind(org, rules, client_for):
    client = client_for(org.rep)
    html = client.get("/targets/notifications/settings/").content.decode()
    # Defaults: everything in the centre; e-mail for warning kinds, not for "stuck in stage" (info).
    assert re.search(r'name="email_close_date_passed"[^>]*checked', html)
    assert not re.search(r'name="email_stale_in_stage"[^>]*checked', html)
    client.post("/targets/notifications/settings/", {"in_app_pace_gap": "on", "email_stale_in_stage": "on"})
    prefs = {p.kind: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user=org.rep)}
    assert prefs["pace_gap"] == (True, False)
    assert prefs["stale_in_stage"] == (False, True)
    assert prefs["close_date_passed"] == (False, False)
    assert not NotificationPreference.objects.exclude(user=org.rep).exists()


def test_a_new_installation_has_the_default_rules(db):
    # The migrations add the general rule of every kind, so alerts fire without any setup.
    assert set(AlertRule.objects.filter(metric=None).values_list("kind", flat=True)) == set(AlertKind.values)


def test_a_director_adds_the_missing_default_rules(org, client_for):
    AlertRule.objects.all().delete()  # e.g. deleted in the admin
    client = client_for(org.director)
    assert 'data-testid="rules-missing"' in client.get("/targets/alerts/rules/").content.decode()
    assert client_for(org.manager).post("/targets/alerts/rules/defaults/").status_code == 403
    assert not AlertRule.objects.exists()
    client.post("/targets/alerts/rules/defaults/")
    assert set(AlertRule.objects.values_list("kind", flat=True)) == set(AlertKind.values)
    assert 'data-testid="rules-missing"' not in client.get("/targets/alerts/rules/").content.decode()


def test_the_alert_list_and_the_centre_do_not_grow_with_rows(org, alerts, client_for, frozen):
    from datetime import date

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from targets.alerts.evaluation import evaluate_alerts
    from tests.factories import make_deal

    client = client_for(org.manager)

    def measure() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as listed:
            client.get(LIST)
        with CaptureQueriesContext(connection) as centre:
            client.get("/targets/notifications/")
        return len(listed), len(centre)

    before = measure()
    for i, owner in enumerate([org.rep, org.rep_same_team, org.rep_js] * 3):
        make_deal(owner=owner, name=f"Late {i}", amount="1000", close=date(2027, 2, 1))
    evaluate_alerts()
    assert len(row_ids(client.get(LIST))) == 11
    assert measure() == before
