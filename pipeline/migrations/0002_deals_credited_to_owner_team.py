"""业绩归属: a deal's region becomes the team it counts for, its owner's team (`pipeline.services.credited_team`).

Deals used to copy their customer's region. Each deal is set to its owner's team (the team on record: there is
no history of team moves before this rule); owners without a team keep what the deal had.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def credit_owner_team(apps, schema_editor):
    Opportunity = apps.get_model("pipeline", "Opportunity")
    User = apps.get_model("crm", "User")
    team = User.objects.filter(pk=OuterRef("owner_id")).values("region_id")[:1]
    Opportunity.objects.filter(owner__region__isnull=False).exclude(region_id=Subquery(team)).update(
        region_id=Subquery(team)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0001_initial"),
        ("crm", "0001_initial"),
    ]

    operations = [migrations.RunPython(credit_owner_team, migrations.RunPython.noop)]
