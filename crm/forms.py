"""Forms of the customer screens, and the pickers every app's forms use for people and customers.

They validate shape and scope; the services do the writing.
"""

import html
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms.models import ModelChoiceIterator
from django.forms.renderers import TemplatesSetting
from django.urls import reverse_lazy
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import gettext_lazy as _

from crm import selectors
from crm.models import Customer, Region, Segment, Tier
from crm.scopes import visible_regions


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where the form has that field."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class ChoicesInOneQuery(ModelChoiceIterator):
    """A <select>'s choices read with one plain query. Django's iterator reads them with `.iterator()`: on
    PostgreSQL a server-side cursor (DECLARE, FETCH, CLOSE: three round trips, and outside a transaction a
    WITH HOLD cursor the server materialises) for a list of a few rows to a few hundred regions."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():  # a fresh copy: nothing cached on the field between renders
            yield self.choice(obj)


def _attrs_html(attrs: dict) -> str:
    """HTML attributes as templates/django/forms/widgets/attrs.html writes them."""
    return "".join(
        f" {conditional_escape(name)}" + ("" if value is True else f'="{_text(value)}"')
        for name, value in attrs.items()
        if value is not False
    )


def _text(value) -> str:
    """`{{ value|stringformat:'s' }}` in an autoescaped template: escaped unless it was marked safe."""
    return conditional_escape(value) if isinstance(value, SafeData) else escape(f"{value}")


# Django's widget templates that are nothing but `{% include "django/forms/widgets/input.html" %}` (and a newline).
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{kind}.html"
    for kind in (
        "checkbox", "color", "date", "datetime", "email", "file", "hidden",
        "number", "password", "search", "tel", "text", "time", "url",
    )
)  # fmt: skip


class FormRenderer(TemplatesSetting):
    """The site's form renderer (settings.FORM_RENDERER): widgets render through TEMPLATES, except the plain
    <input>s, written in Python byte for byte as Django's input.html writes them. A deal page has a dozen: through
    the template engine (three templates, a context and an escape per variable each) they cost more Python than
    the rest of the page's forms."""

    def render(self, template_name, context, request=None):
        if template_name in INPUT_TEMPLATES:
            return _input_html(context["widget"])  # what Django's renderer returns, stripped
        return super().render(template_name, context, request)


def _input_html(widget: dict) -> str:
    value = widget["value"]
    shown = "" if value is None else f' value="{_text(value)}"'
    return (
        f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"{shown}'
        f"{_attrs_html(widget['attrs'])}>"
    )


class InlineSelect(forms.Select):
    """A <select> written in Python, byte for byte as templates/django/forms/widgets/select.html renders it.

    A director's team filter has two selects of 661 regions each: the template engine (a context, a resolve and
    an escape per variable, and Django's option dict per choice) cost more Python than the rest of the page.
    Grouped choices and multiple selects go through the template as before."""

    def use_required_attribute(self, initial):
        # Django's Select reads the first choice to see whether it is a placeholder: for a model's choices that
        # is the whole query once more, before `render` reads them (the deal page's currency: two queries).
        # `ChoicesInOneQuery` yields the empty label first when there is one, and a row's id is never empty.
        choices = self.choices
        if isinstance(choices, ChoicesInOneQuery):
            return forms.Widget.use_required_attribute(self, initial) and choices.field.empty_label is not None
        return super().use_required_attribute(initial)

    def render(self, name, value, attrs=None, renderer=None):
        # Not list(): it asks a model iterator's len() first, a COUNT query.
        choices = [choice for choice in self.choices]  # noqa: C416
        if self.allow_multiple_selected or any(isinstance(label, (list, tuple)) for _value, label in choices):
            return super().render(name, value, attrs, renderer)
        values = self.format_value(value)
        parts = [f'<select name="{conditional_escape(name)}"{_attrs_html(self.build_attrs(self.attrs, attrs))}>']
        has_selected = False
        for option_value, label in choices:
            option_value = "" if option_value is None else option_value
            # A row's id needs no escaping, a plain label html.escape alone (what Django's escape returns, without
            # its wrappers: a director's region pickers have 1,300 options).
            raw = str(option_value)
            text = raw if type(option_value) is int else _text(option_value)
            selected = not has_selected and raw in values  # the first match only, as Django's
            has_selected |= selected
            mark = " selected" if selected else ""
            shown = html.escape(label) if type(label) is str else conditional_escape(label)
            parts.append(f'\n  <option value="{text}"{mark}>{shown}</option>\n')
        parts.append("\n</select>")
        return mark_safe("".join(parts))


class SelectChoiceField(forms.ModelChoiceField):
    """A ModelChoiceField shown as a <select> of all its choices (see `ChoicesInOneQuery`, `InlineSelect`)."""

    iterator = ChoicesInOneQuery
    widget = InlineSelect


class RegionChoiceField(SelectChoiceField):
    """Regions indented by depth so the tree reads in a plain <select>."""

    def label_from_instance(self, obj):
        return region_label(obj.depth, obj.name)


def region_label(depth: int, name: str) -> str:
    return "\u2003" * depth + name


def region_choices(user, *, regions: QuerySet[Region] | None = None) -> list[tuple[int, str]]:
    """(id, label) of the regions `user` sees, in tree order: one query of plain values, for the forms with
    more than one region <select> to share (`scoped_region_field(..., choices=...)`). `regions`: the user's
    `visible_regions`, when the form built it already."""
    rows = (visible_regions(user) if regions is None else regions).order_by("path").values_list("pk", "depth", "name")
    return [(pk, region_label(depth, name)) for pk, depth, name in rows]


def scoped_region_field(
    user,
    *,
    choices: list[tuple[int, str]] | None = None,
    regions: QuerySet[Region] | None = None,
    **kwargs,
) -> RegionChoiceField:
    """A <select> of the regions `user` sees; `choices`: those regions already read (`region_choices(user)`),
    shown instead of reading them again. The field validates against the scoped queryset either way: `regions`,
    the user's `visible_regions` when the form built it already (its scope's subqueries cost a few milliseconds
    of Python to build, for each field that builds them again)."""
    queryset = visible_regions(user) if regions is None else regions
    field = RegionChoiceField(queryset=queryset.order_by("path"), **kwargs)
    if choices is not None:
        field.widget.choices = [*([("", field.empty_label)] if field.empty_label is not None else []), *choices]
    return field


# --- search pickers ------------------------------------------------------------------------------
# A company has thousands of people and tens of thousands of customers: a <select> of all of them is
# megabytes of HTML. A picker is a search field that asks an endpoint for at most PICK_LIMIT matches
# (crm.views.pick_people / pick_customers, from the same scoped querysets), and a hidden input with the
# chosen id. The page renders only the chosen one's name; the field still validates against its scoped
# queryset, so an id outside the user's scope is refused as with a <select>.


class SearchValue(NamedTuple):
    """What a picker posts: the chosen id (hidden) and the text in the search field."""

    pk: str
    text: str


class SearchSelect(forms.Widget):
    """The search field, the hidden id and the list of matches (static/js/search-select.js drives them).

    Without JavaScript the text is posted as typed and the field takes an exact name (see `SearchChoiceField`).
    The widget belongs to a `SearchChoiceField`: `choices` is the field's iterator, which knows the field.
    """

    template_name = "crm/widgets/search_select.html"
    TEXT_SUFFIX = "_text"

    def __init__(self, url, *, params: dict | None = None, placeholder="", attrs=None):
        super().__init__(attrs)
        self.url = url
        self.params = params or {}
        self.placeholder = placeholder
        self.choices: Iterable = ()

    def value_from_datadict(self, data, files, name):
        text = data.get(name + self.TEXT_SUFFIX)
        if text is None:  # a plain id (a link, a test, another client): a <select>'s behaviour
            return data.get(name)
        return SearchValue(data.get(name) or "", text)

    def value_omitted_from_data(self, data, files, name):
        return name not in data and name + self.TEXT_SUFFIX not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        field = self.choices.field  # type: ignore[attr-defined]
        if isinstance(value, SearchValue):
            pk, text = value.pk, value.text  # shown as posted: an invalid text stays for the user to correct
        else:
            pk = "" if value is None else str(value)
            text = field.label_for(pk)
        url = str(self.url)
        if self.params:
            url += "?" + urlencode(self.params, doseq=True)
        placeholder = self.placeholder
        if not field.required and field.empty_label:
            placeholder = field.empty_label  # "All owners", "(keep)": what an empty field means
        context["widget"].update(
            {
                "value": pk,
                "text": text,
                "text_name": name + self.TEXT_SUFFIX,
                "url": url,
                "placeholder": placeholder,
                "fixed": field.fixed,
                "listbox_label": field.label or "",
            }
        )
        return context


class SearchChoiceField(forms.ModelChoiceField):
    """A ModelChoiceField picked with `SearchSelect`. The queryset (the user's scope) decides what is valid;
    `fixed` are extra choices that are not rows (("team", "All my people")), listed above the matches.

    The chosen id counts while the text is its name; a text typed without picking from the list is taken
    when exactly one row of the queryset has that exact name (`named`), otherwise the form says why.
    """

    search_url: object = None
    placeholder: object = ""
    default_error_messages = {
        "no_match": _("Nothing you may choose is called “%(text)s”: type part of the name and pick from the list."),
        "ambiguous": _("Several are called “%(text)s”: pick one from the list."),
    }

    def __init__(self, queryset, *, fixed: Iterable[tuple[str, object]] = (), params: dict | None = None, **kwargs):
        self.fixed = [(str(value), label) for value, label in fixed]
        kwargs.setdefault("widget", SearchSelect(self.search_url, params=params, placeholder=self.placeholder))
        super().__init__(queryset, **kwargs)

    def names_of(self, obj) -> Iterable[str]:
        return (self.label_from_instance(obj),)

    def named(self, text: str):
        raise NotImplementedError

    def label_for(self, value: str) -> str:
        """The label of the choice `value` (one query), or "" when it is none of the choices."""
        if value in self.empty_values:
            return ""
        fixed = dict(self.fixed)
        if value in fixed:
            return str(fixed[value])
        try:
            obj = self.queryset.filter(**{self.to_field_name or "pk": value}).first()
        except (ValueError, TypeError, ValidationError):
            return ""
        return "" if obj is None else self.label_from_instance(obj)

    def to_python(self, value):
        if isinstance(value, SearchValue):
            return self._from_search(value)
        if value is not None and str(value) in dict(self.fixed):
            return str(value)
        return super().to_python(value)

    def _from_search(self, value: SearchValue):
        text = value.text.strip()
        if not text:
            return None
        folded = text.casefold()
        if not self.required and self.empty_label and folded == str(self.empty_label).casefold():
            return None  # "All owners" typed out
        for key, label in self.fixed:
            if folded == str(label).casefold():
                return key
        if value.pk:
            chosen = self.to_python(value.pk)  # an id outside the queryset is refused here
            if isinstance(chosen, Model) and folded in {n.casefold() for n in self.names_of(chosen) if n}:
                return chosen
        found = list(self.named(text)[:2])
        if len(found) == 1:
            return found[0]
        code = "ambiguous" if found else "no_match"
        raise ValidationError(self.error_messages[code], code=code, params={"text": text})

    def has_changed(self, initial, data):
        if isinstance(data, SearchValue):
            data = data.pk if data.text.strip() else ""
        return super().has_changed(initial, data)


class PersonChoiceField(SearchChoiceField):
    search_url = reverse_lazy("crm:pick_people")
    placeholder = _("Name or username")

    def names_of(self, obj) -> Iterable[str]:
        return (self.label_from_instance(obj), obj.username, obj.employee_code)

    def named(self, text: str):
        return selectors.people_named(self.queryset, text)


class CustomerChoiceField(SearchChoiceField):
    search_url = reverse_lazy("crm:pick_customers")
    placeholder = _("Customer name")

    def names_of(self, obj) -> Iterable[str]:
        return (obj.name, obj.external_id)

    def named(self, text: str):
        return selectors.customers_named(self.queryset, text)


def scoped_user_field(user, *, roles: Iterable[str] = (), within: Region | None = None, **kwargs) -> PersonChoiceField:
    """A person of `user`'s scope (`selectors.pickable_people`: of some roles, in a region's subtree)."""
    roles = list(roles)
    params: dict = {"role": roles} if roles else {}
    if within is not None:
        params["within"] = within.pk
    queryset = selectors.pickable_people(user, roles=roles, within=within).order_by("first_name", "username")
    return PersonChoiceField(queryset=queryset, params=params, **kwargs)


def scoped_customer_field(user, **kwargs) -> CustomerChoiceField:
    """A customer `user` may see."""
    return CustomerChoiceField(queryset=Customer.objects.visible_to(user).order_by("name"), **kwargs)


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
