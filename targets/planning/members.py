"""What a split divides a node into: the members of a dimension, for one node or thousands at once."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import Product, ProductLine, Region, Role, Segment, User
from salesmgmt.lib import periods
from targets.models import (
    TIME_DIMENSIONS,
    Dimension,
    TargetNode,
)
from targets.planning.rules import TIME_ORDER


@dataclasses.dataclass
class Member:
    """One child a split would create: its key (pk, segment or period key), label and coordinates."""

    key: str
    label: str
    coords: dict
    manager_id: int | None = None
    period: periods.Period | None = None


def member_period(member: Member) -> periods.Period:
    """The period of a member of a split by time (`members_batch` gives each one its period)."""
    if member.period is None:
        raise ValueError(f"“{member.key}” is not a period")
    return member.period


COORD_FIELDS = ("region_id", "product_line_id", "product_id", "rep_id", "segment")


def _node_period(node: TargetNode, start_month: int) -> periods.Period:
    parsed = periods.parse_key(node.period_key, start_month)
    return periods.Period(node.period_start, node.period_end, node.period_kind, parsed.fiscal_year, parsed.number)


def dimension_error(node: TargetNode, dimension: str) -> str | None:
    if dimension in TIME_DIMENSIONS:
        if TIME_ORDER.index(dimension) <= TIME_ORDER.index(node.period_kind):
            return _("“%(target)s” is already a %(kind)s target; it can only be split into shorter periods.") % {
                "target": node.label,
                "kind": node.get_period_kind_display().lower(),
            }
        return None
    if dimension == Dimension.REGION:
        return _("A rep's target cannot be split by region.") if node.rep_id else None
    fixed: dict[str, object] = {
        Dimension.PRODUCT_LINE: node.product_line_id or node.product_id,
        Dimension.PRODUCT: node.product_id,
        Dimension.REP: node.rep_id,
        Dimension.SEGMENT: node.segment,
    }
    if dimension not in fixed:
        return _("Unknown dimension “%(dimension)s”.") % {"dimension": dimension}
    if fixed[dimension]:
        return _("“%(target)s” is already for one %(dimension)s; split it along another dimension.") % {
            "target": node.label,
            "dimension": Dimension(dimension).label.lower(),
        }
    return None


def _user_label(row: Mapping[str, Any]) -> str:
    return f"{row['first_name']} {row['last_name']}".strip() or row["username"]


def members_batch(
    nodes: list[TargetNode], dimension: str, regions: dict[int, tuple[str, int]], start_month: int
) -> list[list[Member]]:
    """The children each node would get along `dimension`, with one query for all nodes."""
    if dimension == Dimension.REGION:
        parent_ids = {n.region_id for n in nodes if n.region_id}
        rows = list(
            Region.objects.filter(Q(parent_id__in=parent_ids) | Q(parent__isnull=True) | Q(parent__parent__isnull=True))
            .order_by("path")
            .values("id", "name", "parent_id", "manager_id")
        )
        tops = [r for r in rows if r["parent_id"] is None]
        top_ids = {tops[0]["id"]} if len(tops) == 1 else {None}  # one company region: its areas are the top level
        by_parent: defaultdict[int | None, list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            by_parent[r["parent_id"]].append(r)
        result: list[list[Member]] = []
        for node in nodes:
            if node.region_id:
                found = by_parent.get(node.region_id, [])
            else:
                found = [r for pid in top_ids for r in by_parent.get(pid, [])]
            result.append(
                [Member(str(r["id"]), r["name"], {"region_id": r["id"]}, manager_id=r["manager_id"]) for r in found]
            )
        return result
    if dimension == Dimension.PRODUCT_LINE:
        lines = [Member(str(pl.pk), pl.name, {"product_line_id": pl.pk}) for pl in ProductLine.objects.order_by("name")]
        return [lines for _node in nodes]
    if dimension == Dimension.PRODUCT:
        by_line: defaultdict[int, list[Member]] = defaultdict(list)
        everything: list[Member] = []
        for p in Product.objects.filter(is_active=True).order_by("name").values("id", "name", "line_id"):
            member = Member(str(p["id"]), p["name"], {"product_id": p["id"], "product_line_id": p["line_id"]})
            by_line[p["line_id"]].append(member)
            everything.append(member)
        return [by_line.get(n.product_line_id, []) if n.product_line_id else everything for n in nodes]
    if dimension == Dimension.REP:
        reps = list(
            User.objects.filter(is_active=True, role=Role.REP, region__isnull=False)
            .order_by("username")
            .values("id", "username", "first_name", "last_name", "region__path")
        )
        result = []
        for node in nodes:
            prefix = regions[node.region_id][0] if node.region_id else ""
            result.append(
                [
                    Member(str(r["id"]), _user_label(r), {"rep_id": r["id"]})
                    for r in reps
                    if r["region__path"].startswith(prefix)
                ]
            )
        return result
    if dimension == Dimension.SEGMENT:
        segments = [Member(value, str(label), {"segment": value}) for value, label in Segment.choices]
        return [segments for _node in nodes]
    # Time: the periods of the finer kind that tile the node's period.
    cache: dict[tuple[str, date, date], list[Member]] = {}
    result = []
    for node in nodes:
        cache_key = (node.period_key, node.period_start, node.period_end)
        if cache_key not in cache:
            parent = _node_period(node, start_month)
            cache[cache_key] = [
                Member(
                    p.key,
                    p.key,
                    {"period_kind": p.kind, "period_key": p.key, "period_start": p.start, "period_end": p.end},
                    period=p,
                )
                for p in periods.children(parent, dimension, start_month)
            ]
        result.append(cache[cache_key])
    return result


def region_paths(nodes: list[TargetNode]) -> dict[int, tuple[str, int]]:
    ids = {n.region_id for n in nodes if n.region_id}
    return {r["id"]: (r["path"], r["depth"]) for r in Region.objects.filter(pk__in=ids).values("id", "path", "depth")}
