"""The import wizard: upload -> column mapping -> preview with row errors -> commit (a Celery task) -> progress.

Only managers, directors and admins may import; a job is visible to the user who uploaded it only (any
other job is a 404). The views validate input with forms and call the services in pipeline/importing/.
"""

from functools import wraps
from pathlib import PurePath

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.forms import scoped_user_field
from pipeline import importing
from pipeline.models import ImportJob, ImportKind, ImportStatus, Pipeline
from salesmgmt.lib.tabular import LimitExceeded, Limits, cell_text
from salesmgmt.views import error_text

ALLOWED_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls")
SAMPLE_ROWS = 3
SHOWN_ERRORS = 200
RECENT_JOBS = 10
CREATED_LABELS = {
    "regions": gettext_lazy("regions"),
    "users": gettext_lazy("reps"),
    "product_lines": gettext_lazy("product lines"),
    "products": gettext_lazy("products"),
    "customers": gettext_lazy("customers"),
    "opportunities": gettext_lazy("opportunities"),
}
NEW_LABELS = {
    "customer": gettext_lazy("new customer"),
    "owner": gettext_lazy("new rep"),
    "product": gettext_lazy("new product"),
    "region": gettext_lazy("new region"),
}
PREVIEW_HEADERS = {
    ImportKind.CUSTOMERS: [
        gettext_lazy("Name"),
        gettext_lazy("Owner"),
        gettext_lazy("Region"),
        gettext_lazy("Industry"),
        gettext_lazy("Tier"),
    ],
    "deals": [
        gettext_lazy("Name"),
        gettext_lazy("Customer"),
        gettext_lazy("Owner"),
        gettext_lazy("Product"),
        gettext_lazy("Stage"),
        gettext_lazy("Amount"),
        gettext_lazy("Close date"),
    ],
}
ON_ERRORS_CHOICES = [
    ("all_or_nothing", gettext_lazy("All or nothing: import only a file without errors")),
    ("skip_bad_rows", gettext_lazy("Import the good rows; download the rejected ones with the reason of each")),
]
CREATE_ORDER = ("regions", "users", "product_lines", "products", "customers")
DATE_ORDER_CHOICES = [
    ("auto", gettext_lazy("Automatic (from the file; ambiguous dates are reported)")),
    ("dmy", gettext_lazy("Day first: 01/03/2017 is 1 March 2017")),
    ("mdy", gettext_lazy("Month first: 01/03/2017 is 3 January 2017")),
]


def import_permission_required(view):
    """Managers, directors and admins only; others are sent home with a message."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not importing.can_import(request.user):
            messages.error(request, _("Only managers, directors and admins may import data."))
            return redirect("home")
        return view(request, *args, **kwargs)

    return wrapped


def _job(request, pk) -> ImportJob:
    return get_object_or_404(ImportJob.objects.filter(created_by=request.user), pk=pk)


def _created_list(counts: dict) -> list[tuple[str, int]]:
    return [(CREATED_LABELS.get(key, key), n) for key, n in (counts or {}).items()]


# --- forms -------------------------------------------------------------------------------


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What to import"), choices=ImportKind.choices)
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV (UTF-8 or GBK, any separator), Excel .xlsx or .xls; the first row holds the headers."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if PurePath(upload.name).suffix.lower() not in ALLOWED_SUFFIXES:
            raise ValidationError(_("Upload a .csv, .xlsx or .xls file."))
        try:  # IMPORT_MAX_BYTES: refused before a byte of it is parsed
            Limits.from_settings().check_bytes(upload.size)
        except LimitExceeded as exc:
            raise ValidationError(str(exc))
        return upload


class MappingForm(forms.Form):
    """One select per column of the file (which field it feeds), plus the import options."""

    create_missing = forms.BooleanField(
        label=gettext_lazy("Create missing reps, regions, products and customers"),
        required=False,
        help_text=gettext_lazy("Otherwise anything unknown is reported as an error."),
    )
    date_order = forms.ChoiceField(label=gettext_lazy("Dates like 01/03/2017"), choices=DATE_ORDER_CHOICES)
    on_errors = forms.ChoiceField(
        label=gettext_lazy("Rows with errors"),
        choices=ON_ERRORS_CHOICES,
        initial="all_or_nothing",
        required=False,  # left out: all or nothing
        widget=forms.RadioSelect,
    )
    owner_from_region_manager = forms.BooleanField(
        label=gettext_lazy("Rows without a rep: the manager of the row's region (or of the region above it)"),
        required=False,
    )

    def __init__(self, *args, job: ImportJob, headers: list[str], samples: dict[str, list[str]], user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.headers = headers
        self.fields["default_owner"] = scoped_user_field(
            user,
            label=gettext_lazy("Default owner: rows without a rep (and new customers) go to"),
            required=False,
            empty_label=_("No default owner"),
        )
        choices = [("", _("— ignore —"))] + [(f.name, f.label) for f in importing.fields_for(job.kind)]
        required = importing.required_fields(job.kind)
        self.columns = []
        for i, header in enumerate(headers):
            name = f"col_{i}"
            self.fields[name] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=job.mapping.get(header, "")
            )
            self.columns.append((header, samples.get(header, []), name))
        self.required_labels = [f.label for f in importing.fields_for(job.kind) if f.name in required]
        options = importing.ImportOptions.from_dict(job.options)
        self.fields["create_missing"].initial = options.create_missing
        self.fields["date_order"].initial = options.date_order
        self.fields["on_errors"].initial = "skip_bad_rows" if options.skip_bad_rows else "all_or_nothing"
        self.fields["default_owner"].initial = options.default_owner_id
        self.fields["owner_from_region_manager"].initial = options.owner_from_region_manager
        if job.kind != ImportKind.CUSTOMERS:
            self.fields["pipeline"] = forms.ModelChoiceField(
                label=gettext_lazy("Pipeline"),
                queryset=Pipeline.objects.all(),
                required=False,
                empty_label=_("The default pipeline"),
                initial=options.pipeline_id,
            )
            self.fields["list_price_for_missing_amounts"] = forms.BooleanField(
                label=gettext_lazy("Open deals without an amount: use the product's list price (an estimate)"),
                required=False,
                initial=options.missing_amount == "list_price",
            )

    def bound_columns(self):
        return [(header, samples, self[name]) for header, samples, name in self.columns]

    def option_fields(self):
        return [
            self[name]
            for name in (
                "pipeline",
                "date_order",
                "create_missing",
                "default_owner",
                "owner_from_region_manager",
                "list_price_for_missing_amounts",
                "on_errors",
            )
            if name in self.fields
        ]

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(name) or "" for header, _samples, name in self.columns}

    def options(self) -> dict:
        pipeline = self.cleaned_data.get("pipeline")
        return {
            "create_missing": self.cleaned_data["create_missing"],
            "date_order": self.cleaned_data["date_order"],
            "pipeline_id": pipeline.pk if pipeline else None,
            "missing_amount": "list_price" if self.cleaned_data.get("list_price_for_missing_amounts") else "zero",
            "skip_bad_rows": self.cleaned_data.get("on_errors") == "skip_bad_rows",
            "default_owner_id": owner.pk if (owner := self.cleaned_data.get("default_owner")) else None,
            "owner_from_region_manager": self.cleaned_data["owner_from_region_manager"],
        }


# --- views -------------------------------------------------------------------------------


@import_permission_required
@require_http_methods(["GET", "POST"])
def import_start(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = importing.import_job_create(
                kind=form.cleaned_data["kind"], data=upload.read(), filename=upload.name, actor=request.user
            )
        except ValidationError as exc:
            form.add_error("file", exc)
        else:
            return redirect("pipeline:import_mapping", pk=job.pk)
    jobs = ImportJob.objects.filter(created_by=request.user).order_by("-created_at")[:RECENT_JOBS]
    return render(request, "pipeline/import/start.html", {"form": form, "jobs": jobs})


@import_permission_required
@require_http_methods(["GET", "POST"])
def import_mapping(request, pk):
    job = _job(request, pk)
    if job.status not in importing.EDITABLE_STATUSES:
        return redirect("pipeline:import_detail", pk=job.pk)
    try:
        sample = importing.import_job_table(job, limit=SAMPLE_ROWS)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect("pipeline:import_start")
    samples = {h: [] for h in sample.headers}
    for _number, record in sample.records():
        for header, value in record.items():
            samples[header].append(cell_text(value))
    form = MappingForm(request.POST or None, job=job, headers=sample.headers, samples=samples, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            importing.import_job_validate(job=job, mapping=form.mapping(), options=form.options(), actor=request.user)
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            return redirect("pipeline:import_preview", pk=job.pk)
    return render(request, "pipeline/import/mapping.html", {"job": job, "form": form})


@import_permission_required
@require_http_methods(["GET", "POST"])
def import_preview(request, pk):
    job = _job(request, pk)
    if job.status in (ImportStatus.UPLOADED, ImportStatus.MAPPED):
        return redirect("pipeline:import_mapping", pk=job.pk)
    if job.status != ImportStatus.VALIDATED:
        return redirect("pipeline:import_detail", pk=job.pk)
    if request.method == "POST":
        try:
            importing.import_job_start(job=job, actor=request.user)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
            return redirect("pipeline:import_preview", pk=job.pk)
        return redirect("pipeline:import_progress", pk=job.pk)
    result = job.result or {}
    context = {
        "job": job,
        "errors": job.errors[:SHOWN_ERRORS],
        "more_errors": max(0, job.error_count - SHOWN_ERRORS),
        "preview": [
            {**item, "new": [NEW_LABELS.get(what, what) for what in item.get("new", [])]}
            for item in result.get("preview", [])
        ],
        "preview_headers": PREVIEW_HEADERS[ImportKind.CUSTOMERS if job.kind == ImportKind.CUSTOMERS else "deals"],
        "will_create": _created_list(result.get("will_create")),
        "to_create": [
            (CREATED_LABELS[key], names) for key in CREATE_ORDER if (names := (result.get("to_create") or {}).get(key))
        ],
        "date_order": dict(DATE_ORDER_CHOICES).get(result.get("date_order")),
        "notice": result.get("notice", ""),
        "rounded_rows": result.get("rounded_rows", 0),
        "partial": importing.ImportOptions.from_dict(job.options).skip_bad_rows,
        "good_rows": result.get("good_rows", 0),
        "rejected_rows": result.get("rejected_rows", 0),
    }
    return render(request, "pipeline/import/preview.html", context)


@import_permission_required
def import_progress(request, pk):
    """The progress page; htmx polls it every second for the progress fragment until the job ends."""
    job = _job(request, pk)
    context = {
        "job": job,
        "created": _created_list((job.result or {}).get("created")),
        "written": importing.import_job_written(job),
    }
    template = "pipeline/import/_progress.html" if request.htmx else "pipeline/import/progress.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@import_permission_required
def import_rejected(request, pk):
    """The rejected rows of a partial import, in the uploaded format, with the reason of each."""
    job = _job(request, pk)
    if not job.rejected_file:
        raise Http404(_("This import rejected no rows."))
    # Named after the upload, whatever suffix the storage gave the stored file to keep it unique.
    file_format = "xlsx" if job.rejected_file.name.endswith(".xlsx") else "csv"
    name = importing.rejected_file_name(job.original_name, file_format)
    return FileResponse(job.rejected_file.open("rb"), as_attachment=True, filename=name)


@import_permission_required
def import_detail(request, pk):
    job = _job(request, pk)
    result = job.result or {}
    context = {
        "job": job,
        "created": _created_list(result.get("created")),
        "message": result.get("message", ""),
        "errors": job.errors[:SHOWN_ERRORS] if job.status == ImportStatus.FAILED else [],
        "more_errors": max(0, job.error_count - SHOWN_ERRORS) if job.status == ImportStatus.FAILED else 0,
    }
    return render(request, "pipeline/import/detail.html", context)
