"""Bottom-up commitments (自下而上): only the owner commits, the parent's owner sees the gap and reconciles."""

from decimal import Decimal

from django.urls import reverse

from crm.models import AuditLog
from targets.services import node_commit
from tests.targets.mine.conftest import fresh


def commit_url(node):
    return reverse("targets:node_commit", args=[node.pk])


def test_the_owner_commits_from_my_targets(org, tree, client_for):
    node = tree["reps"][org.rep]
    html = client_for(org.rep).get(reverse("targets:mine")).content.decode()
    assert f'data-testid="commit-form-{node.pk}"' in html
    response = client_for(org.rep).post(commit_url(node), {"amount": "250,000", "next": reverse("targets:mine")})
    assert response.status_code == 302 and response.url == reverse("targets:mine")
    assert fresh(node).committed_amount == Decimal("250000.00")
    assert AuditLog.objects.filter(action="target.commit", actor=org.rep).exists()


def test_nobody_commits_on_someone_elses_behalf(org, tree, client_for):
    node = tree["reps"][org.rep]
    # A colleague cannot even see the target.
    assert client_for(org.rep_same_team).post(commit_url(node), {"amount": "1"}).status_code == 404
    # The manager sees it, but the commitment is the rep's to make.
    response = client_for(org.manager).post(commit_url(node), {"amount": "1"})
    assert response.status_code == 200
    assert "Only the owner" in response.content.decode()
    assert fresh(node).committed_amount is None
    # The manager is not offered a commitment on his people's targets either.
    html = client_for(org.manager).get(reverse("targets:mine"), {"person": "team"}).content.decode()
    assert "commit-form-" not in html


def test_bad_amounts_are_form_errors(org, tree, client_for):
    node = tree["reps"][org.rep]
    for bad in ("lots", "-5", "1.234"):
        response = client_for(org.rep).post(commit_url(node), {"amount": bad})
        assert response.status_code == 200 and response.context["form"].errors, bad
    assert fresh(node).committed_amount is None


def test_an_approved_plan_takes_no_more_commitments(org, tree, approved, client_for):
    node = tree["reps"][org.rep]
    response = client_for(org.rep).post(commit_url(node), {"amount": "1000"})
    assert "adjustment" in response.content.decode()
    assert fresh(node).committed_amount is None


def test_the_parent_sees_the_gap_per_part_and_in_total(org, tree, client_for):
    reps = tree["reps"]
    node_commit(node=reps[org.rep], amount="260000", actor=org.rep)
    node_commit(node=reps[org.rep_same_team], amount="150000", actor=org.rep_same_team)
    response = client_for(org.manager).get(reverse("targets:node_commitments", args=[tree["east"].pk]))
    gap = response.context["gap"]
    assert gap["top_down"] == Decimal("600000")
    assert gap["bottom_up"] == Decimal("410000")
    assert gap["gap"] == Decimal("10000")  # 410,000 committed against 400,000 handed to those two
    rows = {row["node"].pk: row for row in gap["rows"]}
    assert rows[reps[org.rep].pk]["gap"] == Decimal("60000")
    assert rows[reps[org.rep_same_team].pk]["gap"] == Decimal("-50000")
    assert rows[reps[org.rep_js].pk]["gap"] is None  # has not committed yet
    html = response.content.decode()
    assert 'data-testid="total-gap" data-value="10000.00"' in html
    assert 'data-testid="reconcile-form"' in html
    # Out of scope: the North manager cannot look at the East's commitments.
    assert (
        client_for(org.manager_north).get(reverse("targets:node_commitments", args=[tree["east"].pk])).status_code
        == 404
    )


def test_reconcile_applies_the_commitments(org, tree, client_for):
    reps = tree["reps"]
    node_commit(node=reps[org.rep], amount="300000", actor=org.rep)
    node_commit(node=reps[org.rep_same_team], amount="100000", actor=org.rep_same_team)
    node_commit(node=reps[org.rep_js], amount="200000", actor=org.rep_js)
    east = fresh(tree["east"])
    url = reverse("targets:node_reconcile", args=[east.pk])
    response = client_for(org.manager).post(url, {"version": east.version})
    assert response.status_code == 302
    amounts = {r: fresh(n).amount for r, n in reps.items() if r != org.rep_other}
    assert amounts == {org.rep: Decimal("300000"), org.rep_same_team: Decimal("100000"), org.rep_js: Decimal("200000")}
    assert fresh(east).amount == Decimal("600000")  # handed down stays


def test_reconcile_with_a_stale_version_is_a_conflict(org, tree, client_for):
    reps = tree["reps"]
    node_commit(node=reps[org.rep], amount="300000", actor=org.rep)
    east = fresh(tree["east"])
    stale = east.version - 1
    response = client_for(org.manager).post(reverse("targets:node_reconcile", args=[east.pk]), {"version": stale})
    assert response.status_code == 409
    assert "Someone else changed this target" in response.content.decode()
    assert fresh(reps[org.rep]).amount == Decimal("200000")


def test_a_rep_cannot_reconcile(org, tree, client_for):
    node = fresh(tree["reps"][org.rep])
    from targets.services import target_split

    target_split(node=node, dimension="quarter", method="equal", actor=org.manager)
    node = fresh(node)
    response = client_for(org.rep).post(reverse("targets:node_reconcile", args=[node.pk]), {"version": node.version})
    assert response.status_code == 400
    assert "Only managers" in response.content.decode()
