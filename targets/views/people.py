"""People changes of a plan (a rep leaves, moves or joins mid-year): propose a transfer of a rep's remaining target
or a new hire's target (both wait in the adjustments list for someone above), and move a rep's deals by date.

Thin views: the forms validate, the services (`targets.services`, `pipeline.services`) decide and write."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from crm.forms import add_service_errors
from pipeline.models import Opportunity
from pipeline.services import deals_reassign, deals_to_reassign
from targets import access, services
from targets.forms.people import DealsReassignForm, NewHireForm, TransferForm
from targets.models import AdjustmentKind, AdjustmentStatus, PlanStatus
from targets.planning import selectors

ACTIONS = ("transfer", "new_hire", "deals")


def _deals_form(request, data=None) -> DealsReassignForm:
    """The deal move form. Posted: validated against the deals the user sees (the service narrows them). Shown:
    with `?deals-from_owner=&deals-effective=`, the deals of that rep that would move, to pick some of them."""
    user = request.user
    if data is not None:
        return DealsReassignForm(data, user=user, deals=Opportunity.objects.visible_to(user), prefix="deals")
    form = DealsReassignForm(None, user=user, deals=Opportunity.objects.none(), prefix="deals")
    form.listed = False  # type: ignore[attr-defined]  # for the template
    owner = request.GET.get("deals-from_owner", "")
    try:
        day = form.fields["effective"].to_python(request.GET.get("deals-effective") or None)
    except ValidationError:
        day = None
    people = form.fields["from_owner"].queryset
    if owner.isdigit() and day and people.filter(pk=owner).exists():
        deals = deals_to_reassign(from_owner=people.get(pk=owner), effective=day, actor=user)
        form.fields["deals"].queryset = deals.select_related("stage", "customer").order_by("expected_close_date", "pk")
        form.initial.update({"from_owner": int(owner), "effective": day})
        form.listed = True  # type: ignore[attr-defined]
    return form


@login_required
def people_changes(request, pk):
    """The plan's people changes: the forms, and the people changes waiting for approval."""
    if not request.user.is_manager_or_above:
        raise PermissionDenied(_("People changes are for managers, directors and admins."))
    plan = access.visible_plan(request.user, pk)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    transfer = TransferForm(request.POST if action == "transfer" else None, user=request.user, plan=plan, prefix="t")
    hire = NewHireForm(request.POST if action == "new_hire" else None, user=request.user, plan=plan, prefix="h")
    deals = _deals_form(request, request.POST if action == "deals" else None)
    status = 200
    if action in ACTIONS:
        status = 400
        form = {"transfer": transfer, "new_hire": hire, "deals": deals}[action]
        if form.is_valid():
            data = form.cleaned_data
            try:
                if action == "transfer":
                    adjustment = services.transfer_propose(
                        plan=plan,
                        from_rep=data["from_rep"],
                        to_rep=data["to_rep"],
                        effective=data["effective"],
                        amount=data.get("amount"),
                        reason=data["reason"],
                        actor=request.user,
                    )
                elif action == "new_hire":
                    ramp = services.parse_ramp(data["ramp"]) if data["method"] == NewHireForm.RAMPED else None
                    adjustment = services.new_hire_propose(
                        plan=plan,
                        hire=data["hire"],
                        source=data["source"],
                        start=data["start"],
                        full_amount=data["full_amount"],
                        ramp=ramp,
                        reason=data["reason"],
                        actor=request.user,
                    )
                else:
                    chosen = [d.pk for d in data["deals"]] or None
                    moved = deals_reassign(
                        from_owner=data["from_owner"],
                        to_owner=data["to_owner"],
                        effective=data["effective"],
                        reason=data["reason"],
                        actor=request.user,
                        deal_ids=chosen,
                    )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if action == "deals":
                    messages.success(
                        request,
                        _("%(count)d deals moved; attainment is recomputed where they counted and count now.")
                        % {"count": moved},
                    )
                    return redirect("targets:people_changes", pk=plan.pk)
                messages.success(request, _("Proposed; it takes effect once someone above you approves it."))
                return redirect("targets:adjustment_detail", pk=adjustment.pk)
    pending = selectors.adjustments_with_net(
        selectors.adjustments_visible_to(request.user).filter(
            plan=plan,
            status=AdjustmentStatus.PENDING,
            kind__in=[AdjustmentKind.TRANSFER, AdjustmentKind.NEW_HIRE],
        ),
        request.user,
    )
    context = {
        "plan": plan,
        "approved": plan.status == PlanStatus.APPROVED,
        "transfer": transfer,
        "hire": hire,
        "deals": deals,
        "action": action,
        "pending": [(a, services.people_change_summary(a)) for a in pending],
    }
    return render(request, "targets/people/changes.html", context, status=status)
