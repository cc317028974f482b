"""The sales funnel: pipelines and their stages, opportunities, their history, collections, activities, and the
import wizard's jobs."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.models import Currency, Customer, Product, ProductLine, Region
from salesmgmt.lib.attainment import weighted


class ForecastCategory(models.TextChoices):
    PIPELINE = "pipeline", pgettext_lazy("forecast category", "Pipeline")
    BEST_CASE = "best_case", _("Best case")
    COMMIT = "commit", _("Commit")
    CLOSED = "closed", _("Closed")
    OMITTED = "omitted", _("Omitted")


class Pipeline(models.Model):
    """A sales process; several can exist (e.g. one per product line), each with its own stages."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=120, blank=True)
    product_line = models.ForeignKey(
        ProductLine, verbose_name=_("product line"), null=True, blank=True, on_delete=models.SET_NULL
    )
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_pipeline")
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_zh if self.name_zh and (get_language() or "").startswith("zh") else self.name


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=80)
    name_zh = models.CharField(_("name (Chinese)"), max_length=80, blank=True)
    order = models.PositiveSmallIntegerField(_("order"))
    probability = models.PositiveSmallIntegerField(
        _("progress % (win probability)"), validators=[MaxValueValidator(100)]
    )
    is_won = models.BooleanField(_("won"), default=False)
    is_lost = models.BooleanField(_("lost"), default=False)
    forecast_category = models.CharField(
        _("default forecast category"),
        max_length=16,
        choices=ForecastCategory.choices,
        default=ForecastCategory.PIPELINE,
    )
    expected_days = models.PositiveIntegerField(_("expected days in stage"), null=True, blank=True)
    evidence_required = models.CharField(
        _("milestone evidence required to enter"),
        max_length=200,
        blank=True,
        help_text=_("关键节点标志性事件, e.g. 'decision maker met'. Empty: none required."),
    )

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "order"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "order"], name="stage_order_unique"),
            models.CheckConstraint(condition=~Q(is_won=True, is_lost=True), name="stage_not_won_and_lost"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="stage_probability_max_100"),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_zh if self.name_zh and (get_language() or "").startswith("zh") else self.name

    @property
    def is_closed(self) -> bool:
        return self.is_won or self.is_lost


# An open deal: its stage is neither won nor lost, and so (kept by the services, see `Opportunity.closed_on`) it has
# no close day. The second half is the predicate of the partial indexes on open deals.
OPEN = Q(closed_on__isnull=True, stage__is_won=False, stage__is_lost=False)


class OpportunityQuerySet(models.QuerySet):
    def visible_to(self, user):
        from crm.scopes import scope_q

        return self.filter(scope_q(user, owner="owner", region="region", team_only=True))

    def open(self):
        """Deals in an open stage. `closed_on IS NULL` says the same (the services keep the two in step) in the
        words of the open-deal indexes' predicate, so the planner can use them (a deal list walking the close-date
        index would otherwise pass every closed deal before the first open one)."""
        return self.filter(OPEN)

    def won(self):
        return self.filter(stage__is_won=True)


class Opportunity(models.Model):
    name = models.CharField(_("name"), max_length=200)
    # Nullable for imported history whose source has no account; the forms require it.
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="opportunities",
    )
    # No index of their own (each costs every insert, and an import writes 100,000 deals): owner and region lead
    # the composite indexes below; pipeline, stage and currency have a handful of values, so a filter by one reads
    # through the scope's or the list order's index (and open deals by stage from `opportunity_open_totals`).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="opportunities",
        db_index=False,
    )
    region = models.ForeignKey(
        Region, verbose_name=_("region"), on_delete=models.PROTECT, related_name="opportunities", db_index=False
    )
    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, db_index=False)
    stage = models.ForeignKey(
        Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="opportunities", db_index=False
    )
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    currency = models.ForeignKey(Currency, verbose_name=_("currency"), on_delete=models.PROTECT, db_index=False)
    # The amount in the company currency at the rate of the close date; totals add only this.
    amount_company = models.DecimalField(
        _("amount (company currency)"), max_digits=18, decimal_places=2, editable=False
    )
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    # The day the deal was won or lost: set exactly while its stage is won or lost, empty while it is open. Every
    # write path keeps it so (`pipeline.services`, the import, the generators; tests/pipeline/test_open_deals.py),
    # and the open-deal indexes below count on it.
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    probability = models.PositiveSmallIntegerField(_("probability %"), validators=[MaxValueValidator(100)])
    probability_reason = models.CharField(_("reason for probability override"), max_length=200, blank=True)
    forecast_category = models.CharField(
        _("forecast category"), max_length=16, choices=ForecastCategory.choices, default=ForecastCategory.PIPELINE
    )
    next_step = models.CharField(_("next step"), max_length=200, blank=True)
    next_step_date = models.DateField(_("next step date"), null=True, blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=200, blank=True)
    star_rating = models.PositiveSmallIntegerField(
        _("star rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    external_id = models.CharField(_("external id"), max_length=80, blank=True, default="")
    stage_entered_at = models.DateTimeField(_("in stage since"), default=timezone.now)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)

    # Not columns: set on the deals of a list by `pipeline.selectors.StageNavigation` (the action buttons).
    next_stage_choice: Stage | None
    lost_stage_choice: Stage | None

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["expected_close_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="opportunity_external_id_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount_non_negative"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="opportunity_probability_max_100"),
        ]
        indexes = [
            models.Index(fields=["owner", "stage"]),
            models.Index(fields=["region", "closed_on"]),
            models.Index(fields=["expected_close_date"]),
            models.Index(fields=["closed_on"]),
            # Open deals soonest first (the lists' default order): without it a list walks the close-date index
            # through every closed deal before it finds an open one.
            models.Index(
                fields=["expected_close_date", "id"],
                condition=Q(closed_on__isnull=True),
                name="opportunity_open_by_close",
            ),
            # The open deals' count, amount and weighted amount per stage (the team pipeline's subtotals and
            # totals, for whoever sees the whole company) read from this index alone: an index-only scan of the
            # open sixth of the deals instead of their heap pages (PostgreSQL; SQLite has no INCLUDE).
            models.Index(
                fields=["stage"],
                include=["id", "amount_company", "probability"],
                condition=Q(closed_on__isnull=True),
                name="opportunity_open_totals",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def weighted_amount(self) -> Decimal:
        # A group of one under the weighted-pipeline rule, so a row and a total of that row agree.
        return weighted(self.amount_company, self.probability)


class OpportunityLine(models.Model):
    """A product line (optionally a product) an opportunity covers, with its share of the amount."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="lines")
    # (product_line, opportunity) below leads with it.
    product_line = models.ForeignKey(
        ProductLine, verbose_name=_("product line"), on_delete=models.PROTECT, db_index=False
    )
    product = models.ForeignKey(Product, verbose_name=_("product"), null=True, blank=True, on_delete=models.PROTECT)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2, default=Decimal("1"))
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    amount_company = models.DecimalField(max_digits=18, decimal_places=2, editable=False)

    class Meta:
        verbose_name = _("opportunity line")
        verbose_name_plural = _("opportunity lines")
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="line_amount_non_negative")]
        indexes = [models.Index(fields=["product_line", "opportunity"])]

    def __str__(self):
        return f"{self.product_line} {self.amount}"


class OpportunityHistory(models.Model):
    """One change of a tracked field (stage, amount, close date, probability, owner...): who, when, old -> new."""

    # (opportunity, field, changed_at) below leads with it.
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="history", db_index=False)
    field = models.CharField(max_length=40)
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    # Filled for stage changes so conversion and time in stage are plain SQL. The stages and the user are joined
    # from a change, never searched by: no index (only deleting a stage or a user, rare admin acts, scans the
    # changes to clear them).
    old_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    new_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    reason = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    changed_at = models.DateTimeField(default=timezone.now)

    # Not columns: set by `pipeline.selectors.deal_history` for the deal page.
    old_display: str
    new_display: str
    field_label: str

    class Meta:
        verbose_name = _("opportunity change")
        verbose_name_plural = _("opportunity history")
        ordering = ["changed_at", "id"]
        indexes = [
            models.Index(fields=["opportunity", "field", "changed_at"]),
            models.Index(fields=["field", "changed_at"]),
        ]

    def __str__(self):
        return f"{self.field}: {self.old_value} → {self.new_value}"


class StageEvidence(models.Model):
    """Milestone evidence (关键节点标志性事件) given when a deal entered a stage that requires it."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="evidence")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT)
    text = models.TextField(_("evidence"))
    attachment = models.FileField(_("attachment"), upload_to="evidence/%Y/%m/", blank=True)
    given_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    given_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("milestone evidence")
        verbose_name_plural = _("milestone evidence")
        ordering = ["given_at"]

    def __str__(self):
        return self.text[:60]


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user):
        from crm.scopes import scope_q

        return self.filter(scope_q(user, owner="opportunity__owner", region="opportunity__region", team_only=True))


class Collection(models.Model):
    """回款: a payment received against a won deal."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.PROTECT, related_name="collections"
    )
    received_on = models.DateField(_("received on"))
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    currency = models.ForeignKey(Currency, verbose_name=_("currency"), on_delete=models.PROTECT)
    amount_company = models.DecimalField(
        _("amount (company currency)"), max_digits=18, decimal_places=2, editable=False
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("collection")
        verbose_name_plural = _("collections")
        ordering = ["-received_on", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="collection_amount_positive")]
        indexes = [models.Index(fields=["received_on"])]

    def __str__(self):
        return f"{self.received_on} {self.amount} {self.currency_id}"


class ActivityKind(models.TextChoices):
    VISIT = "visit", _("Visit (拜访)")
    CALL = "call", _("Call (电话)")
    MEETING = "meeting", _("Meeting (会议)")


class ActivityQuerySet(models.QuerySet):
    def visible_to(self, user):
        """A user's own activities; one on a deal where the deal is seen (the team it counts for, as its
        collections); one on no deal by its owner and the customer's region."""
        from crm.scopes import scope_q

        by_customer = scope_q(user, owner="owner", region="customer__region")
        by_deal = _on_deal_q(user)
        if not by_customer and not by_deal:  # the "all" scope (an empty Q would swallow the ORs below)
            return self.all()
        return self.filter(
            _own_q(user) | (Q(opportunity__isnull=True) & by_customer) | (Q(opportunity__isnull=False) & by_deal)
        )

    def on_deal_visible_to(self, deal, user):
        """The activities on `deal` that `user` sees: `visible_to`'s rule for rows on a deal (so the customer's
        scope, which needs the people of the user's regions read, never comes into it)."""
        by_deal = _on_deal_q(user)
        rows = self.filter(opportunity=deal)
        return rows.filter(_own_q(user) | by_deal) if by_deal else rows


def _on_deal_q(user) -> Q:
    from crm.scopes import scope_q

    return scope_q(user, owner="opportunity__owner", region="opportunity__region", team_only=True)


def _own_q(user) -> Q:
    return Q(owner=user) if user is not None and user.is_authenticated else Q(pk__in=[])


class Activity(models.Model):
    """A process measure (过程量): a visit, call or meeting with a customer."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="activities"
    )
    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="activities"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ActivityKind.choices)
    date = models.DateField(_("date"))
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["owner", "date"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.date}"


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    OPPORTUNITIES = "opportunities", _("Opportunities")
    WON_DEALS = "won_deals", _("Historical won deals")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    MAPPED = "mapped", _("Mapped")
    VALIDATED = "validated", _("Validated")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One upload through the import wizard: file -> mapping -> preview -> commit."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    status = models.CharField(_("status"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    mapping = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # A partial import's bad rows, handed back in the uploaded format with a reason per row.
    rejected_file = models.FileField(_("rejected rows"), upload_to="imports/rejected/%Y/%m/", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="imports")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.original_name}"

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))
