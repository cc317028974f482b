"""Print the statement the attainment engine runs for a plan (PostgreSQL), as a reader sees it:
`manage.py attainment_sql --plan 12 [--as-of 2027-09-15] [--backfill]`. Nothing is written."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from targets.attainment.sql import render_statement
from targets.models import TargetPlan


class Command(BaseCommand):
    help = "Print the SQL statement that computes a plan's attainment (PostgreSQL only; nothing is written)."

    def add_arguments(self, parser):
        parser.add_argument("--plan", type=int, required=True, help="the plan's id")
        parser.add_argument("--as-of", type=date.fromisoformat, help="the day measured (default: today)")
        parser.add_argument(
            "--backfill", action="store_true", help="the statement of a backfill (a later day is stored already)"
        )

    def handle(self, *args, plan, as_of, backfill, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The one-statement attainment engine runs on PostgreSQL; SQLite uses the reference.")
        target_plan = TargetPlan.objects.select_related("metric").filter(pk=plan).first()
        if target_plan is None:
            raise CommandError(f"No plan {plan}.")
        self.stdout.write(render_statement(target_plan, as_of or timezone.localdate(), backfill=backfill), ending="")
