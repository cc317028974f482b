"""Admin pages of models that services write: they say where the read-only fields are changed instead.

Django admin saves a row as it is, with no history, audit or recompute. So whatever moves figures is
read-only there (or saved through the service), and the page opens with a note pointing to the screen
(and the API) that changes it properly.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ServiceNoteMixin:
    """A `ModelAdmin` mixin: the first fieldset of the change (or view) page carries `service_note(obj)`."""

    def service_note(self, obj: Any) -> str:
        """HTML (already escaped) shown at the top of the page: where the read-only fields change."""
        return ""

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]  # ModelAdmin's, mixed in after
        note = self.service_note(obj)
        if not note or not fieldsets:
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "description": note}), *rest]


class ReadOnlyAdmin(ServiceNoteMixin, admin.ModelAdmin):
    """Rows only services write: admin shows them, never adds, changes or deletes them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
