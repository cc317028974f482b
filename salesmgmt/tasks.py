from datetime import timedelta

from celery import shared_task

from salesmgmt import outbox


@shared_task(name="salesmgmt.flush_outbox", ignore_result=True)
def flush_outbox(older_than_seconds: int = 30) -> int:
    """Beat job: publish work whose first publish failed (e.g. while Redis was down)."""
    return outbox.flush(timedelta(seconds=older_than_seconds))


@shared_task(name=outbox.DRAIN_TASK, ignore_result=True)
def drain_outbox(name: str) -> int:
    """Run the pending calls of a drained-together task in one go (`salesmgmt.outbox.drain_queued`)."""
    return outbox.drain_queued(name)
