"""Writing a checked plan in one transaction: the planned regions, product lines, products, reps and customers,
then the bulk-created customers or deals with the rows `pipeline.services.opportunity_create` would leave."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.models import (
    AuditLog,
    Customer,
    Product,
    ProductLine,
    Region,
    RegionKind,
    Role,
    User,
)
from crm.services import (
    audit,
    ensure_company_currency,
    product_create,
    product_line_create,
    region_create,
    user_create,
)
from pipeline import events
from pipeline.importing.plan import BATCH, Plan, ref_pk
from pipeline.models import ImportJob, ImportKind, Opportunity, OpportunityHistory, OpportunityLine, Stage
from pipeline.services import customer_refresh_first_won


def _unique(base: str, taken: set[str], limit: int) -> str:
    base = base[:limit] or "x"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = base[: limit - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def _unique_code(name: str, taken: set[str]) -> str:
    return _unique(slugify(name, allow_unicode=True).upper(), taken, 40)


def _split_name(name: str) -> tuple[str, str]:
    if " " in name.strip():
        first, last = name.strip().rsplit(" ", 1)
        return first[:150], last[:150]
    return name.strip()[:150], ""


def _created_audit(
    obj: Model,
    action: str,
    changes: dict[str, Any],
    *,
    content_type: ContentType,
    actor: User | None,
    job: ImportJob | None,
) -> AuditLog:
    """The audit row `audit()` would write for a bulk-created record, tagged with its import job."""
    if job is not None:
        changes["import_job"] = job.pk
    return AuditLog(actor=actor, action=action, content_type=content_type, object_id=str(obj.pk), changes=changes)


@transaction.atomic
def import_apply(*, plan: Plan, actor: User | None, job: ImportJob | None = None) -> dict[str, int]:
    """Write a checked plan in one transaction; returns what was created, by kind."""
    if plan.errors:
        raise ValidationError(_("The file has %(n)s errors; nothing was imported.") % {"n": len(plan.errors)})
    actor = actor if getattr(actor, "pk", None) else None
    created: Counter[str] = Counter()

    region_codes = set(Region.objects.values_list("code", flat=True))
    # New regions come parent first (a file's Region -> State -> City subtree): a parent is an existing
    # region or one created just before.
    parents = Region.objects.in_bulk(
        [n.attrs["parent"] for n in plan.new["region"].values() if isinstance(n.attrs["parent"], int)]
    )
    for new in plan.new["region"].values():
        parent = parents.get(ref_pk(new.attrs["parent"])) if new.attrs["parent"] is not None else None
        code = _unique_code(new.name, region_codes)
        kind = RegionKind.AREA if parent is not None and parent.depth == 0 else RegionKind.TEAM
        region = region_create(name=new.name, code=code, kind=kind, parent=parent, actor=actor)
        new.pk = region.pk
        parents[region.pk] = region
        created["regions"] += 1

    line_codes = set(ProductLine.objects.values_list("code", flat=True))
    new_lines: dict[int, ProductLine] = {}
    for new in plan.new["product_line"].values():  # a sub-line after its parent line
        code = new.attrs.get("code") or _unique_code(new.name, line_codes)
        parent_pk = ref_pk(new.attrs.get("parent"))
        parent_line = (new_lines.get(parent_pk) or ProductLine.objects.get(pk=parent_pk)) if parent_pk else None
        line = product_line_create(name=new.name, code=code, parent=parent_line, actor=actor)
        new.pk = line.pk
        new_lines[line.pk] = line
        created["product_lines"] += 1
    product_codes = set(Product.objects.values_list("code", flat=True))
    lines = ProductLine.objects.in_bulk({ref_pk(n.attrs["line"]) for n in plan.new["product"].values()})
    for new in plan.new["product"].values():
        # The plan's code differs from every product's name and code (`resolving.assign_codes`).
        code = new.attrs.get("code") or _unique_code(new.name, product_codes)
        new.pk = product_create(line=lines[ref_pk(new.attrs["line"])], name=new.name, code=code, actor=actor).pk
        created["products"] += 1

    usernames = set(User.objects.values_list("username", flat=True))
    regions = Region.objects.in_bulk({ref_pk(n.attrs["region"]) for n in plan.new["user"].values()})
    for new in plan.new["user"].values():
        username = _unique(slugify(new.name, allow_unicode=True).replace("-", "_") or "rep", usernames, 150)
        first, last = _split_name(new.name)
        user = user_create(
            username=username,
            password=None,
            role=Role.REP,
            region=regions[ref_pk(new.attrs["region"])],
            first_name=first,
            last_name=last,
            actor=actor,
        )
        new.pk = user.pk
        created["users"] += 1

    customer_type = ContentType.objects.get_for_model(Customer)
    new_customers = [
        Customer(name=n.name, owner_id=ref_pk(n.attrs["owner"]), region_id=ref_pk(n.attrs["region"]))
        for n in plan.new["customer"].values()
    ]
    if plan.kind == ImportKind.CUSTOMERS:
        new_customers += [
            Customer(
                name=item["name"],
                owner_id=ref_pk(item["owner"]),
                region_id=ref_pk(item["region"]),
                industry=item["industry"],
                tier=item["tier"],
                notes=item["notes"],
                external_id=item["external_id"],
            )
            for item in plan.items
        ]
    Customer.objects.bulk_create(new_customers, batch_size=BATCH)
    for new, customer in zip(plan.new["customer"].values(), new_customers, strict=False):
        new.pk = customer.pk
    AuditLog.objects.bulk_create(
        [
            _created_audit(
                c, "customer.create", {"name": [None, c.name]}, content_type=customer_type, actor=actor, job=job
            )
            for c in new_customers
        ],
        batch_size=BATCH,
    )
    created["customers"] = len(new_customers)

    if plan.kind != ImportKind.CUSTOMERS:
        created["opportunities"] = _apply_deals(plan, actor, job)
        if created["opportunities"]:
            # Many deals at once: attainment is rebuilt from the facts (after commit), not deal by deal.
            events.import_committed.publish()
    if job is not None:
        audit(actor=actor, action="import.commit", obj=job, changes={k: [None, v] for k, v in created.items() if v})
    return {k: v for k, v in created.items() if v}


def _apply_deals(plan: Plan, actor: User | None, job: ImportJob | None) -> int:
    ensure_company_currency()
    pipeline_id = plan.pipeline_id
    assert pipeline_id is not None  # a deal import's plan names its pipeline
    now = timezone.now()
    products = Product.objects.in_bulk({ref_pk(i["product"]) for i in plan.items if i["product"] is not None})
    opportunities = []
    for item in plan.items:
        stage: Stage = item["stage"]
        at = item["created_at"] or now
        opportunities.append(
            Opportunity(
                name=item["name"],
                customer_id=ref_pk(item["customer"]),
                owner_id=ref_pk(item["owner"]),
                region_id=ref_pk(item["region"]),
                pipeline_id=pipeline_id,
                stage=stage,
                amount=item["amount"],
                currency_id=item["currency"],
                amount_company=item["amount_company"],
                expected_close_date=item["expected_close_date"],
                closed_on=item["closed_on"],
                probability=stage.probability,
                forecast_category=stage.forecast_category,
                lost_reason=item["lost_reason"],
                next_step=item["next_step"],
                external_id=item["external_id"],
                created_at=at,
                stage_entered_at=at,
            )
        )
    Opportunity.objects.bulk_create(opportunities, batch_size=BATCH)
    lines, history, audits = [], [], []
    opportunity_type = ContentType.objects.get_for_model(Opportunity)
    for item, opp in zip(plan.items, opportunities, strict=True):
        if item["product"] is not None:
            product = products[ref_pk(item["product"])]
            lines.append(
                OpportunityLine(
                    opportunity=opp,
                    product_line_id=product.line_id,
                    product=product,
                    quantity=Decimal(1),
                    amount=opp.amount,
                    amount_company=opp.amount_company,
                )
            )
        history.append(
            OpportunityHistory(
                opportunity=opp,
                field="stage",
                old_value="",
                new_value=opp.stage.name[:200],
                new_stage=opp.stage,
                changed_by=actor,
                changed_at=opp.created_at,
            )
        )
        audits.append(
            _created_audit(
                opp,
                "opportunity.create",
                {"amount": [None, str(opp.amount)]},
                content_type=opportunity_type,
                actor=actor,
                job=job,
            )
        )
    OpportunityLine.objects.bulk_create(lines, batch_size=BATCH)
    OpportunityHistory.objects.bulk_create(history, batch_size=BATCH)
    AuditLog.objects.bulk_create(audits, batch_size=BATCH)
    won_customers = sorted({o.customer_id for o in opportunities if o.customer_id and o.stage.is_won})
    for start in range(0, len(won_customers), BATCH):
        customer_refresh_first_won(won_customers[start : start + BATCH])
    return len(opportunities)
