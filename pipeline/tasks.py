"""Thin Celery tasks of the pipeline app: ids in, a service does the work, re-running changes nothing."""

from celery import shared_task


@shared_task(ignore_result=True)
def import_commit(job_id: int) -> None:
    """Commit a checked import job; a job already running, done or failed is left alone."""
    from pipeline.importing import import_job_commit

    import_job_commit(job_id=job_id)
