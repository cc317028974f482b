"""The plan list, a new plan, the status actions, and the issue's browser flow through the test client."""

import re
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from targets.models import PlanStatus, TargetNode, TargetPlan
from targets.services import plan_create, target_split
from tests.targets.conftest import by_region

LIST = "targets:plan_list"


def options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)[1]
    return re.findall(r'<option value="([^"]*)"', select)


def new_plan(client, **data):
    return client.post(reverse("targets:plan_create"), {"period_key": "FY2027", "total": "600,000", **data})


def test_a_manager_creates_a_plan_for_his_area_not_for_another(org, metrics, client_for):
    manager = client_for(org.manager)
    page = manager.get(reverse(LIST)).content.decode()
    # The region chooser offers his regions only.
    assert options(page, "region") == [str(r.pk) for r in (org.east, org.sh, org.js)]

    response = new_plan(manager, metric=metrics["won_revenue"].pk, region=org.north.pk)
    assert response.status_code == 200 and 'data-testid="error-region"' in response.content.decode()
    response = new_plan(manager, metric=metrics["won_revenue"].pk, region="")
    assert 'data-testid="error-region"' in response.content.decode()
    assert not TargetPlan.objects.exists()

    response = new_plan(manager, metric=metrics["won_revenue"].pk, region=org.east.pk)
    plan = TargetPlan.objects.get()
    assert response.status_code == 302 and response.url == reverse("targets:plan_detail", args=[plan.pk])
    assert (plan.region, plan.owner, plan.total) == (org.east, org.manager, Decimal("600000.00"))
    assert plan.nodes.get().region == org.east

    # The same metric, period and region again: refused with the reason, nothing written.
    response = new_plan(manager, metric=metrics["won_revenue"].pk, region=org.east.pk)
    assert "There is already a Signed revenue plan for East in FY2027." in response.content.decode()
    assert TargetPlan.objects.count() == 1


def test_a_director_creates_company_wide_plans_and_reps_get_no_plan_screens(org, metrics, client_for):
    director = client_for(org.director)
    response = new_plan(director, metric=metrics["collections"].pk, region="", total="1000000")
    plan = TargetPlan.objects.get()
    assert response.status_code == 302 and (plan.region, plan.owner) == (None, org.director)
    response = new_plan(director, metric=metrics["new_customers"].pk, region="", total="10.5")
    assert "10.50 is not a whole number." in response.content.decode()

    rep = client_for(org.rep)
    assert rep.get(reverse(LIST)).status_code == 403
    assert new_plan(rep, metric=metrics["won_revenue"].pk, region=org.sh.pk).status_code == 403
    assert rep.get(reverse("targets:plan_detail", args=[plan.pk])).status_code == 403
    assert TargetPlan.objects.count() == 1


def test_the_list_shows_each_user_the_plans_of_their_scope(org, metrics, plan, east_tree, east_plan, client_for):
    north = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=1, region=org.north, actor=org.director
    )
    areas = by_region(
        target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.director).children
    )

    director = client_for(org.director).get(reverse(LIST)).content.decode()
    assert all(f'data-testid="plan-row-{p.pk}"' in director for p in (plan, east_plan, north))
    # Jiangsu has no owner yet: one incomplete leaf in the East plan.
    assert re.search(rf'data-testid="plan-incomplete-{east_plan.pk}" data-value="1"', director)

    manager = client_for(org.manager).get(reverse(LIST)).content.decode()
    assert f'data-testid="plan-row-{east_plan.pk}"' in manager
    assert f'data-testid="plan-row-{north.pk}"' not in manager
    # In the company-wide plan he sees his part (East), not the company total.
    assert f'data-testid="plan-total-{plan.pk}" data-value="{areas[org.east.pk].amount}"' in manager
    assert "your part" in manager


def test_submit_refused_approval_lists_incomplete_leaves_then_approval_succeeds(org, east_tree, east_plan, client_for):
    manager, director = client_for(org.manager), client_for(org.director)
    detail = reverse("targets:plan_detail", args=[east_plan.pk])

    def act(action, client=manager, **data):
        return client.post(reverse("targets:plan_action", args=[east_plan.pk, action]), data, follow=True)

    act("submit")
    # The manager submitted his area's plan: the director approves it, not he.
    page = manager.get(detail).content.decode()
    assert 'data-testid="plan-approve"' not in page and 'data-testid="plan-return-open"' not in page
    assert "Waiting for approval by:" in page and str(org.director) in page
    page = act("approve").content.decode()
    assert "You submitted this plan, so someone above you approves it" in page
    assert TargetPlan.objects.get(pk=east_plan.pk).status == PlanStatus.SUBMITTED

    response = act("approve", director)
    east_plan.refresh_from_db()
    assert east_plan.status == PlanStatus.SUBMITTED
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == detail + "?show=incomplete"
    assert "1 target has no owner or no period: Jiangsu · FY2027." in page
    js = east_tree["js"]
    assert f'data-testid="node-{js.pk}"' in page and f'data-testid="incomplete-{js.pk}"' in page

    assert "Say what has to change." in act("return", director, reason="").content.decode()
    act("return", director, reason="Jiangsu needs an owner")
    js.refresh_from_db()
    manager.post(
        reverse("targets:node_edit", args=[east_plan.pk, js.pk]),
        {"owner": org.rep_js.pk, "deadline": "2027-12-31", "amount": "300000.00", "version": js.version},
    )
    assert TargetNode.objects.get(pk=js.pk).owner == org.rep_js
    act("submit")
    response = act("approve", director)
    east_plan.refresh_from_db()
    assert (east_plan.status, east_plan.current_version, east_plan.submitted_by, east_plan.approved_by) == (
        PlanStatus.APPROVED,
        1,
        org.manager,
        org.director,
    )
    assert "Plan approved" in response.content.decode()


def test_the_issue_flow_manager_splits_by_region_rep_month_fixes_approves_rep_sees_it(org, metrics, client_for):
    """A manager creates a plan, splits it by region, then rep, then month, fixes an incomplete leaf,
    submits it, the director approves it; a rep then sees the target on "my targets"."""
    manager, director = client_for(org.manager), client_for(org.director)
    new_plan(manager, metric=metrics["won_revenue"].pk, region=org.east.pk, total="600000")
    plan = TargetPlan.objects.get()
    root = plan.nodes.get()

    def split(node, **data):
        url = reverse("targets:node_split", args=[plan.pk, node.pk])
        return manager.post(url, {"method": "equal", "scope": "node", "action": "commit", **data})

    assert split(root, dimension="region", version=root.version).status_code == 302
    provinces = by_region(root.children.all())
    sh = provinces[org.sh.pk]
    assert split(sh, dimension="rep", version=sh.version).status_code == 302
    assert split(root, dimension="month", scope="leaves").status_code == 302  # every leaf below, at once
    leaves = TargetNode.objects.filter(plan=plan, split_dimension="")
    assert leaves.count() == 36 and leaves.filter(period_kind="month").count() == 36
    assert sum(leaf.amount for leaf in leaves) == Decimal("600000.00")

    manager.post(reverse("targets:plan_action", args=[plan.pk, "submit"]))
    director.post(reverse("targets:plan_action", args=[plan.pk, "approve"]))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.SUBMITTED  # Jiangsu's 12 months have no owner
    director.post(reverse("targets:plan_action", args=[plan.pk, "return"]), {"reason": "owners"})
    js = provinces[org.js.pk]
    manager.post(
        reverse("targets:node_edit", args=[plan.pk, js.pk]),
        {"owner": org.rep_js.pk, "amount": "300000", "version": js.version},
    )
    # The province's owner is set; its months (leaves) still need theirs: fix them from the incomplete list.
    page = manager.get(reverse("targets:plan_detail", args=[plan.pk]) + "?show=incomplete").content.decode()
    months = list(TargetNode.objects.filter(plan=plan, parent=js).order_by("path"))
    assert all(f'data-testid="node-{m.pk}"' in page for m in months)
    for month in months:
        manager.post(
            reverse("targets:node_edit", args=[plan.pk, month.pk]), {"owner": org.rep_js.pk, "version": month.version}
        )
    manager.post(reverse("targets:plan_action", args=[plan.pk, "submit"]))
    director.post(reverse("targets:plan_action", args=[plan.pk, "approve"]))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.APPROVED

    mine = client_for(org.rep).get(reverse("targets:mine")).content.decode()
    rep_year = TargetNode.objects.get(plan=plan, rep=org.rep, period_kind="year")
    rep_month = TargetNode.objects.filter(plan=plan, rep=org.rep, period_kind="month").first()
    assert f'data-testid="target-{rep_year.pk}"' in mine and f'data-testid="target-{rep_month.pk}"' in mine


def test_the_plan_list_queries_do_not_grow_with_plans(org, metrics, client_for, django_assert_max_num_queries):
    client = client_for(org.manager)
    periods = iter(["FY2026", "FY2026-Q1", "FY2026-Q2", "FY2026-Q3", "FY2026-Q4", "FY2027", "FY2027-Q1", "FY2027-Q2"])

    def measure(plans: int) -> int:
        while TargetPlan.objects.count() < plans:
            plan_create(
                metric=metrics["won_revenue"], period_key=next(periods), total=1, region=org.east, actor=org.manager
            )
        # The page's queries, the nav bell's unread count and the "awaiting my approval" count included.
        with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(23):
            page = client.get(reverse(LIST)).content.decode()
        assert page.count('data-testid="plan-row-') == plans
        return len(queries)

    assert measure(2) == measure(8)
