"""Which plans a review shows: one per metric in force, the latest started (a quarter inside the year) and the
region's own before the company's; every metric a headline, and the rows switch metric on request."""

from datetime import date
from decimal import Decimal

import pytest

from coaching.review import build_review, plans_in_force
from pipeline.models import Opportunity
from pipeline.services import collection_create
from targets.attainment.services import attainment_recompute
from targets.services import plan_approve, plan_create, plan_submit, target_split
from tests.coaching.review.company import DAY, replay

pytestmark = pytest.mark.usefixtures("company")


def approved(org, plan, *, split_by="region"):
    target_split(node=plan.nodes.get(), dimension=split_by, method="equal", actor=org.director)
    return plan_approve(plan=plan_submit(plan=plan, actor=org.director), actor=org.admin)


def test_a_quarter_plan_in_force_comes_before_the_year_and_a_regions_own_before_the_companys(org, metrics, company):
    quarter = approved(
        org,
        plan_create(
            metric=metrics["won_revenue"],
            period_key="FY2027-Q2",
            total="300000",
            owner=org.director,
            actor=org.director,
        ),
    )
    assert plans_in_force(org.director, org.hq, DAY) == [quarter]
    # Outside the quarter the year plan is the one in force.
    assert plans_in_force(org.director, org.hq, date(2027, 8, 1)) == [company.plan]
    east = plan_create(
        metric=metrics["won_revenue"],
        period_key="FY2027-Q2",
        total="100000",
        region=org.east,
        owner=org.manager,
        actor=org.director,
    )
    east = approved(org, east, split_by="rep")
    assert plans_in_force(org.manager, org.sh, DAY) == [east]
    assert plans_in_force(org.director, org.hq, DAY) == [quarter]  # East's plan covers East, not the company


def test_every_metric_in_force_has_a_headline_and_the_rows_show_the_one_asked_for(org, metrics, company):
    collections = approved(
        org,
        plan_create(
            metric=metrics["collections"], period_key="FY2027", total="800000", owner=org.director, actor=org.director
        ),
    )
    # 25,000 collected on the rep's March deal (East), 60,000 on North's April deal.
    for owner, amount, day in ((org.rep, "25000", date(2027, 3, 20)), (org.rep_other, "60000", date(2027, 4, 25))):
        deal = Opportunity.objects.filter(owner=owner, stage__is_won=True, closed_on__year=2027).first()
        collection_create(opportunity=deal, received_on=day, amount=Decimal(amount), actor=owner)
    attainment_recompute(plan=collections, as_of=DAY)
    review = build_review(org.director, region=org.hq, week=DAY)
    assert [h.metric for h in review.headline] == ["won_revenue", "collections"]
    assert review.metric == "won_revenue"
    cash = review.headline[1]
    assert (cash.target, cash.actual, cash.attainment_pct) == (Decimal("800000"), Decimal("85000"), Decimal("10.6"))
    rows = {r.key: r for r in build_review(org.director, region=org.hq, week=DAY, metric="collections").rows}
    assert rows[f"region:{org.east.pk}"].actual == Decimal("25000")
    assert rows[f"region:{org.north.pk}"].actual == Decimal("60000")
    # The rows of another metric keep the win rate of the deals.
    everyone = replay(org, {"rep", "rep_same_team", "rep_js"}, Decimal("600000"))
    assert rows[f"region:{org.east.pk}"].win_rate == everyone["win_rate"]
    # An unknown metric shows the default.
    assert build_review(org.director, region=org.hq, week=DAY, metric="nope").metric == "won_revenue"


def test_without_a_plan_in_force_the_review_shows_the_people_and_says_so(org, client_for):
    response = client_for(org.manager).get(f"/review/?region={org.sh.pk}&week=2026-06-10")
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="no-plan"' in html
    review = response.context["review"]
    assert review.headline == () and {r.key for r in review.rows} == {
        f"rep:{org.rep.pk}",
        f"rep:{org.rep_same_team.pk}",
    }
    assert all(r.target is None and r.attainment_pct is None for r in review.rows)
