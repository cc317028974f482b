"""Django admin cannot change targets or plans (they change through the plan editor and adjustments), nor the
meaning of a metric a plan measures with; the pages say where to change them instead."""

from decimal import Decimal

from django.urls import reverse

from targets.models import Metric, TargetNode, TargetPlan


def change_url(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_an_admin_post_cannot_change_a_target_amount_or_a_plan_total(org, plan, client_for):
    client = client_for(org.admin)
    root = plan.nodes.get(parent__isnull=True)
    assert client.post(change_url(root), {"amount": "1", "_save": "Save"}).status_code == 403
    assert client.post(change_url(plan), {"total": "1", "_save": "Save"}).status_code == 403
    assert client.get(reverse("admin:targets_targetnode_add")).status_code == 403
    assert client.post(reverse("admin:targets_targetplan_delete", args=[plan.pk]), {"post": "yes"}).status_code == 403
    assert TargetNode.objects.get(pk=root.pk).amount == Decimal("1200000.00")
    assert TargetPlan.objects.get(pk=plan.pk).total == Decimal("1200000.00")
    page = client.get(change_url(root)).content.decode()
    assert "Plans and targets change in the plan editor" in page
    assert reverse("targets:plan_detail", args=[plan.pk]) in page


def test_a_metric_a_plan_measures_with_keeps_its_source_and_filters(org, metrics, client_for):
    custom = Metric.objects.create(code="ERP", name="ERP revenue", unit="money", source="won_revenue", filters={})
    client = client_for(org.admin)
    data = {"code": "ERP", "name": "ERP revenue", "name_zh": "", "unit": "money", "source": "collections"}
    data |= {"filters": "{}", "is_active": "on", "_save": "Save"}
    assert client.post(change_url(custom), data).status_code == 302
    assert Metric.objects.get(pk=custom.pk).source == "collections"  # no plan yet: still configurable

    from targets.services import plan_create

    plan_create(metric=custom, period_key="FY2027", total=Decimal("1000"), owner=org.director, actor=org.director)
    assert client.post(change_url(custom), {**data, "source": "won_revenue", "name": "ERP"}).status_code == 302
    custom.refresh_from_db()
    assert (custom.source, custom.name) == ("collections", "ERP")
