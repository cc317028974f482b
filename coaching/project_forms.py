"""Forms of the project analysis meeting: they check shape and scope; `coaching.project_services` writes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from coaching import selectors
from coaching.forms import DATE
from coaching.models import BuyingStep, ProjectDecisionKind, ProjectReview
from crm.models import Region, User


class ProjectReviewCreateForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Team"), queryset=Region.objects.none())
    date = forms.DateField(label=_("Date"), widget=DATE)
    title = forms.CharField(label=_("Title"), max_length=200, required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.teams_for(user).order_by("path")


class ProjectReviewEditForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    minutes = forms.CharField(label=_("Minutes"), required=False, widget=forms.Textarea(attrs={"rows": 5}))


class EntryForm(forms.Form):
    buying_step = forms.ChoiceField(
        label=_("Customer's buying step"), choices=[("", "—"), *BuyingStep.choices], required=False
    )
    next_steps = forms.CharField(label=_("Next steps"), required=False, max_length=4000)
    risks = forms.CharField(label=_("Risks"), required=False, max_length=4000)


class DecisionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ProjectDecisionKind.choices)
    what = forms.CharField(label=_("What"), max_length=300)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    due_date = forms.DateField(label=_("Due date"), widget=DATE, required=False)

    def __init__(self, *args, review: ProjectReview, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = selectors.team_members(review.region).order_by("first_name", "username")
