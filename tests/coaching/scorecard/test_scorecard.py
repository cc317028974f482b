"""The scorecard: scores equal an independent computation (Σ weight × min(actual ÷ target, cap)), a doubled weight
doubles its component, a cap bounds its measure, the ranking is best first, the export carries the same figures,
access follows the data scope, bad input is refused whole, and the queries do not grow with the number of reps."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from coaching.models import ScorecardConfig
from coaching.scorecard import scorecard
from coaching.scorecard_services import scorecard_config_save
from crm.models import Role
from pipeline.models import Activity, ActivityKind, Opportunity
from targets.attainment.services import attainment_recompute
from targets.models import TargetNode
from tests.factories import CustomerFactory, UserFactory, make_deal
from tests.targets.attainment.test_recompute import build_plan

Q1 = "FY2027-Q1"
WON = {"rep": "250000", "rep_sh2": "100000", "rep_other": "300000"}  # rep_js wins nothing
VISITS = {"rep": 4, "rep_sh2": 12, "rep_js": 7}  # rep_other visits nobody


@pytest.fixture(autouse=True)
def day():
    with time_machine.travel("2027-03-15 09:00 +0800", tick=False):
        yield


@pytest.fixture
def card_data(org, metrics):
    """A Q1 signed-revenue plan split by region and rep, won deals and visits per rep, and a scorecard of
    revenue (60 points, cap 120 %) and visits (40 points, cap 100 %, 10 visits by default)."""
    plan = build_plan(org, metrics["won_revenue"], Q1, dimensions=("region", "rep"))
    won = next(s for s in org.stages if s.is_won)
    reps = {u.username: u for u in (org.rep, org.rep_same_team, org.rep_js, org.rep_other)}
    for name, amount in WON.items():
        make_deal(owner=reps[name], amount=amount, stage=won, close=date(2027, 2, 10))
    make_deal(owner=org.rep, amount="999999", stage=won, close=date(2026, 12, 30))  # last year: not Q1
    for name, n in VISITS.items():
        customer = CustomerFactory(owner=reps[name], region=reps[name].region)
        for i in range(n):
            Activity.objects.create(
                customer=customer, owner=reps[name], kind=ActivityKind.VISIT, date=date(2027, 1, 5 + i)
            )
        Activity.objects.create(customer=customer, owner=reps[name], kind=ActivityKind.CALL, date=date(2027, 1, 5))
    attainment_recompute(plan=plan)
    config = scorecard_config_save(
        role=Role.REP,
        period_key=Q1,
        items=[
            {"metric": metrics["won_revenue"], "weight": "60", "cap": "1.20"},
            {"metric": metrics["visits"], "weight": "40", "cap": "1.00", "target": "10"},
        ],
        actor=org.director,
    )
    return {"plan": plan, "reps": reps, "config": config}


def independent(plan, reps, weights=(60, 40), caps=(Decimal("1.2"), Decimal("1.0"))):
    """Each rep's score from plain rows: his Q1 target node's amount, his won deals of Q1, his visits of Q1."""
    scores = {}
    for name, rep in reps.items():
        target = TargetNode.objects.get(plan=plan, rep=rep).amount
        won = sum(
            (
                d.amount_company
                for d in Opportunity.objects.filter(owner=rep)
                if d.stage.is_won and d.closed_on >= date(2027, 1, 1)
            ),
            Decimal(0),
        )
        visits = sum(1 for a in Activity.objects.filter(owner=rep) if a.kind == "visit" and a.date.month <= 3)
        exact = weights[0] * min(won / target, caps[0]) + weights[1] * min(Decimal(visits) / 10, caps[1])
        scores[name] = exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return scores


def test_scores_equal_an_independent_computation_and_rank_best_first(org, card_data):
    card = scorecard(org.director, role=Role.REP, period_key=Q1)
    scores = {r.user.username: r.score for r in card.rows}
    assert scores == independent(card_data["plan"], card_data["reps"])
    assert [r.score for r in card.rows] == sorted(scores.values(), reverse=True)
    assert [r.rank for r in card.rows] == list(range(1, len(card.rows) + 1))  # no ties in this data
    rep = next(r for r in card.rows if r.user == org.rep)
    revenue, visits = rep.components
    assert revenue.from_targets and not visits.from_targets
    assert (visits.actual, visits.target) == (Decimal(4), Decimal(10))


def test_doubling_a_weight_doubles_its_component_and_a_cap_bounds_its_measure(org, metrics, card_data):
    before = {r.user.username: r for r in scorecard(org.director, role=Role.REP, period_key=Q1).rows}
    scorecard_config_save(
        role=Role.REP,
        period_key=Q1,
        items=[
            {"metric": metrics["won_revenue"], "weight": "60", "cap": "1.00"},
            {"metric": metrics["visits"], "weight": "80", "cap": "1.00", "target": "10"},
        ],
        actor=org.director,
    )
    after = {r.user.username: r for r in scorecard(org.director, role=Role.REP, period_key=Q1).rows}
    for name in before:
        assert after[name].components[1].points == 2 * before[name].components[1].points
    # rep_sh2 made 12 visits of 10: capped at 100 %, 80 points, not 96.
    assert after["rep_sh2"].components[1].is_capped and after["rep_sh2"].components[1].points == 80
    # The revenue measure of a rep above target: capped at 120 % before, at 100 % now.
    over = [n for n in before if before[n].components[0].ratio and before[n].components[0].ratio > 1]
    assert over
    for name in over:
        assert before[name].components[0].points == 60 * min(before[name].components[0].ratio, Decimal("1.2"))
        assert after[name].components[0].points == 60
    assert {n: r.score for n, r in after.items()} == independent(
        card_data["plan"], card_data["reps"], weights=(60, 80), caps=(Decimal(1), Decimal(1))
    )


def test_a_tie_shares_a_rank(org, metrics, card_data):
    scorecard_config_save(
        role=Role.REP,
        period_key=Q1,
        items=[{"metric": metrics["calls"], "weight": "10", "target": "1"}],
        actor=org.admin,
    )
    rows = scorecard(org.director, role=Role.REP, period_key=Q1).rows
    assert [r.rank for r in rows] == [1, 1, 1, 4]  # three reps made one call each, rep_other none
    assert rows[-1].user == org.rep_other


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("rep", {"rep"}),
        ("manager", {"rep", "rep_sh2", "rep_js"}),
        ("director", {"rep", "rep_sh2", "rep_js", "rep_other"}),
        ("manager_north", {"rep_other"}),
    ],
)
def test_access_per_role_page_api_and_export(org, card_data, client_for, api, who, expected):
    user = getattr(org, who)
    assert {r.user.username for r in scorecard(user, role=Role.REP, period_key=Q1).rows} == expected
    page = client_for(user).get("/review/scorecard/", {"role": "rep", "period_key": Q1})
    assert page.status_code == 200
    shown = {
        u.username for u in card_data["reps"].values() if f'data-testid="scorecard-row-{u.pk}"' in page.content.decode()
    }
    assert shown == expected
    body = api(user).get("/api/review/scorecard/", {"role": "rep", "period_key": Q1})
    assert body.status_code == 200
    assert {r["name"] for r in body.json()} == {
        (u.get_full_name() or u.username) for u in card_data["reps"].values() if u.username in expected
    }
    export = client_for(user).get("/review/scorecard/export.xlsx", {"role": "rep", "period_key": Q1})
    sheet = load_workbook(BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))[1:]
    assert len(rows) == len(expected)
    assert [Decimal(str(r[2])) for r in rows] == [r.score for r in scorecard(user, role=Role.REP, period_key=Q1).rows]


def test_only_managers_directors_and_admins_configure(org, metrics, card_data, client_for, api):
    post = {"role": "rep", "period_key": Q1, "metric_0": metrics["calls"].pk, "weight_0": "10", "target_0": "5"}
    assert client_for(org.rep).post("/review/scorecard/config/", post).status_code == 403
    assert "scorecard-config-form" not in client_for(org.rep).get("/review/scorecard/").content.decode()
    put = {"role": "rep", "period_key": Q1, "items": [{"metric": metrics["calls"].pk, "weight": "10", "target": "5"}]}
    assert api(org.rep).put("/api/review/scorecard/config/", put, format="json").status_code == 403
    assert card_data["config"].items.count() == 2  # unchanged
    response = client_for(org.manager).post("/review/scorecard/config/", post)
    assert response.status_code == 302
    assert list(
        ScorecardConfig.objects.get(role="rep", period_key=Q1).items.values_list("metric__code", flat=True)
    ) == ["calls"]
    ok = api(org.director).put("/api/review/scorecard/config/", put | {"period_key": "FY2027-Q2"}, format="json")
    assert ok.status_code == 200, ok.content
    assert (
        api(org.rep).get("/api/review/scorecard/config/", {"period_key": "FY2027-Q2"}).json()["items"][0]["weight"]
        == "10.00"
    )


def test_bad_input_is_refused_whole(org, metrics, card_data, client_for, api):
    bad_period = {"role": "rep", "period_key": "next year", "metric_0": metrics["calls"].pk, "weight_0": "10"}
    assert client_for(org.director).post("/review/scorecard/config/", bad_period).status_code == 400
    no_weight = {"role": "rep", "period_key": Q1, "metric_0": metrics["calls"].pk}
    assert client_for(org.director).post("/review/scorecard/config/", no_weight).status_code == 400
    for items in (
        [{"metric": metrics["calls"].pk, "weight": "-1"}],
        [{"metric": metrics["calls"].pk, "weight": "1", "cap": "0"}],
        [{"metric": 999999, "weight": "1"}],
        [{"metric": metrics["calls"].pk, "weight": "1"}, {"metric": metrics["calls"].pk, "weight": "2"}],
        [],
    ):
        body = {"role": "rep", "period_key": Q1, "items": items}
        assert api(org.director).put("/api/review/scorecard/config/", body, format="json").status_code == 400
    assert api(org.director).get("/api/review/scorecard/", {"role": "rep"}).status_code == 400  # no period
    assert card_data["config"].items.count() == 2  # nothing half-applied


def _queries(user):
    with CaptureQueriesContext(connection) as ctx:
        rows = scorecard(user, role=Role.REP, period_key=Q1).rows
    return len(rows), len(ctx.captured_queries)


def test_queries_do_not_grow_with_the_number_of_reps(org, card_data):
    three, before = _queries(org.manager)
    assert three == 3
    for i in range(9):
        rep = UserFactory(username=f"extra{i}", role=Role.REP, region=org.sh)
        customer = CustomerFactory(owner=rep, region=org.sh)
        Activity.objects.create(customer=customer, owner=rep, kind=ActivityKind.VISIT, date=date(2027, 2, 1))
    twelve, after = _queries(org.manager)
    assert twelve == 12
    assert after == before


def test_the_weekly_review_of_a_team_shows_its_reps_scorecard(org, card_data, client_for):
    """The review of East, by rep, in a week of Q1 shows East's reps' scores (the scorecard page's figures) and
    nobody of North; a director's review by region shows none (it is per rep)."""
    expected = independent(card_data["plan"], card_data["reps"])
    response = client_for(org.manager).get("/review/", {"region": org.east.pk, "week": "2027-03-08", "by": "rep"})
    card = response.context["scorecard"]
    assert card is not None and card.config.period_key == Q1
    assert {r.user.username: r.score for r in card.rows} == {
        name: score for name, score in expected.items() if name != "rep_other"
    }
    html = response.content.decode()
    assert 'data-testid="review-scorecard"' in html
    for row in card.rows:
        assert f'data-testid="score-{row.user.pk}"' in html and f">{row.score}<" in html
    assert f'data-testid="score-{org.rep_other.pk}"' not in html
    company = client_for(org.director).get("/review/", {"week": "2027-03-08"})
    assert company.context["review"].rows_by == "region" and company.context["scorecard"] is None


def test_a_period_without_configuration_answers_an_empty_one(org, api):
    """Nothing configured for a role and period: the API answers the configuration's shape with no items (nobody
    is scored), as JSON, never an empty body."""
    response = api(org.rep).get("/api/review/scorecard/config/", {"role": "manager", "period_key": "FY2031-Q4"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"role": "manager", "period_key": "FY2031-Q4", "items": []}
