"""Writes of the project analysis meeting (项目分析会): plan it, record per project the customer's buying step, next
steps, risks, decisions and action items, and hold it (freeze what it shows). Each is atomic, validated and
audited, as the weekly meeting's services are."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching import project_selectors as selectors
from coaching.models import (
    BuyingStep,
    MeetingStatus,
    ProjectDecision,
    ProjectDecisionKind,
    ProjectReview,
    ProjectReviewEntry,
)
from coaching.selectors import team_members, teams_for
from crm.models import Region, User
from crm.services import audit
from pipeline.models import Opportunity


def _planned(review: ProjectReview) -> ProjectReview:
    locked = ProjectReview.objects.select_for_update().get(pk=review.pk)
    if locked.is_held:
        raise ValidationError(_("This project review has been held: it can no longer be changed."))
    return locked


def _project(actor: User, review: ProjectReview, opportunity: Opportunity) -> None:
    if not selectors.big_deals(actor, review.region).filter(pk=opportunity.pk).exists():
        raise ValidationError(_("This deal is not one of the team's big-account projects."))


@transaction.atomic
def project_review_create(*, actor: User, team: Region, date: date, title: str = "") -> ProjectReview:
    """Plan the project analysis meeting of a team on a day (one per team and day)."""
    if not teams_for(actor).filter(pk=team.pk).exists():
        raise ValidationError({"team": _("You do not run this team's meetings.")})
    if ProjectReview.objects.filter(region=team, date=date).exists():
        raise ValidationError({"date": _("This team already has a project review that day.")})
    review = ProjectReview.objects.create(
        region=team,
        date=date,
        title=title.strip() or _("Project review %(team)s %(date)s") % {"team": team.name, "date": date.isoformat()},
        created_by=actor,
    )
    audit(actor=actor, action="project_review.create", obj=review, changes={"date": [None, date.isoformat()]})
    return review


@transaction.atomic
def project_review_update(*, actor: User, review: ProjectReview, title: str, minutes: str) -> ProjectReview:
    locked = _planned(review)
    if not title.strip():
        raise ValidationError({"title": _("A meeting needs a title.")})
    changes = {}
    for name, value in (("title", title.strip()), ("minutes", minutes)):
        if getattr(locked, name) != value:
            changes[name] = [getattr(locked, name), value]
            setattr(locked, name, value)
    if changes:
        locked.save(update_fields=list(changes))
        audit(actor=actor, action="project_review.update", obj=locked, changes=changes)
    return locked


@transaction.atomic
def project_entry_save(
    *,
    actor: User,
    review: ProjectReview,
    opportunity: Opportunity,
    buying_step: str,
    next_steps: str,
    risks: str,
) -> ProjectReviewEntry:
    """What the review says about one project: the customer's buying step, the next steps, the risks."""
    locked = _planned(review)
    _project(actor, locked, opportunity)
    if buying_step and buying_step not in BuyingStep.values:
        raise ValidationError({"buying_step": _("Unknown buying step.")})
    entry, created = ProjectReviewEntry.objects.select_for_update().get_or_create(
        review=locked, opportunity=opportunity
    )
    new = {"buying_step": buying_step, "next_steps": next_steps.strip(), "risks": risks.strip()}
    changes = {k: [None if created else getattr(entry, k), v] for k, v in new.items() if getattr(entry, k) != v}
    if changes:
        for k in changes:
            setattr(entry, k, new[k])
        entry.save(update_fields=list(changes))
        audit(actor=actor, action="project_review.entry", obj=entry, changes=changes)
    return entry


@transaction.atomic
def project_decision_add(
    *,
    actor: User,
    review: ProjectReview,
    opportunity: Opportunity,
    kind: str,
    what: str,
    owner: User | None = None,
    due_date: date | None = None,
) -> ProjectDecision:
    """A decision on a project, or an action item for it with its owner (someone of the team) and due date."""
    locked = _planned(review)
    _project(actor, locked, opportunity)
    errors = {}
    if kind not in ProjectDecisionKind.values:
        errors["kind"] = _("Unknown kind.")
    if not what.strip():
        errors["what"] = _("Say what was decided or is to be done.")
    if kind == ProjectDecisionKind.ACTION:
        if owner is None:
            errors["owner"] = _("Every action item needs an owner.")
        elif not team_members(locked.region).filter(pk=owner.pk).exists():
            errors["owner"] = _("The owner must be a member of the team.")
        if due_date is None:
            errors["due_date"] = _("Every action item needs a due date.")
    if errors:
        raise ValidationError(errors)
    entry, _created = ProjectReviewEntry.objects.get_or_create(review=locked, opportunity=opportunity)
    decision = ProjectDecision.objects.create(
        entry=entry,
        kind=kind,
        what=what.strip(),
        owner=owner if kind == ProjectDecisionKind.ACTION else None,
        due_date=due_date if kind == ProjectDecisionKind.ACTION else None,
        created_by=actor,
    )
    audit(actor=actor, action="project_review.decision", obj=decision, changes={"what": [None, decision.what]})
    return decision


@transaction.atomic
def project_review_hold(*, actor: User, review: ProjectReview) -> ProjectReview:
    """Hold the review: freeze every project as shown (stage, amounts, evidence, history, buying step, decisions)
    into its snapshot, so it reopens exactly as it was."""
    locked = _planned(review)
    locked.snapshot = selectors.projects_data(actor, locked)
    locked.status = MeetingStatus.HELD
    locked.held_at = timezone.now()
    locked.held_by = actor
    locked.save(update_fields=["snapshot", "status", "held_at", "held_by"])
    audit(actor=actor, action="project_review.hold", obj=locked, changes={"status": [MeetingStatus.PLANNED, "held"]})
    return locked
