"""Row locks that hold under concurrent changes (PostgreSQL's FOR UPDATE re-check)."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def locked_get(queryset: QuerySet[M], pk: object) -> M:
    """The row `pk` of `queryset`, locked (FOR UPDATE) until the transaction ends, as it is once locked.

    The lock is taken on the row alone, then the row is read through `queryset` (its `select_related` joins and
    all). A locking read that joined other tables would wait for a transaction holding the row, then check the
    row's new version against the *old* versions of the joined rows: a deal whose stage another move changed no
    longer joins its old stage and the read finds nothing (a 500 for the second of two people moving one deal),
    and an optional relation (a customer) that changed would read as none. Read after the lock, the row and its
    relations are those committed, and the caller's version check answers the loser (409).
    Call it inside `transaction.atomic`."""
    lock_rows(queryset.model._default_manager.filter(pk=pk))
    return queryset.get(pk=pk)


def lock_rows(queryset: QuerySet[M]) -> list:
    """Lock the rows of `queryset` on their own table alone (FOR UPDATE OF the rows' table, no join re-checked
    against old versions: see `locked_get`), in id order (two lockers of the same rows never deadlock); their ids.
    Read them afterwards, with whatever they join, as they are once locked."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
