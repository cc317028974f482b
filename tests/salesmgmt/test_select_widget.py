"""Our `django/forms/widgets/select.html` writes each option inline (a page's region pickers hold hundreds of
options, an include apiece was most of their rendering time): the same HTML as Django's own templates."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, TemplatesSetting


class Form(forms.Form):
    flat = forms.ChoiceField(choices=[("", "All"), ("1", "East & <North>"), ("2", "  Shanghai")], required=False)
    grouped = forms.ChoiceField(
        choices=[("Areas", [("a", "A"), ("b", "B")]), ("z", "Loose")], widget=forms.Select(attrs={"data-x": "1"})
    )
    many = forms.MultipleChoiceField(choices=[(1, "One"), (2, "Two"), (3, "Three")])
    radio = forms.ChoiceField(choices=[("x", "X"), ("y", "Y")], widget=forms.RadioSelect)


@pytest.mark.parametrize("data", [None, {"flat": "1", "grouped": "b", "many": ["1", "3"], "radio": "y"}])
def test_select_renders_as_djangos_own(data):
    ours = Form(data, renderer=TemplatesSetting())
    djangos = Form(data, renderer=DjangoTemplates())
    for name in Form.base_fields:
        assert str(ours[name]) == str(djangos[name]), name
    assert "selected>East &amp; &lt;North&gt;</option>" in str(ours["flat"]) or data is None
