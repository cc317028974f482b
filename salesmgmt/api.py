"""API plumbing shared by every app: one JSON error shape, Django ValidationError mapped to 400,
error responses declared in the schema, pagination, and related ids and embedded rows scoped to the
requesting user. (The JSON parser is in `salesmgmt.parsers`.)"""

import contextlib
from collections.abc import Callable, Iterable

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import Manager
from django.forms import CharField, MultipleChoiceField, MultiValueField, NullBooleanField
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, filters, pagination, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from salesmgmt import fields as strict
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


@csrf_exempt  # it changes nothing: a POST to a path that is no endpoint is a 404, not a CSRF 403 page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Any path under /api/ that names no endpoint (e.g. `/api/deals/1.5/`): a 404 in the one error shape."""
    error = exceptions.NotFound()
    return JsonResponse({"detail": str(error.detail), "code": error.default_code}, status=status.HTTP_404_NOT_FOUND)


# --- schema: the errors each operation can answer ---------------------------------------

ERROR_DESCRIPTIONS = {
    400: _("Invalid input: `detail` gives the first message, `errors` every message by field."),
    401: _("Not authenticated: log in, or send the header `Authorization: Token <key>`."),
    403: _("Not allowed: your role may not do this (or the session's CSRF token is missing)."),
    404: _("Not found, or outside your data scope (for a list: the page does not exist)."),
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


def single_query_value(request, name: str) -> str | None:
    """The one value of query parameter `name` (None when absent); 400 when it is given more than once."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise exceptions.ValidationError({name: [_("Give this parameter once.")]})
    return values[0] if values else None


def positive_int_query_value(request, name: str) -> int | None:
    """`?name=` as a whole number of at least 1 (None when absent); 400 with a message otherwise."""
    raw = single_query_value(request, name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise exceptions.ValidationError({name: [_("Give a whole number of at least 1.")]})
    return int(raw)


def query_data(request) -> dict[str, str]:
    """The query string for a query serializer: one value per name (a name given twice is a 400), and an
    empty value kept as a value (DRF reads `?date_to=` in a QueryDict as absent: it is a bad date, a 400)."""
    return {name: single_query_value(request, name) or "" for name in request.query_params}


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=2&page_size=100`; the page size is capped so one call cannot dump a whole table.

    Both are whole numbers of at least 1, given once: anything else is a 400 with a message (never
    silently the default); a page past the last is a 404."""

    page_size_query_param = "page_size"
    max_page_size = 200
    known_count: int | None = None  # this request's row count, when known without counting (`paginate_queryset`)

    def paginate_queryset(self, queryset, request, view=None, *, count: int | None = None):
        """DRF's pagination; `count`: the number of rows of `queryset`, known without counting them (a total kept
        elsewhere, `pipeline.selectors.scope_deal_count`): the page then costs one query, not two."""
        self.known_count = count
        return super().paginate_queryset(queryset, request, view)

    def django_paginator_class(self, object_list, per_page):
        paginator = DjangoPaginator(object_list, per_page)
        if self.known_count is not None:
            paginator.count = self.known_count  # Paginator.count is a cached property: this is its value
        return paginator

    def get_page_size(self, request):
        size = positive_int_query_value(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        number = positive_int_query_value(request, self.page_query_param)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": str(_("A page number within the paginated result set.")),
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": str(
                    _("Number of results to return per page (default %(default)d; more than %(max)d gives %(max)d).")
                    % {"default": self.page_size, "max": self.max_page_size}
                ),
                "schema": {"type": "integer", "minimum": 1},
            },
        ]


# --- filtering and ordering ----------------------------------------------------------------


BOOLEAN_VALUES = ("true", "false")

# The largest id a database integer holds: a filter given more is a 400, not an overflow (500).
MAX_ID = 2**63 - 1


class FilterBackend(DjangoFilterBackend):
    """django-filter, strict about what the schema says: a filter that takes one value refuses several,
    a boolean is `true` or `false` (not 1, yes, on...), each a 400 with a message.

    Filters narrow a list: a viewset's routes of one object (`detail`: retrieve, update, move-stage...) look
    it up by id in the user's scope (the view's queryset) without them, as the schema documents them (no filter
    parameters). Building the filter set and its form was a sixth of the Python of a deal's move."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "detail", False):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            for name, field in filterset.form.fields.items():
                if isinstance(field, MultipleChoiceField | MultiValueField):
                    continue
                value = single_query_value(request, name)
                if isinstance(field, NullBooleanField) and value not in (None, "", *BOOLEAN_VALUES):
                    raise exceptions.ValidationError({name: [_("Give true or false.")]})
            for name in self.typed_parameters(filterset):
                if single_query_value(request, name) == "":
                    raise exceptions.ValidationError({name: [_("Give a value, or leave the parameter out.")]})
        return filterset

    @staticmethod
    def typed_parameters(filterset) -> list[str]:
        """The query names whose value is not free text (a date, a number, a choice, a boolean; each end
        of a range, `close_date_after` / `close_date_before`): for them an empty value is no value."""
        names = []
        for name, field in filterset.form.fields.items():
            suffixes = getattr(field.widget, "suffixes", None)
            if suffixes:
                names += [f"{name}_{suffix}" if suffix else name for suffix in suffixes]
            elif not isinstance(field, CharField | MultipleChoiceField):
                names.append(name)
        return names


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=-amount,name`: the view's `ordering_fields`, each optionally prefixed with `-`.

    An unknown term is a 400 that lists the valid ones (DRF ignores it silently), and the schema
    enumerates them, so a client can only send what sorts."""

    def terms(self, view, request=None, queryset=None) -> list[str]:
        """Only the view's `ordering_fields` (none when it names none: DRF's default, every serializer field,
        offers sorts the database cannot do, e.g. by a computed label)."""
        fields = [f if isinstance(f, str) else f[0] for f in getattr(view, "ordering_fields", None) or []]
        return [term for name in fields for term in (name, f"-{name}")]

    def get_ordering(self, request, queryset, view):
        raw = single_query_value(request, self.ordering_param)
        if not raw:  # absent, or an empty list
            return self.get_default_ordering(view)
        given = [term.strip() for term in raw.split(",")]
        valid = self.terms(view, request, queryset)
        unknown = [term for term in given if term not in valid]
        if unknown:
            raise exceptions.ValidationError(
                {
                    self.ordering_param: [
                        _("Cannot sort by %(terms)s; choose from %(choices)s.")
                        % {"terms": ", ".join(repr(t) for t in unknown), "choices": ", ".join(valid)}
                    ]
                }
            )
        return given

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": str(_("Sort by these fields, comma-separated; `-` before a field sorts descending.")),
                "schema": {"type": "array", "items": {"type": "string", "enum": self.terms(view)}},
                "style": "form",
                "explode": False,
            }
        ]


# --- related ids in request bodies ---------------------------------------------------------


class VisiblePrimaryKeyRelatedField(strict.PrimaryKeyRelatedField):
    """A related id in a request body, looked up only among the rows the requesting user may see.

    `scope(user)` returns those rows (e.g. `Customer.objects.visible_to`); an id outside them
    gets the same "does not exist" error as an id that does not exist at all, so nothing leaks.
    The id is a JSON integer (`salesmgmt.fields`); in a query string use `VisibleIdQueryField`.
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


class VisibleIdQueryField(VisiblePrimaryKeyRelatedField):
    """`VisiblePrimaryKeyRelatedField` for a query-string serializer: `?team=5` is text, read as the id 5."""

    def to_internal_value(self, data):
        if isinstance(data, str) and data.isascii() and data.isdigit() and int(data) <= MAX_ID:
            data = int(data)
        return super().to_internal_value(data)


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
