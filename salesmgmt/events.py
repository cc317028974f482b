"""Domain events: an app says what happened; the apps above it subscribe background work to it.

A lower app declares its events (`pipeline/events.py`, as `crm/signals.py` declares its signals) and
publishes them from its services without knowing who listens; a higher app subscribes a Celery task in
its `AppConfig.ready()`, so the dependency is an import pointing the allowed way:

    deal_figures_changed.subscribe(recompute_for_deal)       # targets/apps.py
    deal_figures_changed.publish(deal.pk, None, [], region)  # pipeline/services.py

Each subscribed task goes through the outbox: recorded in the publishing transaction, sent after
commit, coalesced by task and arguments, run in-process without a broker. The event's arguments are
the subscribed tasks' arguments, so they are ids and plain JSON values, documented with the event.
(A crm signal runs its receivers at once, in the same transaction: for writes that must commit with
the change. An event is for work that can follow it.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from salesmgmt import outbox

if TYPE_CHECKING:
    from celery import Task


class Event:
    """Something that happened in one app, with the task names subscribed to it (in subscription order)."""

    def __init__(self, name: str):
        self.name = name
        self._tasks: list[str] = []

    def __repr__(self) -> str:
        return f"<Event {self.name}>"

    def subscribe(self, task: Task | str) -> None:
        """Run `task` (a Celery task, or its registered name) with the event's arguments each time it happens."""
        name = task if isinstance(task, str) else task.name
        if name not in self._tasks:  # ready() can run more than once (tests, autoreload)
            self._tasks.append(name)

    def unsubscribe(self, task: Task | str) -> None:
        name = task if isinstance(task, str) else task.name
        if name in self._tasks:
            self._tasks.remove(name)

    @property
    def subscribers(self) -> tuple[str, ...]:
        return tuple(self._tasks)

    def publish(self, *args: object) -> None:
        """Record the subscribed tasks in the current transaction; they are sent once it commits."""
        for name in self._tasks:
            outbox.enqueue_name(name, *args)
