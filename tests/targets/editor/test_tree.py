"""The editor tree: lazy expansion, totals per level, inline edits with conflict detection, scope."""

import re
from datetime import date
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import AuditLog
from targets.models import TargetNode
from targets.services import node_commit, node_update, target_split
from targets.views import editor
from tests.factories import UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def ids_of(html: str, prefix: str) -> set[str]:
    return set(re.findall(rf'data-testid="{prefix}-(\d+)"', html))


def test_the_editor_opens_on_the_root_with_its_first_level_and_totals(org, east_tree, east_plan, client_for):
    page = client_for(org.manager).get(reverse("targets:plan_detail", args=[east_plan.pk])).content.decode()
    root, sh, js = east_tree["root"], east_tree["sh"], east_tree["js"]
    assert ids_of(page, "node") == {str(root.pk), str(sh.pk), str(js.pk)}  # reps wait for a click
    assert f'data-testid="level-total-{root.pk}" data-value="600000.00"' in page
    assert f'data-testid="incomplete-{js.pk}"' in page  # Jiangsu has no owner
    assert f'hx-get="{reverse("targets:node_children", args=[east_plan.pk, sh.pk])}"' in page


def test_expanding_a_node_returns_its_children_only(org, east_tree, east_plan, client_for):
    sh = east_tree["sh"]
    response = client_for(org.manager).get(reverse("targets:node_children", args=[east_plan.pk, sh.pk]), **HTMX)
    html = response.content.decode()
    assert "<html" not in html
    assert ids_of(html, "node") == {str(n.pk) for n in east_tree["reps"].values()}
    assert f'data-testid="level-total-{sh.pk}" data-value="300000.00"' in html
    assert 'data-testid="mismatch' not in html


def test_a_level_pages_its_children_and_shows_the_commitment_gap(org, east_tree, east_plan, client_for, monkeypatch):
    sh = east_tree["sh"]
    rep_node = east_tree["reps"][org.rep]
    node_commit(node=rep_node, amount="180000", actor=org.rep)
    monkeypatch.setattr(editor, "LEVEL_PAGE", 1)
    client = client_for(org.manager)
    url = reverse("targets:node_children", args=[east_plan.pk, sh.pk])
    first = client.get(url, **HTMX).content.decode()
    second = client.get(url + "?page=2", **HTMX).content.decode()
    assert len(ids_of(first, "node")) == len(ids_of(second, "node")) == 1
    assert ids_of(first, "node") | ids_of(second, "node") == {str(n.pk) for n in east_tree["reps"].values()}
    assert 'data-testid="load-more-' in first and "level-summary" not in second
    # Top-down 150,000 handed to the rep, 180,000 committed: +30,000; one rep has not committed yet.
    assert re.search(rf'data-testid="gap-{rep_node.pk}" data-value="30000.00"', first + second)
    assert "1 not committed yet" in first


def test_inline_edit_of_owner_and_deadline_then_a_stale_version_conflicts(org, east_tree, east_plan, client_for):
    js = east_tree["js"]
    url = reverse("targets:node_edit", args=[east_plan.pk, js.pk])
    client = client_for(org.manager)
    form = client.get(url, **HTMX).content.decode()
    assert f'data-testid="edit-form-{js.pk}"' in form and f'name="version" value="{js.version}"' in form

    response = client.post(url, {"owner": org.rep_js.pk, "deadline": "2027-06-30", "version": js.version}, **HTMX)
    js.refresh_from_db()
    assert (js.owner, js.deadline) == (org.rep_js, date(2027, 6, 30))
    html = response.content.decode()
    assert f'data-testid="owner-{js.pk}"' in html and f'data-testid="incomplete-{js.pk}"' not in html

    # Someone else saves meanwhile: the stale form is refused with the conflict message, nothing overwritten.
    node_update(node=js, deadline=date(2027, 9, 30), expected_version=js.version, actor=org.director)
    stale = js.version
    response = client.post(url, {"deadline": "2027-03-31", "version": stale}, **HTMX)
    html = response.content.decode()
    assert "Someone else changed this target since you opened it." in html and 'data-testid="conflict"' in html
    fresh = TargetNode.objects.get(pk=js.pk)
    assert fresh.deadline == date(2027, 9, 30)
    assert f'name="version" value="{fresh.version}"' in html  # saving again is a deliberate overwrite


def test_a_new_amount_must_keep_the_parent_sum_unless_rebalanced(org, east_tree, east_plan, client_for):
    a, b = east_tree["reps"][org.rep], east_tree["reps"][org.rep_same_team]
    url = reverse("targets:node_edit", args=[east_plan.pk, a.pk])
    client = client_for(org.manager)
    response = client.post(url, {"amount": "200000", "version": a.version}, **HTMX)
    assert "this change would leave 50000.00 over-allocated" in response.content.decode()
    assert TargetNode.objects.get(pk=a.pk).amount == Decimal("150000.00")

    response = client.post(url, {"amount": "200000", "rebalance": "on", "version": a.version}, **HTMX)
    # The level is redrawn: the sibling absorbed the difference, Shanghai still adds up.
    assert response["HX-Retarget"] == f"#children-{east_tree['sh'].pk}"
    assert TargetNode.objects.get(pk=b.pk).amount == Decimal("100000.00")
    assert f'data-testid="level-total-{east_tree["sh"].pk}" data-value="300000.00"' in response.content.decode()


def test_nobody_edits_their_own_target_from_the_editor(org, east_tree, east_plan, client_for):
    root = TargetNode.objects.get(pk=east_tree["root"].pk)  # the manager's own plan root
    response = client_for(org.manager).post(
        reverse("targets:node_edit", args=[east_plan.pk, root.pk]),
        {"deadline": "2027-11-30", "version": root.version},
        **HTMX,
    )
    assert "is your own target; your manager has to change it." in response.content.decode()
    assert TargetNode.objects.get(pk=root.pk).deadline == date(2027, 12, 31)


def test_another_managers_plan_and_nodes_are_404(org, metrics, plan, east_tree, east_plan, client_for):
    north_manager = client_for(org.manager_north)
    sh = east_tree["sh"]
    urls = [
        reverse("targets:plan_detail", args=[east_plan.pk]),
        reverse("targets:plan_grid", args=[east_plan.pk]),
        reverse("targets:node_children", args=[east_plan.pk, sh.pk]),
        reverse("targets:node_edit", args=[east_plan.pk, sh.pk]),
        reverse("targets:node_split", args=[east_plan.pk, sh.pk]),
    ]
    assert all(north_manager.get(url).status_code == 404 for url in urls)
    assert north_manager.post(urls[3], {"deadline": "2027-06-30", "version": sh.version}).status_code == 404
    assert north_manager.post(reverse("targets:plan_action", args=[east_plan.pk, "submit"])).status_code == 404

    # In the company-wide plan the East manager sees East, not North: its nodes are 404 for him.
    areas = {
        n.region_id: n
        for n in target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director).children
    }
    manager = client_for(org.manager)
    page = manager.get(reverse("targets:plan_detail", args=[plan.pk])).content.decode()
    assert ids_of(page, "node") == {str(areas[org.east.pk].pk)}
    north = areas[org.north.pk]
    assert manager.get(reverse("targets:node_edit", args=[plan.pk, north.pk])).status_code == 404
    assert manager.get(reverse("targets:plan_grid", args=[plan.pk]) + f"?node={north.pk}").status_code == 404
    # A node id of another plan under this plan's URL: 404 too.
    assert manager.get(reverse("targets:node_edit", args=[plan.pk, sh.pk])).status_code == 404
    assert not AuditLog.objects.filter(action="target.update").exists()


def test_editor_queries_do_not_grow_with_the_tree(org, east_plan, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)
    root = east_plan.nodes.get()
    detail = reverse("targets:plan_detail", args=[east_plan.pk])

    def measure(reps: int) -> tuple[int, int]:
        UserFactory.create_batch(reps - org.sh.members.filter(role="rep").count(), role="rep", region=org.sh)
        node = TargetNode.objects.get(pk=root.pk)
        sh = {
            n.region_id: n
            for n in target_split(node=node, dimension="region", method="equal", actor=org.manager).children
        }[org.sh.pk]
        target_split(node=sh, dimension="rep", method="equal", actor=org.manager)
        children = reverse("targets:node_children", args=[east_plan.pk, sh.pk])
        # The page's queries, the nav bell's unread count included.
        with CaptureQueriesContext(connection) as tree, django_assert_max_num_queries(19):
            assert client.get(detail).status_code == 200
        with CaptureQueriesContext(connection) as level, django_assert_max_num_queries(11):
            html = client.get(children, **HTMX).content.decode()
        assert len(ids_of(html, "node")) == reps
        return len(tree), len(level)

    assert measure(4) == measure(40)


def test_a_level_that_does_not_add_up_is_flagged(org, east_tree, east_plan, client_for):
    # The services never produce this (splits are exact); a manual database edit could.
    TargetNode.objects.filter(pk=east_tree["js"].pk).update(amount=Decimal("299999.99"))
    root = east_tree["root"]
    page = client_for(org.manager).get(reverse("targets:plan_detail", args=[east_plan.pk])).content.decode()
    assert f'data-testid="mismatch-{root.pk}"' in page
    assert f'data-testid="level-total-{root.pk}" data-value="599999.99"' in page
