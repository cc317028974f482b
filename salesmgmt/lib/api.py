"""API plumbing shared by every app: one JSON error shape, Django ValidationError mapped to 400."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The record was changed by someone else."
    default_code = "conflict"


def django_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
    return {"non_field_errors": [str(m) for m in exc.messages]}


class ErrorSerializer(serializers.Serializer):
    """The shape of every error response: a message and, for validation errors, per-field messages."""

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


def exception_handler(exc, context):
    # Imported here: services raise ConflictError, a ValidationError subclass.
    from pipeline.services import ConflictError

    if isinstance(exc, ConflictError):
        exc = Conflict(detail=" ".join(exc.messages))
    elif isinstance(exc, DjangoValidationError):
        errors = django_errors(exc)
        first = next(iter(errors.values()))[0] if errors else "Invalid input."
        return Response({"detail": first, "code": "invalid", "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        flat = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
        first = next(iter(flat.values()))[0] if flat else "Invalid input."
        first_field = next(iter(flat.keys()), "")
        detail = first if first_field in ("non_field_errors", "") else f"{first_field}: {first}"
        response.data = {"detail": detail, "code": "invalid", "errors": flat}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        code = getattr(exc, "default_code", "error")
        if hasattr(exc, "get_codes"):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else code
        response.data = {"detail": str(detail), "code": code}
    return response
