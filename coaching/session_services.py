"""Writes of the 1:1 coaching sessions (辅导): record a session with its commitments, change it while the rep has
not acknowledged it, follow up the rep's earlier commitments, and the rep's acknowledgement. Each is atomic,
validated (a `ValidationError` with a message a manager understands, nothing half-applied) and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching import session_selectors as selectors
from coaching.models import ActionItemStatus, CoachingFocus, CoachingSession, Commitment
from crm.models import User
from crm.services import audit
from pipeline.models import Opportunity
from pipeline.selectors import deals_visible
from targets.models import TargetNode
from targets.planning.selectors import nodes_visible_to


@dataclass(frozen=True)
class NewCommitment:
    what: str
    due_date: date | None


def _check_focus(
    actor: User, rep: User, focus_kind: str, focus: str, node: TargetNode | None, opportunity: Opportunity | None
) -> dict[str, str]:
    errors = {}
    if focus_kind not in CoachingFocus.values:
        errors["focus_kind"] = _("Say what the session is about: a target gap, a deal or a skill.")
    if not focus.strip():
        errors["focus"] = _("Say what the session is about.")
    if node is not None and not nodes_visible_to(actor).filter(pk=node.pk).exists():
        errors["node"] = _("Unknown target.")
    if opportunity is not None and not deals_visible(actor).filter(pk=opportunity.pk, owner=rep).exists():
        errors["opportunity"] = _("Pick one of the rep's deals.")
    return errors


def _check_commitments(commitments: list[NewCommitment]) -> dict[str, str]:
    for c in commitments:
        if not c.what.strip():
            return {"commitments": _("Every commitment says what is to be done.")}
        if c.due_date is None:
            return {"commitments": _("Every commitment needs a due date.")}
    return {}


def _editable(actor: User, session: CoachingSession) -> CoachingSession:
    """The session locked for the change: only its coaches, and only until the rep acknowledged it."""
    locked = CoachingSession.objects.select_for_update().get(pk=session.pk)
    if not selectors.sessions_managed_by(actor).filter(pk=locked.pk).exists():
        raise ValidationError(_("Only the rep's managers change a coaching session."))
    if locked.is_acknowledged:
        raise ValidationError(_("The rep has acknowledged this session: it can no longer be changed."))
    return locked


@transaction.atomic
def coaching_session_create(
    *,
    actor: User,
    rep: User | None,
    date: date | None,
    focus_kind: str,
    focus: str,
    observations: str = "",
    node: TargetNode | None = None,
    opportunity: Opportunity | None = None,
    commitments: list[NewCommitment] | None = None,
) -> CoachingSession:
    """Record a 1:1 with a rep of the actor's teams, with the commitments agreed."""
    commitments = list(commitments or [])
    errors: dict[str, str] = {}
    if rep is None:
        errors["rep"] = _("Pick the rep you coached.")
    elif not selectors.coachable_reps(actor).filter(pk=rep.pk).exists():
        errors["rep"] = _("You coach the reps of your own teams only.")
    elif rep.region_id is None:
        errors["rep"] = _("This rep belongs to no team: ask an administrator to set his region.")
    if date is None:
        errors["date"] = _("Say when the session took place.")
    if rep is not None:
        errors.update(_check_focus(actor, rep, focus_kind, focus, node, opportunity))
    errors.update(_check_commitments(commitments))
    if errors or rep is None or rep.region_id is None or date is None:
        raise ValidationError(errors)
    session = CoachingSession.objects.create(
        manager=actor,
        rep=rep,
        region_id=rep.region_id,
        date=date,
        focus_kind=focus_kind,
        focus=focus.strip(),
        node=node,
        opportunity=opportunity,
        observations=observations,
        created_by=actor,
    )
    Commitment.objects.bulk_create(
        [
            Commitment(session=session, rep=rep, what=c.what.strip(), due_date=c.due_date)
            for c in commitments
            if c.due_date
        ]
    )
    audit(
        actor=actor,
        action="coaching.create",
        obj=session,
        changes={"rep": [None, rep.pk], "commitments": [None, [c.what.strip() for c in commitments]]},
    )
    return session


@transaction.atomic
def coaching_session_update(
    *,
    actor: User,
    session: CoachingSession,
    date: date | None,
    focus_kind: str,
    focus: str,
    observations: str,
    node: TargetNode | None = None,
    opportunity: Opportunity | None = None,
) -> CoachingSession:
    """Change what a session says, until the rep has acknowledged it."""
    locked = _editable(actor, session)
    errors = _check_focus(actor, locked.rep, focus_kind, focus, node, opportunity)
    if date is None:
        errors["date"] = _("Say when the session took place.")
    if errors or date is None:
        raise ValidationError(errors)
    new = {
        "date": date,
        "focus_kind": focus_kind,
        "focus": focus.strip(),
        "observations": observations,
        "node": node,
        "opportunity": opportunity,
    }
    changes = {}
    for name, value in new.items():
        old = getattr(locked, name)
        if old != value:
            changes[name] = [str(old) if old is not None else None, str(value) if value is not None else None]
            setattr(locked, name, value)
    if changes:
        locked.save(update_fields=list(changes))
        audit(actor=actor, action="coaching.update", obj=locked, changes=changes)
    return locked


@transaction.atomic
def commitment_add(*, actor: User, session: CoachingSession, what: str, due_date: date | None) -> Commitment:
    locked = _editable(actor, session)
    errors = _check_commitments([NewCommitment(what, due_date)])
    if errors or due_date is None:
        raise ValidationError(errors)
    commitment = Commitment.objects.create(session=locked, rep_id=locked.rep_id, what=what.strip(), due_date=due_date)
    audit(actor=actor, action="commitment.create", obj=commitment, changes={"what": [None, commitment.what]})
    return commitment


@transaction.atomic
def commitment_follow_up(
    *, actor: User, session: CoachingSession, commitment: Commitment, status: str, note: str = ""
) -> Commitment:
    """In a later session with the same rep, mark one of his earlier commitments done, dropped or kept open,
    with what was said about it."""
    locked_session = _editable(actor, session)
    if status not in ActionItemStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if not selectors.follow_ups(locked_session).filter(pk=commitment.pk).exists():
        raise ValidationError(_("This commitment is not followed up in this session."))
    locked = Commitment.objects.select_for_update().get(pk=commitment.pk)
    old = locked.status
    locked.status = status
    locked.reviewed_in = locked_session
    locked.follow_up = note.strip()
    locked.closed_at = None if status == ActionItemStatus.OPEN else timezone.now()
    locked.save(update_fields=["status", "reviewed_in", "follow_up", "closed_at"])
    audit(actor=actor, action="commitment.follow_up", obj=locked, changes={"status": [old, status]})
    return locked


@transaction.atomic
def coaching_session_acknowledge(*, actor: User, session: CoachingSession) -> CoachingSession:
    """The rep confirms he has read the session and its commitments: stamped once, and the session is frozen."""
    locked = CoachingSession.objects.select_for_update().get(pk=session.pk)
    if locked.rep_id != actor.pk:
        raise ValidationError(_("Only the coached rep acknowledges a session."))
    if locked.is_acknowledged:
        raise ValidationError(_("You have already acknowledged this session."))
    locked.acknowledged_at = timezone.now()
    locked.save(update_fields=["acknowledged_at"])
    audit(
        actor=actor,
        action="coaching.acknowledge",
        obj=locked,
        changes={"acknowledged_at": [None, locked.acknowledged_at.isoformat()]},
    )
    return locked
