"""The scorecard (/review/scorecard/): the ranking of one role's people for a period with each score's breakdown,
the configuration (weights, caps, default targets) for managers, directors and admins, and the XLSX export."""

from io import BytesIO

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from openpyxl import Workbook

from coaching import scorecard as selectors
from coaching.scorecard_forms import ScorecardConfigForm, ScorecardPickForm, config_initial
from coaching.scorecard_services import scorecard_config_save
from crm.forms import add_service_errors
from crm.models import CompanySettings, Role
from salesmgmt.lib import periods
from salesmgmt.views import XLSX_TYPE


def _pick(request) -> tuple[str, str]:
    """The role and period asked for: else the newest config's, else reps in the current quarter."""
    form = ScorecardPickForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    newest = selectors.configs()
    default_key = (
        newest[0].period_key
        if newest
        else periods.period_of(
            timezone.localdate(), periods.QUARTER, CompanySettings.load().fiscal_year_start_month
        ).key
    )
    return data.get("role") or Role.REP, data.get("period_key") or default_key


def _context(request, role, period_key, config_form=None):
    card = selectors.scorecard(request.user, role=role, period_key=period_key)
    context = {
        "card": card,
        "role": role,
        "period_key": period_key,
        "configs": selectors.configs(),
        "can_edit": selectors.can_edit(request.user),
        "roles": Role.choices,
    }
    if context["can_edit"]:
        initial = config_initial(card.config) if card.config else {"role": role, "period_key": period_key}
        context["config_form"] = config_form or ScorecardConfigForm(initial=initial)
    return context


@login_required
@require_GET
def scorecard(request):
    role, period_key = _pick(request)
    return render(request, "coaching/scorecard/page.html", _context(request, role, period_key))


@login_required
@require_POST
def scorecard_config(request):
    if not selectors.can_edit(request.user):
        raise PermissionDenied
    form = ScorecardConfigForm(request.POST)
    if form.is_valid():
        items = form.items()
        if form.is_valid():  # `items` adds row errors
            try:
                config = scorecard_config_save(
                    role=form.cleaned_data["role"],
                    period_key=form.cleaned_data["period_key"].strip(),
                    items=items,
                    actor=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Scorecard saved."))
                url = reverse("coaching:scorecard")
                return redirect(f"{url}?role={config.role}&period_key={config.period_key}")
    role = request.POST.get("role") or Role.REP
    if role not in Role.values:
        role = Role.REP
    period_key = (request.POST.get("period_key") or "")[:16]
    return render(request, "coaching/scorecard/page.html", _context(request, role, period_key, form), status=400)


def scorecard_workbook(card) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Scorecard")[:31])
    header = [_("Rank"), _("Name"), _("Score")]
    for item in card.items:
        name = item.metric.display_name
        header += [f"{name}: {_('actual')}", f"{name}: {_('target')}", f"{name}: %", f"{name}: {_('points')}"]
    ws.append([str(h) for h in header])
    for row in card.rows:
        cells: list = [row.rank, row.user.get_full_name() or row.user.username, float(row.score)]
        for c in row.components:
            cells += [
                float(c.actual),
                float(c.target) if c.target is not None else None,
                float(c.ratio_pct) if c.ratio_pct is not None else None,
                float(c.points_shown),
            ]
        ws.append(cells)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


@login_required
@require_GET
def scorecard_export(request):
    role, period_key = _pick(request)
    card = selectors.scorecard(request.user, role=role, period_key=period_key)
    response = HttpResponse(scorecard_workbook(card), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="scorecard-{role}-{period_key}.xlsx"'
    return response
