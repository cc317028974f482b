"""Target screens for the people who carry the targets: "my targets", bottom-up commitments (自下而上),
action plans (行动计划), adjustments (季度目标动态调整) with their approvals, and plan versions.

Thin views: forms validate, services write, selectors read. Targets, actions, adjustments and plans
are fetched from the querysets of what the user may see, so anything else is a 404.
"""

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.forms import add_service_errors
from crm.models import User
from crm.scopes import freshness_keys
from salesmgmt.charts import chart_html
from salesmgmt.errors import ConflictError
from salesmgmt.freshness import cached_page
from salesmgmt.lib import attainment as attainment_math
from salesmgmt.views import error_text, is_partial, page_query, safe_next_url, vary_on_htmx
from targets import access, services
from targets.attainment import late_changes as selectors_late_changes
from targets.attainment import selectors as selectors_attainment
from targets.forms.mine import (
    ActionPlanForm,
    ActionStatusForm,
    AdjustmentForm,
    CommitForm,
    CompareForm,
    DecisionForm,
    MyTargetsFilterForm,
    ReconcileForm,
)
from targets.models import (
    ActionStatus,
    AdjustmentKind,
    AdjustmentStatus,
    PlanStatus,
    SplitMethod,
)
from targets.planning import selectors

TARGETS_PAGE_SIZE = 50
DIFF_PAGE_SIZE = 50


def _days_left(deadline, today):
    return None if deadline is None else (deadline - today).days


def _late(days_left):
    return -days_left if days_left is not None and days_left < 0 else 0


def _decorate(nodes, user, today) -> None:
    """What each row of "my targets" may offer: days left, commitment, commitments panel, adjustment."""
    manager = user.is_manager_or_above
    for node in nodes:
        plan = node.plan
        node.days_left = _days_left(node.deadline, today)
        node.days_late = _late(node.days_left)
        node.ended = node.period_end < today
        # The owner of the parent handed this target down and asks what its owner commits to.
        node.can_commit = (
            plan.status == PlanStatus.DRAFT
            and node.owner_id == user.pk
            and node.parent_id is not None
            and node.parent_owner_id not in (None, user.pk)
        )
        node.has_parts = bool(node.split_dimension)
        node.can_adjust = manager and plan.status == PlanStatus.APPROVED and node.has_parts
        for action in node.actions.all():
            action.overdue = action.status in selectors.OPEN_ACTION_STATUSES and action.due_date < today


# --- my targets -----------------------------------------------------------------------------------


@login_required
@require_GET
@cached_page(freshness_keys)
def my_targets(request):
    user = request.user
    form = MyTargetsFilterForm(request.GET or None, user=user)
    if form.is_bound:
        form.is_valid()  # an invalid filter is shown and left out; the rest applies
    data = getattr(form, "cleaned_data", {})
    owners = form.owners()
    qs = selectors.owned_targets(user, owners=owners, plan=data.get("plan"), period_kind=data.get("kind") or "")
    page = Paginator(qs, TARGETS_PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    _decorate(page.object_list, user, today)
    selectors_attainment.decorate(page.object_list)
    context = {
        "form": form,
        "page": page,
        "nodes": page.object_list,
        "showing_others": owners is not None,
        "query": page_query(request),
        "today": today,
    }
    if is_partial(request, "my-targets-results"):
        return vary_on_htmx(render(request, "targets/mine/_results.html", context))
    actions = list(selectors.open_actions_of(user))
    for action in actions:
        action.overdue = action.due_date < today
    context["my_actions"] = actions
    context["to_decide"] = len(selectors.adjustments_to_decide(user)) if user.is_manager_or_above else 0
    return vary_on_htmx(render(request, "targets/mine/my_targets.html", context))


# --- a target's attainment over time ---------------------------------------------------------------


def _trend_chart(history) -> str:
    """Attainment % and time progress % per snapshot date (and today's, read from the newest): one trace per
    series, as a chart div (`salesmgmt.charts`) that expects plotly.js on the page."""
    from plotly import graph_objects as go

    days = [att.as_of.isoformat() for att in history]
    figure = go.Figure(
        [
            go.Scatter(
                x=days,
                y=[None if att.attainment_pct is None else float(att.attainment_pct) for att in history],
                name=_("Attainment %"),
                mode="lines+markers",
                line_shape="hv",  # a snapshot holds until the next one (written when the figures change)
            ),
            go.Scatter(
                x=days,
                y=[float(att.time_progress_pct) for att in history],
                name=_("Time progress %"),
                mode="lines",
                line={"dash": "dot"},
            ),
        ]
    )
    figure.update_layout(
        template="plotly_white",
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        height=320,
        yaxis={"ticksuffix": "%", "rangemode": "tozero"},
        xaxis={"type": "date"},
        legend={"orientation": "h", "y": -0.2},
    )
    return chart_html(figure)


@login_required
@require_GET
def node_attainment(request, pk):
    """One target's attainment over time: a chart of attainment and time progress per snapshot, with the
    same numbers in a table (newest first)."""
    node = access.visible_node(request.user, pk)
    history = selectors_attainment.history(node)
    selectors_attainment.decorate([node])  # the latest figures and their change over the week
    points = list(history)
    if node.attainment is not None and history and node.attainment.as_of > history[-1].as_of:
        points.append(node.attainment)  # the newest figures hold until today: the lines reach today
    context = {
        "node": node,
        "history": list(reversed(history)),
        "chart": _trend_chart(points) if history else "",
        "late_changes": selectors_late_changes.late_changes(request.user, node),
    }
    return render(request, "targets/mine/attainment.html", context)


# --- bottom-up commitments ------------------------------------------------------------------------


@login_required
def node_commit(request, pk):
    """The owner of a target says what they commit to (the plan is still a draft)."""
    node = access.visible_node(request.user, pk)
    form = CommitForm(request.POST or None, initial={"amount": node.committed_amount})
    if request.method == "POST" and form.is_valid():
        try:
            services.node_commit(node=node, amount=form.cleaned_data["amount"], actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("You committed to %(amount)s for %(target)s.")
                % {"amount": form.cleaned_data["amount"], "target": node.label},
            )
            return redirect(safe_next_url(request, reverse("targets:mine")))
    context = {"node": node, "form": form, "next": safe_next_url(request, reverse("targets:mine"))}
    return render(request, "targets/mine/commit.html", context)


def _render_commitments(request, node, *, form=None, status=200):
    gap = selectors.commitment_gap(node)
    preview, preview_error = None, None
    can_reconcile = (
        node.plan.status == PlanStatus.DRAFT and bool(node.split_dimension) and request.user.is_manager_or_above
    )
    if can_reconcile:
        try:
            preview = services.target_split_preview(
                node=node, dimension=node.split_dimension, method=SplitMethod.BOTTOM_UP, actor=request.user
            )
        except ValidationError as exc:
            can_reconcile, preview_error = False, error_text(exc)
    after = {c.node_id: c.amount for c in preview.children} if preview else {}
    for row in gap["rows"]:
        row["after"] = after.get(row["node"].pk)
    context = {
        "node": node,
        "gap": gap,
        "preview": preview,
        "preview_error": preview_error,
        "can_reconcile": can_reconcile,
        "form": form or ReconcileForm(initial={"version": node.version}),
    }
    return render(request, "targets/mine/commitments.html", context, status=status)


@login_required
@require_GET
def node_commitments(request, pk):
    """Top-down vs bottom-up for the parts of one target: the gap per part and in total."""
    return _render_commitments(request, access.visible_node(request.user, pk))


@login_required
@require_POST
def node_reconcile(request, pk):
    """Accept the commitments: the parts get what their owners committed, scaled to the amount handed down."""
    node = access.visible_node(request.user, pk)
    form = ReconcileForm(request.POST)
    if not form.is_valid():
        return _render_commitments(request, node, form=form, status=400)
    try:
        result = services.target_split(
            node=node,
            dimension=node.split_dimension,
            method=SplitMethod.BOTTOM_UP,
            expected_version=form.cleaned_data["version"],
            actor=request.user,
        )
    except ConflictError as exc:
        form.add_error(None, str(exc))
        return _render_commitments(request, access.visible_node(request.user, pk), form=form, status=409)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _render_commitments(request, node, form=form, status=400)
    messages.success(request, _("The parts of %(target)s now follow the commitments.") % {"target": node.label})
    for warning in result.warnings:
        messages.info(request, warning)
    return redirect("targets:node_commitments", pk=node.pk)


# --- action plans ---------------------------------------------------------------------------------


def _render_actions(request, node, form, status=200):
    today = timezone.localdate()
    node.days_left = _days_left(node.deadline, today)
    node.days_late = _late(node.days_left)
    node.ended = node.period_end < today
    actions = list(node.actions.select_related("owner").order_by("due_date", "id"))
    for action in actions:
        action.overdue = action.status in selectors.OPEN_ACTION_STATUSES and action.due_date < today
    context = {
        "node": node,
        "actions": actions,
        "form": form,
        "statuses": ActionStatus.choices,
        "today": today,
    }
    return render(request, "targets/mine/actions.html", context, status=status)


@login_required
def node_actions(request, pk):
    """The action plans under one target, and a form to add one."""
    node = access.visible_node(request.user, pk)
    form = ActionPlanForm(request.POST or None, user=request.user, initial={"due_date": node.deadline})
    if request.method == "POST":
        if form.is_valid():
            try:
                services.action_plan_create(node=node, **form.cleaned_data, actor=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Action plan added."))
                return redirect("targets:node_actions", pk=node.pk)
        return _render_actions(request, node, form, status=400)
    return _render_actions(request, node, form)


def _visible_action(request, pk):
    qs = selectors.actions_visible_to(request.user).select_related(
        "owner", "node", "node__plan", "node__plan__metric", *(f"node__{f}" for f in selectors.TREE_RELATED)
    )
    return get_object_or_404(qs, pk=pk)


@login_required
def action_edit(request, pk):
    action = _visible_action(request, pk)
    initial = {f: getattr(action, f) for f in ("activity", "owner", "due_date", "resources", "status")}
    form = ActionPlanForm(request.POST or None, user=request.user, editing=True, initial=initial)
    # The current owner stays a valid choice even when outside the editor's people.
    form.fields["owner"].queryset = form.fields["owner"].queryset | User.objects.filter(pk=action.owner_id)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.action_plan_update(action_plan=action, data=form.cleaned_data, actor=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Action plan saved."))
                return redirect("targets:node_actions", pk=action.node_id)
    return render(request, "targets/mine/action_form.html", {"action": action, "form": form}, status=status)


@login_required
@require_POST
def action_status(request, pk):
    """One-click status change (started, done, cancelled) from a list."""
    action = _visible_action(request, pk)
    form = ActionStatusForm(request.POST)
    default = reverse("targets:node_actions", args=[action.node_id])
    if not form.is_valid():
        messages.error(request, _("Choose a valid status."))
        return redirect(safe_next_url(request, default))
    try:
        services.action_plan_update(
            action_plan=action, data={"status": form.cleaned_data["status"]}, actor=request.user
        )
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(
            request,
            _("“%(action)s” is now %(status)s.")
            % {"action": action.activity, "status": ActionStatus(form.cleaned_data["status"]).label.lower()},
        )
    return redirect(safe_next_url(request, default))


# --- adjustments ----------------------------------------------------------------------------------


@login_required
def adjustment_propose(request, pk):
    """Propose new amounts for the parts of an approved target: a reallocation or a change of total."""
    node = access.visible_node(request.user, pk)
    parts = list(
        selectors.nodes_visible_to(request.user)
        .filter(parent=node)
        .select_related(*selectors.TREE_RELATED)
        .order_by("path")
    )
    form = AdjustmentForm(request.POST or None, parts=parts)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                adjustment = services.adjustment_propose(
                    plan=node.plan,
                    kind=form.cleaned_data["kind"],
                    reason=form.cleaned_data["reason"],
                    changes=form.changes(),
                    actor=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Adjustment proposed; it takes effect once approved."))
                return redirect("targets:adjustment_detail", pk=adjustment.pk)
    context = {
        "node": node,
        "form": form,
        "parts_total": sum((p.amount for p in parts), Decimal(0)),
        "approved": node.plan.status == PlanStatus.APPROVED,
        "pending": selectors.adjustments_visible_to(request.user).filter(
            plan=node.plan, status=AdjustmentStatus.PENDING
        ),
    }
    return render(request, "targets/mine/adjust.html", context, status=status)


@login_required
@require_GET
def adjustment_inbox(request):
    """Pending adjustments the user may approve, their own proposals, and recent decisions."""
    visible = selectors.adjustments_visible_to(request.user)
    context = {
        "to_decide": selectors.adjustments_with_net(selectors.adjustments_to_decide(request.user), request.user),
        "mine": selectors.adjustments_with_net(
            visible.filter(proposer=request.user, status=AdjustmentStatus.PENDING), request.user
        ),
        "decided": selectors.adjustments_with_net(
            visible.exclude(status=AdjustmentStatus.PENDING).order_by("-decided_at")[:20], request.user
        ),
    }
    return render(request, "targets/mine/inbox.html", context)


def _visible_adjustment(request, pk):
    return get_object_or_404(selectors.adjustments_visible_to(request.user), pk=pk)


def _render_adjustment(request, adjustment, *, form=None, status=200):
    rows = selectors.adjustment_rows(adjustment, user=request.user)
    context = {
        "adjustment": adjustment,
        "rows": rows,
        "hidden": len(adjustment.changes) - len(rows),
        # Over the rows shown: with hidden rows, the plan total's change would give them away.
        "net": sum((r["delta"] for r in rows), Decimal(0)),
        "can_approve": bool(selectors.adjustments_to_decide(request.user, only=adjustment.pk)),
        "is_proposer": adjustment.proposer_id == request.user.pk,
        "needs_director": adjustment.kind == AdjustmentKind.TOTAL_CHANGE,
        "people": services.people_change_summary(adjustment),
        "form": form or DecisionForm(),
    }
    return render(request, "targets/mine/adjustment_detail.html", context, status=status)


@login_required
@require_GET
def adjustment_detail(request, pk):
    return _render_adjustment(request, _visible_adjustment(request, pk))


@login_required
@require_POST
def adjustment_approve(request, pk):
    adjustment = _visible_adjustment(request, pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        adjustment = services.adjustment_approve(
            adjustment=adjustment, note=form.cleaned_data.get("note", ""), actor=request.user
        )
    except ConflictError as exc:
        form.add_error(None, str(exc))
        return _render_adjustment(request, adjustment, form=form, status=409)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _render_adjustment(request, adjustment, form=form, status=400)
    messages.success(
        request, _("Adjustment approved: version %(version)d is in force.") % {"version": adjustment.resulting_version}
    )
    url = reverse("targets:plan_compare", args=[adjustment.plan_id])
    return redirect(f"{url}?a={adjustment.based_on_version}&b={adjustment.resulting_version}")


@login_required
@require_POST
def adjustment_reject(request, pk):
    """Reject (or, by its proposer, withdraw) a pending adjustment; a note is required."""
    adjustment = _visible_adjustment(request, pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        services.adjustment_reject(adjustment=adjustment, note=form.cleaned_data.get("note", ""), actor=request.user)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _render_adjustment(request, adjustment, form=form, status=400)
    messages.success(request, _("Adjustment rejected; the plan does not change."))
    return redirect("targets:adjustment_inbox")


# --- versions -------------------------------------------------------------------------------------


@login_required
@require_GET
def plan_versions(request, pk):
    """Every version of a plan (number, date, who, reason), with links to compare them."""
    plan = access.visible_plan(request.user, pk)
    versions = selectors.plan_versions(plan)
    previous = None
    for version in versions:
        version["previous"] = previous
        previous = version["number"]
    context = {
        "plan": plan,
        "versions": list(reversed(versions)),
        # Adjustments start from the top target the user sees (the root only for whoever sees it).
        "root": (
            selectors.top_visible_nodes(request.user).filter(plan=plan).order_by("path").first()
            if plan.status == PlanStatus.APPROVED
            else None
        ),
        "pending": selectors.adjustments_visible_to(request.user).filter(plan=plan, status=AdjustmentStatus.PENDING),
    }
    return render(request, "targets/mine/versions.html", context)


@login_required
@require_GET
def plan_compare(request, pk):
    """The targets whose amount differs between two versions: old, new, Δ and Δ%, paged."""
    plan = access.visible_plan(request.user, pk)
    versions = selectors.plan_versions(plan)
    if not versions:
        messages.info(request, _("The plan has no approved version yet."))
        return redirect("targets:plan_versions", pk=plan.pk)
    data = request.GET.copy()
    data.setdefault("a", "1")
    data.setdefault("b", str(plan.current_version))
    form = CompareForm(data, versions=versions)
    page, rows, status = None, [], 200
    if form.is_valid():
        a, b = form.cleaned_data["a"], form.cleaned_data["b"]
        qs = selectors.version_changes(plan, a, b, user=request.user)
        page = Paginator(qs, DIFF_PAGE_SIZE).get_page(request.GET.get("page"))
        for node in page.object_list:
            delta = node.new_amount - node.old_amount
            pct = attainment_math.percent(delta, node.old_amount)  # the one rule for a shown percentage
            rows.append({"node": node, "old": node.old_amount, "new": node.new_amount, "delta": delta, "pct": pct})
    else:
        status = 400
    context = {
        "plan": plan,
        "form": form,
        "page": page,
        "rows": rows,
        "versions": versions,
        "query": page_query(request),
    }
    return render(request, "targets/mine/compare.html", context, status=status)
