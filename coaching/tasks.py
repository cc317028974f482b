"""Thin Celery tasks of the coaching app: a service does the work, re-running changes nothing."""

from celery import shared_task


@shared_task(name="coaching.send_weekly_digests", ignore_result=True)
def send_weekly_digests() -> int:
    """Monday morning: each person's weekly digest, once per person and ISO week (a second run, or a
    redelivery, sends only what is still owed: see `coaching.digest`)."""
    from coaching.digest import digests_send

    return digests_send().sent
