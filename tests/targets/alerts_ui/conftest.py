"""Alerts from real evaluations on a frozen day (2027-03-15): late deals of reps in two areas, a stale one.

- `late`: rep's deal (Shanghai, East: manager is his manager), close date passed -> warning
- `late_other`: rep_other's deal (Beijing, North: manager_north), close date passed -> warning
- `stale`: rep_js's deal stuck 15 days in the first stage (expected 14) -> info
"""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from crm.models import User
from pipeline.models import Opportunity
from targets.alerts.evaluation import evaluate_alerts
from targets.alerts.rules import ensure_default_rules
from targets.models import Alert, AlertKind
from tests.factories import make_deal

DAY = "2027-03-15 09:00 +0800"


@pytest.fixture
def frozen():
    with time_machine.travel(DAY, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rules(db):
    return {r.kind: r for r in ensure_default_rules()}


@pytest.fixture
def emails(org):
    """Everyone has an address (the factory leaves it empty)."""
    for user in User.objects.all():
        User.objects.filter(pk=user.pk).update(email=f"{user.username}@example.com")


@pytest.fixture
def deals(org, frozen):
    late = make_deal(owner=org.rep, name="Shanghai servers", amount="1000", close=date(2027, 3, 1))
    late_other = make_deal(owner=org.rep_other, name="Beijing ERP", amount="1000", close=date(2027, 3, 2))
    stale = make_deal(owner=org.rep_js, name="Nanjing racks", amount="1000", close=date(2027, 6, 30))
    Opportunity.objects.filter(pk=stale.pk).update(stage_entered_at=timezone.now() - timedelta(days=15))
    return SimpleNamespace(late=late, late_other=late_other, stale=stale)


@pytest.fixture
def alerts(org, rules, deals, emails):
    evaluate_alerts()
    by_deal = {a.opportunity_id: a for a in Alert.objects.all()}
    found = SimpleNamespace(
        late=by_deal[deals.late.pk], late_other=by_deal[deals.late_other.pk], stale=by_deal[deals.stale.pk]
    )
    assert found.late.rule.kind == AlertKind.CLOSE_DATE_PASSED
    assert found.stale.rule.kind == AlertKind.STALE_IN_STAGE
    return found


def htmx(client, url, **extra):
    """A POST as htmx sends it from the page."""
    return client.post(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="alert-row", **extra)
