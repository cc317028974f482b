"""Freshness: cached pages that a committed write makes stale at once, never later.

A page (or an API list) that is read far more often than what it shows changes — a manager's team pipeline, a
deal, the attainment of a team — is kept in the cache under a key that holds the *versions* of what it shows:
counters in the `salesmgmt_freshness` table, one per key. A write bumps the counters of what it changed, in one
statement after its transaction commits, so the next read misses and renders afresh; nothing is ever deleted
from the cache, and two processes can never disagree about what is current (the versions are in the database).

Keys (the apps name them; see `crm.scopes.freshness_keys`):
- `EVERYTHING` ("*"): bumped by any write this module was not told more precisely about. Every cached page's key
  holds it, so a write nobody declared (an admin edit, an import, a rename, raw SQL) makes every page stale.
- narrower keys (a region and its ancestors, a person) are bumped by the writes that declare them: a service
  runs under `covers(tables)` and calls `touch(keys)`; its writes to those tables then bump only those keys.

How a write is seen: every database connection runs its statements through `_watch` (an execute wrapper). A
statement that writes (INSERT, UPDATE, DELETE, COPY, TRUNCATE, DDL) to a table that is neither `IGNORED` nor
covered by the running `covers` block bumps `EVERYTHING`. psycopg's `cursor.copy()` bypasses Django's cursor:
code that COPYs into a real table calls `changed()` itself.

Why after the commit: a reader that read the old versions and then the new rows stores new rows under old
versions (harmless: nobody asks for the old versions after the bump); a bump before the commit could let a reader
store old rows under the new versions. The bump runs in `transaction.on_commit`, so a transaction that rolls
back bumps nothing; a process that dies between its commit and its bump leaves pages stale for at most
`PAGE_CACHE_SECONDS` (the entries' lifetime). A request whose own transaction has written and not committed yet
(a test's transaction, a view that writes then renders) neither reads nor fills the cache.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, OperationalError, ProgrammingError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.utils import timezone, translation

from salesmgmt.memo import current as memo_now

log = logging.getLogger(__name__)

EVERYTHING = "*"
TABLE = "salesmgmt_freshness"

# Tables whose rows no cached page shows: writing them bumps nothing.
IGNORED = frozenset(
    {
        TABLE,
        "django_session",
        "salesmgmt_outboxtask",
        "authtoken_token",
        "axes_accessattempt",
        "axes_accessfailurelog",
        "axes_accesslog",
        "django_admin_log",
        "django_migrations",
    }
)

# Statements that write, by their first word. Any other (SELECT, a UNION in parentheses, SAVEPOINT, SET, a
# migration's DDL or a bulk service's temporary tables) changes no row a page shows; a WITH writes when one of its
# parts does. A deploy's migrate bumps every page once (`migrated`).
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRUNCATE", "REPLACE", "CALL", "DO"})
# The tables a statement writes: INSERT [OR IGNORE] INTO t (SQLite's conflict clause), UPDATE t (not "FOR UPDATE",
# "KEY UPDATE", "DO UPDATE"), DELETE FROM t,
# MERGE INTO t, COPY t, TRUNCATE [TABLE] t.
_WRITTEN = re.compile(
    r"""(?:\bINSERT\s+(?:OR\s+\w+\s+)?INTO|\bMERGE\s+INTO|(?<!FOR\s)(?<!KEY\s)(?<!DO\s)\bUPDATE|\bDELETE\s+FROM|^COPY
        |\bTRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?"?(\w+)"?""",
    re.IGNORECASE | re.VERBOSE,
)

_covered: ContextVar[frozenset[str]] = ContextVar("freshness_covered", default=frozenset())


class _Block:
    """What a `covering` block did so far: the keys it touched, whether it wrote to a covered table."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.wrote = False
        self.declared = False  # touched keys, or said its writes show on no cached page (`unseen`)


_touched: ContextVar[_Block | None] = ContextVar("freshness_touched", default=None)


def written_tables(sql: str) -> set[str] | None:
    """The tables `sql` writes; None when it writes nothing; an empty set when it writes something unknown."""
    text = sql.lstrip(" \t\r\n(")
    head = text[:12].split(None, 1)
    word = head[0].upper().rstrip(";") if head else ""
    if word == "WITH":
        return {name.lower() for name in _WRITTEN.findall(text)} or None
    if word not in _WRITES:
        return None
    return {name.lower() for name in _WRITTEN.findall(text)}


def _pending(connection: BaseDatabaseWrapper) -> set[str]:
    pending = connection.__dict__.get("freshness_pending")
    if pending is None:
        pending = connection.__dict__["freshness_pending"] = set()
    return pending


def _add(connection: BaseDatabaseWrapper, keys: Iterable[str]) -> None:
    pending = _pending(connection)
    pending |= set(keys)
    # Registered for every write, not only for keys new to the set: keys left pending by a transaction that rolled
    # back must not stop this one's commit from bumping.
    if connection.in_atomic_block:
        connection.on_commit(lambda: flush(connection))
    else:
        flush(connection)  # autocommit: the write has committed (with autocommit off, the next flush takes them)


def flush(connection: BaseDatabaseWrapper | None = None) -> None:
    """Bump the versions of every key the connection's committed writes touched (one statement, keys in order,
    so two bumps never wait on each other in opposite orders)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    pending = _pending(connection)
    if not pending or connection.in_atomic_block or not connection.get_autocommit():
        return  # still inside a transaction: its commit flushes them
    keys = sorted(pending)
    pending.clear()
    values = ", ".join(["(%s, 1)"] * len(keys))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (key, version) VALUES {values} "
                f"ON CONFLICT (key) DO UPDATE SET version = {TABLE}.version + 1",
                keys,
            )
    except (ProgrammingError, OperationalError):
        if TABLE in connection.introspection.table_names():
            raise
        # Before this app's migration ran (a new database being migrated): nothing is cached yet either.


def _watch(execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
    result = execute(sql, params, many, context)
    tables = written_tables(sql)
    # A statement that changed no row (an UPDATE matching nothing) changes no page; -1: the driver cannot tell.
    if tables is not None and getattr(context.get("cursor"), "rowcount", -1) != 0:
        covered = _covered.get()
        if not tables or any(t not in IGNORED and t not in covered for t in tables):
            log.debug("freshness: %s written, no narrower key: every cached page is stale", sorted(tables) or sql[:80])
            _add(context["connection"], (EVERYTHING,))
        elif covered and (state := _touched.get()) is not None and tables & covered:
            state.wrote = True
    return result


def watch_connection(connection: BaseDatabaseWrapper, **_kwargs: Any) -> None:
    """`connection_created` receiver: every statement of the connection goes through `_watch`."""
    if _watch not in connection.execute_wrappers:
        connection.execute_wrappers.append(_watch)


def changed(keys: Iterable[str] = (EVERYTHING,), *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Something changed that the execute wrapper cannot see (a COPY): bump `keys` when the transaction commits."""
    _add(connections[using], keys)


def changed_on(connection: BaseDatabaseWrapper) -> None:
    """`changed()` for a connection given (a COPY on a thread that writes over another thread's connection)."""
    _add(connection, (EVERYTHING,))


def touch(keys: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """What the running `covers` block changed: its writes to the covered tables bump these keys (and only these)."""
    keys = set(keys)
    block = _touched.get()
    if block is not None:
        block.keys |= keys
        block.declared = True
    _add(connections[using], keys)


def unseen() -> None:
    """What the running `covers` block writes shows on no cached page (a bookkeeping column such as an alert's
    last-seen time, read by pages that are never cached): its writes to the covered tables bump nothing."""
    block = _touched.get()
    if block is not None:
        block.declared = True


@contextmanager
def covering(tables: Iterable[str]) -> Iterator[None]:
    """Within the block, writes to `tables` bump only the keys the block passes to `touch` — which it must call
    (or `unseen`): a block that wrote to them and declared nothing bumps `EVERYTHING`."""
    covered = _covered.set(_covered.get() | frozenset(tables))
    block = _Block()
    touched = _touched.set(block)
    try:
        yield
        if block.wrote and not block.declared:
            changed()
    finally:
        _touched.reset(touched)
        _covered.reset(covered)


def covers(*tables: str) -> Callable:
    """Decorator form of `covering`, for a service function."""

    def decorator(fn: Callable) -> Callable:
        @wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with covering(tables):
                return fn(*args, **kwargs)

        return wrapped

    return decorator


def versions(keys: list[str], *, using: str = DEFAULT_DB_ALIAS) -> tuple[int, ...]:
    """The current version of each key (0 for a key never bumped), in the order given. Inside a read-only request
    (`salesmgmt.memo`), the version of `EVERYTHING` read here is kept for `everything_version`."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter: a director's roll-up reads ~660 keys, and binding them one by one (psycopg's
            # client-side binding quotes each) cost 4.6 ms of CPU a call against 0.4 ms for the array.
            cursor.execute(f"SELECT key, version FROM {TABLE} WHERE key = ANY(%s)", [list(keys)])
        else:
            marks = ", ".join(["%s"] * len(keys))
            cursor.execute(f"SELECT key, version FROM {TABLE} WHERE key IN ({marks})", keys)
        found = dict(cursor.fetchall())
    memo = memo_now()
    if memo is not None and EVERYTHING in keys and using == DEFAULT_DB_ALIAS:
        memo[_EVERYTHING_READ] = found.get(EVERYTHING, 0)
    return tuple(found.get(k, 0) for k in keys)


_EVERYTHING_READ = ("freshness", EVERYTHING)


def everything_version() -> int:
    """The version of `EVERYTHING` (bumped by every write to the organisation, among others): read once a read-only
    request (the page cache's lookup reads it already), on every call outside one."""
    memo = memo_now()
    if memo is not None and _EVERYTHING_READ in memo:
        return memo[_EVERYTHING_READ]
    return versions([EVERYTHING])[0]


def _clean(connection: BaseDatabaseWrapper) -> bool:
    """True when the connection holds no write of its own that has not committed (the cache may be used)."""
    if not _pending(connection):
        return True
    if connection.in_atomic_block:
        return False
    flush(connection)  # left over from a transaction that rolled back: bumping it is harmless
    return True


def clean(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether what is kept under versions may be read and kept now: this connection has no write of its own that
    has not committed (its own reads would see it; the versions do not)."""
    return _clean(connections[using])


def _has_messages(request: HttpRequest) -> bool:
    return hasattr(request, "_messages") and len(messages.get_messages(request)) > 0


def _credential(request: HttpRequest, *, forms: bool) -> str | None:
    """What identifies the caller's login: the session (with its data) or the API token. None: do not cache.
    `forms`: the response carries a CSRF token (a page), which must match a cookie the browser holds."""
    auth = request.META.get("HTTP_AUTHORIZATION")
    if auth:
        return "auth:" + auth
    session = getattr(request, "session", None)
    if session is None or not session.session_key:
        return None
    csrf = request.COOKIES.get(settings.CSRF_COOKIE_NAME, "") if forms else ""
    if forms and not csrf:
        return None
    data = repr(sorted(session.items()))
    return f"session:{session.session_key}:{csrf}:{data}"


VARY_HEADERS = ("HTTP_ACCEPT", "HTTP_HX_REQUEST", "HTTP_HX_TARGET", "HTTP_HX_TRIGGER", "HTTP_HX_BOOSTED")


def page_key(request: HttpRequest, view: str, credential: str, token: tuple[int, ...]) -> str:
    parts = [
        view,
        request.get_full_path(),
        credential,
        translation.get_language() or "",
        timezone.get_current_timezone_name(),
        timezone.localdate().isoformat(),
        *(request.META.get(h, "") for h in VARY_HEADERS),
        repr(token),
    ]
    return "page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def cache_lookup(
    request: HttpRequest, view: str, keys_for: Callable[[Any], list[str] | None], *, forms: bool = True
) -> tuple[str | None, Any]:
    """(the cache key of this request's page, what the cache holds for it); (None, None) when it may not be cached."""
    if request.method != "GET" or not settings.PAGE_CACHE or not clean() or _has_messages(request):
        return None, None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None, None
    credential = _credential(request, forms=forms)
    keys = keys_for(user) if credential else None
    if not keys:
        return None, None
    key = page_key(request, view, credential, versions([EVERYTHING, *keys]))
    return key, cache.get(key)


def cache_store(key: str, value: Any) -> None:
    cache.set(key, value, settings.PAGE_CACHE_SECONDS)


def cached_page(keys_for: Callable[[Any], list[str] | None]) -> Callable:
    """Decorator of a GET view rendering what the user's scope shows: the response is kept under the versions of
    `keys_for(user)` (the keys a write to what the user sees bumps) and served from the cache until one moves.
    Only a 200 that sets no cookie is kept."""

    def decorator(view: Callable) -> Callable:
        name = f"{view.__module__}.{view.__qualname__}"

        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            key, hit = cache_lookup(request, name, keys_for)
            if hit is not None:
                content, headers = hit
                return HttpResponse(content, headers=headers)
            response = view(request, *args, **kwargs)
            if key is None or response.status_code != 200 or response.cookies or response.streaming:
                return response
            if isinstance(response, SimpleTemplateResponse):
                response.render()
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            cache_store(key, (response.content, headers))
            return response

        return wrapped

    return decorator


def cached_data(keys_for: Callable[[Any], list[str] | None]) -> Callable:
    """`cached_page` for a DRF view method: keeps the response's data (rendered afresh on each hit, so the
    format the client negotiated applies)."""

    def decorator(method: Callable) -> Callable:
        name = f"{method.__module__}.{method.__qualname__}"

        @wraps(method)
        def wrapped(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            from rest_framework.response import Response

            key, hit = cache_lookup(request, name, keys_for, forms=False)
            if hit is not None:
                return Response(hit)
            response = method(self, request, *args, **kwargs)
            if key is not None and response.status_code == 200 and not response.cookies:
                cache_store(key, response.data)
            return response

        return wrapped

    return decorator


def migrated(**_kwargs: Any) -> None:
    """`post_migrate` receiver: a deploy's schema and data migrations make every cached page stale."""
    changed()
