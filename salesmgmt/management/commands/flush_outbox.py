from datetime import timedelta

from django.core.management.base import BaseCommand

from salesmgmt import outbox
from salesmgmt.models import OutboxTask


class Command(BaseCommand):
    help = "Publish background work left in the outbox (e.g. after a broker outage)."

    def handle(self, *args, **options):
        sent = outbox.flush(older_than=timedelta(0))
        self.stdout.write(f"Sent {sent}; {OutboxTask.objects.count()} still pending.")
