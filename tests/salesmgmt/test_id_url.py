"""`id_url` (salesmgmt/lib/urls.py) writes what `reverse` writes for a row's URL, and refuses a URL it cannot."""

import pytest
from django.template import engines
from django.test import override_settings
from django.urls import NoReverseMatch, reverse, set_script_prefix
from hypothesis import given, settings
from hypothesis import strategies as st

from salesmgmt.lib.urls import id_url


@settings(deadline=None)
@given(
    pk=st.integers(min_value=0, max_value=2**63 - 1),
    name=st.sampled_from(["pipeline:deal_detail", "pipeline:deal_move"]),
)
def test_the_same_as_reverse(pk, name):
    assert id_url(name, pk) == reverse(name, args=[pk])


def test_under_a_script_prefix():
    set_script_prefix("/sales/")
    try:
        assert (
            id_url("pipeline:deal_detail", 7) == reverse("pipeline:deal_detail", args=[7]) == "/sales/pipeline/deals/7/"
        )
    finally:
        set_script_prefix("/")
    assert id_url("pipeline:deal_detail", 7) == "/pipeline/deals/7/"


def test_a_url_without_one_integer_id_is_refused():
    with pytest.raises(NoReverseMatch):
        id_url("pipeline:mine", 7)


def test_a_builtin_tag_of_every_template():
    html = engines["django"].from_string("{% id_url 'pipeline:deal_detail' pk %}").render({"pk": 42})
    assert html == reverse("pipeline:deal_detail", args=[42])


@override_settings(ROOT_URLCONF="salesmgmt.urls")
def test_a_non_integer_id_is_an_error():
    with pytest.raises(ValueError):
        id_url("pipeline:deal_detail", "7/../admin")


def test_every_templates_url_of_a_name_alone_is_reversed_once(monkeypatch):
    from salesmgmt.lib import urls

    reversed_names = []
    original = urls.reverse
    monkeypatch.setattr(urls, "reverse", lambda name, **kw: reversed_names.append(name) or original(name, **kw))
    template = engines["django"].from_string(
        "{% url 'pipeline:mine' %} {% url 'pipeline:mine' as mine %}{{ mine }} {% url 'pipeline:deal_detail' 3 %}"
        " {% url 'no-such-page' as missing %}[{{ missing }}]"
    )
    first = template.render({})
    assert (
        first == f"{reverse('pipeline:mine')} {reverse('pipeline:mine')} {reverse('pipeline:deal_detail', args=[3])} []"
    )
    assert template.render({}) == first
    assert reversed_names.count("pipeline:mine") <= 1  # kept from any earlier test, or reversed once here
    set_script_prefix("/sales/")
    try:
        assert template.render({}).startswith("/sales/pipeline/mine/ /sales/pipeline/mine/ /sales/pipeline/deals/3/")
    finally:
        set_script_prefix("/")
    with pytest.raises(NoReverseMatch):
        engines["django"].from_string("{% url 'no-such-page' %}").render({})


def test_a_url_tag_of_a_row_id_is_reversed_once(monkeypatch):
    """`{% url name pk %}` of one integer id comes from `id_url`: reversed once for every row of a list, the same
    text as Django's; any other argument (a string, a negative number) goes through Django's reverse as before."""
    import django.urls

    from salesmgmt.lib import urls

    reversed_names, by_tag = [], []
    original = urls.reverse
    monkeypatch.setattr(urls, "reverse", lambda name, **kw: reversed_names.append(name) or original(name, **kw))
    monkeypatch.setattr(django.urls, "reverse", lambda name, **kw: by_tag.append(name) or original(name, **kw))
    template = engines["django"].from_string(
        "{% for pk in ids %}{% url 'targets:node_actions' pk %} {% endfor %}"
        "{% url 'targets:node_actions' 9 as u %}[{{ u }}]"
    )
    ids = [1, 22, 333, 2**40]
    html = template.render({"ids": ids})
    assert html == "".join(f"{reverse('targets:node_actions', args=[pk])} " for pk in ids) + (
        f"[{reverse('targets:node_actions', args=[9])}]"
    )
    assert reversed_names.count("targets:node_actions") <= 1  # kept from any earlier test, or reversed once here
    assert by_tag == []  # Django's reverse for none of the five URLs
    by_django = engines["django"].from_string("{% url 'pipeline:deal_detail' pk %}")
    assert by_django.render({"pk": "12"}) == reverse("pipeline:deal_detail", args=["12"])
    assert by_tag == ["pipeline:deal_detail"]
    with pytest.raises(NoReverseMatch):
        by_django.render({"pk": -1})
    with pytest.raises(NoReverseMatch):
        engines["django"].from_string("{% url 'pipeline:mine' 7 %}").render({})
