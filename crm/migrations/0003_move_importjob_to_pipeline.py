"""The import wizard's `ImportJob` moves to `pipeline` (the import lives in `pipeline/importing/`).

Django has no operation that moves a model between apps, so the move is two halves with the rows kept:
this one renames the table `crm_importjob` -> `pipeline_importjob` and drops the model from crm's state only;
`pipeline.0003_importjob_from_crm` adds it to pipeline's state without touching the database. Nothing
points to the table with a foreign key, so the rename is the only change in the database.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_company_settings_closed_period"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.AlterModelTable(name="importjob", table="pipeline_importjob")],
            state_operations=[migrations.DeleteModel(name="ImportJob")],
        ),
    ]
