"""The one place data scopes are decided: every role and scope against the same small company."""

import pytest

from crm.models import Customer, DataScope
from crm.scopes import visible_regions, visible_users
from pipeline.models import Opportunity
from tests.factories import CustomerFactory, make_deal


@pytest.fixture
def deals(org):
    return {
        "rep": make_deal(owner=org.rep),
        "rep_same_team": make_deal(owner=org.rep_same_team),
        "rep_js": make_deal(owner=org.rep_js),
        "rep_other": make_deal(owner=org.rep_other),
    }


def visible(user):
    return set(Opportunity.objects.visible_to(user).values_list("owner__username", flat=True))


def test_rep_sees_only_own_deals(org, deals):
    assert visible(org.rep) == {"rep"}


def test_manager_sees_his_subtree_only(org, deals):
    assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}


def test_director_sees_everything(org, deals):
    assert visible(org.director) == {"rep", "rep_sh2", "rep_js", "rep_other"}


def test_department_scope_is_own_region_only(org, deals):
    org.rep.data_scope = DataScope.DEPARTMENT
    org.rep.save()
    assert visible(org.rep) == {"rep", "rep_sh2"}


def test_subordinates_scope_follows_managed_regions(org, deals):
    org.manager.data_scope = DataScope.SELF_AND_SUBORDINATES
    org.manager.region = org.hq  # sits at HQ but manages East: still sees East's reps, not North's
    org.manager.save()
    assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}


def test_department_tree_without_region_falls_back_to_self(org, deals):
    org.rep_js.data_scope = DataScope.DEPARTMENT_TREE
    org.rep_js.region = None
    org.rep_js.save()
    assert visible(org.rep_js) == {"rep_js"}


def test_customer_booked_to_region_is_visible_to_its_manager_even_if_owner_moved(org):
    customer = CustomerFactory(owner=org.rep_other, region=org.sh)
    assert Customer.objects.visible_to(org.manager).filter(pk=customer.pk).exists()
    assert not Customer.objects.visible_to(org.rep).filter(pk=customer.pk).exists()


def test_inactive_user_sees_nothing(org, deals):
    org.director.is_active = False
    org.director.save()
    assert visible(org.director) == set()


def test_visible_users_and_regions(org):
    assert set(visible_users(org.manager).values_list("username", flat=True)) == {"manager", "rep", "rep_sh2", "rep_js"}
    assert set(visible_users(org.rep).values_list("username", flat=True)) == {"rep"}
    assert set(visible_regions(org.manager).values_list("code", flat=True)) == {"EAST", "SH", "JS"}
    assert set(visible_regions(org.rep).values_list("code", flat=True)) == {"SH"}
    assert visible_regions(org.director).count() == 6


@pytest.mark.parametrize("scope", [s for s in DataScope if s != DataScope.ALL])
def test_long_id_lists_go_as_subqueries_with_the_same_rows(org, deals, monkeypatch, scope):
    """A scope wider than `INLINE_IDS` regions or people reaches the database as subqueries: same rows."""
    from crm import scopes

    org.manager.data_scope = scope
    org.manager.save()
    customers = [CustomerFactory(owner=o, region=o.region) for o in (org.rep, org.rep_js, org.rep_other)]
    customers.append(CustomerFactory(owner=org.rep_other, region=org.sh))  # booked to East, owned outside it

    def seen():
        return visible(org.manager), set(Customer.objects.visible_to(org.manager).values_list("pk", flat=True))

    inline = seen()
    monkeypatch.setattr(scopes, "INLINE_IDS", 0)
    assert seen() == inline
    # The scope did reach beyond his own rows where it covers Shanghai (under East, which he manages and sits in).
    assert (customers[3].pk in inline[1]) == (scope in (DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE))


def test_a_read_only_request_reads_a_scope_once(org, deals, django_assert_num_queries):
    """Inside `request_memo` (every GET, crm.middleware) the scope's regions and members are read once, however
    many querysets filter by it; the same rows as without it."""
    from salesmgmt.memo import request_memo

    def seen():
        return visible(org.manager), set(Customer.objects.visible_to(org.manager).values_list("pk", flat=True))

    with django_assert_num_queries(4):  # a reach per list (the deals' without the members), and the lists
        fresh = seen()
    with request_memo():
        with django_assert_num_queries(4):
            assert seen() == fresh
        with django_assert_num_queries(2):  # both reaches known: only the lists
            assert seen() == fresh
    with django_assert_num_queries(4):  # off again
        assert seen() == fresh


@pytest.mark.parametrize(("method", "queries"), [("get", 3), ("head", 3), ("post", 4)])
def test_the_middleware_memoises_only_read_only_requests(org, deals, method, queries, django_assert_num_queries):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from crm.middleware import ScopeMemoMiddleware

    def view(request):
        assert visible(org.manager) == visible(org.manager) == {"rep", "rep_sh2", "rep_js"}
        return HttpResponse()

    with django_assert_num_queries(queries):  # the reach once, then both lists; a POST reads it twice
        ScopeMemoMiddleware(view)(getattr(RequestFactory(), method)("/"))


@pytest.mark.parametrize(("method", "queries"), [("get", 1), ("post", 2)])
def test_a_read_only_request_reads_the_company_settings_once(org, method, queries, django_assert_num_queries):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from crm.middleware import ScopeMemoMiddleware
    from crm.models import CompanySettings

    def view(request):
        first, second = CompanySettings.load(), CompanySettings.load()
        assert first.currency == second.currency == org.company.currency
        return HttpResponse()

    CompanySettings.load()
    with django_assert_num_queries(queries):
        ScopeMemoMiddleware(view)(getattr(RequestFactory(), method)("/"))
    org.company.currency = "USD"
    org.company.save()
    ScopeMemoMiddleware(lambda request: HttpResponse(CompanySettings.load().currency))(RequestFactory().get("/"))
    assert CompanySettings.load().currency == "USD"  # nothing kept between requests


def test_inside_the_memo_a_known_scope_builds_no_subquery(org, deals, monkeypatch):
    """Once a request knows a scope's regions, `scope_q`, `visible_regions` and `sees_subtree` neither read nor
    build the regions' subquery again (building it cost a quarter to a full millisecond a call)."""
    from crm import scopes
    from salesmgmt.memo import request_memo

    built = []
    subtrees = scopes.subtrees
    monkeypatch.setattr(scopes, "subtrees", lambda roots: built.append(roots) or subtrees(roots))
    with request_memo():
        first = (
            visible(org.manager),
            set(scopes.visible_regions(org.manager)),
            set(scopes.visible_regions(org.manager)),
        )
        assert scopes.sees_subtree(org.manager, org.sh) and not scopes.sees_subtree(org.manager, org.bj)
        calls = len(built)
        again = (
            visible(org.manager),
            set(scopes.visible_regions(org.manager)),
            set(scopes.visible_regions(org.manager)),
        )
        assert scopes.sees_subtree(org.manager, org.js)
        assert again == first and len(built) == calls
    assert first[1] == set(scopes.visible_regions(org.manager))


@pytest.mark.parametrize(
    "scope",
    [DataScope.SELF, DataScope.DEPARTMENT, DataScope.SELF_AND_SUBORDINATES, DataScope.DEPARTMENT_TREE],
)
def test_a_read_only_request_reads_the_visible_regions_once(org, scope, django_assert_num_queries, monkeypatch):
    """`visible_regions` inside `request_memo`: the same regions as without it, their ids read once from the second
    time they are asked for; long lists stay a subquery."""
    from crm import scopes
    from crm.scopes import visible_regions
    from salesmgmt.memo import request_memo

    user = org.manager
    user.data_scope = scope
    user.save()

    def regions():
        return set(visible_regions(user).values_list("pk", flat=True))

    fresh = regions()
    assert fresh  # at least his own region
    with request_memo():
        with django_assert_num_queries(1):  # asked once: the subquery, no query more
            assert regions() == fresh
        with django_assert_num_queries(2):  # asked again: the ids, then the rows by them
            assert regions() == fresh
        with django_assert_num_queries(2):  # known: the rows alone, each time
            assert regions() == fresh
            assert visible_regions(user).filter(pk=org.sh.pk).exists() == (org.sh.pk in fresh)
    with request_memo():
        monkeypatch.setattr(scopes, "INLINE_IDS", 0)
        assert regions() == regions() == regions() == fresh


@pytest.mark.django_db(transaction=True)
def test_a_reach_is_kept_across_requests_until_the_organisation_changes(org, deals, django_assert_num_queries):
    """Committed data (no write of this connection pending): a manager's reach read by one request is used by the
    next, under the version of everything; moving a person (a write to the organisation, bumped when it commits)
    makes the next request read it afresh, with the move in it."""
    from crm.scopes import forget_kept_reaches
    from salesmgmt import freshness

    freshness.flush()  # the fixtures' writes have committed (autocommit): bump their versions now
    forget_kept_reaches()
    with django_assert_num_queries(3):  # the version, the reach, the list
        assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}
    with django_assert_num_queries(2):  # the version, the list: the reach is kept
        assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}
    theirs = CustomerFactory(owner=org.rep_other, region=org.bj)
    freshness.flush()
    assert theirs not in set(Customer.objects.visible_to(org.manager))  # a reach with the members: read, then kept
    org.rep_other.region = org.js  # the rep of Beijing joins Jiangsu, under the manager of the East
    org.rep_other.save(update_fields=["region"])
    with django_assert_num_queries(3):  # the organisation changed: the reach is read again
        assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}  # deals stay with the team they count for
    assert theirs in set(Customer.objects.visible_to(org.manager))  # his customers follow him to his new team


@pytest.mark.django_db(transaction=True)
def test_visible_regions_are_kept_across_requests_until_the_organisation_changes(org, django_assert_num_queries):
    from crm.scopes import forget_kept_reaches
    from salesmgmt import freshness
    from tests.factories import make_region

    freshness.flush()
    forget_kept_reaches()
    with django_assert_num_queries(3):  # the version, the regions' ids, the regions
        assert set(visible_regions(org.manager)) == {org.east, org.sh, org.js}
    with django_assert_num_queries(2):  # the version, the regions: their ids are kept
        assert set(visible_regions(org.manager)) == {org.east, org.sh, org.js}
    wuxi = make_region("Wuxi", "WX", parent=org.js)  # a new team under the East
    with django_assert_num_queries(3):
        assert set(visible_regions(org.manager)) == {org.east, org.sh, org.js, wuxi}


@pytest.mark.django_db(transaction=True)
def test_a_request_reads_the_organisations_version_once(org, deals, django_assert_num_queries):
    """The page cache's lookup reads the version of everything; the kept reach uses that read, not one of its own."""
    from crm.scopes import forget_kept_reaches
    from salesmgmt import freshness
    from salesmgmt.memo import request_memo

    freshness.flush()
    forget_kept_reaches()
    with request_memo():
        freshness.versions([freshness.EVERYTHING, "r1"])  # as the page cache's lookup does
        with django_assert_num_queries(2):  # the reach and the list: no second read of the version
            assert visible(org.manager) == {"rep", "rep_sh2", "rep_js"}
