"""The home pages (工作台), the site's root (`home`): each role lands here after logging in."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from coaching import home as homes
from coaching import selectors
from coaching.models import ActionItemStatus
from coaching.session_selectors import open_commitments
from crm.scopes import freshness_keys
from salesmgmt.freshness import cached_page

LIST_LIMIT = 20


@login_required
@require_GET
@cached_page(freshness_keys)
def home(request):
    user = request.user
    today = timezone.localdate()
    role = homes.role_of(user)
    context: dict = {"role": role, "today": today, "week": homes.week_of(today)}
    if role == "rep":
        context.update(
            targets=homes.my_targets_now(user, today),
            deals=homes.deals_needing_action(user, today),
            alerts=homes.my_open_alerts(user),
            activities=list(homes.my_week_activities(user, today)),
            commitments=open_commitments(user)[:LIST_LIMIT],
            action_items=selectors.items_visible_to(user)
            .filter(owner=user, status=ActionItemStatus.OPEN)
            .select_related("meeting")
            .order_by("due_date", "id")[:LIST_LIMIT],
        )
        return render(request, "coaching/home/rep.html", context)
    review = homes.team_review(user, today) if role == "manager" else homes.company_review(user, today)
    # The review's region: `next_meeting` finds its meetings among those the user may see (no read of the region).
    team = None if review is None else review.region_id
    context.update(review=review, next_meeting=selectors.next_meeting(user, team, today))
    if role == "director" and review is not None:
        context["heatmap"] = homes.attainment_heatmap(user, review.region_id, homes.primary_plan(review))
    return render(request, "coaching/home/manager.html", context)
