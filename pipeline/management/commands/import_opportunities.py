"""Import customers, opportunities or historical won deals from a CSV / XLSX / XLS file.

The same checks as the browser wizard: every row is validated first, errors are printed per row and the
command exits non-zero without writing anything when any row is bad. With --skip-bad-rows it imports the good
rows instead (one transaction) and writes the bad ones, with the reason of each, to --rejected-file.
Without --user the import runs as the system (no data-scope limit); with --user it is limited to what that
manager/director/admin may see.
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm.models import User
from pipeline.importing import (
    ImportOptions,
    can_import,
    fields_for,
    guess_mapping,
    import_apply,
    import_validate,
    read_upload,
)
from pipeline.importing.rejected import rejected_rows_file
from pipeline.models import ImportKind, Pipeline

MAX_PRINTED_ERRORS = 200


class Command(BaseCommand):
    help = "Import customers, opportunities or won deals from a CSV/XLSX/XLS file; nothing is written if a row is bad."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--kind", choices=ImportKind.values, default=ImportKind.OPPORTUNITIES)
        parser.add_argument(
            "--mapping",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="Map a column to a field (repeatable); COLUMN= ignores a column. Unmapped columns are guessed.",
        )
        parser.add_argument(
            "--create-missing", action="store_true", help="Create unknown reps, regions, products, customers."
        )
        parser.add_argument("--user", help="Import as this user (their data scope applies).")
        parser.add_argument("--pipeline", help="Pipeline name for deals (default: the default pipeline).")
        parser.add_argument(
            "--date-order",
            choices=["auto", "dmy", "mdy"],
            default="auto",
            help="How to read 01/03/2017: dmy (day first), mdy (month first) or auto.",
        )
        parser.add_argument(
            "--list-price-for-missing-amounts",
            action="store_true",
            help="Open deals without an amount get their product's list price (an estimate).",
        )
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the good rows and leave out the bad ones (default: all or nothing).",
        )
        parser.add_argument(
            "--rejected-file",
            help="With --skip-bad-rows: write the bad rows here (the file's columns, row number and reason).",
        )
        parser.add_argument("--default-owner", help="Username of the owner of rows that name no rep.")
        parser.add_argument(
            "--owner-from-region-manager",
            action="store_true",
            help="Rows that name no rep go to the manager of their region (or of the nearest region above).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check the file only.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        actor = self._actor(options["user"])
        kind = options["kind"]
        try:
            table = read_upload(path.read_bytes(), path.name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        mapping = self._mapping(table.headers, kind, options["mapping"])
        self.stdout.write("Mapping: " + ", ".join(f"{column} -> {field}" for column, field in mapping.items()))
        import_options = ImportOptions(
            create_missing=options["create_missing"],
            date_order=options["date_order"],
            pipeline_id=self._pipeline_id(options["pipeline"]),
            missing_amount="list_price" if options["list_price_for_missing_amounts"] else "zero",
            skip_bad_rows=options["skip_bad_rows"],
            default_owner_id=self._user_id(options["default_owner"]),
            owner_from_region_manager=options["owner_from_region_manager"],
        )
        try:
            plan = import_validate(table=table, kind=kind, mapping=mapping, options=import_options, actor=actor)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        rejected = plan.rejected_rows()
        if plan.errors:
            for error in plan.errors[:MAX_PRINTED_ERRORS]:
                self.stderr.write(str(error))
            if len(plan.errors) > MAX_PRINTED_ERRORS:
                self.stderr.write(f"... and {len(plan.errors) - MAX_PRINTED_ERRORS} more errors.")
            if plan.notice:
                self.stderr.write(plan.notice)
            if not options["skip_bad_rows"] or not plan.items:
                raise CommandError(f"{len(plan.errors)} errors in {plan.total_rows} rows; nothing was imported.")
            if options["rejected_file"] and not options["dry_run"]:
                Path(options["rejected_file"]).write_bytes(rejected_rows_file(table, rejected))
                self.stderr.write(f"{len(rejected)} rejected rows written to {options['rejected_file']}.")
            plan = plan.good_rows_only()
        if plan.rounded_rows:
            self.stdout.write(f"{plan.rounded_rows} amounts had more than two decimals: rounded half up to the cent.")
        summary = ", ".join(f"{n} {what}" for what, n in plan.will_create.items())
        if options["dry_run"]:
            self.stdout.write(f"The file is valid ({plan.total_rows} rows); it would create {summary}.")
            return
        created = import_apply(plan=plan, actor=actor)
        summary = ", ".join(f"{n} {what}" for what, n in created.items())
        rejected_note = f", rejected {len(rejected)}" if rejected else ""
        self.stdout.write(self.style.SUCCESS(f"Imported {len(plan.items)} rows{rejected_note}: {summary}."))

    def _actor(self, username):
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not can_import(user):
            raise CommandError(f"{username} may not import: only managers, directors and admins may.")
        return user

    def _user_id(self, username):
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user.pk

    def _pipeline_id(self, name):
        if not name:
            return None
        pipeline = Pipeline.objects.filter(name=name).first()
        if pipeline is None:
            raise CommandError(f"No pipeline {name!r}.")
        return pipeline.pk

    def _mapping(self, headers, kind, overrides) -> dict[str, str]:
        mapping = guess_mapping(headers, kind)
        names = {f.name for f in fields_for(kind)}
        for item in overrides:
            column, sep, field = item.partition("=")
            column, field = column.strip(), field.strip()
            if not sep or column not in headers:
                raise CommandError(f"--mapping {item!r}: the file's columns are {', '.join(headers)}.")
            if field and field not in names:
                raise CommandError(f"--mapping {item!r}: fields are {', '.join(sorted(names))}.")
            # A field mapped explicitly wins over a guessed column.
            mapping = {c: f for c, f in mapping.items() if f != field or not field}
            mapping[column] = field
        return {c: f for c, f in mapping.items() if f}
