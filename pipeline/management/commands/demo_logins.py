from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from crm.models import Role, User
from pipeline.management.commands.seed_demo import DEMO_PASSWORD, TOUR_LOGINS


class Command(BaseCommand):
    help = "Print the demo logins the README's tour uses, and the address to open."

    def add_arguments(self, parser):
        parser.add_argument(
            "--addr", default="127.0.0.1:8000", help="host:port the server listens on (what runserver is given)"
        )

    def handle(self, *args, addr, **options):
        self.stdout.write("\n" + _("Demo logins (password for all: %(password)s)") % {"password": DEMO_PASSWORD})
        present = set(
            User.objects.filter(username__in=TOUR_LOGINS.values(), is_active=True).values_list("username", flat=True)
        )
        for role, username in TOUR_LOGINS.items():
            if username in present:
                self.stdout.write(f"  {Role(role).label:<10} {username}")
        self.stdout.write(_("Open %(url)s") % {"url": f"http://{addr}/"} + "\n")
