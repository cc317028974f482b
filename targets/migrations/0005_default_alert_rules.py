"""The general alert rule of every kind, so alerts fire in a new installation (editable on the rules page)."""

from django.db import migrations


def add_default_rules(apps, schema_editor):
    from targets.alerts import DEFAULT_RULES

    AlertRule = apps.get_model("targets", "AlertRule")
    for kind, threshold, severity in DEFAULT_RULES:
        AlertRule.objects.get_or_create(
            kind=str(kind), metric=None, defaults={"threshold": threshold, "severity": str(severity)}
        )


class Migration(migrations.Migration):
    dependencies = [("targets", "0004_notifications")]

    operations = [migrations.RunPython(add_default_rules, migrations.RunPython.noop)]
