import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")

app = Celery("salesmgmt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _refuse_insecure_start(**kwargs) -> None:
    """A worker or beat refuses the development SECRET_KEY with DEBUG off, as gunicorn does (salesmgmt.startup).
    SystemExit, because Celery logs and swallows an Exception raised by a signal handler."""
    from django.core.exceptions import ImproperlyConfigured

    from salesmgmt.startup import refuse_insecure_start

    try:
        refuse_insecure_start()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"ImproperlyConfigured: {exc}") from exc


@task_prerun.connect
@task_postrun.connect
def close_stale_connections(**kwargs) -> None:
    """Around every task, Django's rule around every request: a connection older than `DB_CONN_MAX_AGE`, or one
    that errored and no longer answers, is closed (the next query opens a new one); the others are kept, and
    checked once before their next use (`conn_health_checks`). Celery's own close per task is off
    (`CELERY_DB_REUSE_MAX`). An eager task runs inside its caller's request or transaction: left alone."""
    task = kwargs.get("task")
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
