"""The Excel round trip of a plan: export the tree under a target or the editor's grid to XLSX, then
import the filled file back (upload -> preview with every row's problem -> apply all or nothing).

Exports are scoped: only the targets the user may see are written (`targets.excel.writer`, in the
layout of `targets.excel.layout` that the import reads back in `targets.planning.excel`). Between the
preview and the apply, the uploaded file waits in the default storage, named in the user's session (one
pending import per plan; a day-old one is deleted at the user's next upload), and it is checked again
when applied.
"""

import uuid
from datetime import timedelta
from io import BytesIO
from pathlib import PurePath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from crm.forms import add_service_errors
from salesmgmt.views import XLSX_TYPE
from targets import access
from targets.excel import layout, writer
from targets.forms.excel import ExportForm, ImportApplyForm, ImportUploadForm
from targets.models import PlanStatus
from targets.planning import excel

SHOWN_ERRORS = 200
SHOWN_CHANGES = 500
PENDING_DIR = "target-imports"
PENDING_FOR = timedelta(days=1)


# --- export ------------------------------------------------------------------------------


@login_required
@require_GET
def plan_export(request, pk):
    """`?view=tree&node=<id>` (default: every target you can see) or `?view=grid&node=&rows=&cols=`."""
    plan = access.visible_plan(request.user, pk)
    form = ExportForm(request.GET)
    if not form.is_valid():
        raise Http404(_("Unknown export."))
    user = request.user
    node_pk = form.cleaned_data.get("node")
    node = access.plan_node(user, plan, node_pk) if node_pk else None
    if form.cleaned_data["view"] == layout.GRID:
        node = node or access.entry_node(user, plan)
        workbook, suffix = writer.grid_workbook(plan, node, form.cleaned_data, user)
    else:
        workbook, suffix = writer.tree_workbook(plan, node, user)
    buffer = BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    filename = f"{plan.name} {suffix}.xlsx".replace("/", "-")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


# --- import ------------------------------------------------------------------------------


def _session_key(plan) -> str:
    return f"target-import-{plan.pk}"


def _pending(request, plan) -> dict | None:
    return request.session.get(_session_key(plan))


def _forget(request, plan) -> None:
    pending = request.session.pop(_session_key(plan), None)
    if pending and default_storage.exists(pending["path"]):
        default_storage.delete(pending["path"])


def _keep(request, plan, data: bytes, name: str) -> str:
    """Store the checked file until it is applied (replacing any earlier one); returns its token."""
    _forget(request, plan)
    _sweep(f"{PENDING_DIR}/{request.user.pk}")
    token = uuid.uuid4().hex
    suffix = PurePath(name).suffix.lower()
    path = default_storage.save(f"{PENDING_DIR}/{request.user.pk}/{token}{suffix}", ContentFile(data))
    request.session[_session_key(plan)] = {"token": token, "path": path, "name": name}
    return token


def _sweep(folder: str) -> None:
    """Delete the user's uploads that were never applied (kept a day, for a preview left open)."""
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return
    cutoff = timezone.now() - PENDING_FOR
    for name in files:
        path = f"{folder}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
        except (FileNotFoundError, NotImplementedError):
            continue


def _preview_context(check) -> dict:
    changes = check.changes
    return {
        "check": check,
        "errors": check.errors[:SHOWN_ERRORS],
        "more_errors": max(0, len(check.errors) - SHOWN_ERRORS),
        "changes": changes[:SHOWN_CHANGES],
        "more_changes": max(0, len(changes) - SHOWN_CHANGES),
        "is_adjustment": check.mode == excel.Mode.ADJUSTMENT,
    }


@login_required
@require_http_methods(["GET", "POST"])
def plan_import(request, pk):
    """Upload a filled export, see what it changes and every row's problem, then apply it at once."""
    plan = access.visible_plan(request.user, pk)
    if not request.user.is_manager_or_above:
        messages.error(request, _("Only managers, directors and admins can import targets."))
        return redirect("targets:mine")
    context = {"plan": plan, "approved": plan.status == PlanStatus.APPROVED}
    upload = ImportUploadForm()
    if request.method == "POST" and "apply" in request.POST:
        return _apply(request, plan, context)
    if request.method == "POST":
        upload = ImportUploadForm(request.POST, request.FILES)
        if upload.is_valid():
            file = upload.cleaned_data["file"]
            data = file.read()
            try:
                parsed = excel.parse_file(data, file.name)
            except ValidationError as exc:
                upload.add_error("file", exc)
            else:
                check = excel.plan_import_check(plan=plan, parsed=parsed, actor=request.user)
                context.update(_preview_context(check), file_name=file.name)
                if check.ok and check.changes:
                    token = _keep(request, plan, data, file.name)
                    context["apply_form"] = ImportApplyForm(initial={"token": token}, approved=context["approved"])
    context["upload"] = upload
    return render(request, "targets/excel/import.html", context)


def _apply(request, plan, context):
    pending = _pending(request, plan)
    form = ImportApplyForm(request.POST, approved=context["approved"])
    if pending is None or request.POST.get("token") != pending["token"]:
        messages.error(request, _("That upload is no longer waiting to be imported: upload the file again."))
        return redirect("targets:plan_import", pk=plan.pk)
    try:
        with default_storage.open(pending["path"], "rb") as stored:
            data = stored.read()
    except OSError:
        _forget(request, plan)
        messages.error(request, _("That upload is no longer waiting to be imported: upload the file again."))
        return redirect("targets:plan_import", pk=plan.pk)
    if form.is_valid():
        try:
            result = excel.plan_import_apply(
                plan=plan,
                data=data,
                filename=pending["name"],
                reason=form.cleaned_data.get("reason", ""),
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            _forget(request, plan)
            if result.adjustment is not None:
                messages.success(
                    request,
                    _("The file proposed an adjustment of %(count)d targets; it takes effect once approved.")
                    % {"count": result.changed},
                )
                return redirect("targets:adjustment_detail", pk=result.adjustment.pk)
            messages.success(request, _("%(count)d targets were updated from the file.") % {"count": result.changed})
            return redirect(reverse("targets:plan_detail", args=[plan.pk]))
    # Show the file's current problems (someone may have changed a target since the preview).
    check = excel.plan_import_check(plan=plan, parsed=excel.parse_file(data, pending["name"]), actor=request.user)
    context.update(_preview_context(check), file_name=pending["name"], apply_form=form, upload=ImportUploadForm())
    if not check.ok or not check.changes:
        context.pop("apply_form")
    return render(request, "targets/excel/import.html", context)
