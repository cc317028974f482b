"""Reads of the project analysis meeting (项目分析会): which deals are big-account projects, who sees which review,
and what a review shows (live while planned, its snapshot once held).

A big-account project is an open deal credited to the team (业绩归属) that is rated 5 stars or whose amount in the
company currency reaches `big_deal_min_amount()`. What a review shows is built in a fixed number of queries
(deals, stages, evidence, history, the review's records and decisions), whatever the number of projects.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from coaching.models import BuyingStep, ProjectDecision, ProjectReview, ProjectReviewEntry
from coaching.selectors import team_deals
from crm.models import DataScope, Region, User
from crm.scopes import visible_regions
from pipeline.models import OPEN, Opportunity, OpportunityHistory, Stage, StageEvidence
from pipeline.selectors import totals
from salesmgmt.lib.money import quantize

HISTORY_FIELDS = ("stage", "amount")
BUYING_ORDER = {code: n for n, code in enumerate(BuyingStep.values, start=1)}


def big_deal_min_amount() -> Decimal:
    """From this amount (company currency) up, an open deal is a big-account project (setting
    `PROJECT_REVIEW_MIN_AMOUNT`)."""
    return Decimal(settings.PROJECT_REVIEW_MIN_AMOUNT)


def big_deal_q() -> Q:
    return Q(star_rating=5) | Q(amount_company__gte=big_deal_min_amount())


def big_deals(viewer: User, team: Region) -> QuerySet[Opportunity]:
    """The team's open big-account projects the viewer sees, the biggest first."""
    return (
        team_deals(viewer, team)
        .filter(OPEN)
        .filter(big_deal_q())
        .select_related("stage", "customer", "owner", "region")
        .order_by("-amount_company", "id")
    )


def reviews_visible_to(user: User | None) -> QuerySet[ProjectReview]:
    """As the weekly meetings: managers their teams' (and sub-teams'), directors all, reps none."""
    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return ProjectReview.objects.none()
    if user.effective_scope == DataScope.ALL:
        return ProjectReview.objects.all()
    return ProjectReview.objects.filter(region__in=visible_regions(user))


def alignment(selling_rank: int | None, buying_step: str) -> str | None:
    """Our selling step against the customer's buying step: "ahead" when we are further than the customer (we
    push, he has not moved: a risk), "behind", "aligned"; None without a buying step."""
    if not buying_step or selling_rank is None:
        return None
    buying = BUYING_ORDER[buying_step]
    if selling_rank > buying:
        return "ahead"
    return "behind" if selling_rank < buying else "aligned"


def _stage_ranks(pipeline_ids: set[int]) -> dict[int, int]:
    """Each open stage's position (1, 2, ...) in its pipeline: the selling step set against the buying step."""
    ranks: dict[int, int] = {}
    counters: dict[int, int] = defaultdict(int)
    rows = Stage.objects.filter(pipeline__in=pipeline_ids, is_won=False, is_lost=False).order_by("pipeline", "order")
    for stage in rows.values("id", "pipeline_id"):
        counters[stage["pipeline_id"]] += 1
        ranks[stage["id"]] = counters[stage["pipeline_id"]]
    return ranks


def _local(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def projects_data(viewer: User, review: ProjectReview) -> dict:
    """The review's projects as JSON-safe data (what the page, the export and the snapshot show)."""
    deals_qs = big_deals(viewer, review.region)
    deals = list(deals_qs)
    ids = [d.pk for d in deals]
    ranks = _stage_ranks({d.pipeline_id for d in deals})
    evidence: dict[int, list[dict]] = defaultdict(list)
    for e in StageEvidence.objects.filter(opportunity__in=ids).select_related("stage", "given_by").order_by("given_at"):
        evidence[e.opportunity_id].append(
            {"stage": e.stage.display_name, "text": e.text, "by": str(e.given_by), "at": _local(e.given_at)}
        )
    history: dict[int, list[dict]] = defaultdict(list)
    changes = (
        OpportunityHistory.objects.filter(opportunity__in=ids, field__in=HISTORY_FIELDS)
        .select_related("old_stage", "new_stage", "changed_by")
        .order_by("changed_at", "id")
    )
    for h in changes:
        if h.field == "stage":
            old = h.old_stage.display_name if h.old_stage else h.old_value
            new = h.new_stage.display_name if h.new_stage else h.new_value
        else:
            old, new = h.old_value, h.new_value
        history[h.opportunity_id].append(
            {"field": h.field, "old": old, "new": new, "by": str(h.changed_by or ""), "at": _local(h.changed_at)}
        )
    entries = {e.opportunity_id: e for e in ProjectReviewEntry.objects.filter(review=review, opportunity__in=ids)}
    decisions: dict[int, list[dict]] = defaultdict(list)
    for d in (
        ProjectDecision.objects.filter(entry__review=review, entry__opportunity__in=ids)
        .select_related("owner", "entry")
        .order_by("id")
    ):
        decisions[d.entry.opportunity_id].append(
            {
                "id": d.pk,
                "kind": d.kind,
                "kind_label": str(d.get_kind_display()),
                "what": d.what,
                "owner_name": str(d.owner) if d.owner else "",
                "due_date": d.due_date.isoformat() if d.due_date else None,
                "status": d.status,
            }
        )
    projects = []
    for deal in deals:
        entry = entries.get(deal.pk)
        buying = entry.buying_step if entry else ""
        rank = ranks.get(deal.stage_id)
        projects.append(
            {
                "id": deal.pk,
                "name": deal.name,
                "customer": deal.customer.name if deal.customer else "",
                "owner": str(deal.owner),
                "region": deal.region.name,
                "stage": deal.stage.display_name,
                "selling_step": rank,
                "amount": str(deal.amount_company),
                "weighted": str(deal.weighted_amount),
                "probability": deal.probability,
                "star_rating": deal.star_rating,
                "expected_close_date": deal.expected_close_date.isoformat() if deal.expected_close_date else None,
                "next_step": deal.next_step,
                "next_step_date": deal.next_step_date.isoformat() if deal.next_step_date else None,
                "evidence": evidence.get(deal.pk, []),
                "history": history.get(deal.pk, []),
                "buying_step": buying,
                "buying_step_label": str(BuyingStep(buying).label) if buying else "",
                "alignment": alignment(rank, buying),
                "next_steps": entry.next_steps if entry else "",
                "risks": entry.risks if entry else "",
                "decisions": decisions.get(deal.pk, []),
            }
        )
    total = totals(deals_qs)
    return {
        "region": {"id": review.region_id, "name": review.region.name},
        "threshold": str(big_deal_min_amount()),
        "projects": projects,
        "totals": {
            "count": total["count"],
            "amount": str(quantize(total["total"])),
            "weighted": str(total["weighted"]),
        },
    }


def review_data(viewer: User, review: ProjectReview) -> dict:
    """What `review` shows: its snapshot once held, else built now."""
    if review.is_held:
        return review.snapshot
    return projects_data(viewer, review)
