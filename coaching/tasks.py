"""Thin Celery tasks of the coaching app: ids in, a service does the work, re-running changes nothing."""

from celery import shared_task


@shared_task(name="coaching.send_weekly_digests", ignore_result=True)
def send_weekly_digests() -> int:
    """Monday morning: queue one task per person still owed this week's digest (a second run, or the catch-up
    run, queues only who is still owed one: see `coaching.digest`)."""
    from coaching.digest import digests_enqueue

    return digests_enqueue()


# SMTP errors are OSErrors: retried a few times, a minute apart and more; the catch-up run queues the rest.
@shared_task(
    name="coaching.send_weekly_digest",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=3,
)
def send_weekly_digest(user_id: int, day: str) -> bool:
    """One person's digest of the week of `day` (ISO date), unless it is sent or claimed already."""
    from datetime import date

    from coaching.digest import digest_send_to

    return digest_send_to(user_id=user_id, today=date.fromisoformat(day))
