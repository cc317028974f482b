"""Figures of a region's subtree added up from figures kept per region, so a company-wide total costs what changed.

A director's review and team pipeline sum the deals of the whole company (600,000 at tier M: 0.1–0.5 s a query),
and under ten writers every such page renders afresh, since every move is in the company. Deal figures add up
over the region tree: a region's subtree total is its own rows' figures plus its children's subtree totals. So
each region's subtree total is kept in the cache under the versions of that region's freshness key (`r<id>`,
bumped by every committed change in its subtree, `crm.scopes.region_key`) and of `EVERYTHING`, and a reader:

1. reads the versions of the subtree's regions (one query) and the totals kept under them (one cache call);
2. computes only the regions whose version moved since (a move bumps its team and the regions above it): their
   own rows in one grouped query (`own`), each added to its children's totals, deepest first;
3. keeps what it computed.

What the versions promise (`salesmgmt.freshness`): a total kept under a version holds every change committed
before that version was bumped, so a reader never adds up a total older than the versions it read.

The figures are those of every row credited to the subtree: the caller checks that the reader sees all of them
(`crm.scopes.sees_subtree`); scoped reads of part of a subtree compute directly. Off (every region of the subtree
computed in one grouped query) when `ROLLUP_CACHE` is off or the connection has uncommitted writes of its own.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

from crm.scopes import region_key
from salesmgmt import freshness

T = TypeVar("T")


def _parent(path: str) -> int | None:
    ids = [part for part in path.split("/") if part]
    return int(ids[-2]) if len(ids) > 1 else None


def roots(paths: Mapping[int, str]) -> list[int]:
    """The regions of `paths` (id -> materialised path: whole subtrees) whose parent is not among them: the tops."""
    return sorted(pk for pk, path in paths.items() if _parent(path) not in paths)


def subtree_totals(
    name: str,
    paths: Mapping[int, str],
    own: Callable[[list[int]], Mapping[int, T]],
    add: Callable[[T, T], T],
    zero: T,
) -> dict[int, T]:
    """Per region of a subtree (`paths`: region id -> materialised path, the subtree's root and everything under
    it), the total of its subtree's rows.

    `name`: what is added up and every parameter it depends on (a period, a day): part of the cache key.
    `own(ids)`: the figures of the rows credited to each of these regions themselves (not below), one query;
    a region without rows may be left out (it counts `zero`). `add` adds two figures, exactly (counts, cents)."""
    ids = sorted(paths)
    if not ids:
        return {}
    cached: dict[int, T] = {}
    keys: dict[int, str] = {}
    if settings.ROLLUP_CACHE and freshness.clean():
        marks = freshness.versions([freshness.EVERYTHING, *(region_key(pk) for pk in ids)])
        digest = hashlib.sha256(name.encode()).hexdigest()[:24]
        keys = {pk: f"rollup:{digest}:{pk}:{version}:{marks[0]}" for pk, version in zip(ids, marks[1:], strict=True)}
        found = cache.get_many(list(keys.values()))
        cached = {pk: found[key] for pk, key in keys.items() if key in found}
    missing = [pk for pk in ids if pk not in cached]
    if not missing:
        return cached
    mine = own(missing)
    children: dict[int, list[int]] = defaultdict(list)
    for pk, path in paths.items():
        parent = _parent(path)
        if parent in paths:
            children[parent].append(pk)
    totals = dict(cached)
    for pk in sorted(missing, key=lambda pk: -paths[pk].count("/")):  # the deepest first: children before parents
        total = mine.get(pk, zero)
        for child in children[pk]:
            total = add(total, totals[child])
        totals[pk] = total
    if keys:
        cache.set_many({keys[pk]: totals[pk] for pk in missing}, settings.ROLLUP_CACHE_SECONDS)
    return totals
