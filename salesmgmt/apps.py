from django.apps import AppConfig


class SalesmgmtConfig(AppConfig):
    name = "salesmgmt"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from salesmgmt import freshness

        connection_created.connect(freshness.watch_connection, dispatch_uid="salesmgmt.freshness")
        post_migrate.connect(freshness.migrated, sender=self, dispatch_uid="salesmgmt.freshness.migrated")
