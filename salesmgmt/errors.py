"""Error types every app raises and the HTML views and the API answer alike (a form error, an HTTP 409)."""

from django.core.exceptions import ValidationError


class ConflictError(ValidationError):
    """Raised when a concurrent edit would be overwritten (HTTP 409)."""
