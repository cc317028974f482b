import os

from celery import Celery
from celery.signals import beat_init, worker_init

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
