"""Writes of the forecast call and the review meetings. Each is atomic, validated (a `ValidationError` with a
message a manager understands, nothing half-applied) and audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from coaching import selectors
from coaching.models import (
    ActionItem,
    ActionItemStatus,
    ForecastLevel,
    ForecastSubmission,
    Meeting,
    MeetingStatus,
)
from crm.models import Region, User
from crm.services import audit
from pipeline.models import Opportunity
from pipeline.selectors import deals_visible
from salesmgmt.lib import periods as fiscal
from salesmgmt.lib.money import quantize
from targets.alerts.selectors import alerts_visible_to
from targets.models import Alert, TargetNode
from targets.planning.selectors import nodes_visible_to


def _check_period(period: fiscal.Period) -> None:
    if period.kind not in selectors.FORECAST_KINDS:
        raise ValidationError({"period": _("Forecasts are made for a month or a quarter.")})
    if period.end < timezone.localdate():
        # Accuracy compares what was said during the period with how it ended: nothing is said afterwards.
        raise ValidationError({"period": _("This period is over: its forecasts are closed.")})


def _amounts(commit: Decimal, best_case: Decimal) -> tuple[Decimal, Decimal]:
    commit, best_case = quantize(Decimal(commit)), quantize(Decimal(best_case))
    errors = {}
    if commit < 0:
        errors["commit"] = _("Commit cannot be negative.")
    if best_case < commit:
        errors["best_case"] = _("Best case cannot be below commit.")
    if errors:
        raise ValidationError(errors)
    return commit, best_case


# --- forecast ------------------------------------------------------------------------------------


@transaction.atomic
def forecast_submit(
    *, actor: User, period: fiscal.Period, commit: Decimal, best_case: Decimal, note: str = ""
) -> ForecastSubmission:
    """A rep's forecast of his own deals for a period: a new dated row (earlier ones are kept)."""
    _check_period(period)
    if actor.region_id is None:
        raise ValidationError(_("You belong to no team: ask an administrator to set your region."))
    commit, best_case = _amounts(commit, best_case)
    figures = selectors.prefill(actor, period)
    now = timezone.now()
    submission = ForecastSubmission.objects.create(
        level=ForecastLevel.REP,
        owner=actor,
        region_id=actor.region_id,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        week=selectors.week_of(timezone.localdate(now)),
        commit=commit,
        best_case=best_case,
        won=figures.won,
        deals_commit=figures.commit,
        deals_best_case=figures.best_case,
        note=note.strip(),
        submitted_by=actor,
        submitted_at=now,
    )
    audit(
        actor=actor,
        action="forecast.submit",
        obj=submission,
        changes={"commit": [None, str(commit)], "best_case": [None, str(best_case)]},
    )
    return submission


@transaction.atomic
def forecast_team_submit(
    *, actor: User, team: Region, period: fiscal.Period, commit: Decimal, best_case: Decimal, note: str = ""
) -> ForecastSubmission:
    """A manager's forecast for his team, upward: the reps' roll-up adjusted by his judgment, explained in a
    note whenever it differs from the roll-up."""
    _check_period(period)
    if not selectors.teams_for(actor).filter(pk=team.pk).exists():
        raise ValidationError({"team": _("You do not run this team's forecast.")})
    commit, best_case = _amounts(commit, best_case)
    now = timezone.now()
    week = selectors.week_of(timezone.localdate(now))
    roll = selectors.rollup(actor, team, period, week)
    note = note.strip()
    if (commit != roll.commit or best_case != roll.best_case) and not note:
        raise ValidationError({"note": _("Say why your number differs from the reps' roll-up.")})
    submission = ForecastSubmission.objects.create(
        level=ForecastLevel.TEAM,
        owner=actor,
        region=team,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        week=week,
        commit=commit,
        best_case=best_case,
        won=roll.deals.won,
        deals_commit=roll.deals.commit,
        deals_best_case=roll.deals.best_case,
        rollup_commit=roll.commit,
        rollup_best_case=roll.best_case,
        note=note,
        submitted_by=actor,
        submitted_at=now,
    )
    audit(
        actor=actor,
        action="forecast.team_submit",
        obj=submission,
        changes={"commit": [str(roll.commit), str(commit)], "best_case": [str(roll.best_case), str(best_case)]},
    )
    return submission


# --- meetings ------------------------------------------------------------------------------------


def _planned(meeting: Meeting) -> Meeting:
    """The meeting locked for the change, refused once held (a held meeting is a record)."""
    locked = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if locked.is_held:
        raise ValidationError(_("This meeting has been held: it can no longer be changed."))
    return locked


def _check_attendees(team: Region, attendees: list[User]) -> None:
    members = set(selectors.team_members(team).values_list("pk", flat=True))
    outside = [str(u) for u in attendees if u.pk not in members]
    if outside:
        raise ValidationError({"attendees": _("Not in the team: %(names)s.") % {"names": ", ".join(outside)}})


@transaction.atomic
def meeting_create(
    *,
    actor: User,
    team: Region,
    week: date,
    title: str = "",
    agenda: str = "",
    attendees: list[User] | None = None,
) -> Meeting:
    """Plan the review meeting of a team for a week (one per team and week). Attendees default to the team."""
    if not selectors.teams_for(actor).filter(pk=team.pk).exists():
        raise ValidationError({"team": _("You do not run this team's meetings.")})
    monday = selectors.week_of(week)
    if Meeting.objects.filter(region=team, week=monday).exists():
        raise ValidationError({"week": _("This team already has a meeting that week.")})
    people = list(attendees) if attendees is not None else list(selectors.team_members(team))
    _check_attendees(team, people)
    meeting = Meeting.objects.create(
        region=team,
        week=monday,
        title=title.strip() or _("Weekly review %(team)s %(week)s") % {"team": team.name, "week": monday.isoformat()},
        agenda=agenda,
        created_by=actor,
    )
    meeting.attendees.set(people)
    audit(actor=actor, action="meeting.create", obj=meeting, changes={"week": [None, monday.isoformat()]})
    return meeting


@transaction.atomic
def meeting_update(
    *,
    actor: User,
    meeting: Meeting,
    title: str | None = None,
    agenda: str | None = None,
    minutes: str | None = None,
    attendees: list[User] | None = None,
) -> Meeting:
    """Change what a planned meeting says (title, agenda, minutes, attendees); refused once held."""
    locked = _planned(meeting)
    changes: dict[str, list] = {}
    fields = []
    for name, value in (("title", title), ("agenda", agenda), ("minutes", minutes)):
        if value is not None and value != getattr(locked, name):
            if name == "title" and not value.strip():
                raise ValidationError({"title": _("A meeting needs a title.")})
            changes[name] = [getattr(locked, name), value]
            setattr(locked, name, value)
            fields.append(name)
    if attendees is not None:
        _check_attendees(locked.region, attendees)
        locked.attendees.set(attendees)
        changes["attendees"] = [None, sorted(u.pk for u in attendees)]
    if fields:
        locked.save(update_fields=fields)
    if changes:
        audit(actor=actor, action="meeting.update", obj=locked, changes=changes)
    return locked


@transaction.atomic
def meeting_hold(*, actor: User, meeting: Meeting) -> Meeting:
    """Hold the meeting: freeze what it shows (the review, the forecast, the items and their state, the deltas
    against the previous held meeting) into its snapshot, in one transaction. Open items stay open and carry
    forward to the team's next meeting."""
    locked = _planned(meeting)
    snapshot = selectors.meeting_data(actor, locked)
    locked.snapshot = snapshot
    locked.status = MeetingStatus.HELD
    locked.held_at = timezone.now()
    locked.held_by = actor
    locked.save(update_fields=["snapshot", "status", "held_at", "held_by"])
    audit(actor=actor, action="meeting.hold", obj=locked, changes={"status": [MeetingStatus.PLANNED, "held"]})
    return locked


def _check_links(
    actor: User, node: TargetNode | None, opportunity: Opportunity | None, alert: Alert | None
) -> dict[str, str]:
    errors = {}
    if node is not None and not nodes_visible_to(actor).filter(pk=node.pk).exists():
        errors["node"] = _("Unknown target.")
    if opportunity is not None and not deals_visible(actor).filter(pk=opportunity.pk).exists():
        errors["opportunity"] = _("Unknown deal.")
    if alert is not None and not alerts_visible_to(actor).filter(pk=alert.pk).exists():
        errors["alert"] = _("Unknown alert.")
    return errors


@transaction.atomic
def action_item_create(
    *,
    actor: User,
    meeting: Meeting,
    what: str,
    owner: User | None,
    due_date: date | None,
    node: TargetNode | None = None,
    opportunity: Opportunity | None = None,
    alert: Alert | None = None,
    notes: str = "",
) -> ActionItem:
    """A new action item of a planned meeting, with its 3定: what, who (someone of the team), by when."""
    locked = _planned(meeting)
    errors = _check_links(actor, node, opportunity, alert)
    if not what.strip():
        errors["what"] = _("Say what is to be done.")
    if owner is None:
        errors["owner"] = _("Every action item needs an owner.")
    elif not selectors.team_members(locked.region).filter(pk=owner.pk).exists():
        errors["owner"] = _("The owner must be a member of the team.")
    if due_date is None:
        errors["due_date"] = _("Every action item needs a due date.")
    if errors or owner is None or due_date is None:
        raise ValidationError(errors)
    item = ActionItem.objects.create(
        region=locked.region,
        meeting=locked,
        what=what.strip(),
        owner=owner,
        due_date=due_date,
        node=node,
        opportunity=opportunity,
        alert=alert,
        notes=notes,
        created_by=actor,
    )
    audit(actor=actor, action="action_item.create", obj=item, changes={"what": [None, item.what]})
    return item


@transaction.atomic
def action_item_set_status(
    *, actor: User, item: ActionItem, status: str, meeting: Meeting | None = None, notes: str | None = None
) -> ActionItem:
    """Close (done), drop or keep (open) an item, in a planned meeting of its team or, without one, by its
    owner or manager between meetings. Reopening keeps it on the team's meetings."""
    if status not in ActionItemStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if meeting is not None:
        meeting = _planned(meeting)
        if item.region_id != meeting.region_id:
            raise ValidationError(_("This item is not on this meeting."))
    locked = ActionItem.objects.select_for_update().get(pk=item.pk)
    if meeting is None and locked.closed_in_id is not None:
        held = Meeting.objects.filter(pk=locked.closed_in_id, status=MeetingStatus.HELD).exists()
        if held:
            raise ValidationError(_("This item was closed in a held meeting."))
    old = locked.status
    locked.status = status
    if status == ActionItemStatus.OPEN:
        locked.closed_in, locked.closed_at = None, None
    else:
        locked.closed_in, locked.closed_at = meeting, timezone.now()
    fields = ["status", "closed_in", "closed_at"]
    if notes is not None:
        locked.notes = notes
        fields.append("notes")
    locked.save(update_fields=fields)
    audit(actor=actor, action="action_item.status", obj=locked, changes={"status": [old, status]})
    return locked
