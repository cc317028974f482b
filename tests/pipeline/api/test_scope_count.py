"""The deal list's count of a whole scope comes from per-region counts kept by `crm.rollup`
(`pipeline.selectors.scope_deal_count`), and always equals counting the user's deals afresh.

The director's unfiltered list counted all 600,000 deals of the big company at every page (70 ms of PostgreSQL) and a
manager's visited every block holding one of his area's deals (20 ms). These tests commit (transaction=True): the
freshness versions the kept counts hang on move only after a commit, as in production."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import DataScope, Role
from crm.rollup import roots
from crm.scopes import scope_subtrees
from pipeline.models import Opportunity
from pipeline.selectors import scope_deal_count
from pipeline.services import deals_reassign, opportunity_move_stage
from tests.factories import UserFactory, make_deal

pytestmark = pytest.mark.django_db(transaction=True)


def full_counts(queries, user) -> list[str]:
    """Statements counting the list's rows as a whole (the pagination's COUNT(*) of the scoped deals); not the
    count of the user's own deals outside his subtrees (his own index, a few rows)."""
    own_outside = f'WHERE ("pipeline_opportunity"."owner_id" = {user.pk} AND NOT'
    return [
        q["sql"]
        for q in queries
        if 'COUNT(*) AS "__count" FROM "pipeline_opportunity"' in q["sql"] and own_outside not in q["sql"]
    ]


def listed_count(api, user, query: str = "") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = api(user).get(f"/api/opportunities/{query}")
    assert response.status_code == 200, response.content
    return response.json()["count"], full_counts(ctx.captured_queries, user)


@pytest.fixture
def people(org):
    """Every kind of scope: all, subordinates (two managed regions, one inside the other, himself a member of a
    third team, where his own deals count), department tree, department, self."""
    nested = UserFactory(
        username="nested", role=Role.MANAGER, region=org.bj, data_scope=DataScope.SELF_AND_SUBORDINATES
    )
    for region in (org.east, org.sh):
        region.manager = nested
        region.save(update_fields=["manager"])
    return {
        "director": org.director,
        "nested": nested,
        "tree": UserFactory(username="tree", role=Role.MANAGER, region=org.east, data_scope=DataScope.DEPARTMENT_TREE),
        "department": UserFactory(username="dept", role=Role.MANAGER, region=org.sh, data_scope=DataScope.DEPARTMENT),
        "rep": org.rep,
        "north": org.manager_north,
    }


@pytest.fixture
def many_deals(org, people):
    made = [make_deal(owner=owner, amount="100") for owner in (org.rep, org.rep, org.rep_same_team, org.rep_js)]
    made += [make_deal(owner=org.rep_other, amount="100") for _ in range(3)]
    made.append(make_deal(owner=org.manager_north, amount="5"))
    made.append(make_deal(owner=people["nested"], amount="6"))  # credited to Beijing, outside the regions he manages
    return made


def test_a_scope_of_whole_subtrees_has_their_tops_as_roots(org, people):
    east = {org.east.pk, org.sh.pk, org.js.pk}
    assert set(scope_subtrees(people["director"])) == {org.hq.pk, org.north.pk, org.bj.pk} | east
    assert roots(scope_subtrees(people["director"])) == [org.hq.pk]
    assert set(scope_subtrees(people["nested"])) == east  # Shanghai is inside the East: once
    assert roots(scope_subtrees(people["nested"])) == [org.east.pk]
    assert roots(scope_subtrees(people["tree"])) == [org.east.pk]
    assert scope_subtrees(people["department"]) is None
    assert scope_subtrees(people["rep"]) is None


def test_the_count_of_every_scope_equals_counting_its_deals(org, people, many_deals, api):
    for name, user in people.items():
        direct = Opportunity.objects.visible_to(user).count()
        count, counted = listed_count(api, user)
        assert count == direct, name
        if scope_subtrees(user) is not None:
            assert scope_deal_count(user) == direct, name
            assert not counted, (name, counted)  # from the kept counts, not a COUNT(*) of the list
        else:
            assert scope_deal_count(user) is None
            assert counted, name


def test_kept_counts_follow_new_moved_and_reassigned_deals(org, people, many_deals, api):
    director, north = people["director"], people["north"]
    assert listed_count(api, director)[0] == len(many_deals)
    assert listed_count(api, north)[0] == 5  # the Beijing deals: three of a rep, his own, the nested manager's
    assert listed_count(api, people["nested"])[0] == 5  # the East's four and his own, outside it
    # A new deal in the East, a move, and a reassignment of one of his own deals to an East rep and back to him.
    make_deal(owner=org.rep_js, amount="7", close=date(2026, 9, 1))
    opportunity_move_stage(opportunity=many_deals[0], stage=org.stages[1], evidence="Met", actor=org.rep)
    deals_reassign(
        from_owner=org.rep_other, to_owner=org.rep_js, effective=date(2026, 1, 1), reason="Moved", actor=director
    )
    for name, user in people.items():
        count, _counted = listed_count(api, user)
        assert count == Opportunity.objects.visible_to(user).count(), name
    assert listed_count(api, director)[0] == len(many_deals) + 1
    assert listed_count(api, north)[0] == 2  # his own deal and the nested manager's are all that is left him


def test_a_filtered_list_counts_its_own_rows(org, people, many_deals, api):
    director = people["director"]
    count, counted = listed_count(api, director, f"?owner={org.rep.pk}")
    assert count == 2
    assert counted  # a filter narrows the rows: they are counted
    count, _ = listed_count(api, director, "?page_size=2&ordering=-amount_company")
    assert count == len(many_deals)  # paging and ordering leave the scope whole
