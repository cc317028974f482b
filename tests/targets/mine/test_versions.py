"""Versions of a plan and the compare page: the changed targets, paged, in a fixed number of queries."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from targets.models import TargetNode
from targets.services import adjustment_approve, adjustment_propose, plan_approve, plan_submit, target_split
from targets.views import mine as views
from tests.targets.mine.conftest import fresh


def reallocate(plan, a, b, amount, org, reason="move"):
    a, b = fresh(a), fresh(b)
    adjustment = adjustment_propose(
        plan=plan,
        kind="reallocation",
        reason=reason,
        changes=[{"node": a, "amount": a.amount - amount}, {"node": b, "amount": b.amount + amount}],
        actor=org.manager,
    )
    return adjustment_approve(adjustment=adjustment, actor=org.director)


@pytest.fixture
def monthly(plan, tree, org):
    """East's reps split into months before approval; version 2 moves money between two of rep_js's months
    (2 targets change), version 3 between two reps (the reps and their 24 months change)."""
    for rep in (org.rep, org.rep_same_team, org.rep_js):
        target_split(node=fresh(tree["reps"][rep]), dimension="month", method="equal", actor=org.manager)
    plan_submit(plan=plan, actor=org.director)
    plan_approve(plan=plan, actor=org.admin)
    months = list(TargetNode.objects.filter(parent=tree["reps"][org.rep_js]).order_by("path"))
    reallocate(plan, months[0], months[1], Decimal("1000"), org, reason="January is short")
    reallocate(plan, tree["reps"][org.rep], tree["reps"][org.rep_same_team], Decimal("24000"), org, reason="Leave")
    plan.refresh_from_db()
    return plan


def compare(client, plan, a, b, **params):
    return client.get(reverse("targets:plan_compare", args=[plan.pk]), {"a": a, "b": b, **params})


def test_versions_lists_every_version_with_who_and_why(org, monthly, client_for):
    response = client_for(org.manager).get(reverse("targets:plan_versions", args=[monthly.pk]))
    versions = {v["number"]: v for v in response.context["versions"]}
    assert set(versions) == {1, 2, 3}
    # Version 1: the director submitted the plan, the admin (above him) approved it.
    assert (versions[1]["approver"], versions[1]["proposer"]) == (org.admin, org.director)
    assert (versions[3]["reason"], versions[3]["proposer"], versions[3]["approver"]) == (
        "Leave",
        org.manager,
        org.director,
    )
    html = response.content.decode()
    assert "?a=1&amp;b=3" in html  # original vs in force
    assert "?a=2&amp;b=3" in html  # each against the previous


def test_compare_shows_exactly_the_changed_targets_and_pages_them(org, monthly, tree, client_for, monkeypatch):
    director = client_for(org.director)
    first = compare(director, monthly, 1, 2)
    assert first.context["page"].paginator.count == 2
    reps = [tree["reps"][org.rep].pk, tree["reps"][org.rep_same_team].pk]
    expected = set(reps) | set(TargetNode.objects.filter(parent__in=reps).values_list("pk", flat=True))
    monkeypatch.setattr(views, "DIFF_PAGE_SIZE", 10)
    seen = []
    for page in (1, 2, 3):
        response = compare(director, monthly, 2, 3, page=page)
        seen += [r["node"].pk for r in response.context["rows"]]
    assert len(seen) == 26 and set(seen) == expected
    # Reversed, the same targets with the opposite differences.
    back = compare(director, monthly, 3, 2).context["rows"]
    assert all(r["delta"] == r["new"] - r["old"] for r in back)
    rep_row = next(r for r in compare(director, monthly, 2, 3).context["rows"] if r["node"].pk == reps[0])
    assert (rep_row["old"], rep_row["new"], rep_row["delta"]) == (
        Decimal("200000"),
        Decimal("176000"),
        Decimal("-24000"),
    )
    assert rep_row["pct"] == Decimal("-12.0")


def test_compare_query_count_does_not_grow_with_the_changed_targets(org, monthly, client_for):
    client = client_for(org.director)
    counts = []
    for a, b in ((1, 2), (2, 3), (1, 3)):
        with CaptureQueriesContext(connection) as ctx:
            response = compare(client, monthly, a, b)
            assert response.status_code == 200
        counts.append((response.context["page"].paginator.count, len(ctx.captured_queries)))
    assert [c[0] for c in counts] == [2, 26, 28]
    assert len({c[1] for c in counts}) == 1, counts


def test_compare_shows_only_what_the_user_may_see(org, monthly, tree, client_for):
    # The North manager sees the plan but none of the East's targets.
    response = compare(client_for(org.manager_north), monthly, 1, 3)
    assert response.context["page"].paginator.count == 0
    # A rep sees his own changes only.
    response = compare(client_for(org.rep), monthly, 2, 3)
    pks = {r["node"].pk for r in response.context["rows"]}
    assert tree["reps"][org.rep].pk in pks and tree["reps"][org.rep_same_team].pk not in pks


def test_unknown_versions_are_a_form_error(org, monthly, client_for):
    response = compare(client_for(org.director), monthly, 1, 9)
    assert response.status_code == 400 and "b" in response.context["form"].errors


def test_a_draft_plan_has_no_versions_yet(org, plan, tree, client_for):
    response = client_for(org.manager).get(reverse("targets:plan_versions", args=[plan.pk]))
    assert response.context["versions"] == [] and 'data-testid="no-versions"' in response.content.decode()
    response = client_for(org.manager).get(reverse("targets:plan_compare", args=[plan.pk]))
    assert response.status_code == 302


def test_plans_out_of_scope_are_404(org, metrics, client_for):
    from targets.services import plan_create

    other = plan_create(
        metric=metrics["collections"], period_key="FY2027", total="1000", region=org.north, actor=org.director
    )
    assert client_for(org.manager).get(reverse("targets:plan_versions", args=[other.pk])).status_code == 404


def test_the_versions_page_offers_an_adjustment_of_the_top_target_each_user_sees(org, plan, tree, approved, client_for):
    for user, node in ((org.director, tree["root"]), (org.manager, tree["east"]), (org.manager_north, tree["north"])):
        client = client_for(user)
        html = client.get(reverse("targets:plan_versions", args=[plan.pk])).content.decode()
        link = reverse("targets:adjustment_propose", args=[node.pk])
        assert f'href="{link}" data-testid="propose-root"' in html, user
        assert client.get(link).status_code == 200


def test_the_compare_page_rounds_its_percentages_by_the_one_rule(org, plan, tree, approved, client_for):
    # 24,500 of 200,000 is 12.25 %: half up, as every shown percentage (half-even gave 12.2).
    reallocate(plan, tree["reps"][org.rep], tree["reps"][org.rep_same_team], Decimal("24500"), org)
    rows = client_for(org.director).get(reverse("targets:plan_compare", args=[plan.pk]), {"a": 1, "b": 2})
    pct = {row["node"].pk: row["pct"] for row in rows.context["rows"]}
    assert pct[tree["reps"][org.rep].pk] == Decimal("-12.3")
    assert pct[tree["reps"][org.rep_same_team].pk] == Decimal("12.3")
