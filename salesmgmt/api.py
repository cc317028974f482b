"""API plumbing shared by every app: one JSON error shape, Django ValidationError mapped to 400,
error responses declared in the schema, pagination, and related ids and embedded rows scoped to the
requesting user. (The JSON parser is in `salesmgmt.parsers`.)"""

import contextlib
from collections.abc import Callable, Iterable

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Manager
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from salesmgmt.errors import ConflictError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The record was changed by someone else.")
    default_code = "conflict"


def django_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        # full_clean() files constraint errors under "__all__"; the API calls them non_field_errors.
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for m in msgs]
            for field, msgs in exc.message_dict.items()
        }
    return {"non_field_errors": [str(m) for m in exc.messages]}


def flatten_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as {"field": [...], "lines.0.amount": [...]}: one level, strings only."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(errors, list) and any(isinstance(item, (dict, list)) for item in errors):
        for index, item in enumerate(errors):
            if item:
                flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        items = errors if isinstance(errors, list) else [errors]
        flat[prefix or "non_field_errors"] = [str(m) for m in items]
    return flat


class ErrorSerializer(serializers.Serializer):
    """The shape of every error response: a message and, for validation errors, per-field messages."""

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


def exception_handler(exc, context):
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
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # DRF answers 403 when the first authenticator is the session one; an API client without
        # credentials is told 401 and how to authenticate instead.
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = TokenAuthentication.keyword
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        flat = flatten_errors(errors)
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


# --- schema: the errors each operation can answer ---------------------------------------

ERROR_DESCRIPTIONS = {
    400: _("Invalid input: `detail` gives the first message, `errors` every message by field."),
    401: _("Not authenticated: log in, or send the header `Authorization: Token <key>`."),
    403: _("Not allowed: your role may not do this (or the session's CSRF token is missing)."),
    404: _("Not found, or outside your data scope."),
    409: _("Someone else changed the record since you loaded it: reload it and retry with its new `version`."),
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the given error statuses, all with the shape of `ErrorSerializer`."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


def api_responses(success: dict, *codes: int, authenticated: bool = True) -> dict:
    """`success` ({200: Serializer}) plus the errors named; 401 and 403 too when a login is needed."""
    extra = {401, 403} if authenticated else set()
    return {**success, **error_responses(*sorted({*codes, *extra}))}


# --- lists ---------------------------------------------------------------------------------


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=2&page_size=100`; the page size is capped so one call cannot dump a whole table."""

    page_size_query_param = "page_size"
    max_page_size = 200


# --- related ids in request bodies ---------------------------------------------------------


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id in a request body, looked up only among the rows the requesting user may see.

    `scope(user)` returns those rows (e.g. `Customer.objects.visible_to`); an id outside them
    gets the same "does not exist" error as an id that does not exist at all, so nothing leaks.
    """

    def __init__(self, *, scope: Callable, **kwargs):
        self.scope = scope
        if not kwargs.get("read_only"):
            # The empty queryset carries the model (for the schema) and fails closed without a request.
            kwargs.setdefault("queryset", scope(None))
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.scope(getattr(request, "user", None))


# --- embedded rows of another model in responses -------------------------------------------


class VisibleRows(serializers.ListSerializer):
    """Rows of another model embedded in a response, limited to those the requesting user may see.

    `scope(user)` is the embedded model's own door, the one its endpoint uses (e.g.
    `TargetNode.objects.visible_to`), so an embedding never shows more than that endpoint would.
    `key` names a row's id: "pk" for model instances, the key of a JSON row (an adjustment's
    proposed changes are `{"node": id, ...}`). Without a request nothing is shown (fails closed).
    The rows of every object in the response are checked in one query, however long the page.

        changes = VisibleRows(child=ChangeSerializer(), scope=visible_nodes, key="node")
    """

    def __init__(self, *args, scope: Callable, key: str = "pk", **kwargs):
        self.scope, self.key = scope, key
        self._visible: dict = {}  # id -> may the user see it, for this response
        self._batched = False
        kwargs.setdefault("read_only", True)
        super().__init__(*args, **kwargs)

    def _id(self, row):
        return row.get(self.key) if isinstance(row, dict) else getattr(row, self.key, None)

    def _rows(self, data) -> list:
        return list(data.all() if isinstance(data, Manager) else data or [])

    def _response_rows(self) -> Iterable:
        """This field's rows on every object of the response (each item of a page), to check them at once."""
        root, parent = self.root, self.parent
        if parent is root:
            objects = [root.instance]
        elif isinstance(root, serializers.ListSerializer) and parent is root.child:
            objects = root.instance or []
        else:
            return []
        rows = []
        for obj in objects:
            # An object this field cannot read is left to its own call (which reports the problem).
            with contextlib.suppress(AttributeError, KeyError, TypeError, ObjectDoesNotExist):
                rows += self._rows(self.get_attribute(obj))
        return rows

    def _check(self, rows: list) -> None:
        ids = {self._id(row) for row in rows} - self._visible.keys()
        ids.discard(None)
        if not ids:
            return
        request = self.context.get("request")
        seen = set(self.scope(getattr(request, "user", None)).filter(pk__in=ids).values_list("pk", flat=True))
        self._visible.update({pk: pk in seen for pk in ids})

    def to_representation(self, data):
        rows = self._rows(data)
        if not self._batched:
            self._batched = True
            self._check([*rows, *self._response_rows()])
        self._check(rows)
        return [self.child.to_representation(row) for row in rows if self._visible.get(self._id(row))]
