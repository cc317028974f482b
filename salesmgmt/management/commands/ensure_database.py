"""Create the PostgreSQL database of DATABASE_URL when it does not exist yet (`make serve`, a first deployment).

Nothing happens on SQLite (the file is created on first use) or when the database exists. The server is reached
through its maintenance database `postgres` with the same credentials, so the role needs CREATEDB once."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections


class Command(BaseCommand):
    help = "Create the PostgreSQL database named by DATABASE_URL if it is missing."
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        db = connections["default"].settings_dict
        if "postgresql" not in db["ENGINE"]:
            self.stdout.write(f"{db['ENGINE']}: nothing to create.")
            return
        import psycopg
        from psycopg import sql

        params = {
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
        }
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in params.items() if v}) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
                if exists:
                    self.stdout.write(f"Database {db['NAME']} exists.")
                    return
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        except psycopg.Error as exc:
            raise CommandError(f"Cannot reach or create database {db['NAME']}: {exc}") from exc
        self.stdout.write(f"Created database {db['NAME']}.")
