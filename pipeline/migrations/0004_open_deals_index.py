"""Open deals get a close-date index of their own, and `closed_on` becomes what says a deal is open.

`Opportunity.objects.open()` now says "closed_on IS NULL" (the index's predicate) beside "the stage is neither
won nor lost". The services have always cleared `closed_on` when a deal moves to an open stage; a deal created
in an open stage with a close day (possible before through `opportunity_create(closed_on=...)`) is set right
here, so the open lists keep every deal they showed.
"""

from django.db import migrations, models


def clear_close_day_of_open_deals(apps, schema_editor):
    Opportunity = apps.get_model("pipeline", "Opportunity")
    Opportunity.objects.filter(closed_on__isnull=False, stage__is_won=False, stage__is_lost=False).update(
        closed_on=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0003_importjob_from_crm"),
    ]

    operations = [
        migrations.RunPython(clear_close_day_of_open_deals, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(
                condition=models.Q(("closed_on__isnull", True)),
                fields=["expected_close_date", "id"],
                name="opportunity_open_by_close",
            ),
        ),
    ]
