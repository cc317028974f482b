"""Writes for the pipeline: deals, stage moves with evidence, history, collections, activities."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import F, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import CompanySettings, Currency, Customer, Region, User
from crm.scopes import people_keys, region_keys, region_keys_of, user_keys, visible_users
from crm.services import audit, ensure_company_currency, to_company_currency
from pipeline import events
from pipeline.models import (
    Activity,
    Collection,
    ForecastCategory,
    Opportunity,
    OpportunityHistory,
    OpportunityLine,
    Pipeline,
    Stage,
    StageEvidence,
)
from salesmgmt import freshness
from salesmgmt.errors import ConflictError
from salesmgmt.lib.money import ZERO, quantize
from salesmgmt.locking import lock_rows, locked_get

# The default process of DOMAIN.md: the customer's 5-step purchase mirrored by 5 sales steps.
DEFAULT_STAGES = [
    # name, name_zh, probability, won, lost, forecast category, expected days, evidence required
    ("Needs confirmed", "需求确认", 10, False, False, ForecastCategory.PIPELINE, 14, ""),
    ("Solution presented", "方案呈现", 30, False, False, ForecastCategory.PIPELINE, 21, "Decision maker met"),
    ("Negotiation", "商务谈判", 60, False, False, ForecastCategory.BEST_CASE, 21, "Proposal accepted"),
    ("Contract signing", "签约", 90, False, False, ForecastCategory.COMMIT, 14, "Contract terms agreed"),
    ("Won / payment", "回款", 100, True, False, ForecastCategory.CLOSED, None, "Signed contract"),
    ("Lost", "输单", 0, False, True, ForecastCategory.OMITTED, None, ""),
]

TRACKED_FIELDS = ("amount", "expected_close_date", "probability", "owner", "forecast_category", "currency", "lines")


@transaction.atomic
def pipeline_ensure_default() -> Pipeline:
    """Create the default 5-step pipeline once; running it again changes nothing."""
    pipeline, created = Pipeline.objects.get_or_create(
        is_default=True, defaults={"name": "Standard sales process", "name_zh": "标准销售流程"}
    )
    if created or not pipeline.stages.exists():
        for order, (name, name_zh, prob, won, lost, category, days, evidence) in enumerate(DEFAULT_STAGES, start=1):
            Stage.objects.create(
                pipeline=pipeline,
                name=name,
                name_zh=name_zh,
                order=order,
                probability=prob,
                is_won=won,
                is_lost=lost,
                forecast_category=category,
                expected_days=days,
                evidence_required=evidence,
            )
    return pipeline


def _history(
    opportunity: Opportunity,
    field: str,
    old: object,
    new: object,
    *,
    actor: User | None,
    reason: str = "",
    old_stage: Stage | None = None,
    new_stage: Stage | None = None,
    at: datetime | None = None,
) -> OpportunityHistory:
    return OpportunityHistory(
        opportunity=opportunity,
        field=field,
        old_value="" if old is None else str(old)[:200],
        new_value="" if new is None else str(new)[:200],
        old_stage=old_stage,
        new_stage=new_stage,
        reason=reason[:200],
        changed_by=actor if getattr(actor, "pk", None) else None,
        changed_at=at or timezone.now(),
    )


def _check_owner(actor: User | None, owner: User) -> None:
    if actor is not None and not visible_users(actor).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot assign deals to %(user)s.") % {"user": owner}})


def _rate_day(opportunity: Opportunity) -> date:
    return opportunity.closed_on or opportunity.expected_close_date or timezone.localdate()


def _set_lines(opportunity: Opportunity, lines: list[dict], day: date) -> Decimal:
    """Replace the product lines; returns their total (the deal amount when lines are given)."""
    opportunity.lines.all().delete()
    objs = []
    for line in lines:
        amount = Decimal(line["amount"])
        if amount < 0:
            raise ValidationError({"lines": _("Line amounts cannot be negative.")})
        product = line.get("product")
        product_line = line.get("product_line") or (product.line if product else None)
        if product_line is None:
            raise ValidationError({"lines": _("Each line needs a product line or a product.")})
        objs.append(
            OpportunityLine(
                opportunity=opportunity,
                product_line=product_line,
                product=product,
                quantity=line.get("quantity") or Decimal(1),
                amount=amount,
                amount_company=to_company_currency(amount, opportunity.currency_id, day),
            )
        )
    OpportunityLine.objects.bulk_create(objs)
    return sum((o.amount for o in objs), ZERO)


def customer_refresh_first_won(customer_ids: Iterable[int]) -> None:
    """Recompute 存量/增量 (first won deal date) for the given customers, set-based; only those whose date moves
    are written (a customer's later win changes nothing, and an unchanged row makes no page stale)."""
    first_won = (
        Opportunity.objects.filter(customer=OuterRef("pk"), stage__is_won=True)
        .values("customer")
        .annotate(first=Min("closed_on"))
        .values("first")
    )
    customers = Customer.objects.filter(pk__in=list(customer_ids)).annotate(first=Subquery(first_won))
    moved = [pk for pk, old, new in customers.values_list("pk", "first_won_on", "first") if old != new]
    if moved:
        Customer.objects.filter(pk__in=moved).update(first_won_on=Subquery(first_won))


@transaction.atomic
def opportunity_create(
    *,
    name: str,
    customer: Customer | None,
    owner: User,
    amount: Decimal | None = None,
    currency: Currency | None = None,
    expected_close_date: date | None = None,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    lines: list[dict] | None = None,
    probability: int | None = None,
    probability_reason: str = "",
    forecast_category: str | None = None,
    next_step: str = "",
    next_step_date: date | None = None,
    closed_on: date | None = None,
    external_id: str = "",
    created_at: datetime | None = None,
    actor: User | None = None,
) -> Opportunity:
    _check_owner(actor, owner)
    pipeline = pipeline or (stage.pipeline if stage else None) or pipeline_ensure_default()
    stage = stage or pipeline.stages.order_by("order").first()
    if stage is None:
        raise ValidationError({"stage": _("The pipeline has no stages.")})
    if stage.pipeline_id != pipeline.pk:
        raise ValidationError({"stage": _("The stage belongs to another pipeline.")})
    if probability is not None and probability != stage.probability and not probability_reason.strip():
        raise ValidationError({"probability_reason": _("Give a reason when the probability differs from the stage's.")})
    currency = currency or ensure_company_currency()
    region = credited_team(owner)
    if stage.is_closed and closed_on is None:
        closed_on = expected_close_date or timezone.localdate()
    if not stage.is_closed and closed_on is not None:
        # `closed_on` is empty exactly while a deal is open: the open-deal lists and their index rely on it.
        raise ValidationError({"closed_on": _("A deal in an open stage has no close day.")})
    now = created_at or timezone.now()
    opp = Opportunity(
        name=name.strip(),
        customer=customer,
        owner=owner,
        region=region,
        pipeline=pipeline,
        stage=stage,
        amount=amount if amount is not None else ZERO,
        currency=currency,
        amount_company=ZERO,
        expected_close_date=expected_close_date,
        closed_on=closed_on,
        probability=stage.probability if probability is None else probability,
        probability_reason=probability_reason.strip(),
        forecast_category=forecast_category or stage.forecast_category,
        next_step=next_step,
        next_step_date=next_step_date,
        external_id=external_id,
        created_at=now,
        stage_entered_at=now,
    )
    day = _rate_day(opp)
    if opp.amount < 0:
        raise ValidationError({"amount": _("The amount cannot be negative.")})
    opp.full_clean(exclude=["amount_company"])
    opp.save()
    if lines:
        opp.amount = _set_lines(opp, lines, day)
    opp.amount_company = to_company_currency(opp.amount, currency.pk, day)
    opp.save(update_fields=["amount", "amount_company"])
    OpportunityHistory.objects.bulk_create(
        [_history(opp, "stage", None, stage.name, actor=actor, new_stage=stage, at=now)]
    )
    if stage.is_won and customer is not None:
        customer_refresh_first_won([customer.pk])
    # A new deal counts at once: won revenue, pipeline, and the process measures (created, stage reached).
    events.deal_figures_changed.publish(opp.pk, None, [], None)
    audit(actor=actor, action="opportunity.create", obj=opp, changes={"amount": [None, str(opp.amount)]})
    return opp


def credited_team(owner: User, *, keep: Region | None = None) -> Region:
    """业绩归属, the one rule for which part of the organisation a deal counts for: its owner's team.

    A deal's `region` holds it. It is set from the owner when the deal is created, changes hands or changes
    stage, so a closed deal keeps the team its owner was in on the close date (a rep who moves team later takes
    his open deals along, not his closed ones). Pipeline pages, filters, totals, exports, the API, attainment
    and history splits all read it; the customer's own region is a separate attribute (`customer.region`).
    """
    region = owner.region  # no query when the owner has no region
    if region is None:
        if keep is not None:  # `keep`: the team a deal already counts for, kept while its owner has none
            return keep
        raise ValidationError(
            {"owner": _("%(owner)s belongs to no team: put them in a region first.") % {"owner": owner}}
        )
    return region


@transaction.atomic
def deals_follow_owner(
    *, user: User, previous_region_id: int | None = None, actor: User | None = None, **_event: object
) -> int:
    """A user moved team: his open deals now count for the new team; closed ones stay where they were won or
    lost (`credited_team`). One UPDATE, then a recompute of each moved deal where it counted and counts now."""
    if user.region_id is None:
        return 0
    moved = list(
        Opportunity.objects.open()
        .filter(owner=user)
        .exclude(region_id=user.region_id)
        .values_list("pk", "region_id", "expected_close_date")
    )
    if not moved:
        return 0
    Opportunity.objects.filter(pk__in=[pk for pk, _r, _d in moved]).update(region_id=user.region_id)
    for pk, region_id, _day in moved:
        events.deal_figures_changed.publish(pk, None, [], region_id)
    audit(
        actor=actor,
        action="opportunity.follow_owner",
        obj=user,
        changes={"region": [previous_region_id, user.region_id], "deals": [None, len(moved)]},
    )
    return len(moved)


def _check_version(opportunity: Opportunity, expected_version: int | None) -> None:
    """Optimistic locking: claim the row only if nobody changed it since the user loaded it."""
    if expected_version is None:
        return
    updated = Opportunity.objects.filter(pk=opportunity.pk, version=expected_version).update(
        version=expected_version + 1
    )
    if not updated:
        raise ConflictError(_("Someone else changed this deal since you opened it. Reload and try again."))
    opportunity.version = expected_version + 1


def _check_locked_version(opportunity: Opportunity, expected_version: int | None) -> None:
    """Optimistic locking of a deal read FOR UPDATE: its version is the committed one (no other writer can move it
    before this transaction ends), so it is compared here instead of by a conditional UPDATE."""
    if expected_version is None:
        return
    if opportunity.version != expected_version:
        raise ConflictError(_("Someone else changed this deal since you opened it. Reload and try again."))
    opportunity.version = expected_version + 1


# Changes of these fields move a deal's attainment figures (actual when won, pipeline when open).
FIGURE_FIELDS = {"amount", "currency", "owner", "customer", "probability", "expected_close_date"}

# Changes of these move the figures of a won deal (its actual, where and when it counts). For a deal won in a
# closed period they need a reason; so does moving such a deal to another stage.
CLOSED_PERIOD_FIELDS = ("amount", "currency", "owner", "expected_close_date", "lines")


def opportunity_in_closed_period(opportunity: Opportunity, *, today: date | None = None) -> bool:
    """Whether the deal was won in a closed period: won, with a close date before the first day whose figures
    are still open (the start of the current fiscal month, or quarter or year: `CompanySettings.closed_period`).
    Its figures were reported already, so a change that moves them must say why."""
    return (
        opportunity.stage.is_won
        and opportunity.closed_on is not None
        and opportunity.closed_on < CompanySettings.load().open_period_start(today)
    )


def _check_late_reason(opportunity: Opportunity, reason: str) -> None:
    if not reason.strip() and opportunity_in_closed_period(opportunity):
        raise ValidationError(
            {
                "reason": _(
                    "This deal was won on %(day)s, in a closed period: its figures were reported already. "
                    "Give a reason for changing them."
                )
                % {"day": opportunity.closed_on}
            }
        )


def _check_collected(opportunity: Opportunity) -> None:
    """The amount never drops below what was collected; both in the company currency, as the deal's
    outstanding amount is shown (collections convert at the rate of the day they were received)."""
    collected = quantize(opportunity.collections.aggregate(total=Sum("amount_company"))["total"] or ZERO)
    if opportunity.amount_company < collected:
        currency = CompanySettings.load().currency
        raise ValidationError(
            {
                "amount": _(
                    "%(collected)s %(currency)s has already been collected on this deal: its amount cannot be "
                    "less (it would be %(amount)s %(currency)s)."
                )
                % {"collected": collected, "amount": opportunity.amount_company, "currency": currency}
            }
        )


def _lines_summary(opportunity: Opportunity) -> str:
    """The product lines of a deal as one history value: "CODE amount; ...", in a stable order."""
    rows = opportunity.lines.order_by("product_line__code", "product__code", "amount").values_list(
        "product_line__code", "product__code", "amount"
    )
    return "; ".join(" ".join(str(v) for v in row if v is not None) for row in rows)


EDITABLE_FIELDS = (
    "name",
    "customer",
    "owner",
    "amount",
    "currency",
    "expected_close_date",
    "probability",
    "probability_reason",
    "forecast_category",
    "next_step",
    "next_step_date",
    "lost_reason",
    "star_rating",
)


@transaction.atomic
def opportunity_update(
    *,
    opportunity: Opportunity,
    data: dict,
    actor: User | None,
    expected_version: int | None = None,
    lines: list[dict] | None = None,
    reason: str = "",
) -> Opportunity:
    """Change a deal's fields; every tracked change is kept in its history (who, when, old -> new, reason).

    The amount never drops below what was collected; a deal won in a closed period changes its figures
    (`CLOSED_PERIOD_FIELDS`) only with a `reason`."""
    opportunity = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    _check_version(opportunity, expected_version)
    data = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    if "owner" in data and data["owner"] != opportunity.owner:
        _check_owner(actor, data["owner"])
    if (
        "probability" in data
        and data["probability"] != opportunity.probability
        and data["probability"] != opportunity.stage.probability
        and not (data.get("probability_reason") or "").strip()
    ):
        raise ValidationError({"probability_reason": _("Give a reason when the probability differs from the stage's.")})
    changes: dict[str, tuple[Any, Any]] = {}  # field: (old, new), each a field's value of any type
    for field, new in data.items():
        old = getattr(opportunity, field)
        if old != new:
            changes[field] = (old, new)
            setattr(opportunity, field, new)
    previous_region_id = opportunity.region_id
    if "owner" in changes:
        opportunity.region = credited_team(opportunity.owner)
    day = _rate_day(opportunity)
    if lines is not None:
        old_lines = _lines_summary(opportunity)
        opportunity.amount = _set_lines(opportunity, lines, day)
        if opportunity.amount != changes.get("amount", (opportunity.amount,))[0]:
            changes.setdefault("amount", (None, opportunity.amount))
        if (new_lines := _lines_summary(opportunity)) != old_lines:
            changes["lines"] = (old_lines, new_lines)
    if set(CLOSED_PERIOD_FIELDS) & set(changes):
        _check_late_reason(opportunity, reason)
    if opportunity.amount is not None and opportunity.amount < 0:
        raise ValidationError({"amount": _("The amount cannot be negative.")})
    opportunity.amount_company = to_company_currency(opportunity.amount, opportunity.currency_id, day)
    if {"amount", "currency", "lines"} & set(changes):
        _check_collected(opportunity)
    opportunity.full_clean()
    if expected_version is None:
        opportunity.version += 1
    opportunity.save()
    if (FIGURE_FIELDS & set(changes) or lines is not None) and not opportunity.stage.is_lost:
        # A won deal's actual or an open deal's pipeline moved: recompute where it counts and counted.
        previous_owner = changes["owner"][0].pk if "owner" in changes else None
        previous_close = changes.get("expected_close_date", [None])[0]
        previous_days = [str(previous_close)] if previous_close else []
        previous_region = previous_region_id if previous_region_id != opportunity.region_id else None
        events.deal_figures_changed.publish(opportunity.pk, previous_owner, previous_days, previous_region)
    probability_reason = data.get("probability_reason", "") if "probability" in changes else ""
    OpportunityHistory.objects.bulk_create(
        [
            _history(
                opportunity,
                f,
                str(old.pk) if hasattr(old, "pk") else old,
                str(new.pk) if hasattr(new, "pk") else new,
                actor=actor,
                reason=probability_reason if f == "probability" else reason.strip(),
            )
            for f, (old, new) in changes.items()
            if f in TRACKED_FIELDS
        ]
    )
    if changes:
        audit(
            actor=actor,
            action="opportunity.update",
            obj=opportunity,
            changes={
                **{
                    f: [str(o) if o is not None else None, str(n) if n is not None else None]
                    for f, (o, n) in changes.items()
                },
                **({"reason": [None, reason.strip()]} if reason.strip() else {}),
            },
        )
    return opportunity


# What a deal's own change writes: these tables' rows show where the deal is seen (its team and its owner).
DEAL_TABLES = (
    "pipeline_opportunity",
    "pipeline_opportunityhistory",
    "pipeline_stageevidence",
    "crm_auditlog",
)


def _touch_deal(opportunity: Opportunity, *, previous_region_id: int | None = None) -> None:
    """The deal changed: the pages of its team (and the teams above), of its previous team, and of its owner."""
    region = opportunity.region
    keys = region_keys(region.path) if region is not None else region_keys()
    if previous_region_id and previous_region_id != opportunity.region_id:
        keys |= region_keys_of([previous_region_id])
    freshness.touch(keys | user_keys(opportunity.owner_id))


@transaction.atomic
@freshness.covers(*DEAL_TABLES)  # inside the transaction: what runs after its commit is not covered
def opportunity_move_stage(
    *,
    opportunity: Opportunity,
    stage: Stage,
    actor: User,
    evidence: str = "",
    attachment: File | None = None,
    lost_reason: str = "",
    closed_on: date | None = None,
    expected_version: int | None = None,
    at: datetime | None = None,
    reason: str = "",
) -> Opportunity:
    """Move a deal to another stage of its pipeline, asking for the milestone evidence it requires (and a
    reason when the deal was won in a closed period: the move takes it out of figures already reported)."""
    # Lock the deal row, then read it with its stage, customer, owner and teams (the credited team is read from
    # them) as they are once locked: a concurrent move of the same deal answers 409, not a missing deal.
    opportunity = locked_get(
        Opportunity.objects.select_related("stage", "customer", "owner__region", "region"), opportunity.pk
    )
    _check_locked_version(opportunity, expected_version)
    if stage.pipeline_id != opportunity.pipeline_id:
        raise ValidationError({"stage": _("That stage belongs to another pipeline.")})
    if stage.pk == opportunity.stage_id:
        raise ValidationError({"stage": _("The deal is already in this stage.")})
    if stage.evidence_required and not (evidence or "").strip():
        raise ValidationError(
            {
                "evidence": _("Entering “%(stage)s” requires evidence: %(evidence)s")
                % {"stage": stage.display_name, "evidence": stage.evidence_required}
            }
        )
    if stage.is_lost and not (lost_reason or "").strip():
        raise ValidationError({"lost_reason": _("Say why the deal was lost.")})
    _check_late_reason(opportunity, reason)
    now = at or timezone.now()
    old_stage = opportunity.stage
    old_closed_on, old_expected = opportunity.closed_on, opportunity.expected_close_date
    history = [
        _history(
            opportunity, "stage", old_stage.name, stage.name, actor=actor, old_stage=old_stage, new_stage=stage, at=now
        )
    ]
    if opportunity.probability != stage.probability:
        history.append(
            _history(opportunity, "probability", opportunity.probability, stage.probability, actor=actor, at=now)
        )
    opportunity.stage = stage
    # Closing (or reopening) credits the owner's team of that day: it stays with the deal once closed.
    previous_region_id = opportunity.region_id
    opportunity.region = credited_team(opportunity.owner, keep=opportunity.region)
    opportunity.probability = stage.probability
    opportunity.probability_reason = ""
    if opportunity.forecast_category != stage.forecast_category:
        # Kept like any other change: the pipeline flow reads a deal's category at any past instant from its history.
        history.append(
            _history(
                opportunity,
                "forecast_category",
                opportunity.forecast_category,
                stage.forecast_category,
                actor=actor,
                at=now,
            )
        )
    opportunity.forecast_category = stage.forecast_category
    opportunity.stage_entered_at = now
    if stage.is_lost:
        opportunity.lost_reason = lost_reason.strip()
    if stage.is_closed:
        opportunity.closed_on = closed_on or timezone.localdate()
        if opportunity.expected_close_date != opportunity.closed_on:
            history.append(
                _history(
                    opportunity,
                    "expected_close_date",
                    opportunity.expected_close_date,
                    opportunity.closed_on,
                    actor=actor,
                    at=now,
                )
            )
            opportunity.expected_close_date = opportunity.closed_on
        opportunity.amount_company = to_company_currency(
            opportunity.amount, opportunity.currency_id, opportunity.closed_on
        )
    else:
        opportunity.closed_on = None
    if old_closed_on is not None and opportunity.closed_on != old_closed_on:
        # A closed deal reopened or closed again: the day its figures counted on moves (kept for late changes).
        history.append(_history(opportunity, "closed_on", old_closed_on, opportunity.closed_on, actor=actor, at=now))
    for row in history:
        row.reason = reason.strip()[:200]
    if expected_version is None:
        opportunity.version += 1
    opportunity.save()
    OpportunityHistory.objects.bulk_create(history)
    if stage.evidence_required:
        StageEvidence.objects.create(
            opportunity=opportunity,
            stage=stage,
            text=evidence.strip(),
            attachment=attachment or "",
            given_by=actor,
            given_at=now,
        )
    customer = opportunity.customer
    if customer is not None and (stage.is_won or old_stage.is_won):
        with freshness.covering(("crm_customer",)):  # its 存量/增量 shows where the customer is seen
            freshness.touch(region_keys_of([customer.region_id]) | people_keys([customer.owner_id]))
            customer_refresh_first_won([customer.pk])
    # Every move changes the deal's actual (won), its probability or whether it is in the pipeline at all.
    previous_days = sorted({str(d) for d in (old_closed_on, old_expected) if d} - {str(opportunity.closed_on)})
    previous_region = previous_region_id if previous_region_id != opportunity.region_id else None
    events.deal_figures_changed.publish(opportunity.pk, None, previous_days, previous_region)
    _touch_deal(opportunity, previous_region_id=previous_region_id)
    audit(
        actor=actor,
        action="opportunity.move_stage",
        obj=opportunity,
        changes={
            "stage": [old_stage.name, stage.name],
            **({"reason": [None, reason.strip()]} if reason.strip() else {}),
        },
    )
    return opportunity


def next_stage(opportunity: Opportunity) -> Stage | None:
    """The next open-or-won stage after the current one (lost is never 'next')."""
    return (
        Stage.objects.filter(pipeline_id=opportunity.pipeline_id, order__gt=opportunity.stage.order, is_lost=False)
        .order_by("order")
        .first()
    )


@transaction.atomic
def collection_create(
    *,
    opportunity: Opportunity,
    received_on: date,
    amount: Decimal,
    currency: Currency | None = None,
    note: str = "",
    actor: User,
) -> Collection:
    """回款 against a won deal; the collected total never exceeds the deal amount."""
    # Lock the deal: an amount change or another payment in flight is checked against this one, not past it.
    opportunity = locked_get(Opportunity.objects.select_related("stage"), opportunity.pk)
    if not opportunity.stage.is_won:
        raise ValidationError(_("Payments can only be recorded against won deals."))
    if amount is None or amount <= 0:
        raise ValidationError({"amount": _("The amount must be positive.")})
    currency = currency or opportunity.currency
    amount_company = to_company_currency(amount, currency.pk, received_on)
    already = Collection.objects.filter(opportunity=opportunity).aggregate(total=Sum("amount_company"))["total"] or ZERO
    if already + amount_company > opportunity.amount_company:
        raise ValidationError(
            {
                "amount": _("Collections would exceed the deal amount (%(total)s already collected of %(deal)s).")
                % {"total": already, "deal": opportunity.amount_company}
            }
        )
    collection = Collection(
        opportunity=opportunity,
        received_on=received_on,
        amount=amount,
        currency=currency,
        amount_company=amount_company,
        note=note,
        created_by=actor,
    )
    collection.full_clean()
    collection.save()
    events.collection_recorded.publish(collection.pk)
    audit(actor=actor, action="collection.create", obj=opportunity, changes={"collection": [None, str(amount)]})
    return collection


@transaction.atomic
def activity_log(
    *,
    customer: Customer,
    kind: str,
    date: date,
    owner: User | None = None,
    notes: str = "",
    opportunity: Opportunity | None = None,
    actor: User,
) -> Activity:
    owner = owner or actor
    _check_owner(actor, owner)
    if opportunity is not None and opportunity.customer_id != customer.pk:
        raise ValidationError({"opportunity": _("The deal belongs to another customer.")})
    activity = Activity(customer=customer, kind=kind, date=date, owner=owner, notes=notes, opportunity=opportunity)
    activity.full_clean()
    activity.save()
    events.activity_logged.publish(activity.pk)
    return activity


def deals_to_reassign(*, from_owner: User, effective: date, actor: User) -> QuerySet[Opportunity]:
    """The deals of `from_owner` that move when his deals go to someone else from `effective` on: the open ones and
    those closed on or after that day (in the actor's scope). Deals won (or lost) before it stay his."""
    return (
        Opportunity.objects.visible_to(actor)
        .filter(owner=from_owner)
        .filter(Q(closed_on__isnull=True) | Q(closed_on__gte=effective))
    )


@transaction.atomic
def deals_reassign(
    *,
    from_owner: User | None,
    to_owner: User | None,
    effective: date | None,
    reason: str,
    actor: User,
    deal_ids: Iterable[int] | None = None,
) -> int:
    """Give `from_owner`'s deals (all that move, or the chosen `deal_ids`) to `to_owner` from `effective` on.

    业绩归属 by date: the open deals and those closed on or after `effective` now count for the new owner and his
    team (`credited_team`); deals closed before it keep their owner and team. Each moved deal's history records the
    change with the reason; the figures are recomputed where the deal counted and counts now (the deal event).
    Returns how many deals moved."""
    if actor is None or not actor.is_manager_or_above:
        raise ValidationError(_("Only managers, directors and admins can reassign deals."))
    if from_owner is None or to_owner is None:
        raise ValidationError(_("Choose whose deals move and who takes them."))
    if from_owner.pk == to_owner.pk:
        raise ValidationError({"to_owner": _("The deals go to someone else: choose another owner.")})
    if effective is None:
        raise ValidationError({"effective": _("Give the date from which the deals move.")})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the reassignment.")})
    if not to_owner.is_active:
        raise ValidationError({"to_owner": _("%(user)s is not active.") % {"user": to_owner}})
    visible = visible_users(actor)
    if not visible.filter(pk=from_owner.pk).exists():
        raise ValidationError({"from_owner": _("You cannot reassign the deals of %(user)s.") % {"user": from_owner}})
    _check_owner(actor, to_owner)
    region = credited_team(to_owner)
    qs = deals_to_reassign(from_owner=from_owner, effective=effective, actor=actor)
    if deal_ids is not None:
        wanted = {int(pk) for pk in deal_ids}
        if not wanted:
            raise ValidationError({"deals": _("Choose at least one deal.")})
        qs = qs.filter(pk__in=wanted)
        found = set(qs.values_list("pk", flat=True))
        if found != wanted:
            raise ValidationError(
                {
                    "deals": _(
                        "%(count)d of the chosen deals cannot move: they are not %(user)s's, you cannot see them, "
                        "or they were closed before %(day)s."
                    )
                    % {"count": len(wanted - found), "user": from_owner, "day": effective}
                }
            )
    # Locked on their own rows, then read with their stages as they are now (`salesmgmt.locking`).
    deals = list(Opportunity.objects.filter(pk__in=lock_rows(qs)).select_related("stage").order_by("pk"))
    if not deals:
        raise ValidationError(
            {"deals": _("%(user)s has no deal to move from %(day)s.") % {"user": from_owner, "day": effective}}
        )
    now = timezone.now()
    note = (_("From %(day)s: %(reason)s") % {"day": effective, "reason": reason.strip()})[:200]
    history = []
    for deal in deals:
        # The team follows the owner (`credited_team`); the history keeps the owner change, as an edit does.
        history.append(_history(deal, "owner", str(from_owner.pk), str(to_owner.pk), actor=actor, reason=note, at=now))
    Opportunity.objects.filter(pk__in=[d.pk for d in deals]).update(
        owner=to_owner, region=region, version=F("version") + 1, updated_at=now
    )
    OpportunityHistory.objects.bulk_create(history)
    for deal in deals:
        if deal.stage.is_lost:
            continue
        previous_region = deal.region_id if deal.region_id != region.pk else None
        events.deal_figures_changed.publish(deal.pk, from_owner.pk, [], previous_region)
    audit(
        actor=actor,
        action="opportunity.reassign",
        obj=from_owner,
        changes={
            "owner": [from_owner.pk, to_owner.pk],
            "effective": [None, str(effective)],
            "deals": [None, [d.pk for d in deals]],
            "reason": [None, reason.strip()],
        },
    )
    return len(deals)
