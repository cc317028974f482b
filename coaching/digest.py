"""The weekly digest e-mail: each person's week ahead, sent once per person and ISO week.

What it holds (`build_digest`), each part one or two queries, whatever the size of the company:
- targets and pace: the targets the person owns in approved plans, of the month and the quarter running today,
  with attainment against time progress as every screen shows them (`targets.attainment.selectors`);
- deals to act on: their own open deals whose expected close date passed, whose next step is due (today or
  before), or that stay in their stage beyond its expected days (the alert rules' definitions);
- their open coaching commitments (`coaching.session_selectors.open_commitments`) and open action items;
- for a manager, a row per rep of the team he manages: targets behind pace, deals to act on, open items and
  commitments.

Once per person and week (`digest_send`): a `DigestSent(user, week)` row, unique, is claimed (inserted, or
taken over) before the mail is sent and marked sent after. A second run, or a concurrent one, finds the row
claimed or sent and sends nothing. The claim is committed before sending, not held in the sending
transaction: a run that crashes between claiming and sending leaves a claim without `sent_at`, which a later
run takes over once it is older than `CLAIM_LEASE` (the beat schedule runs the job again every hour of Monday
morning for that; a claim still stuck after the last run is taken over by `send_weekly_digest` run by hand
that week). The price is the other window: a crash after the mail left but before `sent_at` was written sends
it again after the lease — a rare duplicate rather than a lost digest. Holding the claim in the sending
transaction instead would also roll back with a crash (and has the same duplicate window), but keeps a
transaction and a row lock open across each SMTP exchange, with a concurrent run blocked behind it; the
committed claim with a lease keeps every transaction short. A failed send (SMTP down) releases the claim at
once.

The Monday job (`digests_enqueue`, beat) queues one task per person through the outbox; each task builds and
sends one digest (`digest_send_to`), so people's mails fail and are retried on their own and workers share
them. The management command sends in-process (`digests_send`).

People opt out with the "weekly digest" notification preference (e-mail off). Users have no language of
their own yet (`crm.models.User`): the mail is written in `language_of(user)`, the site's default.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from coaching.models import ActionItem, ActionItemStatus, Commitment, DigestSent
from coaching.selectors import items_visible_to, team_reps
from coaching.session_selectors import open_commitments, sessions_visible_to
from crm.models import Region, User
from pipeline.models import Opportunity
from pipeline.selectors import deals_visible, stuck_in_stage
from salesmgmt import outbox
from salesmgmt.lib import attainment as math
from targets.alerts.selectors import milestone_level_label, milestones_reached
from targets.attainment.selectors import Attainment, attainment_of
from targets.models import (
    PREFERENCE_WEEKLY_DIGEST,
    NotificationPreference,
    PeriodKind,
    PlanStatus,
    TargetMilestone,
    TargetNode,
)
from targets.planning.selectors import nodes_visible_to

log = logging.getLogger(__name__)

# A claim older than this whose mail was not marked sent is taken over by a later run (its run died).
CLAIM_LEASE = timedelta(minutes=30)
# The periods whose targets the digest shows: those running today.
DIGEST_PERIOD_KINDS = (PeriodKind.MONTH, PeriodKind.QUARTER)
DEALS_SHOWN = 20


def week_key(day: date) -> str:
    """The ISO week of `day`: "2026-W49"."""
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def language_of(user: User) -> str:
    """The language a person's mails are written in: theirs when users get one, else the site's default."""
    return getattr(user, "language", "") or settings.LANGUAGE_CODE


# --- content -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetPace:
    node: TargetNode
    attainment: Attainment | None

    @property
    def behind(self) -> bool:
        points = self.attainment.pace_gap_points if self.attainment else None
        return points is not None and points < 0


@dataclasses.dataclass(frozen=True)
class TeamRow:
    person: User
    targets: int
    behind_pace: int
    deals_to_act: int
    open_items: int
    open_commitments: int


@dataclasses.dataclass
class Digest:
    user: User
    week: str
    today: date
    targets: list[TargetPace]
    deals: list[Opportunity]  # annotated: close_date_passed, next_step_due, stuck
    deals_total: int
    commitments: list[Commitment]
    items: list[ActionItem]
    milestones: list[TargetMilestone] = dataclasses.field(default_factory=list)  # reached the past week
    team: Region | None = None
    team_rows: list[TeamRow] = dataclasses.field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.targets or self.deals or self.commitments or self.items or self.milestones or self.team_rows)

    @property
    def good_news(self) -> list[tuple[TargetMilestone, str, Decimal | None]]:
        """(milestone, its level as shown, attainment then) of the milestones reached the past week."""
        return [(m, milestone_level_label(m.level), math.percent(m.actual, m.target)) for m in self.milestones]


def current_targets(owners: QuerySet[User] | list[User], today: date) -> QuerySet[TargetNode]:
    """The targets of approved plans owned by `owners`, of the month and quarter running `today`."""
    return (
        TargetNode.objects.filter(
            owner__in=owners,
            plan__status=PlanStatus.APPROVED,
            period_kind__in=DIGEST_PERIOD_KINDS,
            period_start__lte=today,
            period_end__gte=today,
        )
        .select_related("plan", "plan__metric", "owner", "region", "product", "product_line", "rep")
        .order_by("owner_id", "-period_start", "plan__name", "plan_id", "path")  # the month, then the quarter
    )


def targets_and_pace(user: User, today: date) -> list[TargetPace]:
    """The user's own targets running today with their attainment and pace: two queries."""
    nodes = list(current_targets([user], today).filter(pk__in=nodes_visible_to(user).values("pk")))
    figures = attainment_of(nodes)
    return [TargetPace(node, figures.get(node.pk)) for node in nodes]


def to_act_on(qs: QuerySet[Opportunity], today: date, now: datetime) -> QuerySet[Opportunity]:
    """The open deals of `qs` to act on, each annotated with why: `close_date_passed`, `next_step_due`, `stuck`."""
    stuck = stuck_in_stage(now)
    passed, due = Q(expected_close_date__lt=today), Q(next_step_date__lte=today)
    why = passed | due | stuck
    flag = BooleanField()

    def holds(condition: Q) -> Case:  # a comparison with an empty date is NULL in SQL: false here
        return Case(When(condition, then=Value(True)), default=Value(False), output_field=flag)

    return (
        qs.open()
        .filter(why)
        .annotate(
            close_date_passed=holds(passed),
            next_step_due=holds(due),
            stuck=holds(stuck),
        )
    )


def open_items_of(user: User) -> QuerySet[ActionItem]:
    return (
        ActionItem.objects.filter(owner=user, status=ActionItemStatus.OPEN)
        .select_related("meeting", "opportunity")
        .order_by("due_date", "id")
    )


def managed_team(user: User) -> Region | None:
    """The topmost team the user manages (a manager's digest summarises it), else None."""
    if not user.is_manager_or_above:
        return None
    return Region.objects.filter(manager=user).order_by("depth", "path", "id").first()


def team_summary(team: Region, *, manager: User, today: date, now: datetime) -> list[TeamRow]:
    """A row per active rep of the team (sub-teams too), the manager aside; each column one grouped query."""
    reps = list(team_reps(team).exclude(pk=manager.pk).order_by("first_name", "last_name", "username", "id"))
    if not reps:
        return []
    # Through the doors of what the manager may see (his team's data, as on his pages).
    nodes = list(current_targets(reps, today).filter(pk__in=nodes_visible_to(manager).values("pk")))
    figures = attainment_of(nodes)
    targets: dict[int, int] = {}
    behind: dict[int, int] = {}
    for node in nodes:
        owner_id = node.owner_id or 0
        targets[owner_id] = targets.get(owner_id, 0) + 1
        if TargetPace(node, figures.get(node.pk)).behind:
            behind[owner_id] = behind.get(owner_id, 0) + 1

    def counts(qs: QuerySet, field: str) -> dict[int, int]:
        return dict(qs.order_by().values_list(field).annotate(n=Count("id")).values_list(field, "n"))

    deals = counts(to_act_on(Opportunity.objects.visible_to(manager).filter(owner__in=reps), today, now), "owner_id")
    items = counts(items_visible_to(manager).filter(owner__in=reps, status=ActionItemStatus.OPEN), "owner_id")
    commitments = counts(
        Commitment.objects.filter(rep__in=reps, status=ActionItemStatus.OPEN, session__in=sessions_visible_to(manager)),
        "rep_id",
    )
    return [
        TeamRow(
            person=rep,
            targets=targets.get(rep.pk, 0),
            behind_pace=behind.get(rep.pk, 0),
            deals_to_act=deals.get(rep.pk, 0),
            open_items=items.get(rep.pk, 0),
            open_commitments=commitments.get(rep.pk, 0),
        )
        for rep in reps
    ]


def build_digest(user: User, *, today: date | None = None) -> Digest:
    """What the person's digest of the week of `today` says."""
    today = today or timezone.localdate()
    now = timezone.now()
    deals = to_act_on(deals_visible(user).filter(owner=user), today, now).order_by("expected_close_date", "id")
    team = managed_team(user)
    return Digest(
        user=user,
        week=week_key(today),
        today=today,
        targets=targets_and_pace(user, today),
        deals=list(deals[:DEALS_SHOWN]),
        deals_total=deals.count(),
        commitments=list(open_commitments(user)),
        items=list(open_items_of(user)),
        milestones=list(
            milestones_reached(user, since=today - timedelta(days=7)).filter(node__in=nodes_visible_to(user))
        ),
        team=team,
        team_rows=team_summary(team, manager=user, today=today, now=now) if team is not None else [],
    )


def render_digest(digest: Digest) -> EmailMultiAlternatives:
    """The mail (text and HTML), in the recipient's language."""
    site = settings.SITE_URL.rstrip("/")
    with translation.override(language_of(digest.user)):
        context = {
            "digest": digest,
            "site": site,
            "settings_url": f"{site}{reverse('targets:notification_settings')}",
        }
        subject = _("[salesmgmt] Your week ahead (%(week)s)") % {"week": digest.week}
        text = render_to_string("coaching/digest/email.txt", context)
        html = render_to_string("coaching/digest/email.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[digest.user.email])
    message.attach_alternative(html, "text/html")
    return message


# --- sending ---------------------------------------------------------------------------------------


def digest_recipients(week: str, *, now: datetime | None = None) -> QuerySet[User]:
    """Active people with an e-mail address who did not opt out and whose digest of `week` is neither sent
    nor claimed by a run still within its lease."""
    now = now or timezone.now()
    opted_out = NotificationPreference.objects.filter(user=OuterRef("pk"), kind=PREFERENCE_WEEKLY_DIGEST, email=False)
    done = DigestSent.objects.filter(user=OuterRef("pk"), week=week).filter(
        Q(sent_at__isnull=False) | Q(claimed_at__gte=now - CLAIM_LEASE)
    )
    return (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .exclude(Exists(opted_out))
        .exclude(Exists(done))
        .select_related("region")
        .order_by("pk")
    )


def digest_claim(*, user: User, week: str, now: datetime) -> str | None:
    """Claim the user's digest of `week`: the claim's token, or None when it is sent or another run holds it.

    The insert skips an existing row (the unique key: of two concurrent runs one inserts, the other waits for
    it and skips); the conditional update then takes the row only if it is ours, or a dead run's stale claim.
    """
    token = uuid.uuid4().hex
    DigestSent.objects.bulk_create(
        [DigestSent(user=user, week=week, claim=token, claimed_at=now)], ignore_conflicts=True
    )
    taken = (
        DigestSent.objects.filter(user=user, week=week, sent_at__isnull=True)
        .filter(Q(claim=token) | Q(claimed_at__lt=now - CLAIM_LEASE))
        .update(claim=token, claimed_at=now)
    )
    return token if taken else None


def digest_send(*, user: User, today: date | None = None) -> bool:
    """Send the user's digest of the week of `today` unless it went out already; True if it was sent now.

    An empty digest (nothing to say) is not sent and claims nothing. A failed send releases the claim and
    raises."""
    today = today or timezone.localdate()
    digest = build_digest(user, today=today)
    if digest.is_empty:
        return False
    message = render_digest(digest)
    token = digest_claim(user=user, week=digest.week, now=timezone.now())
    if token is None:
        return False
    try:
        message.send()
    except Exception:
        DigestSent.objects.filter(user=user, week=digest.week, claim=token, sent_at__isnull=True).delete()
        raise
    DigestSent.objects.filter(user=user, week=digest.week, claim=token).update(sent_at=timezone.now())
    return True


DIGEST_TASK = "coaching.send_weekly_digest"


def digests_enqueue(*, today: date | None = None) -> int:
    """The Monday job: one task per person still owed the digest of the week of `today` (`DIGEST_TASK`),
    through the outbox, so a broker outage delays them and each person's mail fails or succeeds on its own.
    Returns how many were queued. Running it twice queues again only who is still owed one; each task claims
    before it sends."""
    today = today or timezone.localdate()
    ids = list(digest_recipients(week_key(today)).values_list("pk", flat=True))
    with transaction.atomic():
        for user_id in ids:
            outbox.enqueue_name(DIGEST_TASK, user_id, today.isoformat())
    return len(ids)


def digest_send_to(*, user_id: int, today: date) -> bool:
    """One person's digest of the week of `today`, if they are still owed one (active, with an address, not
    opted out, not sent or claimed meanwhile): the task's work. A failed send raises (the task is retried)."""
    user = digest_recipients(week_key(today)).filter(pk=user_id).first()
    if user is None:
        return False
    return digest_send(user=user, today=today)


@dataclasses.dataclass
class DigestRun:
    sent: int = 0
    skipped: int = 0
    failed: int = 0


def digests_send(*, today: date | None = None, user_ids: list[int] | None = None) -> DigestRun:
    """Send the digest of the week of `today` to everyone (or the given users) still owed one, here and now
    (the management command; the scheduled job fans out per person: `digests_enqueue`).

    One person's failure is logged and does not stop the others; their claim is released, so the next run
    (the beat schedule's catch-up) retries them."""
    today = today or timezone.localdate()
    run = DigestRun()
    people = digest_recipients(week_key(today))
    if user_ids is not None:
        people = people.filter(pk__in=user_ids)
    for user in people.iterator(chunk_size=200):
        try:
            sent = digest_send(user=user, today=today)
        except Exception:
            log.exception("weekly digest of user %s not sent", user.pk)
            run.failed += 1
            continue
        if sent:
            run.sent += 1
        else:
            run.skipped += 1
    return run
