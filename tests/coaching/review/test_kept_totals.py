"""The director's weekly review adds its company-wide figures (the waterfall, the rows' win counts) up from
totals kept per region (crm/rollup.py): after a win it reads exactly what a review counted afresh reads.

Commits (transaction=True): the freshness versions move only after a commit, as in production."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coaching.review import build_review
from crm.models import Region
from pipeline.models import Stage
from pipeline.services import opportunity_move_stage
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.factories import make_deal

pytestmark = pytest.mark.django_db(transaction=True)

WEEK = date(2026, 6, 1)


def _won(org, deal, day):
    won = Stage.objects.get(pipeline=org.pipeline, is_won=True)
    return opportunity_move_stage(opportunity=deal, stage=won, actor=deal.owner, closed_on=day, evidence="signed")


def _review(org):
    return build_review(org.director, region=Region.objects.get(pk=org.hq.pk), week=WEEK, today=date(2026, 6, 3))


def _company_sums(captured) -> int:
    """Statements summing deals into one total (the review counted afresh sums the company's deals in one)."""
    return sum(
        1 for q in captured.captured_queries if 'FROM "pipeline_opportunity"' in q["sql"] and "GROUP BY" not in q["sql"]
    )


def test_the_directors_review_follows_a_win_and_equals_a_review_counted_afresh(org, metrics, settings):
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2026", total="1200000", owner=org.director, actor=org.director
    )
    target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director)
    plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)
    first = org.stages[0]
    east = make_deal(owner=org.rep, amount="1000.10", stage=first, close=date(2026, 6, 20))
    north = make_deal(
        owner=org.rep_other, amount="30.33", stage=first, close=date(2026, 6, 25), forecast_category="commit"
    )
    _won(org, east, date(2026, 5, 4))

    before = _review(org)
    _won(org, north, date(2026, 6, 2))
    with CaptureQueriesContext(connection) as captured:
        after = _review(org)
    settings.ROLLUP_CACHE = False  # everything counted afresh
    afresh = _review(org)

    assert after == afresh
    # The North deal was an open commit; won, it leaves the waterfall's open commit.
    assert before.waterfall is not None and before.waterfall.commit == north.amount_company
    assert after.waterfall is not None and after.waterfall.commit == 0
    rows = {row.key: row for row in after.rows}
    assert rows[f"region:{org.north.pk}"].won == 1 and rows[f"region:{org.east.pk}"].won == 1
    assert {row.key: row.won for row in before.rows}[f"region:{org.north.pk}"] == 0
    # Kept: only the teams the win moved were summed again, per team (grouped), and added to the kept totals.
    assert _company_sums(captured) == 0
