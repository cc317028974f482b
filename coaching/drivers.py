"""The driver diagnosis (业绩公式) of the review: the formula per team or rep, its change against the previous
period, and the gap against target, each split into one exact contribution per driver.

The target of a scope for a period is read from the targets the user sees: among the approved plans of the
signed-revenue metric (source won revenue, no filters) that cover the period, the latest that started;
in it, the cell of that team (region, no rep) or that rep, of exactly that period, with no product, product
line or segment (the topmost such cell); failing that, the sum of the plan's leaves of that team's subtree
or that rep that lie inside the period (a rep × month plan gives a quarter's target). None without either.

How the gap is split (a documented rule, not a fact): the target's drivers are last period's drivers all
grown by the same factor, the fourth root of target ÷ last period's sales, so that their product is the
target ("the target asks the same growth of every driver"); when last period sold nothing, this period's
own mix is scaled instead. LMDI then splits actual − target between the drivers, exactly to the cent, and
the driver with the largest contribution in the direction of the gap is the one that explains it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from crm.models import DataScope, Region, User
from crm.scopes import visible_regions
from pipeline.analytics import ALL, BY_OWNER, BY_REGION, DriverRow, drivers
from salesmgmt.lib.drivers import DRIVERS, Drivers, lmdi, main_driver, scaled_to
from salesmgmt.lib.money import quantize
from targets.models import MetricSource, PlanStatus, TargetNode
from targets.planning.selectors import nodes_visible_to


def sees_only_himself(user: User) -> bool:
    return user.effective_scope == DataScope.SELF


def default_region(user: User) -> Region | None:
    """The scope the review opens on: the topmost region the user sees (his team, or the company); none for a
    rep who sees only his own deals."""
    if sees_only_himself(user):
        return None
    return visible_regions(user).order_by("depth", "path").first()


def region_in_scope(user: User, pk: int) -> Region | None:
    """The region `pk` if `user` may see it, else None (a page or the API answers 404)."""
    return visible_regions(user).filter(pk=pk).first()


@dataclass
class TargetGap:
    target: Decimal
    factors: list[Decimal] | None  # the target's drivers; None when there is no mix to scale
    contributions: list[Decimal] | None  # actual − target per driver, summing exactly to `gap`
    gap: Decimal  # actual − target (negative: short of target)
    main: str | None  # the driver that explains most of the gap


@dataclass
class DriverReview:
    row: DriverRow
    target: TargetGap | None = None
    main_change: str | None = None
    lines: list[dict] = field(default_factory=list)  # what a page shows per driver (coaching.views.analytics)


def target_gap(actual: Drivers, previous: Drivers, target: Decimal) -> TargetGap:
    """Split actual − target between the drivers by the rule of the module docstring."""
    gap = actual.amount - target
    base = previous if previous.amount > 0 else actual if actual.amount > 0 else None
    if base is None or target <= 0:
        return TargetGap(target=target, factors=None, contributions=None, gap=gap, main=None)
    factors = scaled_to(base.factors, target)
    contributions = lmdi(factors, actual.factors)
    index = main_driver(contributions)
    return TargetGap(
        target=target,
        factors=factors,
        contributions=contributions,
        gap=gap,
        main=None if index is None else DRIVERS[index],
    )


def _revenue_cells(user: User, start: date, end: date) -> QuerySet[TargetNode]:
    return nodes_visible_to(user).filter(
        plan__status=PlanStatus.APPROVED,
        plan__metric__source=MetricSource.WON_REVENUE,
        plan__metric__filters={},
        plan__period_start__lte=start,
        plan__period_end__gte=end,
    )


def _plan_in_force(user: User, start: date, end: date) -> int | None:
    plan = (
        _revenue_cells(user, start, end)
        .order_by("-plan__period_start", "-plan_id")
        .values_list("plan_id", flat=True)
        .first()
    )
    return plan


def targets_for(
    user: User, *, period_start: date, period_end: date, by: str | None, keys: list[int], region: Region | None
) -> dict[int, Decimal]:
    """The target of each group (team ids for BY_REGION, rep ids for BY_OWNER, ALL for the scope given by
    `region`, or the user himself when he sees only his own), in three queries whatever the number of keys."""
    plan_id = _plan_in_force(user, period_start, period_end)
    if plan_id is None:
        return {}
    cells = _revenue_cells(user, period_start, period_end).filter(plan_id=plan_id)
    plain = Q(product__isnull=True, product_line__isnull=True, segment="")
    column, wanted = _coordinates(user, by, keys, region)
    if column is None:
        return {}
    exact_q = Q(period_start=period_start, period_end=period_end) & plain
    if column == "region":
        exact_q &= Q(rep__isnull=True)
    found: dict[int, tuple[int, Decimal]] = {}
    for key, depth, amount in cells.filter(exact_q, **{f"{column}__in": wanted}).values_list(column, "depth", "amount"):
        if key not in found or depth < found[key][0]:
            found[key] = (depth, amount)
    result = {key: amount for key, (_depth, amount) in found.items()}
    missing = [k for k in wanted if k not in result]
    if missing:
        leaves = cells.filter(split_dimension="", period_start__gte=period_start, period_end__lte=period_end)
        if column == "rep":
            for key, total in (
                leaves.filter(rep__in=missing).values("rep").annotate(t=Sum("amount")).values_list("rep", "t")
            ):
                result[key] = quantize(Decimal(total))
        else:
            result.update(_sums_below(leaves, missing))
    return _rekey(result, by, keys, region, user)


def _sums_below(leaves: QuerySet[TargetNode], teams: list[int]) -> dict[int, Decimal]:
    """Σ amount of `leaves` in each team's subtree: one grouped query by leaf region and one for the regions'
    paths (small tables), added up along the paths."""
    by_region = dict(
        leaves.filter(region__isnull=False)
        .order_by()
        .values("region")
        .annotate(t=Sum("amount"))
        .values_list("region", "t")
    )
    paths = dict(Region.objects.filter(pk__in=list(by_region)).values_list("pk", "path"))
    sums: dict[int, Decimal] = defaultdict(Decimal)
    for region_id, total in by_region.items():
        for team in teams:
            if f"/{team}/" in paths.get(region_id, ""):
                sums[team] += Decimal(total)
    return {team: quantize(total) for team, total in sums.items()}


def _coordinates(user: User, by: str | None, keys: list[int], region: Region | None) -> tuple[str | None, list[int]]:
    if by == BY_OWNER:
        return "rep", keys
    if by == BY_REGION:
        return "region", keys
    if sees_only_himself(user):  # his own figures: his own target, whatever team is asked for
        return "rep", [user.pk]
    if region is not None:
        return "region", [region.pk]
    return None, []


def _rekey(result: dict[int, Decimal], by: str | None, keys: list[int], region: Region | None, user: User) -> dict:
    if by is not None:
        return result
    one = user.pk if sees_only_himself(user) or region is None else region.pk
    return {ALL: result[one]} if one in result else {}


def driver_review(
    user: User, *, period_start: date, period_end: date, region: Region | None = None, by: str | None = None
) -> list[DriverReview]:
    """`pipeline.analytics.drivers` per group, with the driver that explains the change against the previous
    period and, where a target is found, the gap against it split by driver."""
    rows = drivers(user, period_start=period_start, period_end=period_end, region=region, by=by)
    targets = targets_for(
        user, period_start=period_start, period_end=period_end, by=by, keys=[r.key for r in rows], region=region
    )
    result = []
    for row in rows:
        index = main_driver(row.change)
        target = targets.get(row.key)
        result.append(
            DriverReview(
                row=row,
                main_change=None if index is None else DRIVERS[index],
                target=None if target is None else target_gap(row.now, row.previous, target),
            )
        )
    return result
