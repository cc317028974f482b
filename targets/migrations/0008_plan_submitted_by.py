import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Cast


def submitters_from_the_audit_log(apps, schema_editor):
    """Plans submitted before the column existed: their submitter is the actor of their latest submission."""
    TargetPlan = apps.get_model("targets", "TargetPlan")
    AuditLog = apps.get_model("crm", "AuditLog")
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type = ContentType.objects.filter(app_label="targets", model="targetplan").first()
    if content_type is None:
        return
    latest = (
        AuditLog.objects.filter(
            content_type=content_type,
            action="target_plan.submit",
            object_id=Cast(OuterRef("pk"), output_field=models.CharField()),
            actor__isnull=False,
        )
        .order_by("-at", "-id")
        .values("actor_id")[:1]
    )
    TargetPlan.objects.filter(submitted_at__isnull=False, submitted_by__isnull=True).update(
        submitted_by_id=Subquery(latest)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("targets", "0007_latest_attainment_as_of_index"),
        ("crm", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="targetplan",
            name="submitted_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="submitted by",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="topic",
            field=models.CharField(
                choices=[("alert", "Alert"), ("plan_submitted", "Plan waiting for your approval")],
                default="alert",
                max_length=16,
                verbose_name="topic",
            ),
        ),
        migrations.RunPython(submitters_from_the_audit_log, migrations.RunPython.noop),
    ]
