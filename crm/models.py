"""The sales organisation (users, regions, products, calendar, currencies) and customers."""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from salesmgmt.lib import periods
from salesmgmt.memo import current as memo_now


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    DIRECTOR = "director", _("Director")
    MANAGER = "manager", _("Manager")
    REP = "rep", _("Sales rep")


class DataScope(models.TextChoices):
    """Data scopes as the Chinese CRMs offer them (数据权限)."""

    SELF = "self", _("Self only")
    SELF_AND_SUBORDINATES = "subordinates", _("Self and subordinates")
    DEPARTMENT = "department", _("Own department")
    DEPARTMENT_TREE = "department_tree", _("Department and sub-departments")
    ALL = "all", _("All")


ROLE_DEFAULT_SCOPE = {
    Role.ADMIN: DataScope.ALL,
    Role.DIRECTOR: DataScope.ALL,
    Role.MANAGER: DataScope.DEPARTMENT_TREE,
    Role.REP: DataScope.SELF,
}


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    data_scope = models.CharField(
        _("data scope"),
        max_length=16,
        choices=DataScope.choices,
        blank=True,
        help_text=_("Empty: the default of the role (rep: self, manager: department tree, director: all)."),
    )
    region = models.ForeignKey(
        "crm.Region",
        verbose_name=_("region / team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    employee_code = models.CharField(_("employee code"), max_length=40, blank=True)

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.get_full_name() or self.username

    @property
    def effective_scope(self) -> str:
        if self.is_superuser:
            return DataScope.ALL
        return self.data_scope or ROLE_DEFAULT_SCOPE.get(self.role, DataScope.SELF)

    @property
    def is_manager_or_above(self) -> bool:
        return self.is_superuser or self.role in (Role.ADMIN, Role.DIRECTOR, Role.MANAGER)

    @property
    def is_director_or_above(self) -> bool:
        """Directors and admins: the company-level people."""
        return self.is_superuser or self.role in (Role.ADMIN, Role.DIRECTOR)


class RegionKind(models.TextChoices):
    COMPANY = "company", _("Company")
    AREA = "area", _("Area (大区)")
    PROVINCE = "province", _("Province (省区)")
    TEAM = "team", _("Team")


class Region(models.Model):
    """A node of the sales organisation tree: company -> 大区 -> 省区/team.

    `path` is a materialised path ("/1/4/9/") so a subtree is one indexed prefix query.
    """

    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(_("code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=RegionKind.choices, default=RegionKind.TEAM)
    parent = models.ForeignKey(
        "self", verbose_name=_("parent"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_regions",
    )
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["path"]

    def __str__(self):
        return self.name


class ProductLine(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    code = models.CharField(_("code"), max_length=40, unique=True)
    is_key = models.BooleanField(_("key product line"), default=False)
    # A sub-line (an import's Category -> Sub-Category); products sit in either.
    parent = models.ForeignKey(
        "self", verbose_name=_("parent line"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        verbose_name = _("product line")
        verbose_name_plural = _("product lines")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Product(models.Model):
    line = models.ForeignKey(
        ProductLine, verbose_name=_("product line"), on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField(_("name"), max_length=120, unique=True)
    code = models.CharField(_("code"), max_length=40, unique=True)
    list_price = models.DecimalField(_("list price"), max_digits=18, decimal_places=2, default=Decimal("0"))
    unit_cost = models.DecimalField(_("unit cost"), max_digits=18, decimal_places=2, default=Decimal("0"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["line__name", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(list_price__gte=0) & Q(unit_cost__gte=0), name="product_prices_non_negative"
            )
        ]

    def __str__(self):
        return self.name


class ClosedPeriodKind(models.TextChoices):
    """How long the figures of a period stay open after it ends: none, the rest of the quarter, of the year."""

    MONTH = periods.MONTH, _("Fiscal month")
    QUARTER = periods.QUARTER, _("Fiscal quarter")
    YEAR = periods.YEAR, _("Fiscal year")


class CompanySettings(models.Model):
    """The single row of company-wide configuration (fiscal calendar, currency)."""

    fiscal_year_start_month = models.PositiveSmallIntegerField(
        _("fiscal year start month"), default=1, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    currency = models.CharField(_("company currency"), max_length=3, default="CNY")
    count_working_days = models.BooleanField(
        _("time progress in working days"), default=False, help_text=_("Otherwise calendar days.")
    )
    closed_period = models.CharField(
        _("periods close by"),
        max_length=8,
        choices=ClosedPeriodKind.choices,
        default=ClosedPeriodKind.MONTH,
        help_text=_(
            "A won deal whose close date falls before the start of the current fiscal month (or quarter, or "
            "year) is in a closed period: a change that moves its figures needs a reason, and the targets it "
            "counts for show it as a late change."
        ),
    )

    class Meta:
        verbose_name = _("company settings")
        verbose_name_plural = _("company settings")

    def __str__(self):
        return str(_("Company settings"))

    @classmethod
    def load(cls) -> "CompanySettings":
        """The company's settings: read once inside a `salesmgmt.memo.request_memo` (a read-only request, whose
        pages ask for them up to three times), else each time."""
        memo, key = memo_now(), ("company_settings",)
        if memo is not None and key in memo:
            return memo[key]
        obj, _created = cls.objects.get_or_create(pk=1, defaults={"currency": settings.COMPANY_CURRENCY})
        if memo is not None:
            memo[key] = obj
        return obj

    def period_of(self, day, kind: str) -> periods.Period:
        return periods.period_of(day, kind, self.fiscal_year_start_month)

    def open_period_start(self, today=None):
        """The first day whose figures are still open: the start of the current fiscal month (or quarter, or
        year, as `closed_period` says). Figures of days before it are closed (already reported)."""
        return self.period_of(today or timezone.localdate(), self.closed_period).start


class Currency(models.Model):
    code = models.CharField(_("code"), max_length=3, primary_key=True)
    name = models.CharField(_("name"), max_length=60)

    class Meta:
        verbose_name = _("currency")
        verbose_name_plural = _("currencies")
        ordering = ["code"]

    def __str__(self):
        return self.code


class ExchangeRate(models.Model):
    """How many company-currency units one unit of `currency` was worth from `valid_from` on."""

    currency = models.ForeignKey(Currency, verbose_name=_("currency"), on_delete=models.CASCADE, related_name="rates")
    valid_from = models.DateField(_("valid from"))
    rate = models.DecimalField(_("rate to company currency"), max_digits=18, decimal_places=8)

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "valid_from"], name="one_rate_per_currency_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="rate_positive"),
        ]

    def __str__(self):
        return f"{self.currency_id} {self.valid_from}: {self.rate}"


class Tier(models.TextChoices):
    KEY = "KA", _("Key account (大客户)")
    A = "A", _("Tier A")
    B = "B", _("Tier B")
    C = "C", _("Tier C")


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user):
        from crm.scopes import scope_q

        return self.filter(scope_q(user, owner="owner", region="region"))


class Customer(models.Model):
    name = models.CharField(_("name"), max_length=200)
    region = models.ForeignKey(Region, verbose_name=_("region"), on_delete=models.PROTECT, related_name="customers")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="customers"
    )
    industry = models.CharField(_("industry"), max_length=80, blank=True)
    tier = models.CharField(_("tier"), max_length=2, choices=Tier.choices, default=Tier.C)
    # 存量/增量 is derived from the first won deal; kept here by the pipeline services.
    first_won_on = models.DateField(_("first won deal on"), null=True, blank=True, editable=False)
    external_id = models.CharField(_("external id"), max_length=80, blank=True, default="")
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="customer_external_id_unique"
            ),
        ]
        indexes = [models.Index(fields=["owner", "region"]), models.Index(fields=["first_won_on"])]

    def __str__(self):
        return self.name

    def is_existing_on(self, day) -> bool:
        """存量: a customer who had won a deal before `day`; otherwise 增量 (new)."""
        return self.first_won_on is not None and self.first_won_on < day

    @property
    def segment(self) -> str:
        return Segment.EXISTING if self.first_won_on else Segment.NEW


class Segment(models.TextChoices):
    EXISTING = "existing", _("Existing (存量)")
    NEW = "new", _("New (增量)")


class Contact(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=120)
    title = models.CharField(_("title"), max_length=120, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    is_decision_maker = models.BooleanField(_("decision maker"), default=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name"]

    def __str__(self):
        return self.name


class CustomerRating(models.Model):
    """5星评级 of a big account: stars with the reasons; the latest rating is the one in force."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="ratings")
    stars = models.PositiveSmallIntegerField(_("stars"), validators=[MinValueValidator(1), MaxValueValidator(5)])
    reasons = models.TextField(_("reasons"))
    rated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("rated by"), on_delete=models.PROTECT)
    rated_at = models.DateTimeField(_("rated at"), default=timezone.now)

    class Meta:
        verbose_name = _("star rating")
        verbose_name_plural = _("star ratings")
        ordering = ["-rated_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="stars_1_to_5")]

    def __str__(self):
        return f"{self.customer} {self.stars}★"


class AuditLog(models.Model):
    """Who changed what, when: old -> new values of anything that changes a deal or a target."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=60)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    target = GenericForeignKey("content_type", "object_id")
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self):
        return f"{self.action} {self.object_id}"
