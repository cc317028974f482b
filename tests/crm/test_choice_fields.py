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
