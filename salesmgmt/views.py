"""The small HTTP helpers every app's screens share (the home page is `coaching.views.home.home`): "is this an
htmx request for one fragment?", and the CSV/XLSX export response."""

import csv
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO, StringIO

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def vary_on_htmx(response):
    """Full pages and htmx fragments share URLs: caches must key on the HX-Request header."""
    patch_vary_headers(response, ("HX-Request",))
    return response


def safe_next_url(request, default: str) -> str:
    """The `next` parameter when it points back into this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def filter_form(form_class, request):
    """A GET filter form bound to the query string and its cleaned values.

    Invalid choices (e.g. a region outside the user's scope) are left out and shown on the form;
    the other filters still apply.
    """
    form = form_class(request.GET or None, user=request.user)
    if not form.is_bound:
        return form, {}
    form.is_valid()
    return form, form.cleaned_data


def error_text(exc) -> str:
    """A ValidationError's messages as one line, for a row or a field that shows the error in place."""
    return " ".join(exc.messages)


def page_query(request) -> str:
    """The request's query string without its page number: what the pager's links carry over."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def is_partial(request, target: str) -> bool:
    """An htmx request for the fragment with id `target` (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request and request.htmx.target == target


def _safe_text(value):
    """Text cells starting with = + - @ would run as formulas in Excel (CSV injection): quote them."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (date, datetime, Decimal, int)):
        return str(value)
    return _safe_text(str(value))


def tabular_response(fmt: str, filename: str, header: list, rows) -> HttpResponse:
    """An export as `csv` (UTF-8 with BOM so Excel shows Chinese right) or `xlsx` (write-only openpyxl)."""
    if fmt == "xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(filename[:31])
        ws.append([str(h) for h in header])
        for row in rows:
            ws.append([ILLEGAL_CHARACTERS_RE.sub("", _safe_text(v)) if isinstance(v, str) else v for v in row])
        buffer = BytesIO()
        wb.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    else:
        buffer = StringIO()
        buffer.write("\ufeff")
        writer = csv.writer(buffer)
        writer.writerow([str(h) for h in header])
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        fmt = "csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response
