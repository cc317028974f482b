"""Forms of the plan screens: a new plan, a node's inline edit, the split dialog and a grid cell.

They check shape and offer only what the user may pick (scoped regions and people, the dimensions
still open for a node); the rules (who may change what, sums, versions) live in the services.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.forms import scoped_region_field, scoped_user_field
from crm.models import CompanySettings, Region, Role, Tier
from crm.scopes import visible_users
from pipeline.forms import DATE, MoneyField
from salesmgmt.lib import periods
from targets.models import Dimension, Metric, SplitMethod, TargetNode, WeightBasis
from targets.planning.members import dimension_error
from targets.planning.rules import is_top

MANAGER_ROLES = (Role.MANAGER, Role.DIRECTOR, Role.ADMIN)
# Manual amounts and bottom-up commitments need one target at a time.
LEAVES_METHODS = (SplitMethod.EQUAL, SplitMethod.HISTORY, SplitMethod.WEIGHTS)
# The bases whose weights the user types, one per part.
TYPED_BASES = (WeightBasis.MANUAL, WeightBasis.MARKET_POTENTIAL)
SCOPE_NODE, SCOPE_LEAVES = "node", "leaves"


def period_choices(today=None) -> list[tuple[str, str]]:
    """This fiscal year and the next, each with its quarters: FY2027, FY2027-Q1 ... FY2028-Q4."""
    start_month = CompanySettings.load().fiscal_year_start_month
    current = periods.fiscal_year_of(today or timezone.localdate(), start_month)
    choices = []
    for fy in (current, current + 1):
        year = periods.year(fy, start_month)
        choices.append((year.key, year.key))
        for quarter in periods.children(year, periods.QUARTER, start_month):
            label = _("%(key)s (%(start)s – %(end)s)") % {
                "key": quarter.key,
                "start": quarter.start.strftime("%Y-%m-%d"),
                "end": quarter.end.strftime("%Y-%m-%d"),
            }
            choices.append((quarter.key, label))
    return choices


class MetricChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class PlanCreateForm(forms.Form):
    metric = MetricChoiceField(label=_("Metric"), queryset=Metric.objects.filter(is_active=True), empty_label=None)
    period_key = forms.ChoiceField(label=_("Period"))
    region = forms.Field()
    total = MoneyField(label=_("Total"))
    owner = forms.Field()
    name = forms.CharField(label=_("Name"), max_length=200, required=False, help_text=_("Optional."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        choices = period_choices()
        self.fields["period_key"].choices = choices
        self.fields["period_key"].initial = choices[5][0]  # next fiscal year: plans are set ahead
        top = is_top(user)
        self.fields["region"] = scoped_region_field(
            user,
            label=_("Region"),
            required=not top,
            empty_label=_("Company-wide") if top else None,
            initial=None if top else user.region_id,
        )
        self.fields["owner"] = scoped_user_field(
            user,
            roles=MANAGER_ROLES,
            label=_("Owner"),
            required=False,
            empty_label=_("The region's manager (or you)"),
        )


class NodeEditForm(forms.Form):
    """A node's owner and deadline, and its amount while the plan is a draft, with the version it was loaded at."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    owner = forms.Field()
    deadline = forms.DateField(label=_("Deadline"), required=False, widget=DATE)
    amount = MoneyField(label=_("Target"), required=False)
    stretch = MoneyField(label=_("Stretch target (冲刺)"), required=False)
    challenge = MoneyField(label=_("Challenge target (挑战)"), required=False)
    rebalance = forms.BooleanField(
        label=_("Let the other parts absorb the difference"),
        required=False,
        help_text=_("Otherwise a new amount must keep the parent's total."),
    )

    def __init__(self, *args, user, node: TargetNode, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "version": node.version,
                "owner": node.owner_id,
                "deadline": node.deadline,
                "amount": node.amount,
                "stretch": node.stretch,
                "challenge": node.challenge,
            },
        )
        super().__init__(*args, **kwargs)
        # The people of the target's region (and the user); the current owner stays a choice.
        owner = scoped_user_field(
            user,
            within=node.region,
            label=_("Owner"),
            required=False,
            empty_label=_("(keep)") if node.owner_id else _("(nobody yet)"),
        )
        if node.owner_id:
            owner.queryset = owner.queryset | visible_users(user).filter(pk=node.owner_id)
        self.fields["owner"] = owner
        self.fields["deadline"].widget.attrs.update(
            {"min": node.period_start.isoformat(), "max": node.period_end.isoformat()}
        )
        if not node.plan.is_draft:
            del self.fields["amount"]
            del self.fields["rebalance"]
            del self.fields["stretch"]
            del self.fields["challenge"]
        elif node.parent_id is None:
            del self.fields["rebalance"]  # the root's amount is the plan total: nothing to absorb it

    @property
    def levels(self) -> tuple | None:
        """(stretch, challenge) when the form posted them (an empty one clears it), else None: keep them."""
        if "stretch" not in self.fields or not ({"stretch", "challenge"} & set(self.data)):
            return None
        return self.cleaned_data.get("stretch"), self.cleaned_data.get("challenge")


def allowed_dimensions(node: TargetNode) -> list[tuple[str, str]]:
    """The dimensions a node can still be split along (a rep target not by region, a month not by quarter,
    a province without sub-regions not by region)."""
    allowed = [(value, label) for value, label in Dimension.choices if dimension_error(node, value) is None]
    if node.region_id and not Region.objects.filter(parent_id=node.region_id).exists():
        allowed = [(value, label) for value, label in allowed if value != Dimension.REGION]
    return allowed


class SplitForm(forms.Form):
    """What a split asks first: along which dimension, how, and for this target or every leaf below it."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    scope = forms.ChoiceField(
        label=_("Split"),
        choices=[(SCOPE_NODE, _("This target")), (SCOPE_LEAVES, _("Every leaf below this target"))],
        initial=SCOPE_NODE,
        required=False,
        widget=forms.RadioSelect,
    )
    dimension = forms.ChoiceField(label=_("Along"))
    method = forms.ChoiceField(label=_("Method"), choices=SplitMethod.choices, initial=SplitMethod.EQUAL)
    basis = forms.ChoiceField(
        label=_("Weights from"), choices=WeightBasis.choices, required=False, initial=WeightBasis.HEADCOUNT
    )
    tiers = forms.MultipleChoiceField(
        label=_("Count customers of tiers"),
        choices=Tier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: all customers."),
    )

    def __init__(self, *args, node: TargetNode, has_leaves_below: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node
        self.fields["dimension"].choices = allowed_dimensions(node)
        if node.split_dimension and node.split_dimension in dict(self.fields["dimension"].choices):
            self.fields["dimension"].initial = node.split_dimension
        if not has_leaves_below:
            del self.fields["scope"]

    def clean(self):
        data = super().clean()
        data["scope"] = data.get("scope") or SCOPE_NODE
        if data.get("scope") == SCOPE_LEAVES and data.get("method") not in LEAVES_METHODS:
            self.add_error("method", _("Manual amounts and bottom-up commitments are made one target at a time."))
        if data.get("method") != SplitMethod.WEIGHTS:
            data["basis"] = None
        return data

    @property
    def typed(self) -> str | None:
        """What the user types per part: "amount" (manual amounts), "weight" (manual weights), or nothing."""
        if not (self.is_bound and self.is_valid()):
            return None
        method = self.cleaned_data["method"]
        if method == SplitMethod.MANUAL:
            return "amount"
        if method == SplitMethod.WEIGHTS and self.cleaned_data["basis"] in TYPED_BASES:
            return "weight"
        return None

    def parts(self, data, keys: list[str]) -> dict[str, str]:
        """The typed value of each part ({key: text}); empty ones left out (a manual amount then counts 0)."""
        return {key: data.get(f"part-{key}", "").strip() for key in keys if data.get(f"part-{key}", "").strip()}


class CellForm(forms.Form):
    """One grid cell: the new amount of a leaf and the version it was shown at."""

    amount = forms.CharField(max_length=40)
    version = forms.IntegerField()

    def clean_amount(self):
        # The service parses and checks it ('1,200.50', places of the metric); here only: something was typed.
        value = self.cleaned_data["amount"].strip()
        if not value:
            raise ValidationError(_("Enter an amount."))
        return value
