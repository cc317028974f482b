"""The project analysis meeting (项目分析会): which deals are big-account projects (against an independent filter),
what each project shows, per-project records and decisions, holding (a held review reopens exactly as saved),
access per role, bad input, the XLSX export and query counts."""

import io
import re
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from coaching import project_selectors as selectors
from coaching import project_services as services
from coaching.models import ProjectDecision, ProjectReviewEntry
from crm.models import AuditLog
from pipeline.models import Opportunity
from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal

pytestmark = pytest.mark.django_db
DAY = date(2026, 6, 10)
THRESHOLD = 5000


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.PROJECT_REVIEW_MIN_AMOUNT = THRESHOLD
    with time_machine.travel(DAY, tick=False):
        yield


@pytest.fixture
def big(org):
    """Deals around the threshold, in East (Shanghai, Jiangsu) and North, open, won and lost, with stars."""
    specs = [
        # owner, amount, stars, stage index (0-3 open, 4 won, 5 lost)
        ("rep", "5000", None, 0),  # at the threshold: big
        ("rep", "4999.99", None, 1),  # just below: not big
        ("rep", "100", 5, 2),  # 5 stars: big
        ("rep", "100", 4, 0),
        ("rep_same_team", "80000", None, 3),
        ("rep_same_team", "90000", None, 4),  # won: not open
        ("rep_js", "7000", 3, 5),  # lost
        ("rep_js", "6000", None, 1),
        ("rep_other", "99999", 5, 0),  # another team
    ]
    deals = []
    for owner, amount, stars, stage in specs:
        deal = make_deal(owner=getattr(org, owner), amount=amount, stage=org.stages[stage], close=date(2026, 7, 31))
        if stars:
            Opportunity.objects.filter(pk=deal.pk).update(star_rating=stars)
        deals.append(deal)
    return deals


def independent_big(org, team_regions):
    """Plain Python over every deal: open, credited to the team, 5 stars or amount ≥ threshold."""
    return {
        d.pk
        for d in Opportunity.objects.select_related("stage")
        if d.region_id in team_regions
        and not d.stage.is_won
        and not d.stage.is_lost
        and (d.star_rating == 5 or d.amount_company >= Decimal(THRESHOLD))
    }


def plan(org, **kwargs):
    return services.project_review_create(actor=org.manager, team=kwargs.pop("team", org.east), date=DAY, **kwargs)


def test_big_deals_equal_an_independent_filter(org, big, settings):
    review = plan(org)
    east = {org.east.pk, org.sh.pk, org.js.pk}
    shown = {p["id"] for p in selectors.review_data(org.manager, review)["projects"]}
    assert shown == independent_big(org, east) == {big[0].pk, big[2].pk, big[4].pk, big[7].pk}
    settings.PROJECT_REVIEW_MIN_AMOUNT = 6000
    shown = {p["id"] for p in selectors.review_data(org.manager, review)["projects"]}
    assert shown == {big[2].pk, big[4].pk, big[7].pk}
    settings.PROJECT_REVIEW_MIN_AMOUNT = THRESHOLD
    director_review = services.project_review_create(actor=org.director, team=org.hq, date=DAY)
    shown = {p["id"] for p in selectors.review_data(org.director, director_review)["projects"]}
    assert shown == independent_big(org, {r.pk for r in (org.hq, org.east, org.north, org.sh, org.js, org.bj)})
    data = selectors.review_data(org.manager, review)
    assert data["totals"]["count"] == 4
    assert Decimal(data["totals"]["amount"]) == sum(Decimal(p["amount"]) for p in data["projects"])


def test_a_project_shows_evidence_history_and_the_buying_step(org, big, client_for):
    deal = big[0]
    opportunity_move_stage(opportunity=deal, stage=org.stages[1], actor=org.rep, evidence="Met the CIO")
    opportunity_update(opportunity=Opportunity.objects.get(pk=deal.pk), data={"amount": Decimal("6500")}, actor=org.rep)
    review = plan(org)
    services.project_entry_save(
        actor=org.manager,
        review=review,
        opportunity=deal,
        buying_step="need",
        next_steps="Workshop",
        risks="Competitor",
    )
    project = next(p for p in selectors.review_data(org.manager, review)["projects"] if p["id"] == deal.pk)
    assert [e["text"] for e in project["evidence"]] == ["Met the CIO"]
    assert [(h["field"], h["new"]) for h in project["history"]][-2:] == [
        ("stage", "Solution presented"),
        ("amount", "6500"),
    ]
    # Our second selling step against the customer's first buying step: we are ahead of him.
    assert (project["selling_step"], project["buying_step"], project["alignment"]) == (2, "need", "ahead")
    page = client_for(org.manager).get(f"/review/projects/{review.pk}/").content.decode()
    assert "Met the CIO" in page and "we are ahead of the customer" in page


def test_alignment():
    assert selectors.alignment(1, "") is None
    assert selectors.alignment(1, "need") == "aligned"
    assert selectors.alignment(1, "approval") == "behind"
    assert selectors.alignment(3, "evaluation") == "ahead"


def _record(html: str) -> str:
    match = re.search(r'<section data-testid="project-review-record">.*?</section>', html, re.S)
    assert match
    return match.group(0)


def test_a_held_review_reopens_exactly_as_saved(org, big, client_for):
    review = plan(org)
    client = client_for(org.manager)
    url = f"/review/projects/{review.pk}/"
    deal = big[4]
    response = client.post(
        f"{url}deals/{deal.pk}/", {"buying_step": "negotiation", "next_steps": "Sign", "risks": "Budget"}
    )
    assert response.status_code == 302
    response = client.post(
        f"{url}deals/{deal.pk}/decisions/",
        {"kind": "action", "what": "Call the CFO", "owner": org.rep_same_team.pk, "due_date": "2026-06-20"},
    )
    assert response.status_code == 302
    assert (
        client.post(f"{url}deals/{deal.pk}/decisions/", {"kind": "decision", "what": "Discount 5%"}).status_code == 302
    )
    assert client.post(f"{url}hold/").status_code == 302
    held = _record(client.get(url).content.decode())
    assert "Call the CFO" in held and "Budget" in held and "80,000.00" in held

    # The deals move on, a new big deal appears: the held review does not.
    opportunity_update(
        opportunity=Opportunity.objects.get(pk=deal.pk), data={"amount": Decimal("12345")}, actor=org.rep_same_team
    )
    opportunity_move_stage(
        opportunity=Opportunity.objects.get(pk=big[0].pk), stage=org.stages[5], actor=org.rep, lost_reason="Price"
    )
    make_deal(owner=org.rep, amount="70000")
    assert _record(client.get(url).content.decode()) == held
    assert client.post(f"{url}deals/{deal.pk}/", {"buying_step": "need"}).status_code in (400, 404)
    assert ProjectReviewEntry.objects.get(review=review, opportunity=deal).buying_step == "negotiation"


def test_access_per_role(org, big, client_for):
    review = plan(org)
    for who, expected in (("director", 200), ("manager", 200), ("manager_north", 404), ("rep", 404), ("rep_js", 404)):
        client = client_for(getattr(org, who))
        assert client.get(f"/review/projects/{review.pk}/").status_code == expected, who
        assert client.get(f"/review/projects/{review.pk}/export.xlsx").status_code == expected, who
    assert client_for(org.rep).get("/review/projects/").status_code == 404
    response = client_for(org.manager_north).post(
        f"/review/projects/{review.pk}/deals/{big[4].pk}/", {"buying_step": "need"}
    )
    assert response.status_code == 404
    # A manager plans reviews of his own teams only.
    response = client_for(org.manager).post("/review/projects/", {"team": org.north.pk, "date": "2026-06-10"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path, data",
    [
        ("", {"buying_step": "magic"}),
        ("decisions/", {"kind": "action", "what": "No owner", "due_date": "2026-06-20"}),
        ("decisions/", {"kind": "action", "what": "No date", "owner": "rep"}),
        ("decisions/", {"kind": "action", "what": "Outsider", "owner": "rep_other", "due_date": "2026-06-20"}),
        ("decisions/", {"kind": "decision", "what": ""}),
    ],
)
def test_bad_input_is_an_error_and_writes_nothing(org, big, client_for, path, data):
    review = plan(org)
    if "owner" in data:
        data = {**data, "owner": getattr(org, data["owner"]).pk}
    audits = AuditLog.objects.count()
    response = client_for(org.manager).post(f"/review/projects/{review.pk}/deals/{big[4].pk}/{path}", data)
    assert response.status_code == 400
    assert not ProjectReviewEntry.objects.exists() and not ProjectDecision.objects.exists()
    assert AuditLog.objects.count() == audits


def test_a_small_deal_is_not_a_project(org, big, client_for):
    review = plan(org)
    response = client_for(org.manager).post(f"/review/projects/{review.pk}/deals/{big[1].pk}/", {"buying_step": "need"})
    assert response.status_code == 404
    assert not ProjectReviewEntry.objects.exists()


def test_the_export_lists_the_projects_and_decisions(org, big, client_for):
    review = plan(org)
    services.project_decision_add(actor=org.manager, review=review, opportunity=big[7], kind="decision", what="Go")
    response = client_for(org.manager).get(f"/review/projects/{review.pk}/export.xlsx")
    book = load_workbook(io.BytesIO(response.content))
    rows = list(book["Projects"].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [d.name for d in (big[4], big[7], big[0], big[2])]
    assert [r[5] for r in rows[1:]] == [Decimal(80000), Decimal(6000), Decimal(5000), Decimal(100)]
    assert list(book["Decisions"].iter_rows(values_only=True))[1][2] == "Go"


def test_the_review_reads_a_fixed_number_of_queries(org, big, client_for):
    review = plan(org)
    client = client_for(org.manager)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/review/projects/{review.pk}/").status_code == 200
        return len(ctx.captured_queries)

    services.project_decision_add(actor=org.manager, review=review, opportunity=big[0], kind="decision", what="A")
    before = count()
    for i in range(5):
        deal = make_deal(owner=org.rep_js, amount=str(10000 + i))
        opportunity_move_stage(opportunity=deal, stage=org.stages[1], actor=org.rep_js, evidence=f"E{i}")
        services.project_entry_save(
            actor=org.manager, review=review, opportunity=deal, buying_step="need", next_steps="x", risks="y"
        )
        services.project_decision_add(actor=org.manager, review=review, opportunity=deal, kind="decision", what="B")
    assert len(selectors.review_data(org.manager, review)["projects"]) == 9
    assert count() == before
