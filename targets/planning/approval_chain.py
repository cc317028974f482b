"""Who approves what (the approval chain): the one place that decides it, for plans and adjustments.

Nobody approves what they submitted, and the approver is above the submitter. For something in a region
(a regional plan; an adjustment, in the smallest region holding every target it changes), its *line* is
that region and the regions above it; a company plan or a change of a company-level target has none.

- A director or an admin is above everyone but himself: a plan a director submitted goes to another
  director or an admin. For a plan, his data scope must cover it (a company plan: the "all" scope).
- A manager is above the submitter when he manages a region of the line above the line's own region,
  higher than any region of the line the submitter manages: an area manager's plan goes to his own
  manager or to a director, never to a peer or to someone below him. Never above a director or an admin.

Reads only; the services (`targets.planning.approvals`) refuse with these answers.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.models import DataScope, Region, Role, User
from crm.scopes import NOTHING, visible_regions
from targets.models import AdjustmentRequest, PlanStatus, TargetNode, TargetPlan

TOP_ROLES = (Role.DIRECTOR, Role.ADMIN)
NAMES_SHOWN = 5


def _is_top(user: User | None) -> bool:
    return bool(user is not None and user.is_director_or_above)


def _may_decide(user: User | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_manager_or_above)


def line_paths(path: str) -> list[str]:
    """The materialised paths of a region and every region above it, top first ("/1/4/" -> "/1/", "/1/4/")."""
    parts = [p for p in (path or "").split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def region_line(region: Region | None) -> list[Region]:
    """The region and the regions above it, top first (one query); empty at company level."""
    if region is None:
        return []
    return list(Region.objects.filter(path__in=line_paths(region.path)).order_by("depth"))


def outranks(user: User | None, submitter: User | None, line: list[Region]) -> bool:
    """Is `user` above `submitter` for something in `line[-1]` (company level: `line` empty)? No query.

    `submitter` None (not submitted yet): anyone above the region."""
    if user is None or (submitter is not None and user.pk == submitter.pk):
        return False
    if _is_top(user):
        return True
    if submitter is not None and _is_top(submitter):
        return False
    for region in line[:-1]:  # top down, strictly above the line's own region: whoever comes first is higher
        if submitter is not None and region.manager_id == submitter.pk:
            return False
        if region.manager_id == user.pk:
            return True
    return False


def _covers(user: User, region: Region | None) -> bool:
    if user.effective_scope == DataScope.ALL:
        return True
    return region is not None and visible_regions(user).filter(pk=region.pk).exists()


# --- plans ----------------------------------------------------------------------------------------


def can_approve(user: User | None, plan: TargetPlan, *, line: list[Region] | None = None) -> bool:
    """May `user` approve (or send back) `plan`, whatever its status? Someone above its submitter whose data
    scope covers the plan. `line`: the plan region's line when already read."""
    if user is None or not _may_decide(user):
        return False
    if line is None:
        line = region_line(plan.region)
    return outranks(user, plan.submitted_by, line) and _covers(user, plan.region)


def plan_approvers(plan: TargetPlan) -> list[User]:
    """Everyone who may approve `plan`: managers of the regions above it (nearest first), then directors
    and admins. A few queries, however many plans there are."""
    line = region_line(plan.region)
    managers = {r.manager_id: r.depth for r in line if r.manager_id}
    candidates = (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(role__in=TOP_ROLES) | Q(pk__in=list(managers)))
        .select_related("region")
    )
    if plan.submitted_by_id is not None:  # nobody approves what they submitted
        candidates = candidates.exclude(pk=plan.submitted_by_id)

    def order(user: User) -> tuple[bool, int, bool, str]:
        return (_is_top(user), -managers.get(user.pk, 0), user.role != Role.DIRECTOR, str(user).lower())

    approvers = []
    for user in sorted(candidates, key=order):
        everything = _is_top(user) and user.effective_scope == DataScope.ALL  # no query for the usual director
        if everything or can_approve(user, plan, line=line):
            approvers.append(user)
    return approvers


def approver_names(approvers: list[User]) -> str:
    """ "Ann, Bob, Carl" (the first few, then "+ N"): for messages and the plan page."""
    names = [str(u) for u in approvers[:NAMES_SHOWN]]
    if len(approvers) > NAMES_SHOWN:
        names.append(f"+{len(approvers) - NAMES_SHOWN}")
    return ", ".join(names)


def _approvable_q(user: User) -> Q:
    """The plans `user` may approve, as a filter (the set-based form of `can_approve`, for lists)."""
    if not _may_decide(user):
        return NOTHING
    not_own = ~Q(submitted_by=user)
    covered = Q() if user.effective_scope == DataScope.ALL else Q(region__in=visible_regions(user))
    if _is_top(user):
        return not_own & covered
    submitter_top = Q(submitted_by__is_superuser=True) | Q(submitted_by__role__in=TOP_ROLES)
    above = NOTHING
    for region_id, path in Region.objects.filter(manager=user).values_list("id", "path"):
        # A plan below this region, whose submitter manages neither this region nor any above it.
        submitter_as_high = Region.objects.filter(manager_id=OuterRef("submitted_by_id"), path__in=line_paths(path))
        # Q & Exists is a Q at run time; django-stubs types it as a Combinable.
        above |= Q(region__path__startswith=path) & ~Q(region_id=region_id) & ~Exists(submitter_as_high)  # type: ignore[assignment]
    return above & ~submitter_top & not_own & covered


def plans_awaiting_approval(user: User, plans: QuerySet[TargetPlan] | None = None) -> QuerySet[TargetPlan]:
    """Submitted plans waiting for `user`'s approval: among `plans` (in their order), else among those they
    see, oldest submission first. One query."""
    from targets.planning.selectors import plans_visible_to

    if plans is None:
        return plans_awaiting_approval(user, plans_visible_to(user)).order_by("submitted_at", "pk")
    return plans.filter(status=PlanStatus.SUBMITTED).filter(_approvable_q(user))


# --- adjustments ----------------------------------------------------------------------------------


def common_region_path(paths: list[str | None]) -> str | None:
    """The path of the smallest region holding all of them; None if one is company level (no region)."""
    if not paths or any(not p for p in paths):
        return None
    lines = [line_paths(p) for p in paths if p]  # every one is set (checked above)
    common = None
    for level in zip(*lines, strict=False):
        if len(set(level)) != 1:
            break
        common = level[0]
    return common


def adjustment_lines(adjustments: list[AdjustmentRequest]) -> dict[int, list[Region]]:
    """Each adjustment's line: the regions from the top down to the smallest one holding every target it
    changes (empty when it changes a company-level target). Two queries for any number of adjustments."""
    node_ids = {change["node"] for a in adjustments for change in a.changes}
    region_of = dict(TargetNode.objects.filter(pk__in=node_ids).values_list("pk", "region__path"))
    commons = {a.pk: common_region_path([region_of.get(change["node"]) for change in a.changes]) for a in adjustments}
    wanted = {p for common in commons.values() if common for p in line_paths(common)}
    regions = {r.path: r for r in Region.objects.filter(path__in=wanted)}
    return {
        pk: [regions[p] for p in line_paths(common) if p in regions] if common else [] for pk, common in commons.items()
    }


def outranks_proposer(user: User, adjustment: AdjustmentRequest, line: list[Region]) -> bool:
    """Is `user` above the adjustment's proposer (its targets' scope is checked by the service)?"""
    return _may_decide(user) and outranks(user, adjustment.proposer, line)
