"""Forms of the 1:1 coaching sessions: they check shape and scope; `coaching.session_services` writes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from coaching import selectors
from coaching.forms import DATE, LinkField
from coaching.models import ActionItemStatus, CoachingFocus, CoachingSession
from coaching.session_services import NewCommitment
from crm.forms import scoped_user_field
from crm.models import Role, User
from pipeline.models import OPEN
from pipeline.selectors import deals_visible
from targets.models import PlanStatus, TargetNode
from targets.planning.selectors import nodes_visible_to

COMMITMENT_ROWS = 3


class SessionFieldsForm(forms.Form):
    """What a session says: date, focus (kind, words, optional target and deal links), observations."""

    date = forms.DateField(label=_("Date"), widget=DATE)
    focus_kind = forms.ChoiceField(label=_("Focus"), choices=CoachingFocus.choices)
    focus = forms.CharField(
        label=_("Focus in words"), max_length=300, help_text=_("The gap, the deal or the skill worked on.")
    )
    node = LinkField(label=_("Target gap"), queryset=TargetNode.objects.none(), required=False)
    opportunity = LinkField(label=_("Deal"), queryset=TargetNode.objects.none(), required=False)
    observations = forms.CharField(label=_("Observations"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args, user: User, rep: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        team = selectors.teams_for(user)
        nodes = nodes_visible_to(user).filter(region__in=team, plan__status=PlanStatus.APPROVED)
        deals = deals_visible(user).filter(OPEN, region__in=team)
        if rep is not None:
            nodes = nodes.filter(rep=rep)
            deals = deals.filter(owner=rep)
        self.fields["node"].queryset = nodes.select_related(
            "plan", "region", "rep", "product_line", "product"
        ).order_by("-period_start", "plan_id", "path")
        self.fields["node"].label_from_instance = lambda n: f"{n.plan.name} · {n.label}"
        self.fields["opportunity"].queryset = deals.order_by("-amount_company")


class SessionCreateForm(SessionFieldsForm):
    """A new session: the rep (a search picker over the reps of the manager's teams), what it says, and up to
    three commitments (what, by when)."""

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["rep"] = scoped_user_field(
            user, roles=[Role.REP], within=selectors.default_team(user), label=_("Rep")
        )
        self.order_fields(["rep"])
        for i in range(1, COMMITMENT_ROWS + 1):
            self.fields[f"c{i}_what"] = forms.CharField(
                label=_("Commitment %(n)s") % {"n": i}, max_length=300, required=False
            )
            self.fields[f"c{i}_due"] = forms.DateField(label=_("Due date"), widget=DATE, required=False)

    def clean(self):
        data = super().clean()
        rows = []
        for i in range(1, COMMITMENT_ROWS + 1):
            what, due = (data.get(f"c{i}_what") or "").strip(), data.get(f"c{i}_due")
            if what and due is None and f"c{i}_due" not in self.errors:
                self.add_error(f"c{i}_due", _("Every commitment needs a due date."))
            elif due is not None and not what:
                self.add_error(f"c{i}_what", _("Say what is to be done."))
            elif what:
                rows.append(NewCommitment(what, due))
        data["commitments"] = rows
        return data


class CommitmentForm(forms.Form):
    what = forms.CharField(label=_("Commitment"), max_length=300)
    due_date = forms.DateField(label=_("Due date"), widget=DATE)


class FollowUpForm(forms.Form):
    status = forms.ChoiceField(choices=ActionItemStatus.choices)
    note = forms.CharField(required=False, max_length=2000)


class SessionFilterForm(forms.Form):
    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"] = scoped_user_field(
            user, roles=[Role.REP], required=False, label=_("Rep"), empty_label=_("All reps")
        )


def session_initial(session: CoachingSession) -> dict:
    return {
        "date": session.date,
        "focus_kind": session.focus_kind,
        "focus": session.focus,
        "node": session.node_id,
        "opportunity": session.opportunity_id,
        "observations": session.observations,
    }
