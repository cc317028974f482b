"""The weekly review's records: the forecast call's dated submissions, the review meeting and its action items.

A forecast submission is never changed: each submission is a new row, so "the forecast of week W" is the latest
row made in W and the accuracy of every week can be read after the period. A held meeting keeps a snapshot of
every figure it showed (`Meeting.snapshot`), so it reopens exactly as it was.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Role


class ForecastLevel(models.TextChoices):
    REP = "rep", _("Rep")
    TEAM = "team", _("Team")


class ForecastSubmission(models.Model):
    """One forecast (commit and best case) for one period, by a rep for his own deals or by a manager for a team.

    Never updated: a new row per submission (the dated snapshots of the forecast call). `week` is the Monday of
    the week it was made in; the submission of week W is the latest row with `week` = W. The deal-based figures
    at the moment of submission ride along (`won`, `deals_commit`, `deals_best_case`), and for a team the
    roll-up of its reps' latest submissions (`rollup_commit`, `rollup_best_case`): commit minus the roll-up is
    the manager's judgment, explained in `note`.
    """

    level = models.CharField(_("level"), max_length=8, choices=ForecastLevel.choices)
    # The rep whose forecast it is (level rep); the submitting manager (level team).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="forecasts"
    )
    # The team: the rep's region when he submitted (level rep), the team forecast for (level team).
    region = models.ForeignKey("crm.Region", verbose_name=_("team"), on_delete=models.PROTECT, related_name="forecasts")
    period_key = models.CharField(_("period"), max_length=16)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    week = models.DateField(_("week"))
    commit = models.DecimalField(_("commit"), max_digits=18, decimal_places=2)
    best_case = models.DecimalField(_("best case"), max_digits=18, decimal_places=2)
    won = models.DecimalField(_("won to date"), max_digits=18, decimal_places=2)
    deals_commit = models.DecimalField(_("commit from deals"), max_digits=18, decimal_places=2)
    deals_best_case = models.DecimalField(_("best case from deals"), max_digits=18, decimal_places=2)
    rollup_commit = models.DecimalField(_("reps' commit"), max_digits=18, decimal_places=2, null=True, blank=True)
    rollup_best_case = models.DecimalField(_("reps' best case"), max_digits=18, decimal_places=2, null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("submitted by"), on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now)

    class Meta:
        verbose_name = _("forecast submission")
        verbose_name_plural = _("forecast submissions")
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(commit__gte=0), name="forecast_commit_non_negative"),
            models.CheckConstraint(condition=Q(best_case__gte=models.F("commit")), name="forecast_best_case_ge_commit"),
        ]
        indexes = [
            models.Index(fields=["period_key", "level", "owner", "week"], name="forecast_owner_week"),
            models.Index(fields=["period_key", "level", "region", "week"], name="forecast_region_week"),
        ]

    def __str__(self):
        return f"{self.owner} · {self.period_key} · {self.week}: {self.commit} / {self.best_case}"

    @property
    def adjustment(self):
        """The manager's judgment: commit minus the reps' roll-up (None for a rep's own forecast)."""
        return None if self.rollup_commit is None else self.commit - self.rollup_commit


class MeetingStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    HELD = "held", _("Held")


class HeldRecord(models.Model):
    """What a weekly meeting and a project review share: planned, then held (by whom, when) and frozen, with
    `snapshot` keeping everything it showed so it reopens exactly as it was; its minutes and who planned it."""

    minutes = models.TextField(_("minutes"), blank=True)
    status = models.CharField(_("status"), max_length=8, choices=MeetingStatus.choices, default=MeetingStatus.PLANNED)
    held_at = models.DateTimeField(_("held"), null=True, blank=True)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("held by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    snapshot = models.JSONField(_("snapshot"), default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        abstract = True

    @property
    def is_held(self) -> bool:
        return self.status == MeetingStatus.HELD


class Meeting(HeldRecord):
    """The weekly review meeting (周例会) of a team for one week. Once held it is frozen: `snapshot` holds the
    review, the forecast and the action items as they were shown."""

    region = models.ForeignKey("crm.Region", verbose_name=_("team"), on_delete=models.PROTECT, related_name="meetings")
    week = models.DateField(_("week"), help_text=_("The Monday of the meeting's week."))
    title = models.CharField(_("title"), max_length=200)
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("attendees"), blank=True, related_name="meetings_attended"
    )
    agenda = models.TextField(_("agenda"), blank=True)

    class Meta:
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")
        ordering = ["-week", "region_id"]
        constraints = [
            models.UniqueConstraint(fields=["region", "week"], name="one_meeting_per_team_week"),
            models.CheckConstraint(
                condition=Q(status="planned") | Q(held_at__isnull=False, held_by__isnull=False),
                name="held_meeting_has_holder",
            ),
        ]

    def __str__(self):
        return f"{self.title} · {self.week}"


class ActionItemStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    DROPPED = "dropped", _("Dropped")


class ActionItem(models.Model):
    """An action item of a review (3定: what, who, by when), optionally tied to a target gap, a deal or an alert.

    It belongs to the team of the meeting it was created in and stays on that team's meetings while open
    (carried forward); `closed_in` is the meeting where it was marked done or dropped."""

    region = models.ForeignKey("crm.Region", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+")
    meeting = models.ForeignKey(
        Meeting, verbose_name=_("created in"), on_delete=models.PROTECT, related_name="new_items"
    )
    closed_in = models.ForeignKey(
        Meeting,
        verbose_name=_("closed in"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="closed_items",
    )
    what = models.CharField(_("what"), max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="action_items"
    )
    due_date = models.DateField(_("due date"))
    status = models.CharField(
        _("status"), max_length=8, choices=ActionItemStatus.choices, default=ActionItemStatus.OPEN
    )
    node = models.ForeignKey(
        "targets.TargetNode",
        verbose_name=_("target"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("deal"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    alert = models.ForeignKey(
        "targets.Alert", verbose_name=_("alert"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("action item")
        verbose_name_plural = _("action items")
        ordering = ["due_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", closed_in__isnull=True) | ~Q(status="open"),
                name="open_item_not_closed",
            ),
        ]
        indexes = [
            models.Index(fields=["region", "status"], name="action_item_team_status"),
            models.Index(fields=["owner", "status"], name="action_item_owner_status"),
        ]

    def __str__(self):
        return self.what


# --- 1:1 coaching (辅导) ---------------------------------------------------------------------------


class CoachingFocus(models.TextChoices):
    TARGET = "target", _("Target gap")
    DEAL = "deal", _("Deal")
    SKILL = "skill", _("Skill")


class CoachingSession(models.Model):
    """A 1:1 coaching session (辅导) of a manager with a rep: the focus (a target gap, a deal or a skill), what the
    manager observed, and the commitments agreed. It belongs to the rep's team when it was held (`region`), so
    the team's managers see it; the rep sees his own and acknowledges it, which freezes it."""

    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("manager"), on_delete=models.PROTECT, related_name="coaching_given"
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.PROTECT, related_name="coaching_sessions"
    )
    region = models.ForeignKey("crm.Region", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+")
    date = models.DateField(_("date"))
    focus_kind = models.CharField(_("focus"), max_length=8, choices=CoachingFocus.choices)
    focus = models.CharField(_("focus in words"), max_length=300)
    node = models.ForeignKey(
        "targets.TargetNode",
        verbose_name=_("target"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("deal"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    observations = models.TextField(_("observations"), blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("coaching session")
        verbose_name_plural = _("coaching sessions")
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["rep", "date"], name="coaching_rep_date"),
            models.Index(fields=["region", "date"], name="coaching_team_date"),
        ]

    def __str__(self):
        return f"{self.rep} · {self.date} · {self.focus}"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class Commitment(models.Model):
    """What a rep agreed to do in a session, by when. A later session with the same rep follows it up: done,
    dropped or kept open (`reviewed_in` is that session, `follow_up` what was said)."""

    session = models.ForeignKey(
        CoachingSession, verbose_name=_("session"), on_delete=models.CASCADE, related_name="commitments"
    )
    # The session's rep, kept on the row so "my open commitments" is one indexed query.
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("rep"), on_delete=models.PROTECT, related_name="commitments"
    )
    what = models.CharField(_("what"), max_length=300)
    due_date = models.DateField(_("due date"))
    status = models.CharField(
        _("status"), max_length=8, choices=ActionItemStatus.choices, default=ActionItemStatus.OPEN
    )
    follow_up = models.TextField(_("follow-up note"), blank=True)
    reviewed_in = models.ForeignKey(
        CoachingSession,
        verbose_name=_("followed up in"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followed_up",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("commitment")
        verbose_name_plural = _("commitments")
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["rep", "status", "due_date"], name="commitment_rep_open")]

    def __str__(self):
        return self.what


# --- project analysis meeting (项目分析会) ------------------------------------------------------------


class BuyingStep(models.TextChoices):
    """Where the customer stands in his own buying process, set against our selling stage."""

    NEED = "need", _("Need confirmation")
    EVALUATION = "evaluation", _("Solution evaluation")
    NEGOTIATION = "negotiation", _("Commercial negotiation")
    APPROVAL = "approval", _("Decision and approval")
    PURCHASE = "purchase", _("Purchasing")


class ProjectReview(HeldRecord):
    """A project analysis meeting (项目分析会) of a team on a date: its big open deals, one by one. Held like the
    weekly meeting: `snapshot` keeps every project as shown, so a held review reopens exactly as it was."""

    region = models.ForeignKey("crm.Region", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+")
    date = models.DateField(_("date"))
    title = models.CharField(_("title"), max_length=200)

    class Meta:
        verbose_name = _("project review")
        verbose_name_plural = _("project reviews")
        ordering = ["-date", "region_id"]
        constraints = [
            models.UniqueConstraint(fields=["region", "date"], name="one_project_review_per_team_day"),
            models.CheckConstraint(
                condition=Q(status="planned") | Q(held_at__isnull=False, held_by__isnull=False),
                name="held_project_review_has_holder",
            ),
        ]

    def __str__(self):
        return f"{self.title} · {self.date}"


class ProjectReviewEntry(models.Model):
    """What the review said about one project: the customer's buying step, next steps, risks."""

    review = models.ForeignKey(ProjectReview, on_delete=models.CASCADE, related_name="entries")
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("deal"), on_delete=models.CASCADE, related_name="+"
    )
    buying_step = models.CharField(_("customer's buying step"), max_length=12, choices=BuyingStep.choices, blank=True)
    next_steps = models.TextField(_("next steps"), blank=True)
    risks = models.TextField(_("risks"), blank=True)

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "opportunity"], name="one_entry_per_project"),
        ]

    def __str__(self):
        return f"{self.review} · {self.opportunity_id}"


class ProjectDecisionKind(models.TextChoices):
    DECISION = "decision", _("Decision")
    ACTION = "action", _("Action item")


class ProjectDecision(models.Model):
    """A decision taken on a project, or an action item (what / who / by when) for it.

    Not an `ActionItem`: those belong to a weekly `Meeting` (a required link, carried forward by meeting week and
    closed in a meeting), and a project review is no weekly meeting; its actions live with the project."""

    entry = models.ForeignKey(ProjectReviewEntry, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(_("kind"), max_length=8, choices=ProjectDecisionKind.choices)
    what = models.CharField(_("what"), max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    due_date = models.DateField(_("due date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=ActionItemStatus.choices, default=ActionItemStatus.OPEN
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("project decision")
        verbose_name_plural = _("project decisions")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="decision") | Q(owner__isnull=False, due_date__isnull=False),
                name="project_action_has_owner_and_date",
            ),
        ]

    def __str__(self):
        return self.what


# --- the scorecard (过程量 + 结果量) ------------------------------------------------------------------


class ScorecardConfig(models.Model):
    """How people of one role are scored in one period: a weighted sum of capped measures (`ScorecardItem`).

    score = Σ weight × min(ratio, cap), ratio = actual ÷ target of the item's metric for the person in the period
    (see `coaching.scorecard`). One config per role and period.
    """

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    period_key = models.CharField(_("period"), max_length=16)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("scorecard")
        verbose_name_plural = _("scorecards")
        ordering = ["-period_key", "role"]
        constraints = [models.UniqueConstraint(fields=["role", "period_key"], name="scorecard_role_period_unique")]

    def __str__(self):
        return f"{self.role} · {self.period_key}"


class ScorecardItem(models.Model):
    """One measure of a scorecard: a metric (a result: its attainment; a process count: visits, deals created,
    stage milestones...), its weight in points and its cap (the ratio it counts up to, e.g. 1.20 = 120 %).
    `target`: what a process count is measured against for a person without a target of that metric."""

    config = models.ForeignKey(ScorecardConfig, on_delete=models.CASCADE, related_name="items")
    metric = models.ForeignKey("targets.Metric", verbose_name=_("measure"), on_delete=models.PROTECT, related_name="+")
    weight = models.DecimalField(_("weight (points)"), max_digits=7, decimal_places=2)
    cap = models.DecimalField(_("cap (ratio, 1.20 = 120 %)"), max_digits=6, decimal_places=2, default=Decimal("1.20"))
    target = models.DecimalField(
        _("default target"),
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("For a process count when the person has no target of that metric."),
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("scorecard measure")
        verbose_name_plural = _("scorecard measures")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["config", "metric"], name="scorecard_item_metric_unique"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="scorecard_item_weight_non_negative"),
            models.CheckConstraint(condition=Q(cap__gt=0), name="scorecard_item_cap_positive"),
            models.CheckConstraint(
                condition=Q(target__isnull=True) | Q(target__gt=0), name="scorecard_item_target_positive"
            ),
        ]

    def __str__(self):
        return f"{self.metric} × {self.weight}"


class DigestSent(models.Model):
    """The weekly digest of one person for one ISO week ("2026-W49"): claimed before it is sent, so it goes out
    once per person and week however often, or however concurrently, the job runs (`coaching.digest`).

    `claim` is the token of the run that holds it; `sent_at` stays empty until the mail went out. A claim
    whose run died before sending (`claimed_at` older than `coaching.digest.CLAIM_LEASE`) is taken over by a
    later run, so a crash delays the mail instead of losing it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+", db_index=False
    )
    week = models.CharField(_("week"), max_length=8)
    claim = models.CharField(max_length=32)
    claimed_at = models.DateTimeField(_("claimed"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("weekly digest sent")
        verbose_name_plural = _("weekly digests sent")
        ordering = ["-week", "user"]
        constraints = [models.UniqueConstraint(fields=["user", "week"], name="one_digest_per_user_week")]

    def __str__(self):
        return f"{self.user_id} {self.week}"
