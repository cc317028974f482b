"""Data scopes (数据权限): the one place that decides which rows a user may see.

Every page, API list/detail, export and aggregate filters its queryset with `scope_q`
(through the models' `visible_to(user)` querysets). Nothing checks visibility after the fact.

Scopes:
- self: rows the user owns.
- subordinates: own rows plus rows owned by anyone in the regions the user manages (and below).
- department: rows owned by members of the user's own region, or booked to that region.
- department_tree: the same for the user's region and every region below it.
- all: everything.

Deals and what hangs on them (lines, collections) are seen where they count: a deal's `region` is the team
it is credited to (业绩归属, its owner's team as it stood on the close date; `pipeline.services.credited_team`),
so for them the region alone decides (`team_only=True`), never the owner's current team: a manager's lists
and totals hold exactly what his regions' figures hold, and the regions add up to the company.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from crm.models import DataScope, Region, User

NOTHING = Q(pk__in=[])


def _lookup(prefix: str | None, rest: str) -> str:
    return f"{prefix}__{rest}" if prefix else rest


def managed_region_paths(user: User) -> list[str]:
    return list(Region.objects.filter(manager=user).values_list("path", flat=True))


def scope_q(
    user: User | AnonymousUser | None,
    *,
    owner: str | None = "owner",
    region: str | None = "region",
    team_only: bool = False,
) -> Q:
    """A Q object limiting rows to those `user` may see.

    `owner` is the lookup of the owning user (e.g. "owner", "opportunity__owner"),
    `region` the lookup of the row's region, or None where the row has none.
    `team_only`: the row's region is the team it counts for (deals), so the owner's current team does not
    widen what a department or a manager sees (the user's own rows always show).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return Q()
    own = Q(**{owner: user}) if owner else NOTHING
    if scope == DataScope.SELF:
        return own
    members = None if team_only and region else owner
    if scope == DataScope.SELF_AND_SUBORDINATES:
        paths = managed_region_paths(user)
        return reduce(or_, [_tree_q(p, members, region) for p in paths], own)
    if user.region_id is None:
        return own
    if scope == DataScope.DEPARTMENT:
        q = own
        if members:
            q |= Q(**{_lookup(members, "region_id"): user.region_id})
        if region:
            q |= Q(**{_lookup(region, "id"): user.region_id})
        return q
    if scope == DataScope.DEPARTMENT_TREE:
        path = Region.objects.filter(pk=user.region_id).values_list("path", flat=True).first() or ""
        return own | _tree_q(path, members, region)
    return own


def _tree_q(path: str, owner: str | None, region: str | None) -> Q:
    if not path:
        return NOTHING
    q = NOTHING
    if owner:
        q |= Q(**{_lookup(owner, "region__path__startswith"): path})
    if region:
        q |= Q(**{_lookup(region, "path__startswith"): path})
    return q


def visible_users(user: User | AnonymousUser | None) -> QuerySet[User]:
    """The users whose data `user` may see (for pickers, filters and leaderboards)."""
    if user is None or not user.is_authenticated:
        return User.objects.none()
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return User.objects.filter(is_active=True)
    if scope == DataScope.SELF:
        return User.objects.filter(pk=user.pk)
    if scope == DataScope.SELF_AND_SUBORDINATES:
        q = reduce(or_, [Q(region__path__startswith=p) for p in managed_region_paths(user) if p], Q(pk=user.pk))
        return User.objects.filter(q, is_active=True)
    if user.region_id is None:
        return User.objects.filter(pk=user.pk)
    if scope == DataScope.DEPARTMENT:
        return User.objects.filter(Q(pk=user.pk) | Q(region_id=user.region_id), is_active=True)
    path = Region.objects.filter(pk=user.region_id).values_list("path", flat=True).first() or ""
    return User.objects.filter(Q(pk=user.pk) | Q(region__path__startswith=path), is_active=True)


def visible_regions(user: User | AnonymousUser | None) -> QuerySet[Region]:
    """Regions `user` may see: everything for `all`, else their own region plus the subtrees
    their scope covers (department tree) or they manage (subordinates)."""
    if user is None or not user.is_authenticated:
        return Region.objects.none()
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return Region.objects.all()
    q = Q(pk=user.region_id) if user.region_id else NOTHING
    paths = []
    if scope in (DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE):
        paths += managed_region_paths(user)
    if scope == DataScope.DEPARTMENT_TREE and user.region_id:
        paths += list(Region.objects.filter(pk=user.region_id).values_list("path", flat=True))
    for path in filter(None, paths):
        q |= Q(path__startswith=path)
    return Region.objects.filter(q)
