from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = _("Pipeline")

    def ready(self):
        from crm.signals import user_team_changed
        from pipeline.services import deals_follow_owner

        user_team_changed.connect(deals_follow_owner, dispatch_uid="pipeline.deals_follow_owner")
