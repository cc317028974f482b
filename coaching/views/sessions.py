"""The 1:1 coaching sessions (/review/coaching/): the list (filtered by rep) with the new-session form for a
manager, one session (focus, observations, commitments, the follow-up of the rep's earlier commitments, the rep's
acknowledgement), its edit forms while not acknowledged, and a printable page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from coaching import session_selectors as selectors
from coaching import session_services as services
from coaching.models import ActionItemStatus
from coaching.session_forms import (
    COMMITMENT_ROWS,
    CommitmentForm,
    FollowUpForm,
    SessionCreateForm,
    SessionFieldsForm,
    SessionFilterForm,
    session_initial,
)
from crm.forms import add_service_errors


def _session(request, pk):
    qs = selectors.sessions_visible_to(request.user).select_related(
        "rep", "manager", "region", "node__plan", "opportunity"
    )
    return get_object_or_404(qs, pk=pk)


@login_required
def session_list(request):
    user = request.user
    form = None
    if user.is_manager_or_above:
        form = SessionCreateForm(request.POST or None, user=user, initial={"date": timezone.localdate()})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                session = services.coaching_session_create(
                    actor=user,
                    rep=data["rep"],
                    date=data["date"],
                    focus_kind=data["focus_kind"],
                    focus=data["focus"],
                    observations=data["observations"],
                    node=data["node"],
                    opportunity=data["opportunity"],
                    commitments=data["commitments"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Coaching session recorded."))
                return redirect("coaching:coaching_session", pk=session.pk)
    filter_form = SessionFilterForm(request.GET or None, user=user) if user.is_manager_or_above else None
    rep = filter_form.cleaned_data.get("rep") if filter_form is not None and filter_form.is_valid() else None
    context = {
        "form": form,
        "commitment_rows": [(f"c{i}_what", f"c{i}_due") for i in range(1, COMMITMENT_ROWS + 1)],
        "filter_form": filter_form,
        "sessions": selectors.session_list(user, rep=rep)[:200],
        "my_commitments": selectors.open_commitments(user),
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "coaching/sessions/list.html", context, status=status)


def _context(request, session, *, edit_form=None, commitment_form=None):
    user = request.user
    editable = not session.is_acknowledged and selectors.sessions_managed_by(user).filter(pk=session.pk).exists()
    context = {
        "session": session,
        "commitments": list(selectors.commitments_of(session)),
        "follow_ups": list(selectors.follow_ups(session)),
        "editable": editable,
        "can_acknowledge": session.rep_id == user.pk and not session.is_acknowledged,
        "follow_up_choices": [
            (ActionItemStatus.DONE, _("Done")),
            (ActionItemStatus.DROPPED, _("Drop")),
            (ActionItemStatus.OPEN, _("Keep open")),
        ],
    }
    if editable:
        context["edit_form"] = edit_form or SessionFieldsForm(
            user=user, rep=session.rep, initial=session_initial(session)
        )
        context["commitment_form"] = commitment_form or CommitmentForm()
    return context


@login_required
@require_GET
def session_detail(request, pk):
    session = _session(request, pk)
    return render(request, "coaching/sessions/detail.html", _context(request, session))


@login_required
@require_POST
def session_edit(request, pk):
    session = _session(request, pk)
    form = SessionFieldsForm(request.POST, user=request.user, rep=session.rep)
    if form.is_valid():
        try:
            services.coaching_session_update(actor=request.user, session=session, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Session saved."))
            return redirect("coaching:coaching_session", pk=session.pk)
    return render(request, "coaching/sessions/detail.html", _context(request, session, edit_form=form), status=400)


@login_required
@require_POST
def commitment_add(request, pk):
    session = _session(request, pk)
    form = CommitmentForm(request.POST)
    if form.is_valid():
        try:
            services.commitment_add(actor=request.user, session=session, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("coaching:coaching_session", pk=session.pk)
    context = _context(request, session, commitment_form=form)
    return render(request, "coaching/sessions/detail.html", context, status=400)


@login_required
@require_POST
def follow_up(request, pk, commitment_pk):
    session = _session(request, pk)
    commitment = get_object_or_404(selectors.follow_ups(session), pk=commitment_pk)
    form = FollowUpForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Unknown status."))
        services.commitment_follow_up(
            actor=request.user,
            session=session,
            commitment=commitment,
            status=form.cleaned_data["status"],
            note=form.cleaned_data["note"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return render(request, "coaching/sessions/detail.html", _context(request, session), status=400)
    return redirect("coaching:coaching_session", pk=session.pk)


@login_required
@require_POST
def acknowledge(request, pk):
    session = _session(request, pk)
    try:
        services.coaching_session_acknowledge(actor=request.user, session=session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return render(request, "coaching/sessions/detail.html", _context(request, session), status=400)
    messages.success(request, _("Session acknowledged."))
    return redirect("coaching:coaching_session", pk=session.pk)


@login_required
@require_GET
def session_print(request, pk):
    session = _session(request, pk)
    context = _context(request, session)
    context["editable"] = context["can_acknowledge"] = False  # a printout shows the record, never the forms
    return render(request, "coaching/sessions/print.html", context)
