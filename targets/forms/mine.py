"""Forms of "my targets": filters, bottom-up commitments, action plans, adjustments and version compare.

They check shape and scope (choices come from the visible querysets); the business rules (who may
commit, approve or change what) live in the services.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import SelectChoiceField, scoped_user_field
from crm.models import User
from crm.scopes import visible_users
from pipeline.forms import DATE, MoneyField
from targets.models import AMOUNT_KINDS, ActionStatus, AdjustmentKind, PeriodKind
from targets.planning.selectors import plans_visible_to

PEOPLE_MINE = ""
PEOPLE_TEAM = "team"


class PlanChoiceField(SelectChoiceField):
    """Plans read with one plain query (not a server-side cursor) and written as a <select> in Python."""

    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.get_status_display()})"


class MyTargetsFilterForm(forms.Form):
    """Whose targets (managers: me, my people, or one person), which plan, which kind of period."""

    person = forms.Field(required=False)
    plan = forms.Field(required=False)
    kind = forms.ChoiceField(label=_("Period"), required=False, choices=[("", _("All periods")), *PeriodKind.choices])

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["plan"] = PlanChoiceField(
            label=_("Plan"),
            queryset=plans_visible_to(user).order_by("-period_start", "name"),
            required=False,
            empty_label=_("All plans"),
        )
        if user.is_manager_or_above:
            # Empty: mine; "team": all my people; else one person of the user's scope, found by name.
            self.fields["person"] = scoped_user_field(
                user,
                label=_("Whose targets"),
                required=False,
                empty_label=_("Mine"),
                fixed=[(PEOPLE_MINE, _("Mine")), (PEOPLE_TEAM, _("All my people"))],
            )
        else:
            del self.fields["person"]

    def owners(self):
        """The users whose targets to list (a queryset), or None for the user's own."""
        choice = getattr(self, "cleaned_data", {}).get("person") or PEOPLE_MINE
        if choice == PEOPLE_TEAM:
            return visible_users(self.user).exclude(pk=self.user.pk)
        if isinstance(choice, User) and choice.pk != self.user.pk:
            return User.objects.filter(pk=choice.pk)
        return None


class CommitForm(forms.Form):
    """自下而上: what the owner of a target commits to."""

    amount = MoneyField(label=_("My commitment"))


class ReconcileForm(forms.Form):
    """Reconcile a split with its commitments; the version the manager looked at guards concurrent edits."""

    version = forms.IntegerField(widget=forms.HiddenInput)


class ActionPlanForm(forms.Form):
    activity = forms.CharField(label=_("Activity"), max_length=300)
    owner = forms.Field()
    due_date = forms.DateField(label=_("Due date"), widget=DATE)
    resources = forms.CharField(
        label=_("Resources needed"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("People, budget, samples, support from other teams..."),
    )
    status = forms.ChoiceField(label=_("Status"), choices=ActionStatus.choices, initial=ActionStatus.OPEN)

    def __init__(self, *args, user, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"] = scoped_user_field(user, label=_("Owner"), initial=user.pk)
        if not editing:
            del self.fields["status"]


class ActionStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=ActionStatus.choices)


class AdjustmentForm(forms.Form):
    """New amounts for the parts of one target: a reallocation keeps their total, a total change does not."""

    kind = forms.ChoiceField(
        label=_("Kind"), choices=AMOUNT_KINDS, initial=AdjustmentKind.REALLOCATION, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the targets change: market change, a lost key account, a new rep..."),
    )

    def __init__(self, *args, parts, **kwargs):
        super().__init__(*args, **kwargs)
        self.parts = list(parts)
        for part in self.parts:
            field = MoneyField(label=part.label, initial=part.amount)
            field.widget.attrs.update({"data-current": str(part.amount), "class": "new-amount"})
            self.fields[self.field_name(part)] = field

    @staticmethod
    def field_name(part) -> str:
        return f"new_{part.pk}"

    def rows(self):
        """(part, bound field) pairs for the table."""
        return [(part, self[self.field_name(part)]) for part in self.parts]

    def changes(self) -> list[dict]:
        """Only the parts whose amount changes."""
        result = []
        for part in self.parts:
            new = self.cleaned_data[self.field_name(part)]
            if new != part.amount:
                result.append({"node": part.pk, "amount": new})
        return result


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when rejecting."),
    )


class CompareForm(forms.Form):
    """Two versions of a plan to compare (defaults: the original against the one in force)."""

    a = forms.TypedChoiceField(label=_("From version"), coerce=int)
    b = forms.TypedChoiceField(label=_("To version"), coerce=int)

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(v["number"], _("Version %(number)d") % {"number": v["number"]}) for v in versions]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices
