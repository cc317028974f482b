import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")

app = Celery("salesmgmt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
