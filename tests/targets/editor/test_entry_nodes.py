"""The top of what a user sees of a plan (the editor's first level; a plan's part in the lists): found from the
regions he runs and the targets he sees for their owner or rep, it is exactly "every target he sees whose
parent he does not see", for every kind of user, in a number of queries that does not grow with the plan."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from crm.models import DataScope, Role
from targets.models import TargetNode
from targets.planning import selectors
from targets.services import plan_create, target_split, target_split_leaves
from tests.factories import UserFactory


def split_company_plan(org, metrics, period_key="FY2027", *, months=False):
    """A plan for the company: areas (East, North), their provinces (Shanghai, Jiangsu; Beijing), each
    province's reps (and with `months`, each rep's months)."""
    plan = plan_create(
        metric=metrics["won_revenue"], period_key=period_key, total="1200000", owner=org.director, actor=org.director
    )
    root = plan.nodes.get()
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    for dimension in ("region", "rep", "month") if months else ("region", "rep"):
        target_split_leaves(node=root, dimension=dimension, method="equal", actor=org.director)
    return plan


@pytest.fixture
def company_plan(org, metrics):
    return split_company_plan(org, metrics)


def entries(plan, user) -> set[int]:
    return set(selectors.plan_entry_nodes(plan, user).values_list("pk", flat=True))


def every_visible_target_whose_parent_is_not(plan, user) -> set[int]:
    """The definition, as the editor computed it before: compared with every visible target."""
    visible = selectors.nodes_visible_to(user).filter(plan=plan)
    return set(
        visible.filter(Q(parent__isnull=True) | ~Q(parent__in=visible.values("pk"))).values_list("pk", flat=True)
    )


def of_region(plan, region) -> TargetNode:
    """The target of `region` where it starts (the one its area or company was split into)."""
    return plan.nodes.get(region=region, rep__isnull=True)


def rep_node(plan, rep) -> TargetNode:
    return plan.nodes.get(rep=rep)


def test_directors_areas_managers_and_reps_start_where_they_did(org, company_plan):
    plan = company_plan
    expected = {
        org.director: {plan.nodes.get(parent=None).pk},
        org.manager: {of_region(plan, org.east).pk},
        org.manager_north: {of_region(plan, org.north).pk},
        org.rep: {rep_node(plan, org.rep).pk},
        org.rep_other: {rep_node(plan, org.rep_other).pk},
    }
    for user, nodes in expected.items():
        assert entries(plan, user) == nodes == every_visible_target_whose_parent_is_not(plan, user), user


def test_a_manager_running_two_separate_regions_starts_at_both(org, company_plan):
    plan = company_plan
    boss = UserFactory(
        username="two_regions", role=Role.MANAGER, region=org.sh, data_scope=DataScope.SELF_AND_SUBORDINATES
    )
    for region in (org.sh, org.bj):  # a province of each area
        region.manager = boss
        region.save(update_fields=["manager"])
    assert entries(plan, boss) == {of_region(plan, org.sh).pk, of_region(plan, org.bj).pk}
    assert entries(plan, boss) == every_visible_target_whose_parent_is_not(plan, boss)


@pytest.mark.parametrize("scope", [DataScope.DEPARTMENT_TREE, DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT])
def test_the_manager_of_a_nested_region_starts_at_it(org, company_plan, scope):
    plan = company_plan
    province = UserFactory(username="sh_manager", role=Role.MANAGER, region=org.sh, data_scope=scope)
    org.sh.manager = province
    org.sh.save(update_fields=["manager"])
    assert entries(plan, province) == {of_region(plan, org.sh).pk}
    assert entries(plan, province) == every_visible_target_whose_parent_is_not(plan, province)
    # The area's manager running the province too starts at his area only: the province is inside it.
    org.manager.data_scope = scope
    org.manager.save(update_fields=["data_scope"])
    org.sh.manager = org.manager
    org.sh.save(update_fields=["manager"])
    assert entries(plan, org.manager) == {of_region(plan, org.east).pk}
    assert entries(plan, org.manager) == every_visible_target_whose_parent_is_not(plan, org.manager)


def test_a_target_seen_for_its_owner_far_from_the_managers_regions_is_a_start_too(org, company_plan):
    plan = company_plan
    # Beijing's rep joins a Shanghai team: his Beijing target is now one of the East manager's people's.
    org.rep_other.region = org.sh
    org.rep_other.save(update_fields=["region"])
    assert entries(plan, org.manager) == {of_region(plan, org.east).pk, rep_node(plan, org.rep_other).pk}
    # An owner given a target far down, outside the regions: the same.
    far = of_region(plan, org.bj)
    far.owner = org.rep_js
    far.save(update_fields=["owner"])
    assert entries(plan, org.manager) == {of_region(plan, org.east).pk, far.pk}  # the rep's target is under it
    for user in (org.manager, org.manager_north, org.rep_js, org.rep_other):
        assert entries(plan, user) == every_visible_target_whose_parent_is_not(plan, user), user


@pytest.mark.parametrize("scope", list(DataScope))
def test_every_scope_of_a_company_manager_starts_where_it_did(org, company_plan, scope):
    """A manager at the company region (above the areas: a split of the root goes straight to the areas)."""
    hq_manager = UserFactory(username="hq", role=Role.MANAGER, region=org.hq, data_scope=scope)
    org.hq.manager = hq_manager
    org.hq.save(update_fields=["manager"])
    assert entries(company_plan, hq_manager) == every_visible_target_whose_parent_is_not(company_plan, hq_manager)


def test_a_regional_plan_starts_at_its_root_for_the_regions_manager(org, metrics):
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=Decimal("600000"), region=org.east, actor=org.manager
    )
    target_split(node=plan.nodes.get(), dimension="region", method="equal", actor=org.manager)
    assert entries(plan, org.manager) == {plan.nodes.get(parent=None).pk}
    assert entries(plan, org.rep) == every_visible_target_whose_parent_is_not(plan, org.rep)


def test_the_queries_do_not_grow_with_the_plan(org, metrics, company_plan):
    def queries(plan, user) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert entries(plan, user)
        return len(captured)

    users = (org.director, org.manager, org.rep)
    small = [queries(company_plan, user) for user in users]
    UserFactory.create_batch(12, role=Role.REP, region=org.sh)
    UserFactory.create_batch(12, role=Role.REP, region=org.bj)
    large = split_company_plan(org, metrics, "FY2028", months=True)
    assert large.nodes.count() > 10 * company_plan.nodes.count()
    assert [queries(large, user) for user in users] == small
    assert max(small) <= 3  # the scope's regions (two reads at most), then one statement
