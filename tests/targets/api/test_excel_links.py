"""The editor links to the Excel export of the view on screen and to the import."""

from django.urls import reverse


def test_editor_offers_export_of_the_view_and_import(org, client, metrics):
    from decimal import Decimal

    from targets.services import plan_create

    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=Decimal("1000"), region=org.east, actor=org.manager
    )
    client.force_login(org.manager)
    html = client.get(reverse("targets:plan_detail", args=[plan.pk])).content.decode()
    assert reverse("targets:plan_export", args=[plan.pk]) + "?view=tree" in html
    assert reverse("targets:plan_import", args=[plan.pk]) in html
    grid = client.get(reverse("targets:plan_grid", args=[plan.pk]) + "?rows=rep&cols=month").content.decode()
    assert "view=grid&amp;rows=rep&amp;cols=month" in grid
    xlsx = client.get(reverse("targets:plan_export", args=[plan.pk]) + "?view=tree")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"  # a real XLSX (zip) file
