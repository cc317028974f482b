"""Reads for the pipeline screens: scoped deal lists, set-based totals, the kanban and exports.

Everything starts from `Opportunity.objects.visible_to(user)`; totals add only `amount_company`
and are computed in SQL (one aggregate, or one `values().annotate()` per breakdown).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Aggregate, Count, DecimalField, Exists, F, Field, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import DataScope, User
from crm.rollup import roots as subtree_tops
from crm.rollup import subtree_totals
from crm.scopes import region_subtree, scope_subtrees, sees_subtree
from pipeline.models import (
    OPEN,
    Activity,
    Collection,
    Opportunity,
    OpportunityHistory,
    OpportunityLine,
    Pipeline,
    Stage,
)
from salesmgmt.lib.attainment import weighted_total
from salesmgmt.lib.money import ZERO, quantize

DEAL_RELATED = ("stage", "customer", "owner", "region", "pipeline")

# Which deals a list shows. "recent" = open, or closed in the last RECENT_DAYS days.
STATUS_RECENT, STATUS_OPEN, STATUS_WON, STATUS_LOST, STATUS_ALL = "recent", "open", "won", "lost", "all"
STATUS_CHOICES = [
    (STATUS_OPEN, gettext_lazy("Open")),
    (STATUS_WON, gettext_lazy("Won")),
    (STATUS_LOST, gettext_lazy("Lost")),
    (STATUS_ALL, gettext_lazy("All")),
]
RECENT_DAYS = 30

ORDERINGS = {
    "close": ("expected_close_date", "id"),
    "-amount": ("-amount_company", "id"),
    "stage": ("stage__pipeline_id", "stage__order", "expected_close_date", "id"),
    "owner": ("owner__first_name", "owner__username", "expected_close_date", "id"),
    "-updated": ("-updated_at", "-id"),
}


def stuck_in_stage(now: datetime) -> Q:
    """Deals in their stage longer than its expected days (since `stage_entered_at`): the one rule of "stuck" for
    the stuck-deal alert, the home page, the weekly digest and the at-risk list. One small query for the stages
    that set expected days; matches nothing when none does."""
    stuck = Q(pk__in=[])
    for stage_id, days in Stage.objects.filter(expected_days__isnull=False).values_list("id", "expected_days"):
        stuck |= Q(stage_id=stage_id, stage_entered_at__lt=now - timedelta(days=days or 0))
    return stuck


def deals_visible(user: User) -> QuerySet[Opportunity]:
    """The deals `user` may see, with what a row shows joined in (no query per row)."""
    return Opportunity.objects.visible_to(user).select_related(*DEAL_RELATED)


def filter_status(qs: QuerySet[Opportunity], status: str, *, today: date | None = None) -> QuerySet[Opportunity]:
    if status == STATUS_OPEN:
        return qs.filter(OPEN)
    if status == STATUS_WON:
        return qs.filter(stage__is_won=True)
    if status == STATUS_LOST:
        return qs.filter(stage__is_lost=True)
    if status == STATUS_RECENT:
        since = (today or timezone.localdate()) - timedelta(days=RECENT_DAYS)
        return qs.filter(OPEN | Q(closed_on__gte=since))
    return qs


def _weighted(raw: Decimal | None) -> Decimal:
    """Σ(amount_company × probability) by the weighted-pipeline rule: / 100, rounded once (never per row)."""
    return weighted_total(raw or ZERO)


def _sums() -> dict[str, Aggregate]:
    # The product is summed in SQL and divided in Python: integer division on SQLite would truncate.
    return {
        "count": Count("id"),
        "total": Sum("amount_company"),
        "weighted_raw": Sum(
            F("amount_company") * F("probability"), output_field=DecimalField(max_digits=24, decimal_places=2)
        ),
    }


def _totals_of(row: Mapping[str, Any]) -> dict:
    return {"count": row["count"] or 0, "total": row["total"] or ZERO, "weighted": _weighted(row["weighted_raw"])}


def totals(qs: QuerySet[Opportunity]) -> dict:
    """Count, Σ amount_company and weighted Σ of a deal queryset, in one aggregate query."""
    return _totals_of(qs.order_by().aggregate(**_sums()))


STAGE_COLUMNS = ("name", "name_zh", "order", "probability", "is_won", "is_lost", "pipeline_id")


def _stage_rows(qs: QuerySet[Opportunity]) -> list[dict[str, Any]]:
    """The deals' sums grouped by stage id alone, then the stages' columns (a second, tiny query). Grouping
    by the stage's eight columns too hashed them once per deal: for the director's ~106,000 open deals at
    tier M, 240-390 ms against 120-140 ms (EXPLAIN ANALYZE on the shared machine)."""
    return _with_stage_columns([dict(r) for r in qs.order_by().values("stage").annotate(**_sums())])


def _with_stage_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of sums per stage id, with their stages' columns (one tiny query), in the pipelines' stage order."""
    if not rows:
        return []
    columns = ("pipeline__is_default", *STAGE_COLUMNS)
    stages = {s["pk"]: s for s in Stage.objects.filter(pk__in=[r["stage"] for r in rows]).values("pk", *columns)}
    for row in rows:
        row.update({f"stage__{c}": stages[row["stage"]][c] for c in columns})
    return sorted(
        rows, key=lambda r: (not r["stage__pipeline__is_default"], r["stage__pipeline_id"], r["stage__order"])
    )


def _subtotals_of(rows: list[dict[str, Any]]) -> list[dict]:
    return [
        {"stage": Stage(pk=r["stage"], **{c: r[f"stage__{c}"] for c in STAGE_COLUMNS}), **_totals_of(r)} for r in rows
    ]


def stage_subtotals(qs: QuerySet[Opportunity]) -> list[dict]:
    """Per stage: {stage, count, total, weighted}, default pipeline first then by stage order, from ONE
    grouped query of the deals (and one of the few stages it found)."""
    return _subtotals_of(_stage_rows(qs))


def totals_and_subtotals(qs: QuerySet[Opportunity]) -> tuple[dict, list[dict]]:
    """`totals(qs)` and `stage_subtotals(qs)` from the one grouped query: the totals add up the stage rows (the
    weighted Σ adds their raw Σ amount × probability and is rounded once, as `totals` rounds it), so the deals
    are read once, not twice."""
    rows = _stage_rows(qs)
    raw = {key: sum((r[key] or 0 for r in rows), 0) for key in ("count", "total", "weighted_raw")}
    return _totals_of(raw), _subtotals_of(rows)


# --- next stage / lost stage for action buttons ------------------------------------------------


@dataclass
class StageNavigation:
    """The next stage of every stage and the lost stage of every pipeline, from one query."""

    next: dict[int, Stage | None] = field(default_factory=dict)
    lost: dict[int, Stage | None] = field(default_factory=dict)

    def annotate(self, deals: Iterable[Opportunity]) -> list[Opportunity]:
        """Set `next_stage_choice` / `lost_stage_choice` on each deal (None when the deal is closed)."""
        deals = list(deals)
        for deal in deals:
            closed = deal.stage.is_won or deal.stage.is_lost
            deal.next_stage_choice = None if closed else self.next.get(deal.stage_id)
            deal.lost_stage_choice = None if closed else self.lost.get(deal.pipeline_id)
        return deals

    @classmethod
    def of(cls, stages: Iterable[Stage]) -> StageNavigation:
        """Same rule as `services.next_stage` (the next non-lost stage by order), for many deals at once."""
        by_pipeline: dict[int, list[Stage]] = {}
        for stage in sorted(stages, key=lambda s: (s.pipeline_id, s.order)):
            by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
        nav = cls()
        for pipeline_id, ordered in by_pipeline.items():
            nav.lost[pipeline_id] = next((s for s in ordered if s.is_lost), None)
            for i, stage in enumerate(ordered):
                nav.next[stage.pk] = next((s for s in ordered[i + 1 :] if not s.is_lost), None)
        return nav


def stage_navigation(pipeline_ids: Iterable[int] | None = None) -> StageNavigation:
    stages = Stage.objects.all()
    if pipeline_ids is not None:
        stages = stages.filter(pipeline_id__in=set(pipeline_ids))
    return StageNavigation.of(stages)


def with_actions(deals: Iterable[Opportunity]) -> list[Opportunity]:
    deals = list(deals)
    return stage_navigation({d.pipeline_id for d in deals}).annotate(deals)


# --- my pipeline ----------------------------------------------------------------------------------


def my_deals(
    user: User, *, status: str = STATUS_RECENT, pipeline: Pipeline | None = None, today: date | None = None
) -> QuerySet[Opportunity]:
    """The user's own deals (visible ones only), soonest close date first."""
    qs = deals_visible(user).filter(owner=user)
    if pipeline is not None:
        qs = qs.filter(pipeline=pipeline)
    return filter_status(qs, status, today=today).order_by("expected_close_date", "id")


@dataclass
class KanbanColumn:
    stage: Stage
    count: int = 0
    total: Decimal = ZERO
    weighted: Decimal = ZERO
    deals: list[Opportunity] = field(default_factory=list)


def pipeline_by_stage(
    user: User, *, pipeline: Pipeline, status: str = STATUS_RECENT, today: date | None = None
) -> list[KanbanColumn]:
    """One column per stage of `pipeline` (empty ones too) with count and totals of the user's deals."""
    columns = [KanbanColumn(stage=s) for s in pipeline.stages.order_by("order")]
    by_stage = {c.stage.pk: c for c in columns}
    qs = my_deals(user, status=status, pipeline=pipeline, today=today)
    for row in qs.order_by().values("stage").annotate(**_sums()):
        column = by_stage.get(row["stage"])
        if column is not None:
            t = _totals_of(row)
            column.count, column.total, column.weighted = t["count"], t["total"], t["weighted"]
    return columns


def kanban(
    user: User, *, pipeline: Pipeline, status: str = STATUS_RECENT, today: date | None = None
) -> list[KanbanColumn]:
    columns = pipeline_by_stage(user, pipeline=pipeline, status=status, today=today)
    by_stage = {c.stage.pk: c for c in columns}
    deals = my_deals(user, status=status, pipeline=pipeline, today=today)
    for deal in StageNavigation.of([c.stage for c in columns]).annotate(deals):
        by_stage[deal.stage_id].deals.append(deal)
    return columns


# --- team pipeline --------------------------------------------------------------------------------


def month_range(first: date) -> tuple[date, date]:
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def team_deals(user: User, filters: dict) -> QuerySet[Opportunity]:
    """Visible deals narrowed by the team filters (already validated against the user's scope).

    filters: region (the credited team's subtree, 业绩归属), customer_region (the customer's region's subtree),
    owner, product_line, stage, close_month (first day), status, order.
    """
    qs = deals_visible(user)
    region = filters.get("region")
    if region is not None:
        qs = qs.filter(region__in=region_subtree(region))
    customer_region = filters.get("customer_region")
    if customer_region is not None:
        qs = qs.filter(customer__region__in=region_subtree(customer_region))
    if filters.get("owner") is not None:
        qs = qs.filter(owner=filters["owner"])
    if filters.get("product_line") is not None:
        qs = qs.filter(
            Exists(OpportunityLine.objects.filter(opportunity=OuterRef("pk"), product_line=filters["product_line"]))
        )
    if filters.get("stage") is not None:
        qs = qs.filter(stage=filters["stage"])
    if filters.get("close_month") is not None:
        start, end = month_range(filters["close_month"])
        qs = qs.filter(expected_close_date__range=(start, end))
    qs = filter_status(qs, filters.get("status") or STATUS_OPEN)
    return qs.order_by(*ORDERINGS.get(filters.get("order") or "close", ORDERINGS["close"]))


def team_pipeline(user: User, filters: dict) -> tuple[QuerySet[Opportunity], dict]:
    """The filtered team deals and their totals (count, Σ amount, weighted Σ) from ONE aggregate query."""
    qs = team_deals(user, filters)
    return qs, totals(qs)


def team_pipeline_by_stage(user: User, filters: dict) -> tuple[QuerySet[Opportunity], dict, list[dict]]:
    """The filtered team deals, their totals and their per-stage subtotals, from ONE grouped query — or, for the
    open deals of a whole subtree the user sees all of (the director's company, a manager's area), added up from
    per-region sums kept in the cache (`_kept_stage_rows`)."""
    qs = team_deals(user, filters)
    rows = _kept_stage_rows(user, filters)
    if rows is None:
        return qs, *totals_and_subtotals(qs)
    raw = {key: sum((r[key] or 0 for r in rows), 0) for key in ("count", "total", "weighted_raw")}
    return qs, _totals_of(raw), _subtotals_of(rows)


# Team filters besides the region that narrow the deals: with any of them the sums are counted directly.
_NARROWING = ("customer_region", "owner", "product_line", "stage", "close_month")


def _kept_stage_rows(user: User, filters: dict) -> list[dict[str, Any]] | None:
    """The open deals' sums per stage of a whole subtree (`filters["region"]`'s, or the company's for a user who
    sees everything), from per-region sums kept by `crm.rollup` (only the teams changed since are summed again);
    None when the filters narrow the deals otherwise or the user does not see all of the subtree."""
    if (filters.get("status") or STATUS_OPEN) != STATUS_OPEN or any(filters.get(k) is not None for k in _NARROWING):
        return None
    region = filters.get("region")
    if region is not None:
        if not sees_subtree(user, region):
            return None
        paths = dict(region_subtree(region).order_by().values_list("pk", "path"))
    elif getattr(user, "effective_scope", None) == DataScope.ALL:
        # Every deal is credited to a team (`region` is required): the company's subtrees hold them all.
        found = scope_subtrees(user)
        if found is None:
            return None
        paths = found
    else:
        return None
    roots = subtree_tops(paths)

    def sums(qs: QuerySet[Opportunity], *group: str) -> Iterator[dict[str, Any]]:
        for r in qs.filter(OPEN).order_by().values(*group, "stage").annotate(**_sums()):
            yield {
                **r,
                "total": quantize(Decimal(r["total"] or ZERO)),
                "raw": quantize(Decimal(r["weighted_raw"] or ZERO)),
            }

    def own(ids: list[int]) -> dict[int, dict[int, tuple[int, Decimal, Decimal]]]:
        found: dict[int, dict[int, tuple[int, Decimal, Decimal]]] = {}
        for r in sums(Opportunity.objects.filter(region__in=ids), "region"):
            found.setdefault(r["region"], {})[r["stage"]] = (r["count"], r["total"], r["raw"])
        return found

    def add(
        a: dict[int, tuple[int, Decimal, Decimal]], b: dict[int, tuple[int, Decimal, Decimal]]
    ) -> dict[int, tuple[int, Decimal, Decimal]]:
        merged = dict(a)
        for stage, (n, total, raw) in b.items():
            m = merged.get(stage, (0, ZERO, ZERO))
            merged[stage] = (m[0] + n, m[1] + total, m[2] + raw)
        return merged

    empty: dict[int, tuple[int, Decimal, Decimal]] = {}
    totals = subtree_totals("open_by_stage", paths, own, add, empty)
    by_stage: dict[int, tuple[int, Decimal, Decimal]] = {}
    for root in roots:
        by_stage = add(by_stage, totals[root])
    rows = [
        {"stage": stage, "count": n, "total": total, "weighted_raw": raw}
        for stage, (n, total, raw) in by_stage.items()
        if n
    ]
    return _with_stage_columns(rows)


def scope_deal_count(user: User) -> int | None:
    """How many deals `user` sees (`Opportunity.objects.visible_to(user).count()`), added up from per-region counts
    kept by `crm.rollup` when his scope is whole subtrees (`crm.scopes.scope_subtrees`): the unfiltered deal list's
    count, which for the director counted all 600,000 deals at every page (70 ms) and for a manager visited every
    block holding one of his area's deals (20 ms). None for another scope: count the list itself."""
    paths = scope_subtrees(user)
    if paths is None:
        return None

    def own(ids: list[int]) -> dict[int, int]:
        rows = Opportunity.objects.filter(region__in=ids).order_by().values("region").annotate(n=Count("id"))
        return {r["region"]: r["n"] for r in rows}

    totals = subtree_totals("deal_count", paths, own, int.__add__, 0)
    count = sum(totals[top] for top in subtree_tops(paths))
    if user.effective_scope != DataScope.ALL:  # his own deals credited to a team outside his subtrees
        count += Opportunity.objects.filter(owner=user).exclude(region__in=list(paths)).count()
    return count


# --- one deal -------------------------------------------------------------------------------------


def deal_history(deal: Opportunity) -> list[OpportunityHistory]:
    """The deal's changes, newest first, with stage names and owner names resolved (no query per row)."""
    entries = list(deal.history.select_related("changed_by", "old_stage", "new_stage").order_by("-changed_at", "-id"))
    owner_ids = {v for e in entries if e.field == "owner" for v in (e.old_value, e.new_value) if v.isdigit()}
    owners = User.objects.in_bulk([int(i) for i in owner_ids]) if owner_ids else {}
    for e in entries:
        if e.field == "stage":
            e.old_display = e.old_stage.display_name if e.old_stage else e.old_value
            e.new_display = e.new_stage.display_name if e.new_stage else e.new_value
        elif e.field == "owner":
            e.old_display = str(owners.get(int(e.old_value), e.old_value)) if e.old_value.isdigit() else e.old_value
            e.new_display = str(owners.get(int(e.new_value), e.new_value)) if e.new_value.isdigit() else e.new_value
        else:
            e.old_display, e.new_display = e.old_value, e.new_value
        e.field_label = _field_label(e.field)
    return entries


def _field_label(name: str) -> str:
    if name == "lines":  # the product lines, kept as one value ("SRV RACK 600.00; SW 400.00")
        return _("Products")
    try:
        model_field = Opportunity._meta.get_field(name)
    except Exception:  # noqa: BLE001 - an old history row may name a field that no longer exists
        return name
    return str(model_field.verbose_name) if isinstance(model_field, Field) else name


def deal_activities(user: User, deal: Opportunity) -> QuerySet[Activity]:
    return Activity.objects.on_deal_visible_to(deal, user).select_related("owner", "customer")


def deal_collections(user: User, deal: Opportunity) -> tuple[list[Collection], Decimal]:
    """The deal's collections the user sees, and their total in the company currency (a deal has a few: one
    query for both)."""
    collections = list(
        Collection.objects.visible_to(user).filter(opportunity=deal).select_related("currency", "created_by")
    )
    return collections, sum((c.amount_company for c in collections), ZERO)


# --- export ---------------------------------------------------------------------------------------


def deal_export_header() -> list[str]:
    return [
        _("ID"),
        _("Deal"),
        _("Customer"),
        _("Owner"),
        _("Sales team"),
        _("Customer region"),
        _("Pipeline"),
        _("Stage"),
        _("Probability %"),
        _("Amount"),
        _("Currency"),
        _("Amount (company currency)"),
        _("Weighted amount"),
        _("Expected close date"),
        _("Closed on"),
        _("Forecast category"),
        _("Next step"),
    ]


def deal_export_rows(qs: QuerySet[Opportunity]) -> Iterator[list[object]]:
    """One row per deal of an already scoped and filtered queryset, streamed from the database."""
    # The customer's region rides along: a separate attribute from the credited team (`region`).
    for d in qs.select_related("customer__region").iterator(chunk_size=2000):
        yield [
            d.pk,
            d.name,
            d.customer.name if d.customer else "",
            str(d.owner),
            d.region.name,
            d.customer.region.name if d.customer and d.customer.region_id else "",
            d.pipeline.display_name,
            d.stage.display_name,
            d.probability,
            d.amount,
            d.currency_id,
            d.amount_company,
            d.weighted_amount,
            d.expected_close_date,
            d.closed_on,
            d.get_forecast_category_display(),
            d.next_step,
        ]
