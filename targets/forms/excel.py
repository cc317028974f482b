"""Forms of the Excel round trip: what to export, the file to import, and the confirmation."""

from pathlib import PurePath

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from salesmgmt.lib.tabular import LimitExceeded, Limits
from targets.planning import excel, selectors

ALLOWED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")


class ExportForm(forms.Form):
    """The query string of an export: `?view=tree&node=` or `?view=grid&node=&rows=&cols=`."""

    view = forms.ChoiceField(
        choices=[(excel.TREE, gettext_lazy("Tree")), (excel.GRID, gettext_lazy("Grid"))], required=False
    )
    node = forms.IntegerField(min_value=1, required=False)
    rows = forms.ChoiceField(choices=[(r, r) for r in selectors.GRID_ROWS], required=False)
    cols = forms.ChoiceField(choices=[(c, c) for c in selectors.GRID_COLUMNS], required=False)

    def clean_view(self):
        return self.cleaned_data.get("view") or excel.TREE


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Filled export"),
        help_text=gettext_lazy("The Excel file exported from this plan (tree or grid), with your changes."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if PurePath(upload.name).suffix.lower() not in ALLOWED_SUFFIXES:
            raise ValidationError(_("Upload the .xlsx file exported from the plan (or a .csv saved from it)."))
        try:  # IMPORT_MAX_BYTES: refused before a byte of it is parsed
            Limits.from_settings().check_bytes(upload.size)
        except LimitExceeded as exc:
            raise ValidationError(str(exc))
        return upload


class ImportApplyForm(forms.Form):
    """Confirms the previewed file; an approved plan's changes need the reason of the adjustment."""

    token = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=gettext_lazy("Reason for the adjustment"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text=gettext_lazy("Why the approved targets must change (季度目标动态调整); the approver reads it."),
    )

    def __init__(self, *args, approved: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if approved:
            self.fields["reason"].required = True
        else:
            del self.fields["reason"]
