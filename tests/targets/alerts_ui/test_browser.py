"""In a real browser: a manager opens Alerts from the nav, acknowledges an alert on his rep's late deal, sees
the row change state and the bell's unread count go down without a reload."""

from datetime import timedelta

from django.utils import timezone

from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.rules import ensure_default_rules
from targets.models import Alert, AlertState
from tests.browser.plugin import login
from tests.factories import make_deal


def test_manager_acknowledges_an_alert(page, org):
    ensure_default_rules()
    today = timezone.localdate()
    make_deal(owner=org.rep, name="Shanghai servers", amount="1000", close=today - timedelta(days=10))
    make_deal(owner=org.rep_same_team, name="Pudong storage", amount="1000", close=today - timedelta(days=3))
    evaluate_alerts()
    late = Alert.objects.get(opportunity__name="Shanghai servers")

    login(page, "manager")
    bell = page.get_by_test_id("nav-unread")
    assert bell.get_attribute("data-count") == "2"
    page.get_by_test_id("nav-alerts").click()
    page.wait_for_url("**/targets/alerts/")
    row = page.get_by_test_id(f"alert-{late.pk}")
    assert "Shanghai servers" in row.get_by_test_id("alert-message").inner_text()
    assert row.get_attribute("data-state") == "open"

    row.get_by_test_id("acknowledge").click()
    page.wait_for_selector(f"[data-testid=alert-{late.pk}][data-state=acknowledged]")
    assert row.get_by_test_id("alert-state").inner_text().startswith("Acknowledged")
    assert row.get_by_test_id("acknowledge").count() == 0  # only "Resolve" is left
    page.wait_for_selector("[data-testid=nav-unread][data-count='1']")
    assert page.get_by_test_id("nav-unread-count").inner_text() == "1"
    assert Alert.objects.get(pk=late.pk).state == AlertState.ACKNOWLEDGED
    assert page.url.endswith("/targets/alerts/")  # swapped in place, no reload
