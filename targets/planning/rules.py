"""Who may change which target, and the small checks every target service shares."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import CompanySettings, DataScope, User
from crm.scopes import visible_regions
from salesmgmt.errors import ConflictError
from salesmgmt.lib import allocation, periods
from salesmgmt.lib.money import quantize, to_decimal
from targets.models import (
    PlanStatus,
    TargetNode,
    TargetPlan,
)

TIME_ORDER = (periods.YEAR, periods.QUARTER, periods.MONTH, periods.WEEK)
PATH_STEP = 5  # "0001." per level
MAX_CHILDREN = 9999
# Split summaries in the audit log list each child only up to this many children.
AUDIT_CHILDREN_LIMIT = 100


def is_top(actor: User | None) -> bool:
    """Directors and admins: the company-level people."""
    return bool(actor is not None and actor.is_director_or_above)


def may_decide_plan(actor: User | None, plan: TargetPlan) -> bool:
    """Who may submit a plan for approval (besides its owner and creator): directors and admins any plan, a
    manager the plans of regions in his scope. Who approves it is `targets.planning.approval_chain`: someone above
    the submitter, never the submitter."""
    if is_top(actor):
        return True
    if actor is None or not actor.is_authenticated or not actor.is_manager_or_above or plan.region_id is None:
        return False
    return visible_regions(actor).filter(pk=plan.region_id).exists()


def check_manager(actor: User | None) -> None:
    if actor is None or not actor.is_authenticated or not actor.is_manager_or_above:
        raise ValidationError(_("Only managers, directors and admins can change targets."))


def check_scope(actor: User, node: TargetNode) -> None:
    """The node must lie inside the actor's regions (company-level nodes: the 'all' scope only)."""
    if node.region_id is None:
        if actor.effective_scope != DataScope.ALL:
            raise ValidationError(
                _("“%(target)s” is a company-level target; only a director can change it.") % {"target": node.label}
            )
    elif not visible_regions(actor).filter(pk=node.region_id).exists():
        raise ValidationError(_("“%(target)s” is outside your regions.") % {"target": node.label})


def check_not_own(actor: User, node: TargetNode) -> None:
    if node.owner_id == actor.pk and not (node.parent_id is None and is_top(actor)):
        raise ValidationError(
            _("“%(target)s” is your own target; your manager has to change it.") % {"target": node.label}
        )


def check_draft(plan: TargetPlan) -> None:
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(
            _("The plan is %(status)s; its targets change only through an adjustment.")
            % {"status": plan.get_status_display().lower()}
        )


def check_amount(value: object, places: int, *, field: str = "amount") -> Decimal:
    if value is None or value == "":
        raise ValidationError({field: _("Enter an amount.")})
    try:
        amount = to_decimal(value, field=field)
        allocation.to_units(amount, places)
    except (ArithmeticError, ValueError, TypeError):
        if places == 0:
            raise ValidationError({field: _("%(value)s is not a whole number.") % {"value": value}})
        raise ValidationError({field: _("%(value)s is not an amount with at most two decimals.") % {"value": value}})
    if amount < 0:
        raise ValidationError({field: _("The amount cannot be negative.")})
    return round_amount(amount)


def round_amount(amount: Decimal) -> Decimal:
    """Amounts are stored with cents; counts are whole numbers written as 12.00."""
    return quantize(amount)


def lock_plan_edits(plan_id: int) -> None:
    """Take the plan's lock before any of its targets': an edit of one target moves others (a rebalance its
    siblings, a new amount or level the target's parts), so two edits of one plan at once would each hold a
    target the other must write (a deadlock, seen as a 500) or write over what the other read. Edits of a
    draft plan are few: one at a time per plan costs nothing, and the second then sees the first's versions."""
    list(TargetPlan.objects.select_for_update(of=("self",)).filter(pk=plan_id).values_list("pk", flat=True))


def lock_node(node: TargetNode, expected_version: int | None) -> TargetNode:
    """Re-read and lock the node; with `expected_version`, claim it only if nobody changed it meanwhile."""
    fresh = (
        TargetNode.objects.select_for_update(of=("self",))
        .select_related("plan", "plan__metric", "region")
        .get(pk=node.pk)
    )
    if expected_version is not None:
        claimed = TargetNode.objects.filter(pk=node.pk, version=expected_version).update(
            version=expected_version + 1, updated_at=timezone.now()
        )
        if not claimed:
            raise ConflictError(_("Someone else changed this target since you opened it. Reload and try again."))
        fresh.version = expected_version + 1
    return fresh


def bump(node: TargetNode, *fields: str) -> None:
    """Save `fields` and move the version on (nodes are saved only through here or bulk updates)."""
    node.version = F("version") + 1
    node.save(update_fields=[*fields, "version", "updated_at"])
    node.refresh_from_db(fields=["version"])


def fiscal_start() -> int:
    return CompanySettings.load().fiscal_year_start_month


def ancestor_paths(path: str) -> list[str]:
    return [path[:i] for i in range(PATH_STEP, len(path), PATH_STEP)]
