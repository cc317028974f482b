"""Pipeline screens: my pipeline (list / kanban), the team pipeline with filters, totals and exports,
deal create / detail / edit, stage moves with evidence, collections and activities.

Thin views: forms validate, services write, selectors read. Every deal or customer is fetched
from the `visible_to(request.user)` querysets, so anything outside the user's scope is a 404.
htmx requests for one fragment get that fragment; everything also works as plain pages.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh, reswap, retarget, trigger_client_event

from crm.forms import add_service_errors
from crm.models import CompanySettings, Customer
from crm.scopes import deal_page_keys
from pipeline import selectors, services
from pipeline.forms import (
    ActivityForm,
    CollectionForm,
    DealCreateForm,
    DealEditForm,
    DealInlineForm,
    MoveStageForm,
    TeamFilterForm,
)
from pipeline.models import Pipeline, Stage
from salesmgmt.freshness import cached_page
from salesmgmt.views import filter_form, is_partial, page_query, safe_next_url, tabular_response, vary_on_htmx

MY_PAGE_SIZE = 50
TEAM_PAGE_SIZE = 25
MY_STATUSES = [(selectors.STATUS_RECENT, gettext_lazy("Open and recently closed")), *selectors.STATUS_CHOICES]
DEAL_CHANGED = "dealChanged"  # client event: closes the dialog, reloads the kanban


# --- my pipeline ----------------------------------------------------------------------------------


@login_required
@require_GET
@cached_page(deal_page_keys)
def my_pipeline(request):
    view = request.GET.get("view") or request.session.get("pipeline_view") or "list"
    view = view if view in ("list", "kanban") else "list"
    if request.session.get("pipeline_view") != view:
        request.session["pipeline_view"] = view
    status = request.GET.get("status")
    status = status if status in dict(MY_STATUSES) else selectors.STATUS_RECENT
    pipelines = list(Pipeline.objects.all())
    chosen = request.GET.get("pipeline", "")
    pipeline = next((p for p in pipelines if str(p.pk) == chosen), None)

    query = request.GET.copy()
    for key in ("view", "page"):
        query.pop(key, None)
    context = {
        "view": view,
        "status": status,
        "statuses": MY_STATUSES,
        "pipelines": pipelines,
        "pipeline": pipeline,
        "query": query.urlencode(),
        "today": timezone.localdate(),
        "currency": CompanySettings.load().currency,
    }
    if view == "kanban":
        board_pipeline = (
            pipeline or next((p for p in pipelines if p.is_default), None) or services.pipeline_ensure_default()
        )
        context["board_pipeline"] = board_pipeline
        context["columns"] = selectors.kanban(request.user, pipeline=board_pipeline, status=status)
    else:
        page = Paginator(selectors.my_deals(request.user, status=status, pipeline=pipeline), MY_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        context["page"] = page
        context["deals"] = selectors.with_actions(page.object_list)
    template = "pipeline/_my_results.html" if is_partial(request, "my-results") else "pipeline/my_pipeline.html"
    return vary_on_htmx(render(request, template, context))


# --- team pipeline --------------------------------------------------------------------------------


def _team_filters(request) -> tuple[TeamFilterForm, dict]:
    return filter_form(TeamFilterForm, request)


@login_required
@require_GET
@cached_page(deal_page_keys)
def team_pipeline(request):
    form, filters = _team_filters(request)
    qs, totals, subtotals = selectors.team_pipeline_by_stage(request.user, filters)
    biggest = max((s["total"] for s in subtotals), default=0) or 1
    for s in subtotals:
        s["share"] = round(s["total"] * 100 / biggest)
    paginator = Paginator(qs, TEAM_PAGE_SIZE)
    paginator.count = totals["count"]  # already counted by the totals aggregate
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "totals": totals,
        "subtotals": subtotals,
        "page": page,
        "query": page_query(request),
        "today": timezone.localdate(),
        "currency": CompanySettings.load().currency,
    }
    template = "pipeline/_team_results.html" if is_partial(request, "team-results") else "pipeline/team_pipeline.html"
    return vary_on_htmx(render(request, template, context))


@login_required
@require_GET
def team_export(request, fmt):
    _form, filters = _team_filters(request)
    qs = selectors.team_deals(request.user, filters)
    return tabular_response(fmt, "pipeline", selectors.deal_export_header(), selectors.deal_export_rows(qs))


# --- create ---------------------------------------------------------------------------------------


@login_required
def deal_create(request):
    form = DealCreateForm(request.POST or None, user=request.user, initial={"customer": request.GET.get("customer")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        lines = [{"product_line": data["product_line"], "amount": data["amount"]}] if data.get("product_line") else None
        try:
            deal = services.opportunity_create(
                name=data["name"],
                customer=data["customer"],
                owner=request.user,
                amount=data["amount"],
                currency=data["currency"],
                expected_close_date=data["expected_close_date"],
                pipeline=data.get("pipeline"),
                lines=lines,
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Deal “%(name)s” created.") % {"name": deal.name})
            return redirect("pipeline:deal_detail", pk=deal.pk)
    return render(request, "pipeline/deal_form.html", {"form": form})


# --- one deal -------------------------------------------------------------------------------------


def _visible_deal(request, pk):
    return get_object_or_404(selectors.deals_visible(request.user).select_related("currency"), pk=pk)


def _render_detail(request, deal, *, edit_form=None, collection_form=None, activity_form=None, conflict=None):
    selectors.with_actions([deal])
    collections, collected = selectors.deal_collections(request.user, deal)
    context = {
        "deal": deal,
        "lines": deal.lines.select_related("product_line", "product"),
        "history": selectors.deal_history(deal),
        "evidence": deal.evidence.select_related("stage", "given_by"),
        "activities": selectors.deal_activities(request.user, deal),
        "collections": collections,
        "collected": collected,
        "outstanding": deal.amount_company - collected,
        # Built on a deal_edit request only (the panel loads it when opened; a refused save shows it again).
        "edit_form": edit_form,
        # Shown for a won deal only (or with the errors of a refused collection): not built for the others.
        "collection_form": collection_form or (CollectionForm() if deal.stage.is_won else None),
        "activity_form": activity_form or ActivityForm(),
        "conflict": conflict,
        "today": timezone.localdate(),
        "currency": CompanySettings.load().currency,
    }
    return render(request, "pipeline/deal_detail.html", context)


@login_required
@require_GET
@cached_page(deal_page_keys)
def deal_detail(request, pk):
    return _render_detail(request, _visible_deal(request, pk))


@login_required
@require_http_methods(["GET", "POST"])
def deal_edit(request, pk):
    """GET: the edit form (the fragment the deal page's edit panel loads when opened; without htmx, the deal page
    with the panel open). POST: save, or the page again with the form's errors."""
    deal = _visible_deal(request, pk)
    if request.method == "GET":
        form = DealEditForm(user=request.user, deal=deal)
        if is_partial(request, "edit-body"):
            context = {"deal": deal, "edit_form": form, "conflict": None}
            return vary_on_htmx(render(request, "pipeline/_deal_edit_form.html", context))
        return vary_on_htmx(_render_detail(request, deal, edit_form=form))
    form = DealEditForm(request.POST, user=request.user, deal=deal)
    if not form.is_valid():
        return _render_detail(request, deal, edit_form=form)
    try:
        services.opportunity_update(
            opportunity=deal,
            data=form.changes(),
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            reason=form.cleaned_data.get("reason", ""),
        )
    except services.ConflictError:
        # Keep everything the user typed; show what is in the database now. The form carries the
        # current version, so saving again is a deliberate overwrite after seeing the other change.
        current = _visible_deal(request, pk)
        conflict = [
            (form.fields[f].label, getattr(current, f), form.cleaned_data[f])
            for f in DealEditForm.FIELDS
            if getattr(current, f) != form.cleaned_data[f]
        ]
        data = request.POST.copy()
        data["version"] = current.version
        form = DealEditForm(data, user=request.user, deal=current)
        form.is_valid()
        return _render_detail(request, current, edit_form=form, conflict=conflict)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _render_detail(request, deal, edit_form=form)
    messages.success(request, _("Deal saved."))
    return redirect("pipeline:deal_detail", pk=deal.pk)


@login_required
@require_POST
def deal_collection_add(request, pk):
    deal = _visible_deal(request, pk)
    form = CollectionForm(request.POST)
    if form.is_valid():
        try:
            services.collection_create(opportunity=deal, **form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Collection recorded."))
            return redirect(reverse("pipeline:deal_detail", args=[deal.pk]) + "#collections")
    return _render_detail(request, deal, collection_form=form)


@login_required
@require_POST
def deal_activity_add(request, pk):
    deal = _visible_deal(request, pk)
    form = ActivityForm(request.POST)
    if form.is_valid():
        if deal.customer is None:
            form.add_error(None, _("This deal has no customer to log an activity with."))
        else:
            try:
                services.activity_log(customer=deal.customer, opportunity=deal, **form.cleaned_data, actor=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Activity logged."))
                return redirect(reverse("pipeline:deal_detail", args=[deal.pk]) + "#activities")
    return _render_detail(request, deal, activity_form=form)


# --- stage moves ----------------------------------------------------------------------------------


def _target_stage(deal, raw) -> Stage:
    if raw in (None, ""):
        stage = services.next_stage(deal)
        if stage is None:
            raise Http404(_("This deal has no next stage."))
        return stage
    try:
        return Stage.objects.get(pipeline_id=deal.pipeline_id, pk=int(raw))
    except (ValueError, Stage.DoesNotExist):
        raise Http404(_("No such stage in this deal's pipeline."))


@login_required
def deal_move(request, pk):
    """GET: the dialog asking what the move needs; POST: the move. One button when nothing is needed."""
    deal = _visible_deal(request, pk)
    params = request.POST if request.method == "POST" else request.GET
    stage = _target_stage(deal, params.get("stage"))
    ctx = params.get("ctx") if params.get("ctx") in ("row", "card", "detail") else "detail"
    form = MoveStageForm(request.POST or None, stage=stage, deal=deal, initial={"version": deal.version})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.opportunity_move_stage(
                opportunity=deal,
                stage=stage,
                actor=request.user,
                evidence=data.get("evidence", ""),
                lost_reason=data.get("lost_reason", ""),
                expected_version=data.get("version"),
                reason=data.get("reason", ""),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _moved(request, deal, stage, ctx)
    context = {"deal": deal, "stage": stage, "form": form, "ctx": ctx, "next": params.get("next", "")}
    if request.htmx:
        response = render(request, "pipeline/_move_dialog.html", context)
        if request.method == "POST":
            response = reswap(retarget(response, "#dialog-slot"), "innerHTML")
        return response
    return render(request, "pipeline/move_page.html", context)


def _moved(request, deal, stage, ctx):
    if stage.is_lost:
        message = _("“%(deal)s” marked lost.") % {"deal": deal.name}
    else:
        message = _("“%(deal)s” moved to %(stage)s.") % {"deal": deal.name, "stage": stage.display_name}
    if not request.htmx:
        messages.success(request, message)
        return redirect(safe_next_url(request, reverse("pipeline:deal_detail", args=[deal.pk])))
    if ctx == "detail":
        messages.success(request, message)
        return HttpResponseClientRefresh()
    deal = selectors.with_actions([_visible_deal(request, deal.pk)])[0]
    template = "pipeline/_deal_card.html" if ctx == "card" else "pipeline/_deal_rows.html"
    context = {"deal": deal, "deals": [deal], "today": timezone.localdate(), "flash": message}
    response = render(request, template, context)
    return trigger_client_event(response, DEAL_CHANGED, {"deal": deal.pk, "message": message})


# --- activities from the customer page ------------------------------------------------------------


@login_required
def activity_new(request):
    """Log a visit / call / meeting with a visible customer (the customer page loads this form)."""
    params = request.POST if request.method == "POST" else request.GET
    customer = get_object_or_404(Customer.objects.visible_to(request.user), pk=_int_or_404(params.get("customer")))
    form = ActivityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.activity_log(customer=customer, **form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Activity logged."))
            return redirect(reverse("crm:customer_detail", args=[customer.pk]) + "#activities")
    template = "pipeline/_activity_form.html" if request.htmx else "pipeline/activity_form.html"
    return render(request, template, {"form": form, "customer": customer})


def _int_or_404(raw) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise Http404(_("No customer given."))


# --- a deal's row edited in place (the review's tables) -------------------------------------------------------


def _inline_cols(request) -> int:
    """How many columns the table the row sits in has: the row spans them all."""
    raw = request.GET.get("cols", "")
    return min(max(int(raw), 1), 30) if raw.isdigit() else 8


def _inline_row(request, deal, *, form=None, conflict=None, saved=False):
    template = "pipeline/_deal_inline_edit.html" if form is not None else "pipeline/_deal_inline_show.html"
    context = {"deal": deal, "form": form, "conflict": conflict, "saved": saved, "cols": _inline_cols(request)}
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def deal_inline(request, pk):
    """One deal as a table row of any review table, edited in place with htmx: GET gives the edit row (`?show=1`
    the display row), POST saves next step and date, close date, amount and forecast category through
    `opportunity_update` with the version the row was loaded at, and answers the display row. A stale version
    or a refused change answers the edit row with the message; another team's deal is a 404."""
    deal = _visible_deal(request, pk)
    if request.method == "GET":
        if request.GET.get("show"):
            return _inline_row(request, deal)
        return _inline_row(request, deal, form=DealInlineForm(deal=deal))
    form = DealInlineForm(request.POST, deal=deal)
    if not form.is_valid():
        return _inline_row(request, deal, form=form)
    try:
        services.opportunity_update(
            opportunity=deal,
            data=form.changes(),
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            reason=form.cleaned_data.get("reason", ""),
        )
    except services.ConflictError as exc:
        # What the user typed stays; what is in the database now is listed. The row now carries the current
        # version: saving again is a deliberate overwrite after seeing the other change.
        current = _visible_deal(request, pk)
        conflict = [
            (form.fields[f].label, getattr(current, f), form.cleaned_data[f])
            for f in DealInlineForm.FIELDS
            if getattr(current, f) != form.cleaned_data[f]
        ]
        data = request.POST.copy()
        data["version"] = current.version
        form = DealInlineForm(data, deal=current)
        form.is_valid()
        form.add_error(None, exc.message)
        return _inline_row(request, current, form=form, conflict=conflict)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _inline_row(request, deal, form=form)
    return _inline_row(request, _visible_deal(request, pk), saved=True)
