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

How a scope reaches the database: the regions it covers (a subtree is the regions whose materialised path
starts with its root's) are resolved first, with the members of those regions when the owner's team counts,
in ONE small query over the region and user tables, and the row filter is `owner_id = me OR region_id IN
(ids) OR owner_id IN (ids)` on the rows' own columns. Each arm is served by an index on the big table
(deals, customers, target nodes), so the planner combines them (a BitmapOr) or walks a sort index and
checks the ids as it goes; a filter joining the rows to their owner's region and matching its path could
only be checked after joining every row. Scopes wider than `INLINE_IDS` regions or people (a company-wide
department tree) go as subqueries instead: they cover most of the rows anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Left, Length

from crm.models import DataScope, Region, User
from salesmgmt import freshness
from salesmgmt.memo import current as memo_now

NOTHING = Q(pk__in=[])

# Longer id lists are sent as subqueries (bounded SQL text; SQLite's limit on parameters).
INLINE_IDS = 1000


def _lookup(prefix: str | None, rest: str) -> str:
    return f"{prefix}__{rest}" if prefix else rest


def subtrees(roots: QuerySet[Region]) -> QuerySet[Region]:
    """The regions in the subtrees of `roots` (the roots included): those whose path starts with a root's path.

    Lazy: used in a filter it is a subquery over the (small) region table, `region__in=subtrees(...)`, which
    the database runs as a semi-join on the rows' region column."""
    prefix_of = roots.exclude(path="").filter(path=Left(OuterRef("path"), Length("path")))
    return Region.objects.filter(Exists(prefix_of))


def region_subtree(region: Region | int) -> QuerySet[Region]:
    """`region` and every region below it (for filters such as the team pipeline's 'region')."""
    return subtrees(Region.objects.filter(pk=region.pk if isinstance(region, Region) else region))


def _covered_regions(user: User, scope: str) -> QuerySet[Region] | None:
    """The regions whose rows (and members' rows) `scope` adds to the user's own; None: none."""
    if scope == DataScope.SELF_AND_SUBORDINATES:
        return subtrees(Region.objects.filter(manager=user))
    if user.region_id is None:
        return None
    if scope == DataScope.DEPARTMENT:
        return Region.objects.filter(pk=user.region_id)
    if scope == DataScope.DEPARTMENT_TREE:
        return region_subtree(user.region_id)
    return None


@dataclass(frozen=True)
class _Reach:
    """A scope's regions and the people in them, each an id list or (when long) a subquery."""

    regions: list[int] | QuerySet
    members: list[int] | QuerySet | None


def _ids(ids: list[int], fallback: QuerySet) -> list[int] | QuerySet:
    return ids if len(ids) <= INLINE_IDS else fallback.values("pk")


def _memo_reach(user: User, scope: str, *, members: bool) -> _Reach | None:
    """The reach of the regions `scope` covers for `user` (`_covered_regions`; None: it covers none). Inside a
    `salesmgmt.memo.request_memo` (a read-only request: a page filters deals, customers and activities by one
    user's scope), read once and kept: a later call neither reads nor builds anything (building the regions'
    subquery costs more than a quarter of a millisecond). Across requests a reach is kept in the process under
    the organisation's version (`_KeptReaches`)."""
    memo = memo_now()
    key = ("scope_reach", user.pk, scope, user.region_id)
    if memo is not None:
        for asked in ((*key, True), (*key, members)):  # a reach with the members holds the regions too
            if asked in memo:
                return memo[asked]
    kept = _KEPT.key(*key, members)
    entry = _KEPT.get(kept)
    if entry is _KEPT.MISSING:
        regions = _covered_regions(user, scope)
        found = None if regions is None else _reach(regions, members=members)
        _KEPT.put(kept, found)
    else:
        found = cast(_Reach | None, entry)
    if memo is not None:
        memo[(*key, members)] = found
    return found


class _KeptReaches:
    """Reaches read by earlier requests of this process, each under the version of everything
    (`salesmgmt.freshness.EVERYTHING`) when it was read: a change to the organisation (a region, its manager, a
    person's team or role: tables no service declares narrower keys for) bumps that version when it commits, and
    no reach read before it is used again. A reach is read afresh after `PAGE_CACHE_SECONDS` in any case (a process
    that died between a commit and its bump), and only reaches of id lists are kept (a wide scope's subquery is
    built per request). Not used while the connection holds writes of its own not yet committed (its reads would
    see them; the version does not)."""

    MISSING = object()
    LIMIT = 20_000  # entries; forgotten all at once beyond it

    def __init__(self) -> None:
        self.entries: dict[tuple, tuple[float, _Reach | None]] = {}

    def key(self, *parts: object) -> tuple | None:
        if not freshness.clean():
            return None
        return (*parts, freshness.everything_version())

    def get(self, key: tuple | None) -> _Reach | None | object:
        if key is None:
            return self.MISSING
        entry = self.entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return self.MISSING
        return entry[1]

    def put(self, key: tuple | None, reach: _Reach | None) -> None:
        if key is None or (reach is not None and not isinstance(reach.regions, list)):
            return
        if reach is not None and reach.members is not None and not isinstance(reach.members, list):
            return
        if len(self.entries) >= self.LIMIT:
            self.entries.clear()
        self.entries[key] = (time.monotonic() + settings.PAGE_CACHE_SECONDS, reach)


_KEPT = _KeptReaches()


def forget_kept_reaches() -> None:
    """Forget every reach kept across requests (a test whose database was emptied and filled again)."""
    _KEPT.entries.clear()


def _reach(regions: QuerySet[Region], *, members: bool) -> _Reach:
    """The ids of `regions` (and of their members), in one query."""
    people = User.objects.filter(region__in=regions)
    if not members:
        region_ids = list(regions.order_by().values_list("pk", flat=True)[: INLINE_IDS + 1])
        return _Reach(regions=_ids(region_ids, regions), members=None)
    rows = regions.order_by().values_list("pk", Value(0)).union(people.order_by().values_list("pk", Value(1)), all=True)
    found: tuple[list[int], list[int]] = ([], [])
    for pk, kind in rows:
        found[kind].append(pk)
    return _Reach(regions=_ids(found[0], regions), members=_ids(found[1], people))


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

    Reads the scope's regions (and their members) once, here: build the Q once per request and reuse it.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return Q()
    own = Q(**{owner: user}) if owner else NOTHING
    if scope == DataScope.SELF:
        return own
    members = not (team_only and region) and owner is not None
    if not (members or region):
        return own
    if scope == DataScope.DEPARTMENT and not members and user.region_id is not None:
        reach: _Reach | None = _Reach(regions=[user.region_id], members=None)  # nothing to look up
    else:
        reach = _memo_reach(user, scope, members=members)
    if reach is None:
        return own
    q = own
    if members:
        q |= Q(**{_lookup(owner, "in"): reach.members})
    if region:
        q |= Q(**{_lookup(region, "in"): reach.regions})
    return q


def visible_users(user: User | AnonymousUser | None) -> QuerySet[User]:
    """The users whose data `user` may see (for pickers, filters and leaderboards)."""
    if user is None or not user.is_authenticated:
        return User.objects.none()
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return User.objects.filter(is_active=True)
    regions = _covered_regions(user, scope) if scope != DataScope.SELF else None
    if regions is None:
        return User.objects.filter(pk=user.pk)
    return User.objects.filter(Q(pk=user.pk) | Q(region__in=regions), is_active=True)


def visible_regions(user: User | AnonymousUser | None) -> QuerySet[Region]:
    """Regions `user` may see: everything for `all`, else their own region plus the subtrees
    their scope covers (department tree) or they manage (subordinates).

    Inside a `request_memo` (a read-only request), from the second call on, their ids are read once and every call
    filters by them: a weekly review asked for the user's regions seven times, each a subquery over the region
    tree to build and run (a page that asks once keeps the subquery: no query more). Read once, they are kept for
    the requests that follow, under the organisation's version (`_KeptReaches`)."""
    if user is None or not user.is_authenticated:
        return Region.objects.none()
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return Region.objects.all()
    memo = memo_now()
    asked, read = (("visible_regions", kind, user.pk, scope, user.region_id) for kind in ("asked", "read"))
    known = memo.get(read) if memo is not None else None
    kept = None
    if known is None:
        kept = _KEPT.key("visible_regions", user.pk, scope, user.region_id)
        entry = _KEPT.get(kept)
        if entry is not _KEPT.MISSING:
            known = cast(_Reach, entry)
            if memo is not None:
                memo[read] = known
    if known is not None:  # read by an earlier call (or request): nothing to build
        return Region.objects.filter(pk__in=known.regions)
    parts = [Q(pk=user.region_id)] if user.region_id else []
    if scope in (DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE):
        parts.append(Q(pk__in=subtrees(Region.objects.filter(manager=user))))
    if scope == DataScope.DEPARTMENT_TREE and user.region_id:
        parts.append(Q(pk__in=region_subtree(user.region_id)))
    regions = Region.objects.filter(reduce(or_, parts, NOTHING))
    if kept is not None:  # read once, kept for the requests that follow
        found = _reach(regions, members=False)
        if not isinstance(found.regions, list):  # too many to keep: the subquery, as without the memo
            return regions
        _KEPT.put(kept, found)
        if memo is not None:
            memo[read] = found
        return Region.objects.filter(pk__in=found.regions)
    if memo is None:
        return regions
    if asked not in memo:  # the first call: the subquery, as without the memo
        memo[asked] = True
        return regions
    found = memo[read] = _reach(regions, members=False)
    return Region.objects.filter(pk__in=found.regions)


def sees_subtree(user: User | AnonymousUser | None, region: Region) -> bool:
    """Whether `user` sees every row credited to `region`'s subtree (deals, `team_only`): his scope is the whole
    company, or covers a subtree holding `region` (subordinates, department tree). Then figures of that subtree
    are the same for everyone who sees it (`crm.rollup`). One query at most."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    scope = user.effective_scope
    if scope == DataScope.ALL:
        return True
    if scope not in (DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE):
        return False
    reach = _memo_reach(user, scope, members=False)  # read once a read-only request
    if reach is None:
        return False
    if isinstance(reach.regions, list):
        return region.pk in reach.regions
    return reach.regions.filter(pk=region.pk).exists()


def scope_subtrees(user: User | AnonymousUser | None) -> dict[int, str] | None:
    """The regions (id -> materialised path) of the whole subtrees that make up what `user` sees of the rows
    credited to a team (deals, `team_only`), besides his own rows: every region for `all`, the subtrees of the
    regions he manages (subordinates) or of his own (department tree); one query. None when his scope is not whole
    subtrees (self, department) or he sees nothing. Figures of those subtrees can be added up from figures kept per
    region (`crm.rollup`, whose `roots` are the subtrees' tops)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    scope = user.effective_scope
    if scope == DataScope.ALL:
        regions: QuerySet[Region] | None = Region.objects.all()
    elif scope in (DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE):
        regions = _covered_regions(user, scope)  # the managed regions' subtrees, or his own region's
    else:
        return None
    return None if regions is None else dict(regions.order_by().values_list("pk", "path"))


# --- freshness keys (salesmgmt.freshness): what a cached page of a user's scope depends on ----------------------

COMPANY_KEY = "r"  # bumped with every region's key: the pages of the "all" scope

# Facets: what kind of rows a write changed. Each facet has its own keys (the deal facet's unprefixed, the others'
# prefixed), so a page that shows none of a facet's rows stays cached when they change: a deal's page does not
# go stale when the attainment recomputed after its move is written, nor when the alerts are evaluated.
DEALS = ""  # deals and what hangs on them (history, evidence, lines, a customer's first win)
TARGETS = "t:"  # stored attainment and milestones
ALERTS = "a:"  # alerts
NOTIFICATIONS = "n:"  # a person's notifications: the bell on every page
FACETS = (DEALS, TARGETS, ALERTS, NOTIFICATIONS)


def region_key(region_id: int, facet: str = DEALS) -> str:
    """A region's freshness key in `facet`: bumped by every change to rows of its subtree."""
    return f"{facet}r{region_id}"


def region_keys(*paths: str | None, facet: str = DEALS) -> set[str]:
    """The freshness keys a change to rows of these regions (materialised paths, "/1/4/9/") bumps: each region on
    the paths — the region and its ancestors, whose subtrees hold it — and the whole company's, in `facet`."""
    keys = {facet + COMPANY_KEY}
    for path in paths:
        keys.update(region_key(int(pk), facet) for pk in (path or "").split("/") if pk)
    return keys


def region_keys_of(region_ids: Iterable[int | None], *, facet: str = DEALS) -> set[str]:
    """`region_keys` of regions given by id (one query)."""
    ids = {pk for pk in region_ids if pk}
    paths = Region.objects.filter(pk__in=ids).values_list("path", flat=True) if ids else []
    return region_keys(*paths, facet=facet)


def user_keys(*user_ids: int | None, facet: str = DEALS) -> set[str]:
    """The freshness keys a change to rows these people own (or are the rep of) bumps, in `facet`."""
    return {f"{facet}u{pk}" for pk in user_ids if pk}


def people_keys(user_ids: Iterable[int | None], *, facet: str = DEALS) -> set[str]:
    """The keys a change to rows these people own bumps when the rows are seen through their owner (alerts,
    customers): the people's own and their teams' (`visible_users`: the people of a scope's regions)."""
    ids = {pk for pk in user_ids if pk}
    if not ids:
        return set()
    paths = User.objects.filter(pk__in=ids).values_list("region__path", flat=True)
    return user_keys(*ids, facet=facet) | region_keys(*paths, facet=facet)


def freshness_keys(user: User | AnonymousUser | None, facets: tuple[str, ...] = FACETS) -> list[str] | None:
    """The keys whose versions a cached page of `user`'s data scope is kept under: his own rows' and those of the
    regions his scope covers (a region's key moves with every change in its subtree), in each of `facets` (what
    the page shows: every facet by default). None: not cacheable.
    A change to the scope itself (his region, role, the regions he manages) is a write to the organisation,
    which bumps every page (`salesmgmt.freshness.EVERYTHING`)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    keys = sorted(user_keys(user.pk))
    scope = user.effective_scope
    if scope == DataScope.ALL:
        keys.append(COMPANY_KEY)
    elif scope == DataScope.SELF_AND_SUBORDINATES:
        keys += [
            region_key(pk) for pk in Region.objects.filter(manager=user).order_by("pk").values_list("pk", flat=True)
        ]
    elif scope in (DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE) and user.region_id:
        keys.append(region_key(user.region_id))
    result = []
    for facet in facets:
        # His notifications are his alone: the bell shows no one else's.
        result += [f"{NOTIFICATIONS}u{user.pk}"] if facet == NOTIFICATIONS else [facet + key for key in keys]
    return result


def deal_page_keys(user: User | AnonymousUser | None) -> list[str] | None:
    """`freshness_keys` of a page showing deals alone (the pipelines, a deal): the deals of his scope and his bell."""
    return freshness_keys(user, facets=(DEALS, NOTIFICATIONS))


def deal_data_keys(user: User | AnonymousUser | None) -> list[str] | None:
    """`freshness_keys` of API data about deals alone."""
    return freshness_keys(user, facets=(DEALS,))


def attainment_data_keys(user: User | AnonymousUser | None) -> list[str] | None:
    """`freshness_keys` of API data about stored attainment alone (a target's figures)."""
    return freshness_keys(user, facets=(TARGETS,))
