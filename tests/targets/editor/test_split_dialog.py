"""The split dialog: dimensions still open, preview before commit, live remainder, commit, leaves at once."""

import re
from decimal import Decimal

from django.urls import reverse

from crm.models import AuditLog
from targets.models import TargetNode
from targets.services import node_commit, node_update
from tests.factories import CustomerFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def split_url(plan, node):
    return reverse("targets:node_split", args=[plan.pk, node.pk])


def values(html: str, prefix: str) -> dict[str, Decimal]:
    cells = re.findall(rf'<tr data-testid="{prefix}-([^"]+)">.*?data-value="([^"]+)"', html, re.S)
    return {key: Decimal(value) for key, value in cells}


def test_the_dialog_offers_only_the_dimensions_still_open(org, east_tree, east_plan, client_for):
    client = client_for(org.manager)
    rep = east_tree["reps"][org.rep]
    html = client.get(split_url(east_plan, rep), **HTMX).content.decode()
    dimension = re.search(r'<select name="dimension"[^>]*>(.*?)</select>', html, re.S)[1]
    offered = re.findall(r'<option value="([^"]+)"', dimension)
    # A rep's yearly target: not by region or rep again; by product, segment or a shorter period.
    assert offered == ["product_line", "product", "segment", "quarter", "month", "week"]
    assert 'data-testid="split-dialog"' in html and "<html" not in html
    # Jiangsu has no sub-regions: no region split offered; the dialog opens on a preview by rep.
    html = client.get(split_url(east_plan, east_tree["js"]), **HTMX).content.decode()
    assert 'value="region"' not in html
    assert values(html, "preview") == {str(org.rep_js.pk): Decimal("300000.00")}


def test_a_preview_writes_nothing(org, east_tree, east_plan, client_for):
    js = east_tree["js"]
    before = (TargetNode.objects.count(), AuditLog.objects.count(), TargetNode.objects.get(pk=js.pk).version)
    response = client_for(org.manager).post(
        split_url(east_plan, js), {"dimension": "quarter", "method": "equal", "version": js.version}, **HTMX
    )
    html = response.content.decode()
    assert values(html, "preview") == {f"FY2027-Q{q}": Decimal("75000.00") for q in range(1, 5)}
    assert 'data-testid="preview-total"' in html
    assert (TargetNode.objects.count(), AuditLog.objects.count(), TargetNode.objects.get(pk=js.pk).version) == before


def test_a_commit_writes_children_that_sum_exactly(org, east_tree, east_plan, client_for):
    node = TargetNode.objects.get(pk=east_tree["reps"][org.rep].pk)
    node_update(node=node, amount="100000.01", rebalance=True, expected_version=node.version, actor=org.manager)
    node.refresh_from_db()
    response = client_for(org.manager).post(
        split_url(east_plan, node),
        {"dimension": "month", "method": "equal", "version": node.version, "action": "commit"},
        **HTMX,
    )
    children = list(TargetNode.objects.filter(parent=node).order_by("path"))
    assert len(children) == 12
    assert sum(c.amount for c in children) == Decimal("100000.01")
    assert {c.amount for c in children} == {Decimal("8333.33"), Decimal("8333.34")}
    assert response["HX-Retarget"] == f"#node-{node.pk}"
    assert "targetChanged" in response["HX-Trigger-After-Swap"]
    html = response.content.decode()
    assert f'data-testid="level-total-{node.pk}" data-value="100000.01"' in html


def test_a_stale_dialog_conflicts_instead_of_splitting(org, east_tree, east_plan, client_for):
    js = TargetNode.objects.get(pk=east_tree["js"].pk)
    seen = js.version
    node_update(node=js, owner=org.rep_js, expected_version=seen, actor=org.director)
    response = client_for(org.manager).post(
        split_url(east_plan, js), {"dimension": "month", "method": "equal", "version": seen, "action": "commit"}, **HTMX
    )
    assert "Someone else changed this target since you opened it." in response.content.decode()
    assert not TargetNode.objects.filter(parent=js).exists()


def test_manual_amounts_show_the_remainder_live_and_a_wrong_sum_writes_nothing(org, east_tree, east_plan, client_for):
    sh = TargetNode.objects.get(pk=east_tree["sh"].pk)
    client = client_for(org.manager)
    base = {"dimension": "rep", "method": "manual", "version": sh.version}
    # Switching the method to manual: one input per rep.
    html = client.post(split_url(east_plan, sh), base, **HTMX).content.decode()
    assert f'name="part-{org.rep.pk}"' in html and f'name="part-{org.rep_same_team.pk}"' in html
    assert re.search(r'data-testid="remainder" data-value="300000.00"', html)

    # Typing: only the preview comes back, with what is still unallocated.
    typed = {**base, f"part-{org.rep.pk}": "100,000", f"part-{org.rep_same_team.pk}": "150000"}
    response = client.post(split_url(east_plan, sh), typed, HTTP_HX_TARGET="split-preview", **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="split-preview"')
    assert re.search(r'data-testid="remainder" data-value="50000.00"', html)
    assert "The parts must add up to 300000.00: 50000.00 is still unallocated." in html

    before = list(TargetNode.objects.filter(parent=sh).values_list("pk", "amount"))
    response = client.post(split_url(east_plan, sh), {**typed, "action": "commit"}, **HTMX)
    assert "50000.00 is still unallocated" in response.content.decode()
    assert list(TargetNode.objects.filter(parent=sh).values_list("pk", "amount")) == before

    fixed = {**typed, f"part-{org.rep_same_team.pk}": "200000", "action": "commit"}
    client.post(split_url(east_plan, sh), fixed, **HTMX)
    amounts = {n.rep_id: n.amount for n in TargetNode.objects.filter(parent=sh)}
    assert amounts == {org.rep.pk: Decimal("100000.00"), org.rep_same_team.pk: Decimal("200000.00")}


def test_weights_by_customer_counts_of_chosen_tiers(org, east_tree, east_plan, client_for):
    sh = TargetNode.objects.get(pk=east_tree["sh"].pk)
    for tier, owner in (("A", org.rep), ("A", org.rep), ("A", org.rep_same_team), ("C", org.rep_same_team)):
        CustomerFactory(owner=owner, region=org.sh, tier=tier)
    data = {"dimension": "rep", "method": "weights", "basis": "customers", "tiers": ["A"], "version": sh.version}
    html = client_for(org.manager).post(split_url(east_plan, sh), data, **HTMX).content.decode()
    assert 'name="tiers"' in html  # the tier choice shows for this basis
    assert values(html, "preview") == {
        str(org.rep.pk): Decimal("200000.00"),
        str(org.rep_same_team.pk): Decimal("100000.00"),
    }


def test_split_every_leaf_below_by_month_at_once(org, east_tree, east_plan, client_for):
    root = TargetNode.objects.get(pk=east_tree["root"].pk)
    client = client_for(org.manager)
    data = {"scope": "leaves", "dimension": "month", "method": "weights", "basis": "days", "version": root.version}
    html = client.post(split_url(east_plan, root), data, **HTMX).content.decode()
    assert "Each of the 3 targets below this one will be split the same way." in html
    assert TargetNode.objects.filter(plan=east_plan).count() == 5  # a preview

    assert (
        "one target at a time"
        in client.post(split_url(east_plan, root), {**data, "method": "manual"}, **HTMX).content.decode()
    )
    client.post(split_url(east_plan, root), {**data, "action": "commit"}, **HTMX)
    leaves = TargetNode.objects.filter(plan=east_plan, split_dimension="")
    assert leaves.count() == 36 and set(leaves.values_list("period_kind", flat=True)) == {"month"}
    for parent in (east_tree["js"], *east_tree["reps"].values()):
        months = TargetNode.objects.filter(parent=parent)
        assert sum(m.amount for m in months) == parent.amount  # exact, to the cent


def test_manual_weights_and_a_bottom_up_reconciliation(org, east_tree, east_plan, client_for):
    sh = TargetNode.objects.get(pk=east_tree["sh"].pk)
    client = client_for(org.manager)
    data = {"dimension": "rep", "method": "weights", "basis": "manual", "version": sh.version}
    weights = {f"part-{org.rep.pk}": "1", f"part-{org.rep_same_team.pk}": "3"}
    html = client.post(split_url(east_plan, sh), {**data, **weights}, **HTMX).content.decode()
    assert values(html, "preview") == {
        str(org.rep.pk): Decimal("75000.00"),
        str(org.rep_same_team.pk): Decimal("225000.00"),
    }

    # Bottom-up: what the reps committed, scaled to what was handed down, with the gap shown.
    reps = east_tree["reps"]
    node_commit(node=reps[org.rep], amount="200000", actor=org.rep)
    node_commit(node=reps[org.rep_same_team], amount="200000", actor=org.rep_same_team)
    sh.refresh_from_db()
    data = {"dimension": "rep", "method": "bottom_up", "version": sh.version}
    html = client.post(split_url(east_plan, sh), data, **HTMX).content.decode()
    assert 'data-testid="bottom-up-gap"' in html and 'data-value="100000.00"' in html
    assert values(html, "preview") == {
        str(reps[org.rep].pk): Decimal("150000.00"),
        str(reps[org.rep_same_team].pk): Decimal("150000.00"),
    }
    client.post(split_url(east_plan, sh), {**data, "action": "commit"}, **HTMX)
    assert TargetNode.objects.get(pk=sh.pk).split_method == "bottom_up"
