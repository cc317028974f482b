"""The OpenAPI schema says exactly what the API answers (drf-spectacular's generator, refined once for every
serializer and view, settings `DEFAULT_SCHEMA_CLASS`):

- a response field is `nullable` when the server can answer null: its source crosses a relation that may be
  empty (`region_name` of a deal without a region), its model field is nullable, or its default is None;
- a read-only field of a model field with `blank=True` may answer "" (an enum then lists "", a formatted
  string such as an e-mail address allows the empty string), which DRF's read-only fields forget;
- every field a response always carries is `required` (a generated client's types are then not optional);
- a decimal of a request body states the pattern its field checks (`salesmgmt.fields.DecimalField`);
- every operation lists the errors it can answer, with the one error shape: 401/403 where a login is needed,
  400 where it takes a body or query parameters (filters, ordering, pagination), 404 where it has a path
  parameter or pages (a page past the last).
"""

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.fields import empty

from salesmgmt import fields as strict
from salesmgmt.api import ERROR_DESCRIPTIONS, ErrorSerializer


def model_source(field) -> tuple[models.Field | None, bool]:
    """The model field a serializer field reads (None when it reads something else: a property, a method)
    and whether any relation on the way, or the field itself, may be null."""
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    if not isinstance(parent, serializers.ModelSerializer) or model is None:
        return None, False
    nullable, model_field = False, None
    for attr in field.source_attrs:
        if model is None:
            return None, nullable
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None, nullable
        if getattr(model_field, "null", False) or (model_field.auto_created and model_field.one_to_one):
            nullable = True
        model = model_field.related_model if model_field.is_relation else None
    return model_field, nullable


def always_present(field, serializer) -> bool:
    """Does the serializer always write this field? Only a non-required field without a default,
    missing on the object it reads, is left out (DRF's SkipField): a model always has its fields."""
    if isinstance(serializer, serializers.ModelSerializer) or field.read_only or field.required:
        return True
    return field.default is not empty or field.allow_null


class AutoSchema(openapi.AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if direction == "response" and field.read_only:
            model_field, nullable = model_source(field)
            if nullable or field.default is None:
                field.allow_null = True
            if model_field is not None and getattr(model_field, "blank", False) and hasattr(field, "allow_blank"):
                field.allow_blank = True
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, strict.DecimalField) and "pattern" in schema:
            # The pattern the field checks (drf-spectacular's also allows "", "." and "-").
            schema["pattern"] = field.pattern
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response":
            serializer = force_instance(serializer)
            properties = schema.get("properties", {})
            required = set(schema.get("required", []))
            required |= {
                name
                for name, field in serializer.fields.items()
                if name in properties and always_present(field, serializer)
            }
            if required:
                schema["required"] = sorted(required)
        return schema

    def _error_codes(self) -> set[int]:
        codes: set[int] = set()
        if any(not isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            codes |= {401, 403}
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes.add(400)
        locations = {parameter.get("in") for parameter in self._get_parameters()}
        if "query" in locations:
            codes.add(400)
        if "path" in locations or self._get_pagination_parameters():
            codes.add(404)
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in sorted(self._error_codes()):
            if str(code) not in responses:
                error = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
                responses[str(code)] = self._get_response_for_code(error, str(code), direction=direction)
        return dict(sorted(responses.items()))


class TokenScheme(OpenApiAuthenticationExtension):
    """The token header, prefix included: `Authorization: Token <key>` (OpenAPI 3.0 has no field for a
    prefix other than Bearer, so the description says it, and `x-token-prefix` for generators that read it)."""

    target_class = "rest_framework.authentication.TokenAuthentication"
    name = "tokenAuth"
    match_subclasses = True
    priority = 1

    def get_security_definition(self, auto_schema):
        keyword = self.target.keyword
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": str(
                _(
                    'Send the header `Authorization: %(keyword)s <key>`: the prefix is "%(keyword)s" (not "Bearer"), '
                    "then a space, then the key from `POST /api/auth/token/`."
                )
                % {"keyword": keyword}
            ),
            "x-token-prefix": keyword,
        }
