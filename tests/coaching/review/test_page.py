"""The review page: who may open which region, what it shows (the same numbers as `build_review`), its sort,
its XLSX export, the kept snapshot that renders the same, and its query count."""

import io
import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from coaching.review import Review, build_review, snapshot_json
from tests.coaching.review.company import DAY, MONDAY, team_of

pytestmark = pytest.mark.usefixtures("company")


def cells(html: str, key: str) -> dict[str, str]:
    """The data-value of each column of the table row `key`."""
    row = re.search(rf'<tr data-testid="row-{re.escape(key)}".*?</tr>', html, re.S)
    assert row, key
    return dict(re.findall(r'data-col="(\w+)" data-value="([^"]*)"', row.group(0)))


def row_keys(html: str) -> list[str]:
    return re.findall(r'<tr data-testid="row-([^"]+)"', html)


# --- access ---------------------------------------------------------------------------------------


def test_a_manager_reviews_his_region_and_its_parts_only(org, client_for):
    client = client_for(org.manager)
    assert client.get("/review/").context["review"].region_id == org.east.pk  # his own region by default
    assert client.get(f"/review/?region={org.sh.pk}").status_code == 200
    assert client.get(f"/review/?region={org.north.pk}").status_code == 404
    assert client.get(f"/review/?region={org.hq.pk}").status_code == 404
    assert client.get("/review/?region=abc").status_code == 404
    assert client.get(f"/review/?region={org.north.pk}&format=xlsx").status_code == 404


def test_the_region_picker_offers_the_regions_of_the_scope_as_a_tree_the_reviewed_one_chosen(org, client_for):
    html = client_for(org.manager).get(f"/review/?region={org.sh.pk}").content.decode()
    select = re.search(r'<select name="region"[^>]*data-testid="review-region"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no region picker"
    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]*)</option>', select.group(1))
    shown = {int(pk): label for pk, _selected, label in options}
    assert set(shown) == {org.east.pk, org.sh.pk, org.js.pk}  # his area, never North's
    assert [int(pk) for pk, selected, _label in options if selected] == [org.sh.pk]
    assert shown[org.sh.pk] == "\u2003" * org.sh.depth + org.sh.name  # indented by depth, as the filters' pickers
    everyone = client_for(org.director).get("/review/").content.decode()
    assert f'<option value="{org.north.pk}">' in everyone and f'<option value="{org.hq.pk}" selected>' in everyone


def test_a_rep_cannot_open_a_team_review_not_even_his_own_team(org, client_for):
    client = client_for(org.rep)
    assert client.get("/review/").status_code == 404
    assert client.get(f"/review/?region={org.sh.pk}").status_code == 404


def test_the_director_sees_the_company_by_default_and_every_region(org, client_for):
    client = client_for(org.director)
    assert client.get("/review/").context["review"].region_id == org.hq.pk
    for region in (org.east, org.north, org.sh, org.js, org.bj):
        assert client.get(f"/review/?region={region.pk}").status_code == 200


def test_a_manager_never_sees_another_areas_figures_in_his_rows(org, client_for):
    # A name no other word of the page can contain (the factories' random first names could).
    org.rep_other.first_name, org.rep_other.last_name = "Zebulon", "Outside-North"
    org.rep_other.save(update_fields=["first_name", "last_name"])
    html = client_for(org.manager).get(f"/review/?region={org.east.pk}").content.decode()
    assert str(org.rep_other) not in html and "North" not in html


# --- what the page shows --------------------------------------------------------------------------


def test_the_page_shows_the_review_figures(org, client_for):
    response = client_for(org.director).get(f"/review/?week={DAY.isoformat()}")
    html = response.content.decode()
    review = build_review(org.director, region=org.hq, week=DAY)
    assert [f"region:{org.east.pk}", f"region:{org.north.pk}"] == sorted(row_keys(html))
    for row in review.rows:
        shown = cells(html, row.key)
        assert Decimal(shown["target"]) == row.target
        assert Decimal(shown["actual"]) == row.actual
        assert Decimal(shown["attainment"]) == row.attainment_pct
        assert Decimal(shown["gap"]) == row.gap
        assert Decimal(shown["coverage"]) == row.coverage
        assert Decimal(shown["win_rate"]) == row.win_rate
        assert int(shown["activities"]) == row.activities
        assert int(shown["alerts"]) == row.alerts
    assert 'data-testid="chart-attainment"' in html and 'data-testid="chart-waterfall"' in html
    assert 'media="print"' in html  # the print stylesheet


def test_a_week_is_chosen_by_any_day_of_it_and_a_bad_one_falls_back_to_this_week(org, client_for):
    client = client_for(org.manager)
    assert client.get("/review/?week=2027-04-15").context["review"].week == date(2027, 4, 12)
    response = client.get("/review/?week=not-a-day")
    assert response.status_code == 200
    assert response.context["review"].week == MONDAY and response.context["week_error"]
    future = client.get("/review/?week=2027-06-01")
    assert future.context["review"].week == MONDAY and future.context["week_error"]


def test_the_table_sorts_server_side(org, client_for):
    client = client_for(org.manager)
    url = f"/review/?region={org.sh.pk}"
    review = build_review(org.manager, region=org.sh, week=DAY)
    by_attainment = sorted(review.rows, key=lambda r: r.attainment_pct)
    assert row_keys(client.get(url + "&sort=attainment").content.decode()) == [r.key for r in by_attainment]
    assert row_keys(client.get(url + "&sort=-attainment").content.decode()) == [r.key for r in by_attainment][::-1]
    html = client.get(url + "&sort=-attainment").content.decode()
    assert 'data-sort="-attainment"' in html and "sort=attainment" in html  # the header offers the other way


def test_the_xlsx_export_holds_what_the_page_shows(org, client_for):
    client = client_for(org.manager)
    url = f"/review/?region={org.sh.pk}&sort=name"
    html = client.get(url).content.decode()
    response = client.get(url + "&format=xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    header, *lines = list(sheet.iter_rows(values_only=True))
    rows = lines[: len(row_keys(html))]
    # Below the rows, after an empty line: the headline, one line per metric.
    blank, head_header, *heads = lines[len(rows) :]
    assert not any(blank) and head_header[:3] == ("Headline", "Target", "Actual")
    review = build_review(org.manager, region=org.sh, week=DAY)
    assert [(h[0], Decimal(str(h[1])), Decimal(str(h[2])), Decimal(str(h[3]))) for h in heads] == [
        (h.metric_name, h.target, h.actual, h.attainment_pct) for h in review.headline
    ]
    assert header[:4] == ("Sales rep", "Target", "Actual", "Attainment")
    assert [r[0] for r in rows] == [
        re.sub("<.*?>", "", n) for n in re.findall(r'<th scope="row"[^>]*>(.*?)</th>', html)
    ]
    columns = ["target", "actual", "attainment", "pace", "gap", "pipeline", "coverage", "win_rate"]
    for key, row in zip(row_keys(html), rows, strict=True):
        shown = cells(html, key)
        for i, column in enumerate(columns, start=1):
            assert Decimal(str(row[i])) == Decimal(shown[column]), (key, column)
        assert (row[9], row[10]) == (int(shown["activities"]), int(shown["alerts"]))


# --- the kept snapshot ----------------------------------------------------------------------------


def test_a_review_kept_as_a_snapshot_renders_identically(org, company):
    from targets.attainment.services import attainment_recompute

    attainment_recompute(plan=company.plan, as_of=date(2027, 3, 31))
    review = build_review(org.director, region=org.hq, week=DAY).sorted_by("-gap")
    data = json.loads(snapshot_json(review))
    assert data["region"] == {"id": org.hq.pk, "name": "HQ"}
    assert data["week"] == "2027-05-10"
    assert set(data["headline"][0]) >= {
        "metric",
        "metric_name",
        "target",
        "actual",
        "attainment_pct",
        "time_progress_pct",
        "gap",
        "weighted_pipeline",
        "coverage",
        "forecast_run_rate",
    }
    assert set(data["rows"][0]) >= {
        "key",
        "name",
        "target",
        "actual",
        "attainment_pct",
        "time_progress_pct",
        "gap",
        "pipeline",
        "coverage",
        "win_rate",
        "activities",
        "alerts",
    }
    assert all(isinstance(v, str | type(None)) for row in data["rows"] for k, v in row.items())
    kept = Review.from_snapshot(data)
    assert kept == review
    for live in (True, False):
        first = render_to_string("coaching/review/_body.html", {"review": review, "live": live})
        again = render_to_string("coaching/review/_body.html", {"review": kept, "live": live})
        assert first == again
    assert "review-chart-cumulative" in first and "review-chart-waterfall" in first


def test_the_kept_snapshot_needs_no_database(org, company, django_assert_num_queries):
    data = json.loads(snapshot_json(build_review(org.director, region=org.hq, week=DAY)))
    with django_assert_num_queries(0):
        render_to_string("coaching/review/_body.html", {"review": Review.from_snapshot(data), "live": False})


# --- query count ----------------------------------------------------------------------------------


def count_queries(user, region) -> int:
    with CaptureQueriesContext(connection) as queries:
        review = build_review(user, region=region, week=DAY)
    assert review.rows and all(r.actual == Decimal("1000") for r in review.rows)
    return len(queries.captured_queries)


def test_the_query_count_does_not_grow_with_the_reps(org, metrics, client_for):
    small_team, small_manager = team_of(org, metrics, 3)
    small = count_queries(small_manager, small_team)
    big_team, big_manager = team_of(org, metrics, 12)
    assert len(build_review(big_manager, region=big_team, week=DAY).rows) == 12
    assert count_queries(big_manager, big_team) == small
    # and through the page
    with CaptureQueriesContext(connection) as first:
        client_for(small_manager).get("/review/")
    with CaptureQueriesContext(connection) as second:
        client_for(big_manager).get("/review/")
    assert len(first.captured_queries) == len(second.captured_queries)


def test_a_region_with_sub_regions_can_show_its_reps_instead(org, client_for):
    client = client_for(org.manager)
    by_region = client.get(f"/review/?region={org.east.pk}")
    assert {k.split(":")[0] for k in row_keys(by_region.content.decode())} == {"region"}
    by_rep = client.get(f"/review/?region={org.east.pk}&by=rep")
    keys = row_keys(by_rep.content.decode())
    assert sorted(keys) == sorted(f"rep:{u.pk}" for u in (org.rep, org.rep_same_team, org.rep_js))
    assert "by=rep" in by_rep.content.decode()  # the sort links keep it
    # A team without sub-regions has reps whatever is asked.
    assert row_keys(client.get(f"/review/?region={org.sh.pk}&by=region").content.decode())
