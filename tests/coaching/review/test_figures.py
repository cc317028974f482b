"""Every figure of the review against a plain-Python replay of the hand-built facts (review/company.py)."""

from datetime import date
from decimal import Decimal

import pytest

from coaching.review import BY_REGION, BY_REP, build_review
from targets.attainment.services import attainment_recompute
from tests.coaching.review.company import DAY, MONDAY, half_up, replay

pytestmark = pytest.mark.usefixtures("company")

EAST_REPS = {"rep", "rep_same_team", "rep_js"}


def assert_row(row, expected, *, target):
    assert row.target == target
    assert row.actual == expected["actual"]
    assert row.attainment_pct == expected["attainment_pct"]
    assert row.time_progress_pct == expected["time_progress_pct"]
    assert row.pace_gap_points == expected["pace_gap_points"]
    assert row.gap == expected["gap"]
    assert row.pipeline == expected["open"]
    assert row.weighted_pipeline == expected["weighted"]
    assert row.coverage == expected["coverage"]
    assert row.win_rate == expected["win_rate"]
    assert (row.won, row.lost) == (expected["won"], expected["lost"])
    assert row.activities == expected["activities"]


def test_a_team_review_per_rep_equals_the_replay(org):
    review = build_review(org.manager, region=org.sh, week=DAY)
    assert (review.week, review.as_of, review.rows_by) == (MONDAY, DAY, BY_REP)
    rows = {r.key: r for r in review.rows}
    assert set(rows) == {f"rep:{org.rep.pk}", f"rep:{org.rep_same_team.pk}"}
    for name in ("rep", "rep_same_team"):
        assert_row(
            rows[f"rep:{getattr(org, name).pk}"], replay(org, {name}, Decimal("200000")), target=Decimal("200000")
        )
    assert rows[f"rep:{org.rep.pk}"].alerts == 0
    # Shanghai has no target of its own in the plan: its headline is the sum of its reps'.
    (head,) = review.headline
    both = replay(org, {"rep", "rep_same_team"}, Decimal("400000"))
    assert head.node_id is None
    assert (head.target, head.actual, head.gap) == (Decimal("400000"), both["actual"], both["gap"])
    assert (head.attainment_pct, head.time_progress_pct) == (both["attainment_pct"], both["time_progress_pct"])
    assert (head.open_pipeline, head.weighted_pipeline) == (both["open"], both["weighted"])
    assert (head.coverage, head.forecast_run_rate) == (both["coverage"], both["run_rate"])


def test_an_area_review_has_one_row_per_sub_region_and_its_own_target_as_headline(org, company):
    review = build_review(org.manager, region=org.east, week=DAY)
    assert review.rows_by == BY_REGION
    rows = {r.key: r for r in review.rows}
    assert set(rows) == {f"region:{org.sh.pk}", f"region:{org.js.pk}"}
    # No targets per province: a province adds up its reps' targets.
    assert_row(
        rows[f"region:{org.sh.pk}"], replay(org, {"rep", "rep_same_team"}, Decimal("400000")), target=Decimal("400000")
    )
    js = replay(org, {"rep_js"}, Decimal("200000"))
    assert_row(rows[f"region:{org.js.pk}"], js, target=Decimal("200000"))
    assert rows[f"region:{org.js.pk}"].alerts == 1  # the open one; the resolved one is not counted
    (head,) = review.headline
    east = replay(org, EAST_REPS, Decimal("600000"))
    assert head.node_id == company.east.pk
    assert (head.target, head.actual, head.attainment_pct, head.gap) == (
        Decimal("600000"),
        east["actual"],
        east["attainment_pct"],
        east["gap"],
    )
    assert (head.weighted_pipeline, head.coverage, head.forecast_run_rate) == (
        east["weighted"],
        east["coverage"],
        east["run_rate"],
    )


def test_the_company_review_has_the_areas_as_rows_and_the_waterfall(org, company):
    review = build_review(org.director, region=org.hq, week=DAY)
    rows = {r.key: r for r in review.rows}
    assert set(rows) == {f"region:{org.east.pk}", f"region:{org.north.pk}"}
    assert_row(rows[f"region:{org.east.pk}"], replay(org, EAST_REPS, Decimal("600000")), target=Decimal("600000"))
    assert_row(rows[f"region:{org.north.pk}"], replay(org, {"rep_other"}, Decimal("600000")), target=Decimal("600000"))
    (head,) = review.headline
    everyone = replay(org, {*EAST_REPS, "rep_other"}, Decimal("1200000"))
    assert head.node_id == company.root.pk
    assert (head.actual, head.attainment_pct, head.coverage) == (
        everyone["actual"],
        everyone["attainment_pct"],
        everyone["coverage"],
    )
    # target → won → commit → best case → gap: open deals of FY2027 by forecast category (the rep's commit of
    # 2028 is outside the period).
    w = review.waterfall
    assert (w.target, w.won, w.commit, w.best_case) == (
        Decimal("1200000"),
        Decimal("280000"),
        Decimal("170000"),
        Decimal("80000"),
    )
    assert w.gap == Decimal("670000")


def test_the_cumulative_chart_reads_each_month_end_from_the_snapshots(org, company):
    for day in (date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)):
        attainment_recompute(plan=company.plan, as_of=day)
    review = build_review(org.director, region=org.hq, week=DAY)
    everyone = {*EAST_REPS, "rep_other"}
    assert [p.label for p in review.cumulative] == [f"FY2027-M0{m}" for m in range(1, 6)]
    january, *rest = review.cumulative
    assert january.actual is None  # no snapshot before February's
    for point in rest:
        assert point.actual == replay(org, everyone, Decimal("1200000"), day=point.end)["actual"]
        elapsed = (point.end - date(2027, 1, 1)).days + 1
        assert point.target_pace == half_up(Decimal("1200000") * elapsed / 365, "0.01")
    assert rest[-1].end == DAY


def test_a_past_week_reads_the_snapshots_of_its_sunday(org, company):
    sunday = date(2027, 4, 18)
    attainment_recompute(plan=company.plan, as_of=sunday)
    review = build_review(org.manager, region=org.sh, week=date(2027, 4, 14))
    assert (review.week, review.as_of) == (date(2027, 4, 12), sunday)
    row = next(r for r in review.rows if r.key == f"rep:{org.rep.pk}")
    expected = replay(org, {"rep"}, Decimal("200000"), day=sunday)
    assert (row.actual, row.attainment_pct, row.time_progress_pct, row.win_rate) == (
        expected["actual"],
        expected["attainment_pct"],
        expected["time_progress_pct"],
        expected["win_rate"],
    )
    assert row.activities == 0  # none that week


def test_rows_sort_by_any_column_both_ways_with_missing_figures_last(org):
    review = build_review(org.manager, region=org.east, week=DAY, rows_by=BY_REP)
    names = {r.key: r for r in review.rows}
    assert len(names) == 3
    up = review.sorted_by("attainment")
    assert [r.attainment_pct for r in up.rows] == sorted(r.attainment_pct for r in review.rows)
    down = review.sorted_by("-attainment")
    assert [r.key for r in down.rows] == [r.key for r in reversed(up.rows)]
    assert [r.name for r in review.sorted_by("name").rows] == sorted(r.name for r in review.rows)
    assert review.sorted_by("bogus").sort == "pace"
    by_activities = review.sorted_by("-activities")
    assert [r.activities for r in by_activities.rows] == [2, 1, 0]
