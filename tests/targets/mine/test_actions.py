"""Action plans (行动计划) under a target: list, create, edit, status; scope 404s and bad input."""

from datetime import date

from django.urls import reverse

from targets.models import ActionPlan, ActionStatus
from targets.services import action_plan_create


def actions_url(node):
    return reverse("targets:node_actions", args=[node.pk])


def test_a_rep_plans_actions_under_his_target(org, tree, client_for):
    node = tree["reps"][org.rep]
    client = client_for(org.rep)
    response = client.post(
        actions_url(node),
        {
            "activity": "Visit the top 5 accounts",
            "owner": org.rep.pk,
            "due_date": "2027-06-30",
            "resources": "Demo kit",
        },
    )
    assert response.status_code == 302
    action = ActionPlan.objects.get(node=node)
    assert (action.activity, action.owner, action.due_date, action.resources, action.status) == (
        "Visit the top 5 accounts",
        org.rep,
        date(2027, 6, 30),
        "Demo kit",
        ActionStatus.OPEN,
    )
    html = client.get(actions_url(node)).content.decode()
    assert f'data-testid="action-{action.pk}"' in html


def test_bad_input_is_shown_and_nothing_is_saved(org, tree, client_for):
    node = tree["reps"][org.rep]
    client = client_for(org.rep)
    response = client.post(actions_url(node), {"activity": "", "owner": org.rep.pk, "due_date": "someday"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"activity", "due_date"}
    # After the target's period: the service says why.
    response = client.post(actions_url(node), {"activity": "Late", "owner": org.rep.pk, "due_date": "2028-01-15"})
    assert response.status_code == 400
    assert "end of the target's period" in " ".join(response.context["form"].errors["due_date"])
    # A rep cannot hand actions to a colleague: not a choice.
    response = client.post(
        actions_url(node), {"activity": "X", "owner": org.rep_same_team.pk, "due_date": "2027-06-01"}
    )
    assert response.status_code == 400 and "owner" in response.context["form"].errors
    assert not ActionPlan.objects.exists()


def test_targets_and_actions_out_of_scope_are_404(org, tree, client_for):
    node = tree["reps"][org.rep]
    action = action_plan_create(node=node, activity="Visit", due_date=date(2027, 6, 1), actor=org.rep)
    colleague = client_for(org.rep_same_team)
    assert colleague.get(actions_url(node)).status_code == 404
    assert colleague.post(actions_url(node), {"activity": "x", "due_date": "2027-06-01"}).status_code == 404
    assert colleague.get(reverse("targets:action_edit", args=[action.pk])).status_code == 404
    assert colleague.post(reverse("targets:action_status", args=[action.pk]), {"status": "done"}).status_code == 404
    assert client_for(org.manager_north).get(actions_url(node)).status_code == 404
    action.refresh_from_db()
    assert action.status == ActionStatus.OPEN


def test_a_manager_gives_an_action_to_his_rep_who_then_updates_it(org, tree, client_for):
    east = tree["east"]
    response = client_for(org.manager).post(
        actions_url(east), {"activity": "Joint visit", "owner": org.rep_js.pk, "due_date": "2027-05-31"}
    )
    assert response.status_code == 302
    action = ActionPlan.objects.get(node=east)
    assert action.owner == org.rep_js
    # The rep cannot see the area's target, but the action is his: he edits it and moves its status.
    rep = client_for(org.rep_js)
    edit = reverse("targets:action_edit", args=[action.pk])
    response = rep.post(
        edit,
        {
            "activity": "Joint visit with 华信",
            "owner": org.rep_js.pk,
            "due_date": "2027-06-15",
            "status": "in_progress",
        },
    )
    assert response.status_code == 302
    action.refresh_from_db()
    assert (action.activity, action.due_date, action.status) == (
        "Joint visit with 华信",
        date(2027, 6, 15),
        "in_progress",
    )
    response = rep.post(reverse("targets:action_status", args=[action.pk]), {"status": "done"})
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.status == ActionStatus.DONE


def test_an_unknown_status_changes_nothing(org, tree, client_for):
    node = tree["reps"][org.rep]
    action = action_plan_create(node=node, activity="Visit", due_date=date(2027, 6, 1), actor=org.rep)
    response = client_for(org.rep).post(
        reverse("targets:action_status", args=[action.pk]), {"status": "finished"}, follow=True
    )
    assert "Choose a valid status" in response.content.decode()
    action.refresh_from_db()
    assert action.status == ActionStatus.OPEN


def test_overdue_actions_are_flagged(org, tree, client_for):
    node = tree["reps"][org.rep]
    late = action_plan_create(node=node, activity="Late call", due_date=date(2027, 5, 1), actor=org.rep)
    ahead = action_plan_create(node=node, activity="Next call", due_date=date(2027, 6, 1), actor=org.rep)
    done = action_plan_create(node=node, activity="Done call", due_date=date(2027, 4, 1), actor=org.rep)
    client = client_for(org.rep)
    client.post(reverse("targets:action_status", args=[done.pk]), {"status": "done"})
    html = client.get(actions_url(node)).content.decode()
    assert f'data-testid="overdue-{late.pk}"' in html
    assert f'data-testid="overdue-{ahead.pk}"' not in html
    assert f'data-testid="overdue-{done.pk}"' not in html
    mine = client.get(reverse("targets:mine")).content.decode()
    section = mine[mine.index(f'data-testid="my-action-{late.pk}"') :]
    assert 'data-testid="action-overdue"' in section[: section.index("</li>")]
