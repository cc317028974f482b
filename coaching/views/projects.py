"""The project analysis meetings (/review/projects/): the list and the planning form, one review (each big-account
project with its stage, evidence, history, the customer's buying step against our selling step, next steps,
risks, decisions and action items), holding it, and its XLSX export. A held review renders from its snapshot."""

from decimal import Decimal, InvalidOperation
from io import BytesIO

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from openpyxl import Workbook

from coaching import project_selectors as selectors
from coaching import project_services as services
from coaching.models import BuyingStep, ProjectDecisionKind
from coaching.project_forms import DecisionForm, EntryForm, ProjectReviewCreateForm, ProjectReviewEditForm
from crm.forms import add_service_errors
from salesmgmt.views import XLSX_TYPE


def _review(request, pk):
    return get_object_or_404(selectors.reviews_visible_to(request.user).select_related("region", "held_by"), pk=pk)


@login_required
def review_list(request):
    user = request.user
    if not user.is_manager_or_above:
        raise Http404
    form = ProjectReviewCreateForm(request.POST or None, user=user, initial={"date": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            review = services.project_review_create(
                actor=user, team=data["team"], date=data["date"], title=data["title"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("coaching:project_review", pk=review.pk)
    context = {"form": form, "reviews": selectors.reviews_visible_to(user).select_related("region", "held_by")[:100]}
    return render(request, "coaching/projects/list.html", context, status=400 if form.errors else 200)


def _context(request, review, *, edit_form=None):
    planned = not review.is_held
    context = {"review": review, "data": selectors.review_data(request.user, review), "planned": planned}
    if planned:
        context["edit_form"] = edit_form or ProjectReviewEditForm(
            initial={"title": review.title, "minutes": review.minutes}
        )
        context["buying_steps"] = BuyingStep.choices
        context["decision_kinds"] = ProjectDecisionKind.choices
        context["owners"] = list(DecisionForm(review=review).fields["owner"].queryset)
    return context


@login_required
@require_GET
def review_detail(request, pk):
    review = _review(request, pk)
    return render(request, "coaching/projects/detail.html", _context(request, review))


@login_required
@require_POST
def review_edit(request, pk):
    review = _review(request, pk)
    form = ProjectReviewEditForm(request.POST)
    if form.is_valid():
        try:
            services.project_review_update(actor=request.user, review=review, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Project review saved."))
            return redirect("coaching:project_review", pk=review.pk)
    return render(request, "coaching/projects/detail.html", _context(request, review, edit_form=form), status=400)


def _deal(request, review, deal_pk):
    return get_object_or_404(selectors.big_deals(request.user, review.region), pk=deal_pk)


def _failed(request, review, errors):
    messages.error(request, " ".join(errors))
    return render(request, "coaching/projects/detail.html", _context(request, review), status=400)


def _form_errors(form) -> list[str]:
    return [str(e) for errors in form.errors.values() for e in errors]


@login_required
@require_POST
def entry_save(request, pk, deal_pk):
    review = _review(request, pk)
    deal = _deal(request, review, deal_pk)
    form = EntryForm(request.POST)
    if not form.is_valid():
        return _failed(request, review, _form_errors(form))
    try:
        services.project_entry_save(actor=request.user, review=review, opportunity=deal, **form.cleaned_data)
    except ValidationError as exc:
        return _failed(request, review, exc.messages)
    return redirect(f"{review_url(review)}#project-{deal.pk}")


@login_required
@require_POST
def decision_add(request, pk, deal_pk):
    review = _review(request, pk)
    deal = _deal(request, review, deal_pk)
    form = DecisionForm(request.POST, review=review)
    if not form.is_valid():
        return _failed(request, review, _form_errors(form))
    try:
        services.project_decision_add(actor=request.user, review=review, opportunity=deal, **form.cleaned_data)
    except ValidationError as exc:
        return _failed(request, review, exc.messages)
    return redirect(f"{review_url(review)}#project-{deal.pk}")


def review_url(review) -> str:
    return reverse("coaching:project_review", args=[review.pk])


@login_required
@require_POST
def review_hold(request, pk):
    review = _review(request, pk)
    try:
        services.project_review_hold(actor=request.user, review=review)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Project review held: its projects are kept as they are now."))
    return redirect("coaching:project_review", pk=review.pk)


def _cell(value):
    """Amounts (kept as strings in the snapshot) as numbers; text Excel would run as a formula quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, str):
        try:
            return Decimal(value) if value.replace(".", "", 1).isdigit() else value
        except InvalidOperation:
            return value
    return value


def review_workbook(review, data) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Projects"))
    ws.append(
        [
            _("Deal"),
            _("Customer"),
            _("Owner"),
            _("Stage"),
            _("Customer's buying step"),
            _("Amount"),
            _("Weighted"),
            _("Stars"),
            _("Expected close date"),
            _("Next step"),
            _("Next steps"),
            _("Risks"),
            _("Evidence"),
        ]
    )
    for p in data["projects"]:
        ws.append(
            [
                _cell(v)
                for v in (
                    p["name"],
                    p["customer"],
                    p["owner"],
                    p["stage"],
                    p["buying_step_label"],
                    p["amount"],
                    p["weighted"],
                    p["star_rating"],
                    p["expected_close_date"],
                    p["next_step"],
                    p["next_steps"],
                    p["risks"],
                    "; ".join(f"{e['stage']}: {e['text']}" for e in p["evidence"]),
                )
            ]
        )
    ws = wb.create_sheet(_("Decisions"))
    ws.append([_("Deal"), _("Kind"), _("What"), _("Owner"), _("Due date")])
    for p in data["projects"]:
        for d in p["decisions"]:
            ws.append([_cell(v) for v in (p["name"], d["kind_label"], d["what"], d["owner_name"], d["due_date"])])
    ws = wb.create_sheet(_("History"))
    ws.append([_("Deal"), _("Field"), _("Old"), _("New"), _("By"), _("When")])
    for p in data["projects"]:
        for h in p["history"]:
            ws.append([_cell(v) for v in (p["name"], h["field"], h["old"], h["new"], h["by"], h["at"])])
    buffer = BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@login_required
@require_GET
def review_export(request, pk):
    review = _review(request, pk)
    data = selectors.review_data(request.user, review)
    response = HttpResponse(review_workbook(review, data), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="projects-{review.region.code}-{review.date}.xlsx"'
    return response
