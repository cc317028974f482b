from django.core.management.base import BaseCommand

from crm.models import Role, User
from pipeline.management.commands.seed_demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Print one demo login per role."

    def handle(self, *args, **options):
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for role in (Role.ADMIN, Role.DIRECTOR, Role.MANAGER, Role.REP):
            user = User.objects.filter(role=role, is_active=True).order_by("username").first()
            if user:
                self.stdout.write(f"  {role.label:<10} {user.username}")
        self.stdout.write("Open http://127.0.0.1:8000/\n")
