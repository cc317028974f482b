"""The open deals' per-stage totals from a covering partial index (an index-only scan, not the heap)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0004_open_deals_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="opportunity",
            index=models.Index(
                condition=models.Q(("closed_on__isnull", True)),
                fields=["stage"],
                include=("id", "amount_company", "probability"),
                name="opportunity_open_totals",
            ),
        ),
    ]
