"""Fields of API request bodies that take exactly the JSON type the OpenAPI schema gives them.

DRF's fields coerce what they are sent: `0`, `1`, `"yes"` or `"off"` become booleans, `12.5` or `" 1e3"` a
decimal, `12` a string, `"7"` an id. A generated client, schemathesis and a person reading the schema go by
the schema instead, so these fields take the schema's word and nothing else:

- a boolean is `true` or `false`;
- an integer is a JSON integer (`7`, not `"7"` or `7.0`), and so is an id (a currency's, its code, is a string);
- a string, a date (`YYYY-MM-DD`) and a choice of text are JSON strings;
- a decimal (amounts, weights, thresholds) is a JSON *string* of digits such as `"1250.50"`, the pattern the
  schema states: never a JSON number, which a client's float would already have rounded (Stripe and most
  money APIs take decimals as strings for that reason).

Anything else is a 400 with a message under the field's name. Every writable field of a request body is
one of these (tests/salesmgmt/api/test_strict_fields.py walks the request bodies of the schema), and
`ModelSerializer` maps model fields to them. A query-string serializer keeps DRF's fields: a query value
is always text.
"""

import copy
import re
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import relations, serializers


def is_json_integer(value: Any) -> bool:
    """A JSON integer as Python's decoder gives it: an int, but not a bool (True is an int in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, as JSON Schema names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class StrictField:
    """Marks a field that checks the JSON type of its input (the test of request bodies looks for it)."""


class BooleanField(StrictField, serializers.BooleanField):
    default_error_messages = {"invalid": _("Give true or false.")}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StringInput(StrictField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(StringInput, serializers.CharField):
    pass


class EmailField(StringInput, serializers.EmailField):
    pass


class SlugField(StringInput, serializers.SlugField):
    pass


class URLField(StringInput, serializers.URLField):
    pass


class IntegerInput(StrictField):
    def to_internal_value(self, data):
        if not is_json_integer(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(IntegerInput, serializers.IntegerField):
    pass


class BigIntegerField(IntegerInput, serializers.BigIntegerField):
    pass


class FloatField(StrictField, serializers.FloatField):
    def to_internal_value(self, data):
        if not (is_json_integer(data) or isinstance(data, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class DecimalField(StrictField, serializers.DecimalField):
    """A decimal as a JSON string matching `pattern` (the schema's): an optional minus, at most the whole
    digits the field holds, and at most its decimal places after a point. DRF's own messages say which
    limit a string of digits breaks (too many digits, too many places, below the minimum)."""

    default_error_messages = {"not_a_string": _('Give the number as a string of digits, e.g. "1250.50".')}
    DIGITS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # ASCII digits: Python's \d also takes "١٢", JSON Schema's not

    @property
    def pattern(self) -> str:
        whole = f"{{1,{self.max_whole_digits}}}" if self.max_whole_digits is not None else "+"
        if self.decimal_places == 0:
            return rf"^-?[0-9]{whole}$"
        places = f"{{1,{self.decimal_places}}}" if self.decimal_places is not None else "+"
        return rf"^-?[0-9]{whole}(?:\.[0-9]{places})?$"

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.DIGITS.fullmatch(data):
            self.fail("not_a_string")
        value = super().to_internal_value(data)
        if not re.fullmatch(self.pattern, data):  # within the limits, but written longer (leading zeros)
            self.fail("not_a_string")
        return value


class DateField(StrictField, serializers.DateField):
    """`YYYY-MM-DD` only, the schema's `format: date` (Python also reads `20270331` and `2027-W13-3`)."""

    ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

    def to_internal_value(self, value):
        if not isinstance(value, str) or not self.ISO_DATE.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class DateTimeField(StrictField, serializers.DateTimeField):
    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]")
        return super().to_internal_value(value)


class ChoiceField(StrictField, serializers.ChoiceField):
    """One of the choices, of the choices' own JSON type (DRF would read `1` for `"1"` and `"1"` for `1`)."""

    def to_internal_value(self, data):
        types = {json_type(key) for key in self.choices}
        if self.allow_blank:
            types.add("string")
        if json_type(data) not in types:
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class ManyRelatedField(StrictField, serializers.ManyRelatedField):
    """A list of ids (DRF would take an object for one, as the list of its keys)."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=json_type(data))
        return super().to_internal_value(data)


class PrimaryKeyRelatedField(StrictField, serializers.PrimaryKeyRelatedField):
    """An id as a JSON integer (DRF would look `"7"` up too), or a string for a text key; with `many=True`, a
    list of them."""

    @classmethod
    def many_init(cls, *args, **kwargs):
        # DRF's RelatedField.many_init, building our list field.
        list_kwargs = {"child_relation": cls(*args, **kwargs)}
        list_kwargs.update({key: kwargs[key] for key in kwargs if key in relations.MANY_RELATION_KWARGS})
        return ManyRelatedField(**list_kwargs)

    def to_internal_value(self, data):
        if self.pk_field is None:
            queryset = self.queryset if self.queryset is not None else self.get_queryset()
            # The schema's type of the id: an integer for integer keys, else (a currency's code) a string.
            expected = "integer" if isinstance(queryset.model._meta.pk, models.IntegerField) else "string"
            if json_type(data) != expected:
                self.fail("incorrect_type", data_type=json_type(data))
        return super().to_internal_value(data)


class JSONField(StrictField, serializers.JSONField):
    """Any JSON value: its schema is any type."""


# DRF's field of each kind -> ours, for the fields ModelSerializer builds from model fields.
STRICT_FIELDS: dict[type[serializers.Field], type[serializers.Field]] = {
    serializers.BooleanField: BooleanField,
    serializers.CharField: CharField,
    serializers.EmailField: EmailField,
    serializers.SlugField: SlugField,
    serializers.URLField: URLField,
    serializers.IntegerField: IntegerField,
    serializers.BigIntegerField: BigIntegerField,
    serializers.FloatField: FloatField,
    serializers.DecimalField: DecimalField,
    serializers.DateField: DateField,
    serializers.DateTimeField: DateTimeField,
    serializers.JSONField: JSONField,
}


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer building the fields above from model fields (ids and choices included)."""

    serializer_field_mapping = {
        model_field: STRICT_FIELDS.get(field, field)
        for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
    }
    serializer_related_field = PrimaryKeyRelatedField
    serializer_choice_field = ChoiceField

    def get_fields(self):
        """DRF builds a model serializer's fields from the model on every instance (a deal's thirty: ~1 ms, paid by
        every deal answered and every move): here they are built once per class and every instance gets a deep
        copy, as DRF copies a serializer's declared fields (a field binds to the serializer it is copied for)."""
        cls = type(self)
        prototype = cls.__dict__.get("_prototype_fields")
        if prototype is None:
            prototype = super().get_fields()
            cls._prototype_fields = prototype
        return copy.deepcopy(prototype)
