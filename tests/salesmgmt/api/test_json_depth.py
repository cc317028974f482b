"""A JSON body nested absurdly deep is bad input: a 400 with a message, before and after login, never a 500."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.test import APIClient
from rest_framework.views import APIView

from crm.models import Customer
from salesmgmt.parsers import MAX_JSON_DEPTH, JSONParser, json_depth_exceeds


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


BODIES = [
    pytest.param(nested_list(1_000), id="list-1000"),
    pytest.param(nested_list(100_000), id="list-100000"),
    pytest.param(nested_object(1_000), id="object-1000"),
    pytest.param(nested_object(100_000), id="object-100000"),
]


def assert_too_deep(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "parse_error"
    assert "nested too deeply" in body["detail"]


@pytest.mark.parametrize("body", BODIES)
def test_the_token_endpoint_answers_400_without_login(db, body):
    response = APIClient().post("/api/auth/token/", body, content_type="application/json")
    assert_too_deep(response)


@pytest.mark.parametrize("body", BODIES)
def test_a_write_endpoint_answers_400_and_writes_nothing(api, org, body):
    before = Customer.objects.count()
    response = api(org.manager).post("/api/customers/", body, content_type="application/json")
    assert_too_deep(response)
    assert Customer.objects.count() == before


def test_a_body_at_the_limit_still_reaches_the_view(api, org):
    """The limit only refuses absurd nesting: a body at the limit is parsed and validated as usual."""
    response = api(org.manager).post("/api/customers/", nested_object(MAX_JSON_DEPTH), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"  # the serializer's answer (no name), not the parser's


def test_depth_is_counted_without_recursion():
    assert not json_depth_exceeds({"a": [1, {"b": []}]}, 4)  # object, list, object, list
    assert json_depth_exceeds({"a": [1, {"b": []}]}, 3)
    assert not json_depth_exceeds("scalar", 0)
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    assert json_depth_exceeds(deep, MAX_JSON_DEPTH)


def _api_views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            if view is not None and issubclass(view, APIView):
                yield view


def test_every_api_view_parses_json_with_the_depth_limit():
    """A view that names its own parsers (as DRF's token view does) must still name ours."""
    views = set(_api_views(get_resolver().url_patterns))
    assert views
    unguarded = {
        view.__name__
        for view in views
        for parser in view.parser_classes
        if issubclass(parser, DRFJSONParser) and not issubclass(parser, JSONParser)
    }
    assert unguarded == set()
