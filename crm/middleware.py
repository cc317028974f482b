"""Request-level middleware of the organisation app."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from salesmgmt.memo import request_memo

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ScopeMemoMiddleware:
    """A read-only request reads its user's scope (the regions and people it covers) once, however many
    querysets it filters with it, and the company's settings once; a request that writes reads them afresh each
    time (it may move people, or change the settings)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            return self.get_response(request)
        with request_memo():
            return self.get_response(request)
