"""Forms of the alert screens: the list's filters, a rule's settings, and the notification settings.

They check shape and scope (owners and plans offered are the visible ones); who may change a rule and
what a threshold may be is decided by the services.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import SelectChoiceField, scoped_user_field
from targets.alerts.selectors import ACTIVE_STATES, alerts_visible_to
from targets.models import PREFERENCE_KINDS, PREFERENCE_WEEKLY_DIGEST, AlertKind, AlertSeverity, AlertState
from targets.planning.selectors import plans_visible_to

STATE_ACTIVE = ""  # the default: open and acknowledged
STATE_ALL = "all"


class AlertFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[(STATE_ACTIVE, _("Open and acknowledged")), *AlertState.choices, (STATE_ALL, _("All states"))],
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("All severities")), *AlertSeverity.choices]
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All kinds")), *AlertKind.choices])
    owner = forms.Field(required=False)
    plan = forms.Field(required=False)
    period = forms.ChoiceField(label=_("Period"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"] = scoped_user_field(user, label=_("Owner"), required=False, empty_label=_("All owners"))
        self.fields["plan"] = SelectChoiceField(  # one plain query, not a server-side cursor
            label=_("Plan"),
            queryset=plans_visible_to(user).order_by("-period_start", "name"),
            required=False,
            empty_label=_("All plans"),
        )
        periods = (
            alerts_visible_to(user)
            .exclude(period_key="")
            .order_by("period_key")
            .values_list("period_key", flat=True)
            .distinct()
        )
        self.fields["period"].choices = [("", _("All periods")), *((p, p) for p in periods)]

    def filters(self) -> dict:
        """The keyword arguments of `alerts_filtered` (invalid fields are left out)."""
        data = getattr(self, "cleaned_data", {})
        state = data.get("state") or STATE_ACTIVE
        if state == STATE_ACTIVE:
            states = ACTIVE_STATES
        elif state == STATE_ALL:
            states = ()
        else:
            states = (state,)
        return {
            "states": states,
            "severity": data.get("severity") or "",
            "kind": data.get("kind") or "",
            "owner": data.get("owner"),
            "plan": data.get("plan"),
            "period": data.get("period") or "",
        }


class AlertRuleForm(forms.Form):
    threshold = forms.DecimalField(label=_("Threshold"), required=False, max_digits=18, decimal_places=2, localize=True)
    severity = forms.ChoiceField(label=_("Severity"), choices=AlertSeverity.choices)
    active = forms.BooleanField(label=_("Active"), required=False)


class NotificationSettingsForm(forms.Form):
    """Per alert kind: in the notification centre, and by e-mail. Fields `in_app_<kind>`, `email_<kind>`."""

    def __init__(self, *args, choices: dict[str, tuple[bool, bool]], **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for kind, label in PREFERENCE_KINDS:
            in_app, email = choices.get(kind, (True, False))
            self.fields[f"in_app_{kind}"] = forms.BooleanField(
                label=_("In the notification centre"),
                required=False,
                initial=in_app,
                disabled=kind == PREFERENCE_WEEKLY_DIGEST,  # an e-mail only
                widget=forms.CheckboxInput(attrs={"aria-label": f"{label}: {_('In the notification centre')}"}),
            )
            self.fields[f"email_{kind}"] = forms.BooleanField(
                label=_("By e-mail"),
                required=False,
                initial=email,
                widget=forms.CheckboxInput(attrs={"aria-label": f"{label}: {_('By e-mail')}"}),
            )
            self.rows.append((kind, label, self[f"in_app_{kind}"], self[f"email_{kind}"]))

    def choices(self) -> dict[str, tuple[bool, bool]]:
        data = self.cleaned_data
        return {kind: (data[f"in_app_{kind}"], data[f"email_{kind}"]) for kind, _label in PREFERENCE_KINDS}
