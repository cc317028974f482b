"""Plan screens: the plan list with a new-plan form, the plan editor (status, the tree loaded level by
level, inline edits, incomplete leaves), the split dialog with its live preview, and the grid.

Thin views: forms validate, services write, selectors read. Plans and nodes are fetched through
the user's scope (`targets.access`), so anything outside it is a 404. htmx
requests get fragments; every screen also works as plain pages.
"""

import json
from contextlib import suppress
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh, reswap, retarget, trigger_client_event

from crm.forms import add_service_errors
from crm.models import CompanySettings, User
from salesmgmt.errors import ConflictError
from salesmgmt.lib import numbers
from salesmgmt.views import error_text, is_partial, vary_on_htmx
from targets import access, services
from targets.attainment import selectors as selectors_attainment
from targets.forms.editor import SCOPE_LEAVES, CellForm, NodeEditForm, PlanCreateForm, SplitForm
from targets.models import Dimension, PlanStatus, SplitMethod, WeightBasis
from targets.planning import selectors
from targets.planning.approval_chain import can_approve, plan_approvers, plans_awaiting_approval
from targets.planning.rules import may_decide_plan

PLAN_PAGE = 25
LEVEL_PAGE = 100
INCOMPLETE_PAGE = 50
GRID_PAGE = 100
# Client event, after the swap (closing the dialog first would detach the form htmx resolves targets from):
# closes the dialog and says what changed.
TARGET_CHANGED = "targetChanged"
PLAN_ACTIONS = ("submit", "return", "approve")


def manager_required(view):
    """The plan screens are for managers and up (reps have "my targets")."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_manager_or_above:
            raise PermissionDenied(_("Target plans are for managers, directors and admins."))
        return view(request, *args, **kwargs)

    return wrapper


def _decorate(nodes, plan=None):
    """The gap (bottom-up minus top-down) of each node whose owner committed; the latest attainment of an
    approved plan's nodes (a draft is not measured: no query)."""
    nodes = list(nodes)
    for node in nodes:
        node.gap = selectors.node_gap(node)
    if plan is not None and not plan.is_draft:
        selectors_attainment.decorate(nodes)  # the latest actual, attainment, time progress, pace gap (one query)
        selectors_attainment.decorate_original(nodes)  # against the original plan too (one query)
    return nodes


def _common(request, plan) -> dict:
    user = request.user
    company = CompanySettings.load()
    return {
        "plan": plan,
        "can_edit": plan.is_draft and user.is_manager_or_above,
        "currency": company.currency,
        "company": company,
    }


# --- plan list and a new plan ---------------------------------------------------------------------


def _render_list(request, form):
    """Every plan the user sees, or (`?awaiting=me`) those waiting for his approval."""
    plans = selectors.plan_list(request.user)
    awaiting = plans_awaiting_approval(request.user, plans)
    only_awaiting = request.GET.get("awaiting") == "me"
    page = Paginator(awaiting if only_awaiting else plans, PLAN_PAGE).get_page(request.GET.get("page"))
    overview = selectors.plan_overview(request.user, page.object_list)
    context = {
        "page": page,
        "rows": [(plan, overview[plan.pk]) for plan in page.object_list],
        "form": form,
        "currency": CompanySettings.load().currency,
        "only_awaiting": only_awaiting,
        "awaiting_count": page.paginator.count if only_awaiting else awaiting.count(),
        "query": "awaiting=me" if only_awaiting else "",
    }
    return render(request, "targets/editor/plan_list.html", context)


@manager_required
@require_GET
def plan_list(request):
    return _render_list(request, PlanCreateForm(user=request.user))


@manager_required
def plan_create(request):
    form = PlanCreateForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = services.plan_create(
                metric=data["metric"],
                period_key=data["period_key"],
                total=data["total"],
                owner=data["owner"],
                region=data["region"],
                name=data["name"],
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Plan “%(plan)s” created. Split it to hand it down.") % {"plan": plan})
            return redirect("targets:plan_detail", pk=plan.pk)
    return _render_list(request, form)


# --- the editor -----------------------------------------------------------------------------------


def _level(request, plan, parent, page_number=None) -> dict:
    """One level of the tree: a page of nodes and, on the first page, the level's totals."""
    level = selectors.plan_level(plan, parent, request.user)  # the user's scope is read once for both
    nodes = selectors.tree_rows(level)
    summary = selectors.level_summary(level, parent)
    paginator = Paginator(nodes, LEVEL_PAGE)
    paginator.count = summary["count"]  # counted by the summary already
    page = paginator.get_page(page_number)
    return {
        "parent": parent,
        "nodes": _decorate(page.object_list, plan),
        "level_page": page,
        "summary": summary if page.number == 1 else None,
    }


@manager_required
@require_GET
def plan_detail(request, pk):
    plan = access.visible_plan(request.user, pk)
    context = _common(request, plan)
    if request.htmx and request.GET.get("level"):  # "show more" of the first level
        context.update(_level(request, plan, None, request.GET.get("page")))
        return vary_on_htmx(render(request, "targets/editor/_level.html", context))
    # Approving and sending back: someone above the submitter; submitting: the owner or those who plan for it.
    if plan.status == PlanStatus.SUBMITTED:
        context["may_decide"] = can_approve(request.user, plan)
        context["approvers"] = plan_approvers(plan)
    elif plan.is_draft:
        planner = request.user.pk in (plan.owner_id, plan.created_by_id)
        context["may_submit"] = planner or may_decide_plan(request.user, plan)
    incomplete = selectors.visible_incomplete_leaves(plan, request.user)
    if request.GET.get("show") == "incomplete":
        page = Paginator(incomplete, INCOMPLETE_PAGE).get_page(request.GET.get("page"))
        nodes = _decorate(page.object_list, plan)
        for node in nodes:
            node.incomplete, node.child_count = True, 0
        context.update(show="incomplete", incomplete_page=page, incomplete_nodes=nodes)
        context["incomplete_count"] = page.paginator.count
    else:
        level = _level(request, plan, None, request.GET.get("page"))
        # A single top node (the root, or a manager's area) opens with its first level loaded.
        if len(level["nodes"]) == 1 and level["nodes"][0].child_count:
            top = level["nodes"][0]
            top.level = _level(request, plan, top)
        context["level"] = level
        context["incomplete_count"] = incomplete.count()
    return vary_on_htmx(render(request, "targets/editor/plan_detail.html", context))


@manager_required
@require_POST
def plan_action(request, pk, action):
    plan = access.visible_plan(request.user, pk)
    if action not in PLAN_ACTIONS:
        raise Http404(_("No such action."))
    url = reverse("targets:plan_detail", args=[plan.pk])
    try:
        if action == "submit":
            services.plan_submit(plan=plan, actor=request.user)
            message = _("Plan submitted for approval.")
        elif action == "return":
            services.plan_return(plan=plan, reason=request.POST.get("reason", ""), actor=request.user)
            message = _("Plan sent back to draft.")
        else:
            services.plan_approve(plan=plan, actor=request.user)
            message = _("Plan approved: version 1 is in force.")
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        codes = set() if hasattr(exc, "error_dict") else {e.code for e in exc.error_list}
        if "incomplete" in codes:
            url += "?show=incomplete"  # the list of what to fix, with inline edits
        return redirect(url)
    messages.success(request, message)
    return redirect(url)


@manager_required
@require_GET
def node_children(request, pk, node_pk):
    """The children of a node, a page at a time (the tree expands lazily)."""
    plan = access.visible_plan(request.user, pk)
    node = access.plan_node(request.user, plan, node_pk)
    context = {**_common(request, plan), **_level(request, plan, node, request.GET.get("page"))}
    return vary_on_htmx(render(request, "targets/editor/_level.html", context))


def _render_row(request, plan, node, *, form=None, conflict=False, flash=""):
    """The node's row (or its edit form): a fragment for htmx, a small page without JavaScript."""
    context = {**_common(request, plan), "node": _decorate([node], plan)[0], "form": form, "conflict": conflict}
    context["flash"] = flash
    template = "targets/editor/_node_row.html" if request.htmx else "targets/editor/node_edit_page.html"
    return render(request, template, context)


@manager_required
def node_edit(request, pk, node_pk):
    """Inline edit of a node's owner and deadline (and amount in draft), with the version for conflicts."""
    plan = access.visible_plan(request.user, pk)
    node = access.plan_node(request.user, plan, node_pk)
    if request.method == "GET":
        if request.GET.get("cancel"):
            return _render_row(request, plan, node)
        return _render_row(request, plan, node, form=NodeEditForm(user=request.user, node=node))
    form = NodeEditForm(request.POST, user=request.user, node=node)
    if not form.is_valid():
        return _render_row(request, plan, node, form=form)
    data = form.cleaned_data
    old_amount = node.amount
    try:
        services.node_update(
            node=node,
            amount=data.get("amount"),
            owner=data.get("owner"),
            deadline=data.get("deadline"),
            expected_version=data["version"],
            rebalance=bool(data.get("rebalance")),
            levels=form.levels,
            actor=request.user,
        )
    except ConflictError as exc:
        # Keep what the user typed; the form now carries the current version, so saving again
        # is a deliberate overwrite after seeing the other change.
        fresh = access.plan_node(request.user, plan, node_pk)
        posted = request.POST.copy()
        posted["version"] = fresh.version
        form = NodeEditForm(posted, user=request.user, node=fresh)
        form.is_valid()
        form.add_error(None, exc)
        return _render_row(request, plan, fresh, form=form, conflict=True)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _render_row(request, plan, node, form=form)
    message = _("“%(target)s” saved.") % {"target": node.label}
    if not request.htmx:
        messages.success(request, message)
        return redirect("targets:plan_detail", pk=plan.pk)
    amount_changed = data.get("amount") is not None and data["amount"] != old_amount
    if amount_changed and node.parent_id is None:
        messages.success(request, message)
        return HttpResponseClientRefresh()  # the plan total in the header changed too
    if amount_changed:
        # The siblings absorbed the difference: the whole level is redrawn.
        # A parent the user cannot see (his top target) is no 404 after a save: the page is reloaded instead.
        parent = selectors.tree_node(plan, node.parent_id, request.user) if node.parent_id else None
        if parent is None:
            messages.success(request, message)
            return HttpResponseClientRefresh()
        context = {**_common(request, plan), **_level(request, plan, parent)}
        response = render(request, "targets/editor/_level.html", context)
        response = reswap(retarget(response, f"#children-{parent.pk}"), "innerHTML")
        return trigger_client_event(response, TARGET_CHANGED, {"message": message}, after="swap")
    fresh = access.plan_node(request.user, plan, node_pk)
    return trigger_client_event(
        _render_row(request, plan, fresh, flash=message), TARGET_CHANGED, {"message": message}, after="swap"
    )


# --- the split dialog -----------------------------------------------------------------------------


class _SplitState:
    """What the split dialog shows: the form, the parts to type, the preview or its errors."""

    def __init__(self, request, plan, node, data):
        self.request, self.plan, self.node = request, plan, node
        self.user = request.user
        self.leaves = selectors.leaves_below(node) if node.child_count else None
        self.form = SplitForm(data, node=node, has_leaves_below=bool(node.child_count))
        self.parts = []  # [(key, label, typed value)]
        self.preview = None
        self.leaves_preview = None  # every leaf below: the parts of a page of leaves
        self.leaf_page = _page_number(data.get("leaf_page") if data else None)
        self.ready = False  # the choices are valid: a split may be committed
        self.sample = None
        self.leaf_count = None
        self.remainder = None
        self.kwargs = {}
        if self.form.is_bound and self.form.is_valid():
            self._compute(data)

    @property
    def for_leaves(self) -> bool:
        return self.form.is_bound and self.form.is_valid() and self.form.cleaned_data.get("scope") == SCOPE_LEAVES

    def _compute(self, data):
        form, clean = self.form, self.form.cleaned_data
        subject = self.node
        if self.for_leaves:
            self.sample = self.leaves.first()
            self.leaf_count = self.leaves.count()
            subject = self.sample
        self.kwargs = {
            "dimension": clean["dimension"],
            "method": clean["method"],
            "basis": clean["basis"],
            "tiers": clean["tiers"] or None,
        }
        try:
            if form.typed:
                members = services.target_split_preview(
                    node=subject, dimension=clean["dimension"], method=SplitMethod.EQUAL, actor=self.user
                ).children
                typed = form.parts(data, [m.key for m in members])
                self.parts = [(m.key, m.label, typed.get(m.key, "")) for m in members]
                self.kwargs["amounts" if form.typed == "amount" else "weights"] = typed
                if form.typed == "amount":
                    self.remainder = services.amount_left(subject.amount, typed.values())
            if self.for_leaves:
                self.ready = True
                if data.get("action") != "commit":  # the split computes its own; a refused one previews then
                    self.preview_leaves()
            else:
                self.preview = services.target_split_preview(node=subject, actor=self.user, **self.kwargs)
                self.ready = True
        except ValidationError as exc:
            add_service_errors(form, exc)

    def preview_leaves(self):
        """Every part of the leaves of one page (each leaf with all its parts and their sources)."""
        kwargs = {k: v for k, v in self.kwargs.items() if k != "amounts"}
        self.leaves_preview = services.target_split_leaves_preview(
            node=self.node,
            offset=(self.leaf_page - 1) * services.LEAF_PREVIEW_PAGE,
            limit=services.LEAF_PREVIEW_PAGE,
            actor=self.user,
            **kwargs,
        )
        self.leaf_count = self.leaves_preview.leaf_count

    def context(self) -> dict:
        clean = self.form.cleaned_data if self.form.is_bound and self.form.is_valid() else {}
        method = clean.get("method")
        return {
            **_common(self.request, self.plan),
            "node": self.node,
            "form": self.form,
            "parts": self.parts,
            "typed": self.form.typed,
            "preview": self.preview,
            "preview_children": _preview_rows(self.preview) if self.preview else [],
            "preview_sources": bool(self.preview and any(c.source for c in self.preview.children)),
            **_leaves_preview_context(self.leaves_preview),
            "preview_total": self.preview.total if self.preview else None,
            "remainder_over": -self.remainder if self.remainder is not None else None,
            "for_leaves": self.for_leaves,
            "sample": self.sample,
            "leaf_count": self.leaf_count,
            "remainder": self.remainder,
            "bottom_up": method == SplitMethod.BOTTOM_UP,
            "shows_basis": method == SplitMethod.WEIGHTS,
            "shows_tiers": method == SplitMethod.WEIGHTS and clean.get("basis") == WeightBasis.CUSTOMERS,
        }


def _preview_rows(preview):
    """Owner names for the proposed children in one query (the preview carries ids)."""
    ids = {c.owner_id for c in preview.children if c.owner_id}
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=ids)}
    return [(c, names.get(c.owner_id)) for c in preview.children]


def _page_number(value) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def _leaves_preview_context(preview) -> dict:
    """A page of a bulk split's preview: each leaf with every part (owner names in one query), the page's
    place among the leaves, and how many of all the parts each source weighs."""
    if preview is None:
        return {"leaves_preview": None}
    children = [c for row in preview.leaves for c in row.children]
    ids = {c.owner_id for c in children if c.owner_id}
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=ids)}
    return {
        "leaves_preview": preview,
        "leaf_rows": [
            {
                "leaf": row.leaf,
                "total": row.total,
                "children": [(c, names.get(c.owner_id)) for c in row.children],
            }
            for row in preview.leaves
        ],
        "leaf_sources": any(c.source for c in children),
        "leaf_first": preview.first_shown,
        "leaf_last": preview.last_shown,
        "leaf_page_previous": preview.previous_page,
        "leaf_page_next": preview.next_page,
    }


# The dialog opens on the usual next step: regions, then reps, then months.
DEFAULT_DIMENSIONS = (Dimension.REGION, Dimension.REP, Dimension.MONTH, Dimension.QUARTER, Dimension.WEEK)


def _default_split_data(node) -> dict:
    """The dialog opens on a preview: the current dimension, else the usual next one, equal parts."""
    choices = [value for value, _label in SplitForm(node=node, has_leaves_below=False).fields["dimension"].choices]
    preferred = [node.split_dimension, *DEFAULT_DIMENSIONS, *choices]
    dimension = next((d for d in preferred if d and d in choices), "")
    return {"dimension": dimension, "method": SplitMethod.EQUAL, "scope": "node", "version": node.version}


@manager_required
def node_split(request, pk, node_pk):
    """GET: the split dialog with a preview; POST: a new preview (nothing written) or, with
    action=commit, the split itself (one target, or every leaf below it)."""
    plan = access.visible_plan(request.user, pk)
    node = access.plan_node(request.user, plan, node_pk)
    if request.method == "GET":
        initial = _default_split_data(node)
        state = _SplitState(request, plan, node, initial if initial["dimension"] else None)
        template = "targets/editor/_split_dialog.html" if request.htmx else "targets/editor/split_page.html"
        return vary_on_htmx(render(request, template, state.context()))
    state = _SplitState(request, plan, node, request.POST)
    if request.POST.get("action") == "commit" and state.ready:
        done = _commit_split(request, plan, node, state)
        if done is not None:
            return done
    if is_partial(request, "split-preview"):
        return render(request, "targets/editor/_split_preview.html", state.context())
    template = "targets/editor/_split_body.html" if request.htmx else "targets/editor/split_page.html"
    return render(request, template, state.context())


def _commit_split(request, plan, node, state):
    clean = state.form.cleaned_data
    try:
        if state.for_leaves:
            kwargs = {k: v for k, v in state.kwargs.items() if k != "amounts"}
            result = services.target_split_leaves(node=node, actor=request.user, **kwargs)
            message = _("%(leaves)d targets split into %(created)d parts.") % {
                "leaves": result.leaves,
                "created": result.created,
            }
        else:
            result = services.target_split(
                node=node, expected_version=clean.get("version"), actor=request.user, **state.kwargs
            )
            message = _("“%(target)s” split by %(dimension)s.") % {
                "target": node.label,
                "dimension": Dimension(clean["dimension"]).label.lower(),
            }
    except ValidationError as exc:  # including ConflictError: someone else changed this target
        add_service_errors(state.form, exc)
        if state.for_leaves:
            with suppress(ValidationError):  # the same error, already shown
                state.preview_leaves()
        return None
    if not request.htmx:
        messages.success(request, message)
        for warning in result.warnings:
            messages.warning(request, warning)
        return redirect("targets:plan_detail", pk=plan.pk)
    message = " ".join([message, *result.warnings])
    fresh = access.plan_node(request.user, plan, node.pk)
    fresh.level = _level(request, plan, fresh)
    context = {**_common(request, plan), "node": _decorate([fresh], plan)[0]}
    response = render(request, "targets/editor/_node.html", context)
    response = reswap(retarget(response, f"#node-{node.pk}"), "outerHTML")
    return trigger_client_event(response, TARGET_CHANGED, {"message": message}, after="swap")


# --- the grid -------------------------------------------------------------------------------------


def _grid_context(request, plan, params):
    user = request.user
    node_pk = params.get("node")
    node = access.plan_node(user, plan, node_pk) if node_pk else access.entry_node(user, plan)
    leaves = selectors.grid_leaves(plan, node, user)
    rows = params.get("rows")
    if rows not in selectors.GRID_ROWS:
        rows = "rep" if leaves.filter(rep__isnull=False).exists() else "region"
    cols = params.get("cols")
    cols = cols if cols in selectors.GRID_COLUMNS else "month"
    columns = selectors.grid_columns(node, cols)
    page = Paginator(selectors.grid_rows(leaves, rows), GRID_PAGE).get_page(params.get("page"))
    table = selectors.grid_table(leaves=leaves, rows=rows, columns=columns, row_page=page.object_list)
    column_keys = [c.key for c in columns] + [selectors.OTHER_COLUMN]
    if not table["has_other"]:
        column_keys = column_keys[:-1]
    common = _common(request, plan)
    show = params.get("show")
    if show not in GRID_SHOW:
        show = "attainment" if plan.status == PlanStatus.APPROVED else "targets"
    figures = GridAttainment(request.user, node, rows, columns, table, common) if show == "attainment" else None
    att_of = figures.of if figures else lambda row_key, span, amount: None
    cells = GridCells(plan)
    spans = [(c.kind, c.start) for c in columns] + [None]  # a column's period; None: the whole-period column
    whole = (node.period_kind, node.period_start)
    for row in table["rows"]:
        key = "none" if row["key"] is None else str(row["key"])
        row["label"] = _row_label(rows, row["row"])
        row["testid"] = key
        row["total_text"] = cells.fmt(row["total"])
        row["att"] = cells.attainment(att_of(row["key"], whole, row["total"]), f"row-total-{key}")
        row["cells"] = [
            cells.cell(found, f"cell-{key}-{column}", att=found and att_of(row["key"], span, found["amount"]))
            for column, span, found in zip(column_keys, spans, row["cells"], strict=False)
        ]
    own = figures.own_key if figures else None
    column_atts = [
        cells.attainment(att_of(own, span, amount), f"col-total-{column}")
        for column, span, amount in zip(column_keys, spans, table["column_totals"], strict=False)
    ]
    query = f"node={node.pk}&rows={rows}&cols={cols}&show={show}"
    return {
        **common,
        "node": node,
        "rows": rows,
        "cols": cols,
        "columns": columns,
        "table": table,
        "cell_url": _cell_url(plan),
        "column_totals": list(zip(column_keys, table["column_totals"], column_atts, strict=False)),
        "grand_att": cells.attainment(att_of(own, whole, table["grand_total"]), "grand-total"),
        "page": page,
        "query": query,
        "show": show,
        "row_choices": [("region", _("Regions")), ("rep", _("Reps"))],
        "col_choices": [("month", _("Months")), ("quarter", _("Quarters"))],
        "show_choices": [("targets", _("Targets only")), ("attainment", _("With attainment"))],
    }


GRID_SHOW = ("targets", "attainment")


class GridAttainment:
    """The latest attainment behind the figures of a grid page (cells, row and column totals, the grand
    total) that are target nodes: ONE query for the whole page, however many rows (see
    `selectors_attainment.grid_attainment`). A figure shows attainment only when its node's amount is
    the figure itself (a sum over more leaves than the node's, e.g. a manager seeing part of it, is not)."""

    def __init__(self, user, node, rows: str, columns, table, common):
        self.own_key = getattr(node, selectors_attainment.GRID_ROW_FIELDS[rows])
        self.found = selectors_attainment.grid_attainment(
            user=user,
            node=node,
            rows=rows,
            row_keys=[row["key"] for row in table["rows"]],
            periods=columns,
            working_days=common["company"].count_working_days,
        )

    def of(self, row_key, span, amount):
        """The `Attainment` of the node of a row key in a period (`span`: kind and start; None for the
        whole-period column), if there is one and its amount is the figure shown."""
        if span is None or amount is None:
            return None
        att = self.found.get((row_key, *span))
        return att if att is not None and att.snapshot.node.amount == amount else None


@dataclass(slots=True)
class GridFigure:
    """The actual and attainment under a grid figure (`{% grid_att %}`)."""

    testid: str  # the figure's (the <small> is "att-" + it)
    actual: str  # unformatted, as data-actual
    rate: str  # the attainment fraction, unformatted; "" for a zero target
    pace: str  # the colour: "good", "warn", "bad", or "" unknown
    actual_text: str
    pct_text: str  # the attainment %, formatted; "" for a zero target
    title: str


@dataclass(slots=True)
class GridCell:
    """A grid cell (`{% grid_cells %}`): its amount and, when it is exactly one leaf, that leaf."""

    testid: str
    value: str = ""  # the amount unformatted, as data-value; "" for an empty cell
    text: str = ""  # the amount formatted
    leaf: int | None = None  # the one leaf an edit changes (editable while the plan is); None: a sum, or empty
    version: int | None = None  # the leaf's, to detect a concurrent change
    error: str = ""  # a refused edit: its message, and what was typed
    typed: str = ""
    att: GridFigure | None = None

    @property
    def vals(self) -> str:
        """What the cell's input posts besides the amount: the version, and the testid to redraw a refusal."""
        return json.dumps({"version": str(self.version), "testid": self.testid})


class GridCells:
    """The figures of a grid page as the templates show them (`GridCell`s, `GridFigure`s): formatted here once,
    with `salesmgmt.lib.numbers.formatter`. The markup is in `_grid.html` and, for the cells (GRID_PAGE x ~13 of
    them a page), the `grid_cells` tag (targets/templatetags/grid_tags.py), which the template engine is too slow
    for."""

    def __init__(self, plan):
        self.fmt = numbers.formatter(plan.metric.places)
        self.pct = numbers.formatter(1)
        self.as_of = _("Actual and attainment as of %(day)s")
        self.titles = {}  # as_of -> the title (the cells of a page share a few dates)

    def attainment(self, att, testid: str) -> GridFigure | None:
        """The actual and attainment % of a figure's node, coloured by its pace gap; None without one."""
        if att is None:
            return None
        rate = att.derived.attainment
        title = self.titles.get(att.as_of)
        if title is None:
            title = self.titles[att.as_of] = self.as_of % {"day": att.as_of.isoformat()}
        return GridFigure(
            testid=testid,
            actual=str(att.actual),
            rate="" if rate is None else str(rate),
            pace=att.pace,
            actual_text=self.fmt(att.actual),
            pct_text="" if rate is None else self.pct(att.attainment_pct),  # rounded once, as on every page
            title=title,
        )

    def cell(self, found: dict | None, testid: str, *, att=None, error: str = "", typed: str = "") -> GridCell:
        """A cell of `selectors.grid_table` (None: empty), with its attainment; `error` and `typed`: a refused
        edit, which shows what was typed."""
        if found is None:
            return GridCell(testid)
        amount = found["amount"]
        return GridCell(
            testid=testid,
            value=str(amount),
            text=self.fmt(amount),
            leaf=found["leaf"],
            version=found["version"],
            error=error,
            typed=typed,
            att=self.attainment(att, testid),
        )


def _cell_url(plan) -> str:
    """Where a cell's edit posts, but for the leaf's pk and "/" (one `reverse` a page, not one a cell)."""
    return reverse("targets:grid_cell", args=[plan.pk, 0]).removesuffix("0/")


def _row_label(rows: str, row: dict) -> str:
    if rows == "rep":
        if row["rep"] is None:
            return _("(no rep)")
        return f"{row['rep__first_name']} {row['rep__last_name']}".strip() or row["rep__username"]
    return row["region__name"] if row["region"] is not None else _("(company level)")


@manager_required
@require_GET
def plan_grid(request, pk):
    plan = access.visible_plan(request.user, pk)
    context = _grid_context(request, plan, request.GET)
    template = "targets/editor/_grid.html" if is_partial(request, "grid") else "targets/editor/plan_grid.html"
    return vary_on_htmx(render(request, template, context))


@manager_required
@require_POST
def grid_cell(request, pk, node_pk):
    """A cell edited in place: the leaf's new amount (its siblings absorb the difference), then the grid
    is redrawn so row and column totals follow; a refused edit shows its message in the cell."""
    plan = access.visible_plan(request.user, pk)
    leaf = access.plan_node(request.user, plan, node_pk)
    form = CellForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.node_update(
                node=leaf,
                amount=form.cleaned_data["amount"],
                expected_version=form.cleaned_data["version"],
                rebalance=leaf.parent_id is not None,
                actor=request.user,
            )
        except ValidationError as exc:  # ConflictError included
            error = error_text(exc)
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if error is None:
        if not request.htmx:
            return redirect(reverse("targets:plan_grid", args=[plan.pk]) + "?" + _grid_query(request))
        return render(request, "targets/editor/_grid.html", _grid_context(request, plan, request.POST))
    if not request.htmx:
        messages.error(request, error)
        return redirect(reverse("targets:plan_grid", args=[plan.pk]) + "?" + _grid_query(request))
    found = {"leaf": leaf.pk, "version": leaf.version, "amount": leaf.amount}
    typed = request.POST.get("amount", "")
    cell = GridCells(plan).cell(found, request.POST.get("testid", ""), error=error, typed=typed)
    context = {**_common(request, plan), "cells": [cell], "cell_url": _cell_url(plan)}
    response = render(request, "targets/editor/_grid_cells.html", context)
    return reswap(retarget(response, f"#cell-{leaf.pk}"), "outerHTML")


def _grid_query(request) -> str:
    params = {k: request.POST.get(k, "") for k in ("node", "rows", "cols", "page", "show") if request.POST.get(k)}
    return "&".join(f"{k}={v}" for k, v in params.items())
