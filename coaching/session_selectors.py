"""Reads of the 1:1 coaching sessions (辅导) and their commitments: who sees which session, the rep's open
commitments (for his home page) and a team's (for the review), and what a session follows up.

Scope: a rep sees his own sessions only; a manager those of his teams and sub-teams (and those he held); a
director all. Everyone else sees none (a 404 on pages and the API).
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from coaching.models import ActionItemStatus, CoachingSession, Commitment
from coaching.selectors import teams_for
from crm.models import DataScope, Region, Role, User
from crm.scopes import region_subtree, visible_regions


def sessions_visible_to(user: User | None) -> QuerySet[CoachingSession]:
    if user is None or not user.is_authenticated:
        return CoachingSession.objects.none()
    if user.effective_scope == DataScope.ALL and user.is_manager_or_above:
        return CoachingSession.objects.all()
    if not user.is_manager_or_above:
        return CoachingSession.objects.filter(rep=user)
    return CoachingSession.objects.filter(Q(manager=user) | Q(region__in=visible_regions(user)) | Q(rep=user))


def sessions_managed_by(user: User | None) -> QuerySet[CoachingSession]:
    """The sessions `user` may change as a coach (never his own as the coached rep)."""
    if user is None or not user.is_authenticated or not user.is_manager_or_above:
        return CoachingSession.objects.none()
    return sessions_visible_to(user).exclude(rep=user)


def coachable_reps(user: User) -> QuerySet[User]:
    """The reps `user` may coach: the reps of the teams he runs (sub-teams too)."""
    return User.objects.filter(region__in=teams_for(user), role=Role.REP, is_active=True).exclude(pk=user.pk)


def session_list(user: User, *, rep: User | None = None) -> QuerySet[CoachingSession]:
    """The sessions `user` sees, newest first, with their commitment counts: three joins, one query."""
    qs = sessions_visible_to(user)
    if rep is not None:
        qs = qs.filter(rep=rep)
    return (
        qs.select_related("rep", "manager", "region")
        .annotate(
            n_commitments=Count("commitments", distinct=True),
            n_open=Count("commitments", filter=Q(commitments__status=ActionItemStatus.OPEN), distinct=True),
        )
        .order_by("-date", "-id")
    )


def open_commitments(user: User) -> QuerySet[Commitment]:
    """The rep's own open commitments, the soonest due first (for his home page)."""
    if user is None or not user.is_authenticated:
        return Commitment.objects.none()
    return (
        Commitment.objects.filter(rep=user, status=ActionItemStatus.OPEN)
        .select_related("session", "session__manager")
        .order_by("due_date", "id")
    )


def team_commitments(user: User, region: Region) -> QuerySet[Commitment]:
    """The open commitments of a team's reps (sub-teams too) as far as `user` sees their sessions, soonest due
    first (for the review)."""
    return (
        Commitment.objects.filter(
            status=ActionItemStatus.OPEN,
            session__in=sessions_visible_to(user).filter(region__in=region_subtree(region)),
        )
        .select_related("rep", "session", "session__manager")
        .order_by("due_date", "id")
    )


def commitments_of(session: CoachingSession) -> QuerySet[Commitment]:
    return session.commitments.order_by("due_date", "id")


def follow_ups(session: CoachingSession) -> QuerySet[Commitment]:
    """What `session` follows up: the rep's commitments of earlier sessions still open, and those followed up in
    this session (whatever they were marked)."""
    earlier = Q(session__date__lt=session.date) | Q(session__date=session.date, session_id__lt=session.pk)
    return (
        Commitment.objects.filter(rep=session.rep_id)
        .filter(earlier)
        .filter(Q(status=ActionItemStatus.OPEN) | Q(reviewed_in=session))
        .select_related("session")
        .order_by("due_date", "id")
    )


def commitments_visible_to(user: User | None) -> QuerySet[Commitment]:
    return Commitment.objects.filter(session__in=sessions_visible_to(user))
