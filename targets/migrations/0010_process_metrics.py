"""Process measures (过程量) as metric sources, and their built-in metrics."""

from django.db import migrations, models

PROCESS_METRICS = [
    ("visits", "Customer visits", "拜访次数", "activities", {"kind": "visit"}),
    ("calls", "Calls", "电话次数", "activities", {"kind": "call"}),
    ("meetings", "Meetings", "会议次数", "activities", {"kind": "meeting"}),
    ("deals_created", "Opportunities created", "新建商机数", "deals_created", {}),
    ("solution_presented", "Deals reaching Solution presented", "方案呈现商机数", "stage_reached", {"stage_order": 2}),
    ("customers_covered", "New customers covered", "新覆盖客户数", "customers_covered", {}),
]


def add_builtins(apps, schema_editor):
    Metric = apps.get_model("targets", "Metric")
    for code, name, name_zh, source, filters in PROCESS_METRICS:
        Metric.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "name_zh": name_zh,
                "unit": "count",
                "source": source,
                "filters": filters,
                "is_builtin": True,
            },
        )


def remove_builtins(apps, schema_editor):
    Metric = apps.get_model("targets", "Metric")
    Metric.objects.filter(code__in=[m[0] for m in PROCESS_METRICS], is_builtin=True, plans__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("targets", "0009_target_node_region_index")]

    operations = [migrations.RunPython(add_builtins, remove_builtins)]
