"""The JSON parser of every API view (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES, and views that name
their parsers). Apart from `salesmgmt.api` because DRF imports the default parsers while defining
APIView: this module must not import `rest_framework.views`."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers

MAX_JSON_DEPTH = 32
TOO_DEEP = _("The JSON body is nested too deeply: at most %(limit)d levels of lists and objects.")


def json_depth_exceeds(data: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a depth limit, the default of every endpoint.

    Python's decoder recurses per level: `[[[...]]]` a thousand deep raises RecursionError, a 500
    before any view runs (login included). Too deep is bad input like any other: a 400 with a message.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        too_deep = exceptions.ParseError(str(TOO_DEEP) % {"limit": MAX_JSON_DEPTH})
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise too_deep
        return data
