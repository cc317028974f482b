"""Targets: metrics, target plans and their 3定 breakdown tree, versions, adjustments, action plans.

A plan's total is decomposed as a tree of `TargetNode`s. Each split picks one dimension
(region, product line, product, rep, segment, or a finer period) and one method; the children
always sum exactly to the parent. Every leaf carries 定目标 (amount), 定责任 (owner) and
定时间 (period and deadline). Approved amounts are kept per version in `TargetNodeAmount`.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from crm.models import Segment
from salesmgmt.lib import periods


class MetricUnit(models.TextChoices):
    MONEY = "money", _("Money")
    COUNT = "count", _("Count")


class MetricSource(models.TextChoices):
    """The facts a metric counts. Admin-defined metrics narrow one of these with `filters`."""

    WON_REVENUE = "won_revenue", _("Signed revenue (签约额)")
    COLLECTIONS = "collections", _("Cash collection (回款额)")
    NEW_CUSTOMERS = "new_customers", _("New customers (新客户数)")
    GROSS_MARGIN = "gross_margin", _("Gross margin (毛利)")
    KEY_PRODUCT_SHARE = "key_product_share", _("Key-product revenue (重点产品占比)")
    # Process measures (过程量), counted by the rep who did them and his team:
    # visits, calls and meetings logged (`filters` {"kind": "visit"} narrows to one kind);
    ACTIVITIES = "activities", _("Activities (拜访/电话/会议)")
    # deals created (by their creation day);
    DEALS_CREATED = "deals_created", _("Opportunities created (新建商机数)")
    # deals that reached a stage for the first time (`filters` {"stage": <id>} or {"stage_order": <order>});
    STAGE_REACHED = "stage_reached", _("Deals reaching a stage (阶段推进数)")
    # customers added to a rep's book (created in the period), won or not: unlike NEW_CUSTOMERS, which counts
    # customers whose FIRST WON DEAL falls in the period (a conversion, not coverage).
    CUSTOMERS_COVERED = "customers_covered", _("New customers covered (新覆盖客户数)")


# The sources that count process facts (always a count, no pipeline).
PROCESS_SOURCES = (
    MetricSource.ACTIVITIES,
    MetricSource.DEALS_CREATED,
    MetricSource.STAGE_REACHED,
    MetricSource.CUSTOMERS_COVERED,
)


# The keys an admin-defined metric may filter its base source by.
METRIC_FILTER_KEYS = ("product_line", "product", "tier", "segment", "region", "kind", "stage", "stage_order")


class Metric(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    name_zh = models.CharField(_("name (Chinese)"), max_length=120, blank=True)
    unit = models.CharField(_("unit"), max_length=8, choices=MetricUnit.choices, default=MetricUnit.MONEY)
    source = models.CharField(_("source"), max_length=20, choices=MetricSource.choices)
    filters = models.JSONField(
        _("filters"),
        default=dict,
        blank=True,
        help_text=_('Narrow the source, e.g. {"product_line": 3} or {"tier": "A"}.'),
    )
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("metric")
        verbose_name_plural = _("metrics")
        ordering = ["-is_builtin", "name"]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_zh if self.name_zh and (get_language() or "").startswith("zh") else self.name

    @property
    def places(self) -> int:
        """Decimal places of its amounts: cents for money, whole numbers for counts."""
        return 0 if self.unit == MetricUnit.COUNT else 2


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")


class PlanPeriodKind(models.TextChoices):
    YEAR = periods.YEAR, _("Year")
    QUARTER = periods.QUARTER, _("Quarter")


class PeriodKind(models.TextChoices):
    YEAR = periods.YEAR, _("Year")
    QUARTER = periods.QUARTER, _("Quarter")
    MONTH = periods.MONTH, _("Month")
    WEEK = periods.WEEK, _("Week")


class TargetPlan(models.Model):
    """One metric for one fiscal period (e.g. FY2027 signed revenue), with its breakdown tree.

    Company-wide (no region) or for one region (an area manager's own plan); the root node takes
    the plan's region. One plan per metric, period and region.
    """

    metric = models.ForeignKey(Metric, verbose_name=_("metric"), on_delete=models.PROTECT, related_name="plans")
    region = models.ForeignKey(
        "crm.Region",
        verbose_name=_("region"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Empty for a company-wide plan."),
    )
    name = models.CharField(_("name"), max_length=200)
    period_kind = models.CharField(_("period kind"), max_length=8, choices=PlanPeriodKind.choices)
    period_key = models.CharField(_("period"), max_length=16)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    total = models.DecimalField(_("total"), max_digits=18, decimal_places=2)
    status = models.CharField(_("status"), max_length=12, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="owned_plans"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    # Who submitted it last: never its approver (see targets.planning.approval_chain).
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    # 0 while draft, 1 on approval, +1 per approved adjustment.
    current_version = models.PositiveIntegerField(_("version in force"), default=0)

    class Meta:
        verbose_name = _("target plan")
        verbose_name_plural = _("target plans")
        ordering = ["-period_start", "metric__name"]
        constraints = [
            # Two constraints because NULLs are distinct in a unique index: one company-wide plan, one per region.
            models.UniqueConstraint(
                fields=["metric", "period_key"],
                condition=Q(region__isnull=True),
                name="one_company_plan_per_metric_period",
            ),
            models.UniqueConstraint(
                fields=["metric", "period_key", "region"],
                condition=Q(region__isnull=False),
                name="one_region_plan_per_metric_period",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="plan_total_non_negative"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_draft(self) -> bool:
        return self.status == PlanStatus.DRAFT


class Dimension(models.TextChoices):
    """What a split divides a node along. Periods are a hierarchy: year -> quarter -> month -> week."""

    REGION = "region", _("Region")
    PRODUCT_LINE = "product_line", _("Product line")
    PRODUCT = "product", _("Product")
    REP = "rep", _("Sales rep")
    SEGMENT = "segment", _("Customer segment")
    QUARTER = periods.QUARTER, _("Quarter")
    MONTH = periods.MONTH, _("Month")
    WEEK = periods.WEEK, _("Week")


TIME_DIMENSIONS = (Dimension.QUARTER, Dimension.MONTH, Dimension.WEEK)


class SplitMethod(models.TextChoices):
    EQUAL = "equal", _("Equal")
    HISTORY = "history", _("By history (same period last year)")
    WEIGHTS = "weights", _("By weights")
    MANUAL = "manual", _("Manual amounts")
    BOTTOM_UP = "bottom_up", _("Bottom-up commitments")


class WeightBasis(models.TextChoices):
    MANUAL = "manual", _("Manual weights")
    MARKET_POTENTIAL = "market_potential", _("Market potential")
    HEADCOUNT = "headcount", _("Headcount")
    CUSTOMERS = "customers", _("Customer count")
    DAYS = "days", _("Days in period")


def coordinate(to, verbose_name, *, db_index=False):
    """A coordinate of a target node: optional, protected, without a database constraint (see TargetNode)."""
    return models.ForeignKey(
        to,
        verbose_name=verbose_name,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=db_index,
        db_constraint=False,
    )


class TargetNodeQuerySet(models.QuerySet):
    def leaves(self):
        return self.filter(split_dimension="")

    def subtree(self, node, *, include_self: bool = True):
        qs = self.filter(plan_id=node.plan_id, path__startswith=node.path)
        return qs if include_self else qs.exclude(pk=node.pk)

    def visible_to(self, user):
        from crm.scopes import scope_q

        if user is None or not user.is_authenticated:
            return self.none()
        scope = scope_q(user, owner="owner", region="region")
        if not scope:  # the "all" scope (an empty Q would swallow the OR below)
            return self.all()
        return self.filter(scope | Q(rep=user))


class TargetNode(models.Model):
    """A cell of the breakdown: coordinates inherited from the parent plus the one its split set.

    `path` is built from sibling indexes ("0001.0003.") so whole levels can be bulk-created
    without primary keys, and a subtree is one prefix query.

    Built for splits that insert tens of thousands of rows at once:
    - few indexes: (plan, path) serves the plan and its subtrees, parent_id the children (a parent
      belongs to one plan, so a (plan, parent) index would add nothing), (owner, plan) and rep_id
      "my targets", (region, plan) the regions of a data scope;
    - the coordinates and the owner are copies the split service has just validated; they keep
      Django's PROTECT but no database constraint, whose per-row check at commit would cost more
      than the whole split (plan and parent, the tree itself, keep theirs).
    """

    plan = models.ForeignKey(TargetPlan, on_delete=models.CASCADE, related_name="nodes", db_index=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    path = models.CharField(max_length=255)
    depth = models.PositiveSmallIntegerField(default=0)
    # Coordinates.
    region = coordinate("crm.Region", _("region"))
    product_line = coordinate("crm.ProductLine", _("product line"))
    product = coordinate("crm.Product", _("product"))
    rep = coordinate(settings.AUTH_USER_MODEL, _("sales rep"), db_index=True)
    segment = models.CharField(_("segment"), max_length=10, choices=Segment.choices, blank=True)
    period_kind = models.CharField(_("period kind"), max_length=8, choices=PeriodKind.choices)
    period_key = models.CharField(_("period"), max_length=16)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    # How this node is split ("" for a leaf).
    split_dimension = models.CharField(_("split along"), max_length=16, choices=Dimension.choices, blank=True)
    split_method = models.CharField(_("split method"), max_length=16, choices=SplitMethod.choices, blank=True)
    # 3定: amount (the version in force), owner, deadline.
    amount = models.DecimalField(_("target"), max_digits=18, decimal_places=2)
    # Stretch levels above the base (`amount`): 冲刺 (stretch) and 挑战 (challenge); either may be empty.
    # stretch >= amount, challenge >= stretch (or >= amount when there is no stretch).
    stretch = models.DecimalField(_("stretch (冲刺)"), max_digits=18, decimal_places=2, null=True, blank=True)
    challenge = models.DecimalField(_("challenge (挑战)"), max_digits=18, decimal_places=2, null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="target_nodes",
        db_index=False,  # (owner, plan) below
        db_constraint=False,
    )
    deadline = models.DateField(_("deadline"), null=True, blank=True)
    committed_amount = models.DecimalField(
        _("committed (bottom-up)"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    # The team's unassigned target in a split by rep (a leaver's remaining target nobody has taken over yet,
    # `targets.planning.people`): no rep and no owner, and nobody's facts count for it (its actual stays zero: it
    # is not the whole team's), so the team still adds up its reps' actuals once.
    unassigned = models.BooleanField(_("unassigned (the team's)"), default=False, db_default=False, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TargetNodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["plan", "path"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "path"], name="target_node_path_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="target_node_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(committed_amount__isnull=True) | Q(committed_amount__gte=0),
                name="target_node_commitment_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(stretch__isnull=True) | Q(stretch__gte=F("amount")),
                name="target_node_stretch_at_least_base",
            ),
            models.CheckConstraint(
                condition=Q(challenge__isnull=True)
                | (Q(stretch__isnull=True) & Q(challenge__gte=F("amount")))
                | Q(challenge__gte=F("stretch")),
                name="target_node_challenge_at_least_stretch",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "plan"], name="target_node_owner"),
            # The region arm of a data scope (`crm.scopes`: region_id IN (the scope's regions)), beside the owner
            # and rep indexes of the other arms; with the plan, one plan's nodes of some regions.
            models.Index(fields=["region", "plan"], name="target_node_region"),
        ]

    def __str__(self):
        return f"{self.plan} {self.label}"

    @property
    def is_leaf(self) -> bool:
        return not self.split_dimension

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def label(self) -> str:
        """The node's own coordinates, most specific first (for lists and error messages)."""
        parts = [str(x) for x in (self.rep, self.product, self.product_line, self.region) if x is not None]
        if self.unassigned:
            parts.insert(0, str(_("Unassigned")))
        if self.segment:
            parts.append(str(self.get_segment_display()))
        parts.append(self.period_key)
        return " · ".join(parts)


class TargetNodeAmount(models.Model):
    """The amount of a node from `version_from` until (not including) `version_to`.

    A temporal table: approval writes version 1 for every node; an adjustment closes the rows of
    the nodes it changes and opens new ones, so every version is kept without copying the tree.
    """

    # Both keys are indexed by the (plan, versions) index and the (node, version_from) constraint below.
    # The node's plan, copied so a version of a whole plan is one indexed query; no database constraint
    # (the node's own keeps it honest) so approving 60,000 nodes checks one key per row, not two.
    plan = models.ForeignKey(
        TargetPlan, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    node = models.ForeignKey(TargetNode, on_delete=models.CASCADE, related_name="amounts", db_index=False)
    amount = models.DecimalField(_("target"), max_digits=18, decimal_places=2)
    version_from = models.PositiveIntegerField()
    version_to = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("target version")
        verbose_name_plural = _("target versions")
        constraints = [
            models.UniqueConstraint(fields=["node", "version_from"], name="one_amount_per_node_version"),
            models.UniqueConstraint(
                fields=["node"], condition=Q(version_to__isnull=True), name="one_open_amount_per_node"
            ),
            models.CheckConstraint(
                condition=Q(version_to__isnull=True) | Q(version_to__gt=models.F("version_from")),
                name="amount_version_range_valid",
            ),
        ]
        indexes = [models.Index(fields=["plan", "version_from", "version_to"], name="target_amount_plan_version")]

    def __str__(self):
        end = f"v{self.version_to - 1}" if self.version_to else "…"
        return f"{self.amount} (v{self.version_from}–{end})"


class AdjustmentKind(models.TextChoices):
    REALLOCATION = "reallocation", _("Reallocation (plan total unchanged)")
    TOTAL_CHANGE = "total_change", _("Total change")
    # People changes (plan total unchanged): a rep's remaining target to another rep from a date
    # (`targets.planning.people.transfer_propose`), a new hire's target taken from a peer (`new_hire_propose`).
    TRANSFER = "transfer", _("Transfer (a rep leaves or moves)")
    NEW_HIRE = "new_hire", _("New hire")


# The kinds proposed as explicit new amounts (the adjustment form and the API's create).
AMOUNT_KINDS = [(k.value, k.label) for k in (AdjustmentKind.REALLOCATION, AdjustmentKind.TOTAL_CHANGE)]

# The kinds that keep the plan total (a manager's approver may approve them; a total change needs a director).
TOTAL_KEEPING_KINDS = (AdjustmentKind.REALLOCATION, AdjustmentKind.TRANSFER, AdjustmentKind.NEW_HIRE)


class AdjustmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class AdjustmentRequest(models.Model):
    """季度目标动态调整: a proposed change of an approved plan; approval creates a new version."""

    plan = models.ForeignKey(TargetPlan, on_delete=models.CASCADE, related_name="adjustments")
    kind = models.CharField(_("kind"), max_length=16, choices=AdjustmentKind.choices)
    reason = models.TextField(_("reason"))
    # [{"node": id, "old": "123.00", "new": "150.00"}] as proposed (explicit changes only).
    changes = models.JSONField(_("changes"), default=list)
    # A people change's parameters: {"from_rep", "to_rep", "effective", "moved", "created": [node ids]...}
    # (`targets.planning.people`); empty for other kinds.
    details = models.JSONField(_("details"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=AdjustmentStatus.choices, default=AdjustmentStatus.PENDING
    )
    proposer = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("proposed by"), on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    based_on_version = models.PositiveIntegerField(_("based on version"))
    resulting_version = models.PositiveIntegerField(_("resulting version"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    created_at = models.DateTimeField(_("proposed"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    # Not columns: set by `targets.planning.selectors.adjustments_with_net` for what a user may see.
    net: Decimal
    partial: bool

    class Meta:
        verbose_name = _("target adjustment")
        verbose_name_plural = _("target adjustments")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["plan", "status"], name="target_adjustment_plan_status")]

    def __str__(self):
        return f"{self.plan} · {self.get_kind_display()} · {self.get_status_display()}"


class ActionStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class ActionPlan(models.Model):
    """行动计划: what will be done to reach a target, by whom, when, with which resources."""

    node = models.ForeignKey(TargetNode, verbose_name=_("target"), on_delete=models.CASCADE, related_name="actions")
    activity = models.CharField(_("activity"), max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="action_plans"
    )
    due_date = models.DateField(_("due date"))
    resources = models.TextField(_("resources needed"), blank=True)
    status = models.CharField(_("status"), max_length=12, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("action plan")
        verbose_name_plural = _("action plans")
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["owner", "status", "due_date"])]

    def __str__(self):
        return self.activity


class AttainmentSnapshotQuerySet(models.QuerySet):
    def newest(self, on=None):
        """Only each node's newest snapshot (on or before day `on`, when given): the node's figures then."""
        newer = AttainmentSnapshot.objects.filter(node=OuterRef("node"))
        if on is not None:
            newer = newer.filter(as_of__lte=on)
        return self.filter(as_of=Subquery(newer.order_by("-as_of").values("as_of")[:1]))


class AttainmentSnapshot(models.Model):
    """The stored numbers of one target node from one day on, so every screen can show the trend week over week.

    A row is written only on a day the node's figures (or its target) changed, and holds until the node's
    next row: the figures of a node on day D are those of its newest row on or before D. Upserted on
    (node, as_of): a recompute on the same day replaces the row. Ratios (attainment, pace gap, coverage,
    run-rate) are derived on read from these numbers, the node's period and the day they are read for.
    """

    node = models.ForeignKey(TargetNode, on_delete=models.CASCADE, related_name="snapshots", db_index=False)
    as_of = models.DateField(_("as of"))
    actual = models.DecimalField(_("actual"), max_digits=18, decimal_places=2)
    target = models.DecimalField(_("target"), max_digits=18, decimal_places=2)
    weighted_pipeline = models.DecimalField(_("weighted pipeline"), max_digits=18, decimal_places=2)
    open_pipeline = models.DecimalField(_("open pipeline"), max_digits=18, decimal_places=2)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)

    objects = AttainmentSnapshotQuerySet.as_manager()

    class Meta:
        verbose_name = _("attainment snapshot")
        verbose_name_plural = _("attainment snapshots")
        ordering = ["node", "-as_of"]
        constraints = [models.UniqueConstraint(fields=["node", "as_of"], name="one_snapshot_per_node_day")]

    def __str__(self):
        return f"{self.node_id} @ {self.as_of}: {self.actual} / {self.target}"


class LatestAttainment(models.Model):
    """The figures of each node's newest snapshot, one row per node, written together with the snapshots.

    A recompute compares what it computed with these rows and writes a snapshot only for the nodes whose
    figures changed: the history keeps one row per node per change, not one per node per day (a
    185,000-node plan would otherwise add 67 million rows a year), and the nightly rebuild writes only
    what moved. A row newer than a backfilled day is never replaced by that older day's figures.
    """

    node = models.OneToOneField(
        TargetNode, on_delete=models.CASCADE, primary_key=True, related_name="latest_attainment"
    )
    # Indexed: "has a later day been written already" (a backfill) is asked before every full recompute.
    as_of = models.DateField(_("as of"), db_index=True)
    actual = models.DecimalField(_("actual"), max_digits=18, decimal_places=2)
    target = models.DecimalField(_("target"), max_digits=18, decimal_places=2)
    weighted_pipeline = models.DecimalField(_("weighted pipeline"), max_digits=18, decimal_places=2)
    open_pipeline = models.DecimalField(_("open pipeline"), max_digits=18, decimal_places=2)

    class Meta:
        verbose_name = _("latest attainment")
        verbose_name_plural = _("latest attainment")

    def __str__(self):
        return f"{self.node_id} @ {self.as_of}: {self.actual} / {self.target}"


class AlertKind(models.TextChoices):
    PACE_GAP = "pace_gap", _("Behind pace (pace gap)")
    COVERAGE = "coverage", _("Low pipeline coverage")
    STALE_IN_STAGE = "stale_in_stage", _("Deal stuck in stage")
    CLOSE_DATE_PASSED = "close_date_passed", _("Expected close date passed")
    BIG_DEAL_BACKWARDS_OR_LOST = "big_deal_backwards_or_lost", _("Big deal moved backwards or lost")
    LEAF_WITHOUT_OWNER = "leaf_without_owner", _("Target without an owner")


# The kinds evaluated per target node (from snapshots); the others are evaluated per deal.
NODE_ALERT_KINDS = (AlertKind.PACE_GAP, AlertKind.COVERAGE, AlertKind.LEAF_WITHOUT_OWNER)


class AlertSeverity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


class AlertState(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class AlertRule(models.Model):
    """When an alert fires: a kind, optionally for one metric (a metric's own rule replaces the general one),
    and a threshold whose meaning depends on the kind (pace gap points, coverage ×, big-deal amount)."""

    kind = models.CharField(_("kind"), max_length=32, choices=AlertKind.choices)
    metric = models.ForeignKey(
        Metric,
        verbose_name=_("metric"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text=_("Empty: every metric without a rule of its own."),
    )
    threshold = models.DecimalField(
        _("threshold"),
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Pace gap: points vs time progress; coverage: multiple of the gap; big deal: amount."),
    )
    severity = models.CharField(
        _("severity"), max_length=10, choices=AlertSeverity.choices, default=AlertSeverity.WARNING
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["kind", "metric_id", "id"]

    def __str__(self):
        metric = f" · {self.metric}" if self.metric_id else ""
        return f"{self.get_kind_display()}{metric}"


class Alert(models.Model):
    """One firing condition of a rule for one subject (a target node or a deal) in one period.

    `subject_key` ("node:12", "deal:34") makes (rule, subject, period) one non-null unique key, so the
    same condition never produces two alerts, even when the evaluation task is delivered twice.
    """

    rule = models.ForeignKey(AlertRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(_("severity"), max_length=10, choices=AlertSeverity.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="alerts"
    )
    owner_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner's manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="team_alerts",
    )
    state = models.CharField(_("state"), max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    node = models.ForeignKey(
        TargetNode, verbose_name=_("target"), null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    subject_key = models.CharField(max_length=40)
    period_key = models.CharField(_("period"), max_length=16, blank=True, default="")
    params = models.JSONField(_("message parameters"), default=dict, blank=True)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now)
    # When it last became open: at creation, and again each time a resolved alert fires anew. Notifications
    # are keyed on it, so one opening tells each person once.
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "subject_key", "period_key"], name="one_alert_per_condition"),
            models.CheckConstraint(
                condition=Q(node__isnull=False) | Q(opportunity__isnull=False), name="alert_has_subject"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "state"], name="alert_owner_state"),
            models.Index(fields=["owner_manager", "state"], name="alert_manager_state"),
        ]

    def __str__(self):
        return f"{self.rule} · {self.subject_key} {self.period_key} · {self.get_state_display()}"


class NotificationTopic(models.TextChoices):
    ALERT = "alert", _("Alert")
    PLAN_SUBMITTED = "plan_submitted", _("Plan waiting for your approval")
    MILESTONE = "milestone", _("Target milestone reached")


# Notification preferences are per kind: each alert kind, the milestones reached (good news) and the weekly
# digest e-mail (`coaching.digest`).
PREFERENCE_MILESTONES = "milestones"
PREFERENCE_WEEKLY_DIGEST = "weekly_digest"
PREFERENCE_KINDS = [
    *AlertKind.choices,
    (PREFERENCE_MILESTONES, _("Target milestones reached")),
    (PREFERENCE_WEEKLY_DIGEST, _("Weekly digest")),
]


class TargetMilestone(models.Model):
    """A level of attainment (50 %, 90 %, 100 %, see `targets.alerts.milestones.MILESTONES`) a target reached.

    Recorded the first time an evaluation reads the node's figures at or above the level, once per (node, level,
    version of the target amount): a unique key, so evaluating twice, or two evaluations at once, record and
    notify it once. Dropping below and reaching it again within the same version is no new milestone; a new
    amount (a new version) starts afresh. The figures are those read when it was reached.
    """

    node = models.ForeignKey(
        TargetNode, verbose_name=_("target"), on_delete=models.CASCADE, related_name="milestones", db_index=False
    )
    level = models.CharField(_("level"), max_length=16)
    version = models.PositiveIntegerField(_("target version"))
    actual = models.DecimalField(_("actual"), max_digits=18, decimal_places=2)
    target = models.DecimalField(_("target"), max_digits=18, decimal_places=2)
    reached_on = models.DateField(_("reached on"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("target milestone")
        verbose_name_plural = _("target milestones")
        ordering = ["node", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["node", "version", "level"], name="one_milestone_per_node_version_level")
        ]

    def __str__(self):
        return f"{self.node_id} v{self.version} {self.level}"


class Notification(models.Model):
    """Something a user is told about: in the notification centre (`in_app`) and/or by e-mail (`email`).

    Its text is rendered when shown, in the reader's language, from the subject (the alert and its params).
    (recipient, alert, opened_at) is unique: one opening of an alert notifies each person once, however
    often it is evaluated; a resolved alert that fires again is a new opening. A row with `in_app` off
    exists only to carry the e-mail (and its `emailed_at` claim); the centre never shows it.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    topic = models.CharField(
        _("topic"), max_length=16, choices=NotificationTopic.choices, default=NotificationTopic.ALERT
    )
    alert = models.ForeignKey(
        Alert, verbose_name=_("alert"), null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    opened_at = models.DateTimeField(_("alert opened"), null=True, blank=True)
    milestone = models.ForeignKey(
        TargetMilestone,
        verbose_name=_("milestone"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    params = models.JSONField(_("message parameters"), default=dict, blank=True)
    link = models.CharField(_("link"), max_length=300, blank=True, help_text=_("Empty: the alert's cause."))
    in_app = models.BooleanField(_("in the notification centre"), default=True)
    email = models.BooleanField(_("by e-mail"), default=False)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "alert", "opened_at"], name="one_notification_per_alert_opening"
            ),
            models.UniqueConstraint(fields=["recipient", "milestone"], name="one_notification_per_milestone"),
        ]
        indexes = [models.Index(fields=["recipient", "in_app", "read_at"], name="notification_unread")]

    def __str__(self):
        return f"{self.recipient} · {self.get_topic_display()} · {self.alert_id or ''}"


class NotificationPreference(models.Model):
    """A user's choice for one alert kind, the milestones or the weekly digest (`PREFERENCE_KINDS`). Without a
    row: in the centre always, by e-mail for warning and critical alerts, milestones and the digest (see
    `targets.alerts.selectors.wants`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_preferences",
    )
    kind = models.CharField(_("alert kind"), max_length=32, choices=PREFERENCE_KINDS)
    in_app = models.BooleanField(_("in the notification centre"), default=True)
    email = models.BooleanField(_("by e-mail"), default=False)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        ordering = ["user", "kind"]
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_user_kind")]

    def __str__(self):
        return f"{self.user} · {self.get_kind_display()}"
