"""The <select> fields read their choices with one plain query, never a server-side cursor (`.iterator()`)."""

from django import forms
from django.db.models import QuerySet

from crm.forms import SelectChoiceField, scoped_region_field
from crm.models import Region


def test_select_choices_are_djangos_without_a_cursor(org, monkeypatch, django_assert_num_queries):
    djangos = forms.ModelChoiceField(queryset=Region.objects.order_by("path"), empty_label="All")
    expected = [(str(value), label) for value, label in djangos.choices]
    ours = SelectChoiceField(queryset=Region.objects.order_by("path"), empty_label="All")

    def no_cursor(self, *args, **kwargs):
        raise AssertionError("a server-side cursor for a <select>")

    monkeypatch.setattr(QuerySet, "iterator", no_cursor)
    with django_assert_num_queries(1):
        assert [(str(value), label) for value, label in ours.choices] == expected
    with django_assert_num_queries(1):  # read afresh at every render: nothing kept on the field
        assert sum(1 for _choice in ours.choices) == len(expected)
    region = scoped_region_field(org.manager, empty_label=None)
    assert [label.strip("\u2003") for _value, label in region.choices] == ["East", "Shanghai", "Jiangsu"]  # by path


# --- InlineSelect: the template's output, written in Python -------------------------------------------


def template_select(choices, **kwargs):
    """Django's Select through the project's template (templates/django/forms/widgets/select.html)."""
    widget = forms.Select(**kwargs)
    widget.choices = choices
    return widget


def inline_select(choices, **kwargs):
    from crm.forms import InlineSelect

    widget = InlineSelect(**kwargs)
    widget.choices = choices
    return widget


CHOICES = [
    ("", "All teams"),
    (1, "HQ"),
    (2, "\u2003East & <West>"),
    (3, "\u2003\u2003\"Quoted\" 'one'"),
    ("a&b", "Value to escape"),
    (None, "A None value"),
]


def test_inline_select_writes_the_templates_html_byte_for_byte(db):
    from django.utils.safestring import mark_safe

    cases = [
        (CHOICES, None, None),
        (CHOICES, 2, {"id": "id_region", "required": True, "data-x": 'a"b', "hidden": False}),
        (CHOICES, "a&b", {"class": "wide"}),
        (CHOICES, 99, None),  # a value that is not a choice: nothing selected
        (CHOICES + [(2, "Twice")], 2, None),  # only the first match is selected, as Django's
        ([(1, mark_safe("<b>safe</b>")), (mark_safe("x&amp;y"), "safe value")], "x&amp;y", None),
        ([], None, None),
    ]
    for choices, value, attrs in cases:
        expected = template_select(choices).render("region", value, attrs)
        assert inline_select(choices).render("region", value, attrs) == expected, (choices, value, attrs)
    # The widget's own attributes too.
    kwargs = {"attrs": {"class": "filter", "autofocus": True}}
    assert inline_select(CHOICES, **kwargs).render("r", 1) == template_select(CHOICES, **kwargs).render("r", 1)


def test_grouped_and_multiple_selects_still_use_the_template(db):
    groups = [("", "Any"), ("Default", [(1, "Lead"), (2, "Won")]), ("Other", [(3, "Lost")])]
    assert inline_select(groups).render("stage", 2) == template_select(groups).render("stage", 2)
    from crm.forms import InlineSelect

    class Multiple(InlineSelect):
        allow_multiple_selected = True

    widget, djangos = Multiple(), forms.SelectMultiple()
    widget.choices = djangos.choices = CHOICES[1:]
    assert widget.render("regions", [1, 3]) == djangos.render("regions", [1, 3])


def test_a_model_select_renders_with_one_query_and_no_count(org, django_assert_num_queries):
    field = scoped_region_field(org.director, empty_label="All")
    with django_assert_num_queries(1):  # the choices; not also a COUNT for list()'s length hint
        html = field.widget.render("region", org.east.pk)
    assert f'<option value="{org.east.pk}" selected>\u2003East</option>' in html


def test_the_team_filter_reads_the_regions_once_for_both_region_selects(org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pipeline.forms import TeamFilterForm

    form = TeamFilterForm(data={"region": org.east.pk}, user=org.director)
    with CaptureQueriesContext(connection) as queries:
        html = str(form["region"]) + str(form["customer_region"])
    region_reads = [q["sql"] for q in queries.captured_queries if 'FROM "crm_region"' in q["sql"]]
    assert len(region_reads) <= 1  # read when the form was built, or once here; never once per select
    assert html.count(f'<option value="{org.hq.pk}"') == 2
    assert f'<option value="{org.east.pk}" selected>' in html
    assert form.is_valid(), form.errors
    assert form.cleaned_data["region"] == org.east
    # Both selects offer the regions the director sees, in tree order, as a plain RegionChoiceField would.
    expected = [str(pk) for pk, _label in scoped_region_field(org.director, empty_label=None).choices]
    import re

    for name in ("region", "customer_region"):
        assert re.findall(r'<option value="(\d+)"', str(form[name])) == expected


def test_a_required_model_select_is_rendered_with_one_query(db, django_assert_num_queries):
    """Django's Select reads its first choice to decide on `required` (a query for a model's choices) before
    rendering them: ours decides from the empty label, and writes the same HTML as Django's field."""
    from crm.models import Currency

    for empty_label in (None, "Pick one"):

        class Form(forms.Form):
            ours = SelectChoiceField(queryset=Currency.objects.order_by("code"), empty_label=empty_label)
            djangos = forms.ModelChoiceField(queryset=Currency.objects.order_by("code"), empty_label=empty_label)

        form = Form()
        with django_assert_num_queries(1):
            html = str(form["ours"])
        expected = str(form["djangos"]).replace("djangos", "ours")
        assert html == expected
        assert ("required" in html) == (empty_label is not None)  # a placeholder first: the browser requires one


def test_an_empty_required_model_select_is_required_as_djangos(db):
    from crm.models import Currency

    for empty_label in (None, "Pick one"):
        ours = SelectChoiceField(queryset=Currency.objects.none(), empty_label=empty_label)
        djangos = forms.ModelChoiceField(queryset=Currency.objects.none(), empty_label=empty_label)
        assert ours.widget.use_required_attribute(None) == djangos.widget.use_required_attribute(None)


# --- FormRenderer: plain <input>s written in Python ----------------------------------------------------


def test_the_form_renderer_writes_djangos_inputs_byte_for_byte(db):
    from datetime import date

    from django.forms.renderers import TemplatesSetting
    from django.template.loader import get_template
    from django.utils.safestring import mark_safe

    from crm.forms import INPUT_TEMPLATES, FormRenderer
    from pipeline.forms import DATE, MoneyField

    for name in INPUT_TEMPLATES:  # each is Django's own, and only includes input.html
        template = get_template(name)
        assert "/django/forms/templates/" in template.origin.name, name
        assert template.template.source == '{% include "django/forms/widgets/input.html" %}\n', name
    for name in ("input", "attrs"):  # what the renderer writes in Python: a project's override would go unseen
        assert "/django/forms/templates/" in get_template(f"django/forms/widgets/{name}.html").origin.name, name

    class Everything(forms.Form):
        text = forms.CharField(max_length=20, help_text="help")
        optional = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": 'say "hi" & <go>'}))
        number = forms.IntegerField(min_value=0, max_value=100)
        decimal = forms.DecimalField(max_digits=6, decimal_places=2, required=False)
        money = MoneyField(label="Amount")
        day = forms.DateField(widget=DATE)
        email = forms.EmailField(required=False)
        url = forms.URLField(required=False, assume_scheme="https")
        password = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)
        secret = forms.CharField(widget=forms.HiddenInput, required=False)
        flag = forms.BooleanField(required=False)
        search = forms.CharField(widget=forms.TextInput(attrs={"type": "search", "autofocus": True, "hidden": False}))
        upload = forms.FileField(required=False)
        safe = forms.CharField(required=False)

    initial = {"text": "<b>x</b> & 'y'", "number": 7, "money": "1234.50", "day": date(2026, 5, 1), "flag": True}
    bound = {
        "text": 'a"b',
        "optional": "",
        "number": "x",
        "decimal": "1.5",
        "money": "¥ 12 000",
        "day": "2026-13-01",
        "email": "a@b",
        "url": "http://x?a=1&b=2",
        "password": "p&w",
        "secret": "s",
        "flag": "on",
        "search": "q",
        "safe": mark_safe("<i>kept</i>"),
    }
    for form in (Everything(), Everything(initial=initial), Everything(data=bound), Everything(auto_id=False)):
        form.is_bound and form.is_valid()
        for field in form:
            ours = field.as_widget()
            form.renderer = TemplatesSetting()
            djangos = field.as_widget()
            form.renderer = None
            assert ours == djangos, (field.name, ours, djangos)
    from django.forms.renderers import get_default_renderer

    assert isinstance(get_default_renderer(), FormRenderer)  # the site's forms use it
