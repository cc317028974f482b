"""Forms of the customer screens. They validate shape and scope; the services do the writing."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.models import Segment, Tier
from crm.scopes import visible_regions, visible_users


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where the form has that field."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class RegionChoiceField(forms.ModelChoiceField):
    """Regions indented by depth so the tree reads in a plain <select>."""

    def label_from_instance(self, obj):
        return "\u2003" * obj.depth + obj.name


def scoped_region_field(user, **kwargs) -> RegionChoiceField:
    return RegionChoiceField(queryset=visible_regions(user).order_by("path"), **kwargs)


def scoped_user_field(user, **kwargs) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(queryset=visible_users(user).order_by("first_name", "username"), **kwargs)


class CustomerFilterForm(forms.Form):
    """GET filters of the customer list; choices only offer what the user may see."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    region = forms.Field(required=False)
    owner = forms.Field(required=False)
    tier = forms.ChoiceField(label=_("Tier"), required=False, choices=[("", _("All tiers")), *Tier.choices])
    segment = forms.ChoiceField(
        label=_("Existing / new"), required=False, choices=[("", _("Existing and new")), *Segment.choices]
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"] = scoped_region_field(
            user, label=_("Region"), required=False, empty_label=_("All regions")
        )
        self.fields["owner"] = scoped_user_field(user, label=_("Owner"), required=False, empty_label=_("All owners"))
        self.fields["q"].widget.attrs.update({"placeholder": _("Name, industry or external id"), "type": "search"})


class CustomerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    region = forms.Field()
    owner = forms.Field()
    industry = forms.CharField(label=_("Industry"), max_length=80, required=False)
    tier = forms.ChoiceField(label=_("Tier"), choices=Tier.choices, initial=Tier.C)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"] = scoped_region_field(user, label=_("Region"), initial=user.region_id)
        self.fields["owner"] = scoped_user_field(user, label=_("Owner"), initial=user.pk)


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    title = forms.CharField(label=_("Title"), max_length=120, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    is_decision_maker = forms.BooleanField(label=_("Decision maker"), required=False)


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(
        label=_("Stars"), coerce=int, choices=[(i, "★" * i) for i in range(5, 0, -1)], widget=forms.RadioSelect
    )
    reasons = forms.CharField(
        label=_("Reasons"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why this rating: budget, decision chain, fit, relationship..."),
    )
