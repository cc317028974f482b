"""`id_url(name, pk)`: `reverse(name, args=[pk])` for the URLs of rows (a deal, a target), at a fraction of the cost;
`named_url(name)`: `reverse(name)` of a URL without arguments (every page's navigation asks for twenty-five).

Django's `reverse` resolves the name and checks the arguments against the pattern on every call (30-100 µs); a
list of fifty deals asks for a hundred such URLs that differ in the id alone. Here the URL is reversed once (per
name, URL configuration and script prefix) with a placeholder id, and each row's id is written into that text: the
same string `reverse` gives for any integer id. Only for URLs whose one argument is an `<int:...>`. A URL without
arguments is reversed once per name, application namespace, URL configuration and script prefix (no URL pattern is
translated, so the language changes none)."""

from __future__ import annotations

from django.urls import get_script_prefix, get_urlconf, reverse

_PLACEHOLDER = "2147483647"  # an id no row has yet, written once in a reversed URL
_REVERSED: dict[tuple[str, str | None, str | None, str], tuple[str, str]] = {}
_NAMED: dict[tuple[str, str | None, str | None, str], str] = {}


def id_url(name: str, pk: int, current_app: str | None = None) -> str:
    """The URL of `name` for the row `pk` (an integer), as `reverse(name, args=[pk], current_app=current_app)`
    writes it."""
    key = (name, current_app, get_urlconf(), get_script_prefix())
    found = _REVERSED.get(key)
    if found is None:
        url = reverse(name, args=[int(_PLACEHOLDER)], current_app=current_app)
        before, placeholder, after = url.partition(_PLACEHOLDER)
        if not placeholder or _PLACEHOLDER in after:
            raise ValueError(f"{name!r} is not a URL of one integer id: {url}")
        found = _REVERSED[key] = (before, after)
    return f"{found[0]}{int(pk)}{found[1]}"


def named_url(name: str, current_app: str | None = None) -> str:
    """`reverse(name, current_app=current_app)` of a URL without arguments, reversed once."""
    key = (name, current_app, get_urlconf(), get_script_prefix())
    found = _NAMED.get(key)
    if found is None:
        found = _NAMED[key] = reverse(name, current_app=current_app)
    return found
