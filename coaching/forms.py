"""Forms of the forecast call and the meetings: they check shape and scope; the services write."""

from django import forms
from django.forms.models import ModelChoiceIterator
from django.utils.translation import gettext_lazy as _

from coaching import selectors
from coaching.models import ActionItemStatus, Meeting
from crm.models import Region, User
from crm.scopes import region_subtree, visible_users
from pipeline.models import OPEN
from pipeline.selectors import deals_visible
from targets.alerts.selectors import ACTIVE_STATES, alerts_visible_to
from targets.models import PlanStatus
from targets.planning.selectors import nodes_visible_to

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
MONEY = {"max_digits": 18, "decimal_places": 2, "min_value": 0}


class PeriodField(forms.ChoiceField):
    def __init__(self, *, today, **kwargs):
        choices = [(p.key, p.key) for p in selectors.forecast_periods(today)]
        super().__init__(choices=choices, label=_("Period"), **kwargs)


class ForecastForm(forms.Form):
    """A rep's forecast; the page fills commit and best case from his deals."""

    period = forms.CharField(widget=forms.HiddenInput)
    commit = forms.DecimalField(label=_("Commit"), **MONEY)
    best_case = forms.DecimalField(label=_("Best case"), **MONEY)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_period(self):
        try:
            return selectors.forecast_period(self.cleaned_data["period"])
        except ValueError:
            raise forms.ValidationError(_("Unknown period."))


class TeamForecastForm(ForecastForm):
    """A manager's forecast for a team: the roll-up adjusted, with a note."""

    team = forms.ModelChoiceField(queryset=Region.objects.none(), widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.teams_for(user)
        self.fields["note"].label = _("Note (manager judgment)")


class ViewForm(forms.Form):
    """The forecast page's choices: period, team, week."""

    period = forms.CharField(required=False)
    team = forms.ModelChoiceField(queryset=Region.objects.none(), required=False)
    week = forms.DateField(required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.teams_for(user)

    def clean_period(self):
        key = self.cleaned_data.get("period")
        if not key:
            return None
        try:
            return selectors.forecast_period(key)
        except ValueError:
            raise forms.ValidationError(_("Unknown period."))


class MeetingCreateForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Team"), queryset=Region.objects.none())
    week = forms.DateField(
        label=_("Week"), widget=DATE, help_text=_("Any day of the week; the meeting takes its Monday.")
    )
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    agenda = forms.CharField(label=_("Agenda"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.teams_for(user).order_by("path")


class MeetingEditForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    attendees = forms.ModelMultipleChoiceField(
        label=_("Attendees"), queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    agenda = forms.CharField(label=_("Agenda"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    minutes = forms.CharField(label=_("Minutes"), required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def __init__(self, *args, meeting: Meeting, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attendees"].queryset = selectors.team_members(meeting.region).order_by("first_name", "username")


SHOWN = 100


class FirstChoices(ModelChoiceIterator):
    """A select's options: the first `SHOWN` rows of the field's queryset (a company-wide team has thousands of
    deals); an id beyond them still validates against the whole queryset, which is already scoped."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset[:SHOWN]:
            yield self.choice(obj)


class LinkField(forms.ModelChoiceField):
    iterator = FirstChoices


class ActionItemForm(forms.Form):
    """A new item: what, who, by when (3定), optionally tied to a target, a deal or an alert of the team.

    The owner is picked among the team's people the user sees (the service refuses anyone else too); the links
    offer the team's targets in force (its own first), its biggest open deals and its open alerts."""

    what = forms.CharField(label=_("What"), max_length=300)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    due_date = forms.DateField(label=_("Due date"), widget=DATE, required=False)
    node = LinkField(label=_("Target gap"), queryset=User.objects.none(), required=False)
    opportunity = LinkField(label=_("Deal"), queryset=User.objects.none(), required=False)
    alert = LinkField(label=_("Alert"), queryset=User.objects.none(), required=False)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=2000)

    def __init__(self, *args, user: User, meeting: Meeting, **kwargs):
        super().__init__(*args, **kwargs)
        team = region_subtree(meeting.region)
        members = selectors.team_members(meeting.region).values("pk")
        self.fields["owner"].queryset = visible_users(user).filter(pk__in=members).order_by("first_name", "username")
        self.fields["node"].queryset = (
            nodes_visible_to(user)
            .filter(
                region__in=team,
                plan__status=PlanStatus.APPROVED,
                period_start__lte=meeting.week,
                period_end__gte=meeting.week,
            )
            .select_related("plan", "region", "rep", "product_line", "product")
            .order_by("depth", "plan_id", "path")  # the team's own targets first
        )
        self.fields["node"].label_from_instance = lambda n: f"{n.plan.name} · {n.label}"
        self.fields["opportunity"].queryset = (
            deals_visible(user).filter(OPEN, region__in=team).order_by("-amount_company")
        )
        self.fields["alert"].queryset = (
            alerts_visible_to(user)
            .filter(state__in=ACTIVE_STATES, owner__in=selectors.team_members(meeting.region))
            .select_related("rule", "owner")
        )
        self.fields["alert"].label_from_instance = lambda a: f"{a.rule} · {a.owner}"


class ItemStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ActionItemStatus.choices)
    notes = forms.CharField(required=False, max_length=2000)
