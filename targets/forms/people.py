"""Forms of the people changes of a plan: a transfer of a rep's remaining target, a new hire's target, and moving a
rep's deals by date. They validate the input; the services (`targets.planning.people`,
`pipeline.services.deals_reassign`) decide and write."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import scoped_user_field
from crm.models import Role
from pipeline.forms import DATE, MoneyField

REASON = {"label": _("Reason"), "widget": forms.Textarea(attrs={"rows": 2})}


class TransferForm(forms.Form):
    """A rep leaves or moves team: his remaining target from a date goes to another rep."""

    def __init__(self, *args, user, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_rep"] = scoped_user_field(user, roles=[Role.REP], label=_("Rep who leaves or moves"))
        self.fields["to_rep"] = scoped_user_field(user, roles=[Role.REP], label=_("Rep who takes over"), required=False)
        self.fields["to_team"] = forms.BooleanField(
            label=_("Nobody yet: to the team, unassigned"),
            required=False,
            help_text=_("The target waits as the team's unassigned target until a new hire takes it."),
        )
        self.fields["effective"] = forms.DateField(
            label=_("From"),
            widget=DATE,
            help_text=_(
                "Periods starting on or after this day move whole; the period around it moves the days after it "
                "(prorated by days)."
            ),
            initial=plan.period_start,
        )
        self.fields["amount"] = MoneyField(
            label=_("Amount to move"),
            required=False,
            help_text=_("Empty: all the target left from that day."),
        )
        self.fields["reason"] = forms.CharField(**REASON)

    def clean(self):
        data = super().clean()
        if data.get("to_team"):
            data["to_rep"] = None
        elif not data.get("to_rep") and "to_rep" not in self.errors:
            self.add_error("to_rep", _("Choose who takes over, or give the target to the team."))
        return data


class NewHireForm(forms.Form):
    """A new hire's target from his start: prorated by days, or ramped month by month, taken from a peer."""

    PRORATED, RAMPED = "prorated", "ramped"

    def __init__(self, *args, user, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hire"] = scoped_user_field(user, roles=[Role.REP], label=_("New hire"))
        self.fields["source"] = scoped_user_field(
            user,
            roles=[Role.REP],
            label=_("Taken from"),
            help_text=_("A peer in the same team who gives it up."),
            required=False,
        )
        self.fields["from_team"] = forms.BooleanField(label=_("From the team's unassigned target"), required=False)
        self.fields["start"] = forms.DateField(label=_("Start date"), widget=DATE, initial=plan.period_start)
        self.fields["full_amount"] = MoneyField(
            label=_("Full target"), help_text=_("What a fully productive rep carries for the whole plan period.")
        )
        self.fields["method"] = forms.ChoiceField(
            label=_("Target"),
            choices=[
                (self.PRORATED, _("Prorated by the days left in each period")),
                (self.RAMPED, _("Ramped month by month")),
            ],
            initial=self.PRORATED,
            widget=forms.RadioSelect,
        )
        self.fields["ramp"] = forms.CharField(
            label=_("Ramp (%)"),
            required=False,
            initial="25, 50, 75, 100",
            help_text=_("The share of the full target in his first, second, third... month; the last one holds."),
        )
        self.fields["reason"] = forms.CharField(**REASON)

    def clean(self):
        data = super().clean()
        if data.get("from_team"):
            data["source"] = None
        elif not data.get("source") and "source" not in self.errors:
            self.add_error("source", _("Choose the peer who gives the target, or take it from the team."))
        return data


class DealsReassignForm(forms.Form):
    """A rep's deals go to another rep from a date: the open ones and those closed on or after it."""

    def __init__(self, *args, user, deals, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_owner"] = scoped_user_field(user, roles=[Role.REP], label=_("Deals of"))
        self.fields["to_owner"] = scoped_user_field(user, roles=[Role.REP], label=_("Go to"))
        self.fields["effective"] = forms.DateField(
            label=_("From"),
            widget=DATE,
            help_text=_("Deals won or lost before this day stay credited to their owner and his team."),
        )
        self.fields["deals"] = forms.ModelMultipleChoiceField(
            label=_("Only these deals"),
            queryset=deals,
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text=_("None chosen: all of them."),
        )
        self.fields["reason"] = forms.CharField(**REASON)
