"""The funnel and driver pages: figures in the page equal the selectors', the scope picker keeps to the user's
regions (another team is a 404), a rep sees only himself, and the query count does not grow with the deals."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.coaching.analytics.conftest import WON
from tests.factories import make_deal


@pytest.fixture(autouse=True)
def _day(time_machine):
    time_machine.move_to(date(2026, 6, 20), tick=False)


def test_urls():
    assert reverse("coaching:funnel") == "/review/funnel/"
    assert reverse("coaching:drivers") == "/review/drivers/"


def test_funnel_page_shows_the_scope_deals(org, sales, client_for):
    page = client_for(org.manager).get("/review/funnel/", {"date_from": "2026-01-01", "date_to": "2026-06-30"})
    assert page.status_code == 200
    funnel = page.context["funnel"]
    # Every East deal of the fixture is won and created today (the cohort of this year).
    east = [w for w in WON if w[0] != "rep_other"]
    assert funnel.stages[0].reached == len(east) + 1
    assert sum(r.won for r in page.context["rows"]) == len(east) + 1
    # The trend per quarter adds up to the same deals as the table per team.
    assert sum(r.won for r in page.context["trend"]) == len(east) + 1
    assert [r.period.key for r in page.context["trend"]] == ["FY2026-Q1", "FY2026-Q2"]
    assert b'data-testid="funnel-chart"' in page.content and b'data-testid="win-rate-chart"' in page.content


def test_funnel_page_for_another_team_is_a_404(org, sales, client_for):
    assert client_for(org.manager).get("/review/funnel/", {"region": org.bj.pk}).status_code == 404
    assert client_for(org.manager).get("/review/drivers/", {"region": org.bj.pk}).status_code == 404
    assert client_for(org.director).get("/review/funnel/", {"region": org.bj.pk}).status_code == 200


def test_bad_dates_are_a_form_error(org, client_for):
    page = client_for(org.manager).get("/review/funnel/", {"date_from": "2026-05-01", "date_to": "2026-01-01"})
    assert page.status_code == 200 and "funnel" not in page.context
    assert page.context["form"].non_field_errors()


def test_a_rep_sees_only_himself(org, sales, client_for):
    page = client_for(org.rep).get("/review/funnel/")
    assert "region" not in page.context["form"].fields
    assert {r.key for r in page.context["rows"]} == {org.rep.pk}
    drivers = client_for(org.rep).get("/review/drivers/", {"period": "FY2026-Q2", "by": "owner"})
    assert drivers.status_code == 200
    assert drivers.context["whole"].row.now.amount == Decimal("3200.55")
    assert drivers.context["rows"] == []  # "by" offers only his whole scope


def test_drivers_page_shows_the_change_by_driver(org, sales, client_for):
    page = client_for(org.manager).get("/review/drivers/", {"period": "FY2026-Q2", "by": "owner"})
    assert page.status_code == 200
    whole = page.context["whole"]
    assert whole.row.now.amount == Decimal("6600.55")
    assert page.context["region"] == org.east
    assert {r.row.key for r in page.context["rows"]} == {org.rep.pk, org.rep_same_team.pk, org.rep_js.pk}
    assert b'data-testid="change-chart"' in page.content
    assert sum(line["change"] for line in whole.lines) == whole.row.change_total


def test_query_count_does_not_grow_with_deals(org, sales, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)
    params = {"period": "FY2026-Q2", "by": "owner"}
    with django_assert_max_num_queries(50) as before:
        client.get("/review/drivers/", params)
        client.get("/review/funnel/", {"by": "owner"})
    for _ in range(5):
        make_deal(owner=org.rep_js, amount="10")
    with django_assert_max_num_queries(len(before.captured_queries)):
        client.get("/review/drivers/", params)
        client.get("/review/funnel/", {"by": "owner"})


def test_drivers_page_splits_the_gap_to_target(org, approved_plan, client_for):
    page = client_for(org.manager).get("/review/drivers/", {"period": "FY2026-Q2"})
    whole = page.context["whole"]
    assert whole.target is not None
    assert sum(line["gap"] for line in whole.lines) == whole.target.gap == whole.row.now.amount - whole.target.target
    assert b'data-testid="target-chart"' in page.content
    assert f'data-testid="main-gap" data-value="{whole.target.main}"'.encode() in page.content


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/review/funnel/", {"date_from": "yesterday"}),
        ("/review/funnel/", {"by": "planet"}),
        ("/review/funnel/", {"period": "decade"}),
        ("/review/funnel/", {"date_from": "2020-01-01", "date_to": "2026-01-01"}),
        ("/review/drivers/", {"period": "FY1999-Q9"}),
        ("/review/drivers/", {"by": "planet"}),
        ("/review/drivers/", {"region": "not-a-number"}),
    ],
)
def test_bad_input_is_a_form_error_not_a_crash(org, client_for, url, params):
    page = client_for(org.manager).get(url, params)
    assert page.status_code == 200
    assert page.context["form"].errors
    assert b'class="errorlist"' in page.content or b'data-testid="form-errors"' in page.content


def test_login_required(client):
    for url in ("/review/funnel/", "/review/drivers/"):
        assert client.get(url).status_code == 302


def test_the_figures_are_valid_plotly_figures_with_a_trace_per_series(org, sales, approved_plan):
    from plotly import graph_objects as go

    from coaching.drivers import driver_review
    from coaching.views.analytics import days_figure, funnel_figure, waterfall, win_rate_figure
    from pipeline.analytics import funnel, win_rates

    result = funnel(org.manager, date_from=date(2026, 1, 1), date_to=date(2026, 6, 30))
    rows = win_rates(org.manager, date_from=date(2026, 1, 1), date_to=date(2026, 6, 30), by="owner")
    (whole,) = driver_review(org.manager, period_start=date(2026, 4, 1), period_end=date(2026, 6, 30), region=org.east)
    figures = [
        funnel_figure(result),
        days_figure(result),
        win_rate_figure(rows),
        win_rate_figure(rows, over_time=True),
        waterfall("Target", whole.target.target, whole.target.contributions, "Actual"),
    ]
    for figure in figures:
        go.Figure(figure)  # plotly's own validation: raises on an unknown attribute or a bad value
    assert [len(f["data"]) for f in figures] == [1, 1, 2, 2, 1]
    assert figures[0]["data"][0]["x"] == [f.reached for f in result.stages]
    bars = figures[4]["data"][0]["y"]
    assert sum(Decimal(str(v)) for v in bars[1:5]) == whole.target.gap
