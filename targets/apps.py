from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TargetsConfig(AppConfig):
    name = "targets"
    verbose_name = _("Targets")

    def ready(self):
        # Register the tasks in every process, so the outbox can run them by name without a worker.
        from targets import tasks  # noqa: F401
