from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("targets", "0008_plan_submitted_by"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="targetnode",
            index=models.Index(fields=["region", "plan"], name="target_node_region"),
        ),
    ]
