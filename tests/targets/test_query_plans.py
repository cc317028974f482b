"""At the size of a big plan (74,000 targets), what a manager's data scope lets him see of it is read through
the indexes of the scope's arms (owner, region, rep), never by scanning every target (PostgreSQL only).

The plan editor's levels, the plan list, the plan and target lists of the API: every statement they send that
reads the targets is EXPLAINed. A scope matched on the path of the owner's region (a join per target), or a
visible-target filter written as `pk IN (every visible target)`, would scan them.
"""

import pytest
from django.urls import reverse

from targets.models import TargetNode
from targets.planning.selectors import nodes_visible_to, plan_tree, visible_incomplete_leaves
from tests.query_plans import (
    assert_no_full_scan,
    company_fixture,
    index_names,
    seq_scans_of,
    sql_of,
    statements_reading,
)

NODES = "targets_targetnode"

pytestmark = pytest.mark.xdist_group("query_plans")

company = company_fixture(deals=0)


def test_the_visible_targets_come_from_the_indexes_of_the_scopes_arms(company, db):
    sql = sql_of(nodes_visible_to(company.province_manager).filter(plan=company.plan))
    assert {"target_node_region", "target_node_owner"} <= index_names(sql), sql
    for user in (company.province_manager, company.team_manager, company.rep):
        for qs in (
            nodes_visible_to(user).filter(plan=company.plan),
            visible_incomplete_leaves(company.plan, user),
            plan_tree(company.plan, None, user=user),
        ):
            assert not seq_scans_of(sql_of(qs), NODES), (user, sql_of(qs))


def test_the_plan_editors_levels_and_lists_read_a_managers_targets_by_index(company, client_for, db):
    plan = company.plan
    team_node = TargetNode.objects.get(plan=plan, depth=1, region__code="QP2.3.4")
    statements = statements_reading(
        NODES,
        client_for(company.province_manager),
        (reverse("targets:node_children", args=[plan.pk, team_node.pk]), {}, {}),
        (reverse("targets:plan_list"), {}, {}),
    )
    assert_no_full_scan(statements, NODES, "the plan editor's levels and list for a manager")


def test_the_plan_editors_first_level_reads_a_managers_targets_by_index(company, client_for, db):
    url = reverse("targets:plan_detail", args=[company.plan.pk])
    statements = statements_reading(NODES, client_for(company.province_manager), (url, {}, {}))
    assert_no_full_scan(statements, NODES, "the plan editor's first level for a manager")


def test_the_target_api_lists_and_their_page_counts_read_a_managers_targets_by_index(company, api, db):
    statements = statements_reading(
        NODES,
        api(company.province_manager),
        ("/api/target-nodes/", {"plan": company.plan.pk}, {}),
        ("/api/target-nodes/", {"plan": company.plan.pk, "page": 5}, {}),
        ("/api/target-plans/", {}, {}),
    )
    assert sum(sql.startswith("SELECT COUNT(*)") for sql in statements) == 3
    assert_no_full_scan(statements, NODES, "the target API for a manager")
