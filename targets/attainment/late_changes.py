"""Late changes: changes of deals won in a closed period, made with a reason, shown on the targets they moved.

The pipeline keeps them: a change that moves the figures of a deal won before the open period
(`pipeline.services.opportunity_in_closed_period`) needs a reason, written on its `OpportunityHistory` rows. A
target lists such changes of the deals that count, or counted before the change, for it: the deal's close date
(now, or the old or new one of the change) in the target's period, its owner (now, or before or after the change)
its rep, its credited team or its owner's team under the target's region, a line of the target's product line or
product (or a change of lines). Segments are not narrowed: a change shown in excess is harmless, one missed is not.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db.models import CharField, Exists, Field, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from crm.models import User
from pipeline.models import Opportunity, OpportunityHistory, OpportunityLine
from targets.models import MetricSource, TargetNode

# History fields whose change moves a won deal's figures (`pipeline.services.CLOSED_PERIOD_FIELDS` and stage moves).
LATE_FIELDS = ("amount", "currency", "owner", "expected_close_date", "closed_on", "stage", "lines")
DATE_FIELDS = ("expected_close_date", "closed_on")
# The metrics whose actual is made of won deals.
DEAL_SOURCES = (MetricSource.WON_REVENUE, MetricSource.GROSS_MARGIN, MetricSource.KEY_PRODUCT_SHARE)
LIMIT = 50


@dataclasses.dataclass
class LateChange:
    """One change of one deal (its history rows written together): who, when, why, and old -> new per field."""

    deal_id: int
    deal_name: str
    changed_at: datetime
    changed_by: User | None
    reason: str
    fields: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class LateChanges:
    changes: list[LateChange]
    hidden: int  # changes of deals outside the user's scope, counted but not shown

    def __bool__(self) -> bool:
        return bool(self.changes or self.hidden)


def _late_rows() -> QuerySet[OpportunityHistory]:
    return OpportunityHistory.objects.exclude(reason="").filter(field__in=LATE_FIELDS)


def _deals_of(node: TargetNode) -> QuerySet[Opportunity]:
    """The deals with late changes that count, or counted, for the node (one query when evaluated)."""
    start, end = node.period_start, node.period_end
    rows = _late_rows().filter(opportunity=OuterRef("pk"))
    dated = rows.filter(field__in=DATE_FIELDS).filter(
        Q(old_value__range=(start.isoformat(), end.isoformat()))
        | Q(new_value__range=(start.isoformat(), end.isoformat()))
    )
    deals = Opportunity.objects.filter(Exists(rows)).filter(
        Q(closed_on__range=(start, end)) | Q(expected_close_date__range=(start, end)) | Exists(dated)
    )
    owner_rows = rows.filter(field="owner")
    if node.rep_id:
        rep = str(node.rep_id)
        deals = deals.filter(Q(owner_id=node.rep_id) | Exists(owner_rows.filter(Q(old_value=rep) | Q(new_value=rep))))
    if node.region_id:
        path = node.region.path
        members = Subquery(
            User.objects.filter(region__path__startswith=path).annotate(key=Cast("pk", CharField())).values("key")
        )
        deals = deals.filter(
            Q(region__path__startswith=path)
            | Q(owner__region__path__startswith=path)
            | Exists(owner_rows.filter(Q(old_value__in=members) | Q(new_value__in=members)))
        )
    if node.product_line_id or node.product_id:
        lines = OpportunityLine.objects.filter(opportunity=OuterRef("pk"))
        if node.product_line_id:
            lines = lines.filter(product_line_id=node.product_line_id)
        if node.product_id:
            lines = lines.filter(product_id=node.product_id)
        deals = deals.filter(Exists(lines) | Exists(rows.filter(field="lines")))
    return deals


def _label(field: str) -> str:
    if field == "lines":
        return _("Products")
    model_field = Opportunity._meta.get_field(field)  # a field of the deal itself (`LATE_FIELDS`)
    return str(model_field.verbose_name) if isinstance(model_field, Field) else field


def late_changes(user: User, node: TargetNode, *, limit: int = LIMIT) -> LateChanges:
    """The late changes of the deals counting for `node` that `user` may see, newest first (at most `limit`),
    and how many more concern deals outside the user's scope."""
    if node.plan.metric.source not in DEAL_SOURCES:
        return LateChanges([], 0)
    deals = _deals_of(node)
    visible = Opportunity.objects.visible_to(user).filter(pk__in=deals.values("pk"))
    rows = list(
        _late_rows()
        .filter(opportunity__in=visible)
        .select_related("opportunity", "changed_by", "old_stage", "new_stage")
        .order_by("-changed_at", "-id")[: limit * len(LATE_FIELDS)]
    )
    hidden = (
        _late_rows()
        .filter(opportunity__in=deals)
        .exclude(opportunity__in=visible)
        .values("opportunity_id", "changed_at")
        .distinct()
        .count()
    )
    owner_ids = {int(v) for r in rows if r.field == "owner" for v in (r.old_value, r.new_value) if v.isdigit()}
    owners = User.objects.in_bulk(owner_ids) if owner_ids else {}
    changes: dict[tuple, LateChange] = {}
    for row in rows:
        key = (row.opportunity_id, row.changed_at, row.changed_by_id, row.reason)
        if key not in changes:
            if len(changes) == limit:
                break
            changes[key] = LateChange(
                row.opportunity_id, row.opportunity.name, row.changed_at, row.changed_by, row.reason
            )
        old, new = row.old_value, row.new_value
        if row.field == "stage":
            old = row.old_stage.display_name if row.old_stage else old
            new = row.new_stage.display_name if row.new_stage else new
        elif row.field == "owner":
            old = str(owners.get(int(old), old)) if old.isdigit() else old
            new = str(owners.get(int(new), new)) if new.isdigit() else new
        changes[key].fields.append((_label(row.field), old, new))
    return LateChanges(list(changes.values()), hidden)
