"""The review meetings (/review/meetings/): the list and the planning form, one meeting (attendees, agenda,
last meeting's items with close / drop / keep in place, new items, minutes, the forecast and the review),
holding it, and its XLSX and printable exports. A held meeting renders from its snapshot only."""

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from io import BytesIO

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from openpyxl import Workbook

from coaching import selectors, services
from coaching.forms import ActionItemForm, ItemStatusForm, MeetingCreateForm, MeetingEditForm, TeamForecastForm
from coaching.models import ActionItemStatus
from coaching.review import Review
from crm.forms import add_service_errors
from salesmgmt.views import XLSX_TYPE, is_partial


def _meeting(request, pk):
    return get_object_or_404(selectors.meetings_visible_to(request.user).select_related("region"), pk=pk)


@login_required
def meeting_list(request):
    user = request.user
    form = MeetingCreateForm(request.POST or None, user=user, initial={"week": timezone.localdate()})
    if request.method == "POST" and user.is_manager_or_above and form.is_valid():
        data = form.cleaned_data
        try:
            meeting = services.meeting_create(
                actor=user, team=data["team"], week=data["week"], title=data["title"], agenda=data["agenda"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("coaching:meeting", pk=meeting.pk)
    context = {
        "form": form if user.is_manager_or_above else None,
        "meetings": selectors.meetings_visible_to(user).select_related("region", "held_by")[:100],
        "my_items": selectors.items_visible_to(user)
        .filter(owner=user, status=ActionItemStatus.OPEN)
        .select_related("meeting", "region"),
    }
    return render(request, "coaching/meetings/list.html", context, status=400 if form.errors else 200)


def _context(request, meeting, *, item_form=None, edit_form=None):
    data = selectors.meeting_data(request.user, meeting)
    context = {
        "meeting": meeting,
        "data": data,
        "review": Review.from_snapshot(data["review"]),
        "planned": not meeting.is_held,
        "item_status_choices": [
            (ActionItemStatus.DONE, _("Close")),
            (ActionItemStatus.DROPPED, _("Drop")),
            (ActionItemStatus.OPEN, _("Keep open")),
        ],
    }
    if not meeting.is_held:
        context["item_form"] = item_form or ActionItemForm(user=request.user, meeting=meeting)
        context["edit_form"] = edit_form or MeetingEditForm(
            meeting=meeting,
            initial={
                "title": meeting.title,
                "agenda": meeting.agenda,
                "minutes": meeting.minutes,
                "attendees": list(meeting.attendees.all()),
            },
        )
        forecast = data["forecast"]
        context["team_forecast_form"] = TeamForecastForm(
            user=request.user,
            initial={
                "period": forecast["period"],
                "team": meeting.region_id,
                "commit": forecast["rollup_commit"],
                "best_case": forecast["rollup_best_case"],
                "next": request.path,
            },
        )
    return context


@login_required
@require_GET
def meeting_detail(request, pk):
    meeting = _meeting(request, pk)
    return render(request, "coaching/meetings/detail.html", _context(request, meeting))


@login_required
@require_POST
def meeting_edit(request, pk):
    meeting = _meeting(request, pk)
    form = MeetingEditForm(request.POST, meeting=meeting)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.meeting_update(
                actor=request.user,
                meeting=meeting,
                title=data["title"],
                agenda=data["agenda"],
                minutes=data["minutes"],
                attendees=list(data["attendees"]),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Meeting saved."))
            return redirect("coaching:meeting", pk=meeting.pk)
    return render(request, "coaching/meetings/detail.html", _context(request, meeting, edit_form=form), status=400)


def _items_response(request, meeting, *, item_form=None, status=200):
    context = _context(request, meeting, item_form=item_form)
    if is_partial(request, "meeting-items"):
        # htmx swaps only 2xx answers: the section comes back with the form's errors in place.
        return render(request, "coaching/meetings/_items.html", context)
    if status == 200:
        return redirect("coaching:meeting", pk=meeting.pk)
    return render(request, "coaching/meetings/detail.html", context, status=status)


@login_required
@require_POST
def item_create(request, pk):
    meeting = _meeting(request, pk)
    form = ActionItemForm(request.POST, user=request.user, meeting=meeting)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.action_item_create(actor=request.user, meeting=meeting, **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _items_response(request, meeting)
    return _items_response(request, meeting, item_form=form, status=400)


@login_required
@require_POST
def item_status(request, pk, item_pk):
    meeting = _meeting(request, pk)
    item = get_object_or_404(selectors.items_visible_to(request.user).filter(region=meeting.region_id), pk=item_pk)
    form = ItemStatusForm(request.POST)
    if not form.is_valid():
        return _items_response(request, meeting, status=400)
    try:
        services.action_item_set_status(
            actor=request.user,
            item=item,
            meeting=meeting,
            status=form.cleaned_data["status"],
            notes=form.cleaned_data["notes"] or None,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _items_response(request, meeting, status=400)
    return _items_response(request, meeting)


@login_required
@require_POST
def meeting_hold(request, pk):
    meeting = _meeting(request, pk)
    try:
        services.meeting_hold(actor=request.user, meeting=meeting)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Meeting held: its figures are kept as they are now."))
    return redirect("coaching:meeting", pk=meeting.pk)


@login_required
@require_GET
def meeting_print(request, pk):
    meeting = _meeting(request, pk)
    context = _context(request, meeting)
    context["planned"] = False  # a printout shows the record, never the forms
    return render(request, "coaching/meetings/print.html", context)


# --- XLSX -----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _cell(value):
    """Numbers (kept as strings in the snapshot) as numbers; text that Excel would run as a formula quoted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, str) and _NUMBER.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _sheet(wb, title, header, rows):
    ws = wb.create_sheet(title[:31])
    ws.append([str(h) for h in header])
    for row in rows:
        ws.append([_cell(v) for v in row])


def _status_label(code: str) -> str:
    return str(dict(ActionItemStatus.choices).get(code, code))


def meeting_workbook(meeting, data) -> bytes:
    wb = Workbook(write_only=True)
    _sheet(
        wb,
        _("Meeting"),
        [_("Field"), _("Value")],
        [
            (_("Title"), meeting.title),
            (_("Team"), data["review"]["region"]["name"]),
            (_("Week"), meeting.week),
            (_("Status"), meeting.get_status_display()),
            (_("Held"), timezone.localtime(meeting.held_at).strftime("%Y-%m-%d %H:%M") if meeting.held_at else None),
            (_("Attendees"), ", ".join(data["attendees"])),
            (_("Agenda"), meeting.agenda),
            (_("Minutes"), meeting.minutes),
        ],
    )
    headline = data["review"]["headline"]
    keys = ["metric_name", "target", "actual", "attainment_pct", "time_progress_pct", "gap"]
    keys += ["weighted_pipeline", "coverage", "forecast_run_rate"]
    labels = [_("Metric"), _("Target"), _("Actual"), _("Attainment %"), _("Time progress %"), _("Gap")]
    labels += [_("Weighted pipeline"), _("Coverage"), _("Run-rate forecast"), _("Actual, change vs previous meeting")]
    _sheet(
        wb,
        _("Headline"),
        labels,
        ([row.get(k) for k in keys] + [data["deltas"].get(row["metric"], {}).get("actual")] for row in headline),
    )
    row_keys = ["name", "target", "actual", "attainment_pct", "time_progress_pct", "gap", "pipeline", "coverage"]
    row_keys += ["win_rate", "activities", "alerts"]
    row_labels = [_("Name"), _("Target"), _("Actual"), _("Attainment %"), _("Time progress %"), _("Gap")]
    row_labels += [_("Pipeline"), _("Coverage"), _("Win rate"), _("Activities"), _("Alerts")]
    _sheet(wb, _("Team"), row_labels, ([row.get(k) for k in row_keys] for row in data["review"]["rows"]))
    items = [(_("Carried"), i) for i in data["items"]["carried"]] + [(_("New"), i) for i in data["items"]["new"]]
    _sheet(
        wb,
        _("Action items"),
        [_("Kind"), _("What"), _("Owner"), _("Due date"), _("Status"), _("Target"), _("Deal"), _("Alert"), _("Notes")],
        (
            [
                kind,
                i["what"],
                i["owner_name"],
                date.fromisoformat(i["due_date"]),
                _status_label(i["status"]),
                (i["node"] or {}).get("label"),
                (i["opportunity"] or {}).get("name"),
                (i["alert"] or {}).get("label"),
                i["notes"],
            ]
            for kind, i in items
        ),
    )
    forecast = data["forecast"]
    rep_rows = [
        [
            r["name"],
            r["commit"],
            r["best_case"],
            r["submitted_week"],
            r["deals_won"],
            r["deals_commit"],
            r["deals_best_case"],
        ]
        for r in forecast["reps"]
    ]
    rep_rows.append(
        [_("Reps' roll-up"), forecast["rollup_commit"], forecast["rollup_best_case"], None, None, None, None]
    )
    if forecast["team"]:
        team = forecast["team"]
        rep_rows.append([_("Team forecast"), team["commit"], team["best_case"], team["week"], None, None, None])
    _sheet(
        wb,
        _("Forecast %(period)s") % {"period": forecast["period"]},
        [_("Who"), _("Commit"), _("Best case"), _("Submitted week"), _("Won"), _("Deals commit"), _("Deals best case")],
        rep_rows,
    )
    buffer = BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@login_required
@require_GET
def meeting_export(request, pk):
    meeting = _meeting(request, pk)
    data = selectors.meeting_data(request.user, meeting)
    response = HttpResponse(meeting_workbook(meeting, data), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="meeting-{meeting.region.code}-{meeting.week}.xlsx"'
    return response
