"""The review of a team or the company for a chosen week (周例会): the page, its XLSX export and its printout.

Thin: `coaching.review.reviewable_region` decides whether the user may review the region asked for (else 404),
`build_review` reads every figure, the template `coaching/review/_body.html` shows it.
"""

from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from coaching import review as reviews
from coaching import scorecard as scorecards
from coaching import selectors
from coaching.models import ActionItemStatus
from coaching.session_selectors import team_commitments
from crm.forms import InlineSelect, region_choices
from crm.models import Role
from crm.scopes import freshness_keys, region_subtree
from salesmgmt.freshness import cached_page
from salesmgmt.views import tabular_response

LIST_LIMIT = 30  # open commitments and action items shown under the review


def parse_week(value: str | None, today: date) -> tuple[date, str]:
    """The Monday of the week `value` (any day of it, YYYY-MM-DD) names, and an error message: this week
    (with the message) when the value is not a date or lies in a week yet to come."""
    this_week = reviews.week_of(today)
    if not value:
        return this_week, ""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return this_week, _("“%(value)s” is not a date (YYYY-MM-DD): this week is shown.") % {"value": value}
    if reviews.week_of(day) > this_week:
        return this_week, _("The week of %(day)s has not started yet: this week is shown.") % {"day": value}
    return reviews.week_of(day), ""


def export_header(review: reviews.Review) -> list[str]:
    return [str(column["label"]) for column in review.columns()] + [_("Time progress"), _("Won"), _("Lost")]


def export_rows(review: reviews.Review) -> list[list[object]]:
    """One row per table row, the figures as the page shows them (unrounded Decimals, percentages as numbers)."""
    return [
        [
            row.name,
            row.target,
            row.actual,
            row.attainment_pct,
            row.pace_gap_points,
            row.gap,
            row.pipeline,
            row.coverage,
            row.win_rate,
            row.activities,
            row.alerts,
            row.time_progress_pct,
            row.won,
            row.lost,
        ]
        for row in review.rows
    ]


def export_headline(review: reviews.Review) -> list[list[object]]:
    """The headline below the rows, after an empty line: its own header, then one line per metric."""
    header: list[object] = [
        _("Headline"),
        _("Target"),
        _("Actual"),
        _("Attainment"),
        _("Time progress"),
        _("Gap"),
        _("Weighted pipeline"),
        _("Coverage"),
        _("Run-rate forecast"),
    ]
    lines: list[list[object]] = [[], header]
    for h in review.headline:
        lines.append(
            [
                h.metric_name,
                h.target,
                h.actual,
                h.attainment_pct,
                h.time_progress_pct,
                h.gap,
                h.weighted_pipeline,
                h.coverage,
                h.forecast_run_rate,
            ]
        )
    return lines


@login_required
@require_GET
@cached_page(freshness_keys)
def review(request):
    region = reviews.reviewable_region(request.user, request.GET.get("region"))
    if region is None:
        raise Http404(_("No such region to review."))
    today = timezone.localdate()
    week, week_error = parse_week(request.GET.get("week"), today)
    by = request.GET.get("by", "")
    by = by if by in (reviews.BY_REP, reviews.BY_REGION) else ""
    picker = reviews.regions_for_picker(request.user)
    has_parts = picker.filter(parent=region).exists()
    built = selectors.weekly_review(
        request.user,
        region=region,
        week=week,
        metric=request.GET.get("metric", ""),
        rows_by=by if has_parts else "",
    )
    built = built.sorted_by(request.GET.get("sort") or reviews.DEFAULT_SORT)
    if request.GET.get("format") == "xlsx":
        name = f"review-{region.code}-{built.week.isoformat()}"
        return tabular_response("xlsx", name, export_header(built), export_rows(built) + export_headline(built))
    # The team's scorecard (过程量 + 结果量) of the period holding the week, beside the reps' rows.
    card_key = scorecards.period_key_at(Role.REP, built.week) if built.rows_by == reviews.BY_REP else None
    card = (
        scorecards.scorecard(request.user, role=Role.REP, period_key=card_key, today=today, region=region)
        if card_key
        else None
    )
    context = {
        "review": built,
        "scorecard": card,
        "region": region,
        # The regions' <select>, written in Python as the filters' (a director's holds every region of the company).
        "region_select": InlineSelect(choices=region_choices(request.user, regions=picker)).render(
            "region", region.pk, attrs={"data-testid": "review-region"}
        ),
        "week_error": week_error,
        "week_value": built.week.isoformat(),
        "previous_week": (built.week - reviews.WEEK).isoformat(),
        "next_week": (built.week + reviews.WEEK).isoformat() if built.week < reviews.week_of(today) else "",
        "live": True,
        # A region with sub-regions can show them or its reps.
        "row_choices": [(reviews.BY_REGION, _("By region")), (reviews.BY_REP, _("By rep"))] if has_parts else [],
        "meeting": selectors.meeting_of_week(request.user, region, built.week),
        "commitments": team_commitments(request.user, region)[:LIST_LIMIT],
        "action_items": selectors.items_visible_to(request.user)
        .filter(region__in=region_subtree(region), status=ActionItemStatus.OPEN)
        .select_related("owner", "meeting")
        .order_by("due_date", "id")[:LIST_LIMIT],
    }
    return render(request, "coaching/review/review.html", context)
