"""Send (or, with --dry-run, print) the weekly digest of this week: everyone still owed one, or one user."""

from django.core.management.base import BaseCommand, CommandError

from coaching.digest import build_digest, digest_recipients, digests_send, render_digest, week_key
from crm.models import User


class Command(BaseCommand):
    help = "Send this week's digest e-mail to everyone still owed one (once per person and ISO week)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print the digests; send and record nothing.")
        parser.add_argument("--user", help="Only this user (username or e-mail).")

    def handle(self, *args, dry_run=False, user=None, **options):
        user_ids = None
        if user:
            found = User.objects.filter(username=user).first() or User.objects.filter(email__iexact=user).first()
            if found is None:
                raise CommandError(f"No user {user!r}.")
            user_ids = [found.pk]
        if not dry_run:
            run = digests_send(user_ids=user_ids)
            self.stdout.write(f"sent {run.sent}, nothing to send {run.skipped}, failed {run.failed}")
            if run.failed:
                raise CommandError(f"{run.failed} digests failed (see the log); run again to retry them.")
            return
        from django.utils import timezone

        today = timezone.localdate()
        people = digest_recipients(week_key(today))
        if user_ids is not None:
            people = people.filter(pk__in=user_ids)
        for person in people:
            digest = build_digest(person, today=today)
            if digest.is_empty:
                self.stdout.write(f"-- {person.username}: nothing to send")
                continue
            message = render_digest(digest)
            self.stdout.write(f"-- {person.username} <{person.email}>: {message.subject}\n{message.body}")
