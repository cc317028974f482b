"""The import wizard's `ImportJob` comes from `crm`, rows and all: `crm.0003_move_importjob_to_pipeline` renamed
its table to `pipeline_importjob`, so the model is added to pipeline's state only.

Its content type moves with it (`crm | import` -> `pipeline | import`), so the permissions users and groups were
given on imports stay theirs rather than going stale under the old app.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, source: str, destination: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    # On a fresh database there is none yet (post_migrate creates it); if the destination exists, keep it.
    if not ContentType.objects.filter(app_label=destination, model="importjob").exists():
        ContentType.objects.filter(app_label=source, model="importjob").update(app_label=destination)
    ContentType.objects.clear_cache()


def content_type_to_pipeline(apps, schema_editor):
    _move_content_type(apps, "crm", "pipeline")


def content_type_to_crm(apps, schema_editor):
    _move_content_type(apps, "pipeline", "crm")


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0002_deals_credited_to_owner_team"),
        ("crm", "0003_move_importjob_to_pipeline"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ImportJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("customers", "Customers"),
                                    ("opportunities", "Opportunities"),
                                    ("won_deals", "Historical won deals"),
                                ],
                                max_length=20,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("uploaded", "Uploaded"),
                                    ("mapped", "Mapped"),
                                    ("validated", "Validated"),
                                    ("running", "Importing"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                ],
                                default="uploaded",
                                max_length=12,
                                verbose_name="status",
                            ),
                        ),
                        ("file", models.FileField(upload_to="imports/%Y/%m/", verbose_name="file")),
                        ("original_name", models.CharField(max_length=255)),
                        ("mapping", models.JSONField(blank=True, default=dict)),
                        ("options", models.JSONField(blank=True, default=dict)),
                        ("total_rows", models.PositiveIntegerField(default=0)),
                        ("processed_rows", models.PositiveIntegerField(default=0)),
                        ("error_count", models.PositiveIntegerField(default=0)),
                        ("errors", models.JSONField(blank=True, default=list)),
                        ("result", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="imports",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "import",
                        "verbose_name_plural": "imports",
                        "ordering": ["-created_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_pipeline, content_type_to_crm),
    ]
