from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TargetsConfig(AppConfig):
    name = "targets"
    verbose_name = _("Targets")

    def ready(self):
        # Register the tasks in every process, so the outbox can run them by name without a worker,
        # and subscribe them to what happens in the pipeline (which names none of them).
        from pipeline import events
        from targets import tasks

        events.deal_figures_changed.subscribe(tasks.recompute_for_deal)
        events.collection_recorded.subscribe(tasks.recompute_for_collection)
        events.import_committed.subscribe(tasks.reconcile_all)
        events.activity_logged.subscribe(tasks.recompute_for_activity)
