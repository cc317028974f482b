"""What a read-only request reads once: inside `request_memo` (crm.middleware enters it for GET, HEAD and OPTIONS
requests) `current()` is a dict for the block's duration, in which a reader keeps what it read under a key of its
own (a tuple starting with its name) and finds it again on its next call. Outside the block `current()` is None and
every call reads afresh: a request that writes may change what was read (move people, change the settings)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_memo: ContextVar[dict[tuple, Any] | None] = ContextVar("request_memo", default=None)


@contextmanager
def request_memo() -> Iterator[None]:
    """Keep what is read inside the block for the rest of it (a request that writes nothing)."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def current() -> dict[tuple, Any] | None:
    """The memo of the block running now, or None outside one."""
    return _memo.get()
