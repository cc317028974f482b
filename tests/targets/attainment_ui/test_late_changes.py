"""Late changes on a target's trend page: a change, with its reason, to a deal won in a closed period shows on the
targets whose figures it moved (the deal counts or counted for them), and on no other."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from pipeline.services import opportunity_move_stage, opportunity_update
from tests.factories import make_deal


def won_deal(org, owner, *, closed_on, name):
    deal = make_deal(owner=owner, amount="10000", close=closed_on, name=name)
    won = next(s for s in org.stages if s.is_won)
    return opportunity_move_stage(opportunity=deal, stage=won, actor=owner, evidence="Signed", closed_on=closed_on)


@pytest.fixture
def march(org, approved):
    """Won by rep in March 2027: a closed period on the frozen day (2027-05-15)."""
    return won_deal(org, org.rep, closed_on=date(2027, 3, 5), name="March deal")


def page(client, node):
    response = client.get(reverse("targets:node_attainment", args=[node.pk]))
    assert response.status_code == 200
    return response


def shown(response) -> list[int]:
    return [c.deal_id for c in response.context["late_changes"].changes]


def test_a_late_change_shows_on_the_targets_it_moved_with_who_when_and_why(org, tree, march, client_for):
    opportunity_update(
        opportunity=march, data={"amount": Decimal("1240000.00")}, actor=org.manager, reason="Addendum: 2nd site"
    )
    response = page(client_for(org.rep), tree["reps"][org.rep])
    (change,) = response.context["late_changes"].changes
    assert (change.deal_id, change.changed_by, change.reason) == (march.pk, org.manager, "Addendum: 2nd site")
    assert change.fields == [("amount", "10000.00", "1240000.00")]
    html = response.content.decode()
    section = html[html.index('data-testid="late-changes"') :]
    assert "March deal" in section and "Addendum: 2nd site" in section
    assert "Amount: 10000.00 → 1240000.00" in section
    assert reverse("pipeline:deal_detail", args=[march.pk]) in section
    # The team's and the company's targets moved too; another team's and a colleague's did not.
    manager = client_for(org.manager)
    assert shown(page(manager, tree["east"])) == [march.pk]
    assert shown(page(client_for(org.director), tree["root"])) == [march.pk]
    assert shown(page(manager, tree["reps"][org.rep_same_team])) == []
    assert not page(client_for(org.director), tree["north"]).context["late_changes"]
    assert 'data-testid="late-changes"' not in page(manager, tree["reps"][org.rep_js]).content.decode()


def test_an_owner_change_shows_on_the_old_and_the_new_owners_targets(org, tree, march, client_for):
    opportunity_update(opportunity=march, data={"owner": org.rep_js}, actor=org.manager, reason="Booked to wrong rep")
    manager = client_for(org.manager)
    assert shown(page(manager, tree["reps"][org.rep])) == [march.pk]
    (change,) = page(manager, tree["reps"][org.rep_js]).context["late_changes"].changes
    assert ("owner", str(org.rep), str(org.rep_js)) in change.fields
    # The old owner no longer sees the deal: he is told a change moved his target, not what it was.
    response = page(client_for(org.rep), tree["reps"][org.rep])
    assert (shown(response), response.context["late_changes"].hidden) == ([], 1)
    assert "1 more late change, to a deal outside your view." in response.content.decode()


def test_a_won_deal_taken_out_of_won_shows_with_its_old_close_date(org, tree, march, client_for):
    lost = next(s for s in org.stages if s.is_lost)
    opportunity_move_stage(
        opportunity=march, stage=lost, lost_reason="Cancelled", actor=org.manager, reason="Customer cancelled"
    )
    (change,) = page(client_for(org.rep), tree["reps"][org.rep]).context["late_changes"].changes
    labels = {label for label, _old, _new in change.fields}
    assert {"stage", "closed on"} <= labels
    assert change.reason == "Customer cancelled"


def test_changes_without_a_reason_or_outside_the_period_are_not_late_changes(org, tree, approved, client_for):
    may = won_deal(org, org.rep, closed_on=date(2027, 5, 5), name="May deal")  # the open period: no reason needed
    opportunity_update(opportunity=may, data={"amount": Decimal("20000")}, actor=org.rep)
    last_year = won_deal(org, org.rep, closed_on=date(2026, 11, 5), name="FY2026 deal")
    opportunity_update(opportunity=last_year, data={"amount": Decimal("1")}, actor=org.rep, reason="Credit note")
    assert not page(client_for(org.rep), tree["reps"][org.rep]).context["late_changes"]
