"""Template builtins (settings.TEMPLATES) that make every page cheaper to render, each writing exactly what Django's
own writes: `|floatformat` is `salesmgmt.lib.numbers.floatformat` (Django's filter, written faster); `{% url %}` of
a name without arguments is reversed once (`salesmgmt.lib.urls.named_url`: the navigation of every page asks for
twenty-five); `{% id_url name pk %}` is `{% url name pk %}` for a row's URL (`salesmgmt.lib.urls.id_url`)."""

from django import template
from django.template import defaulttags
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape

from salesmgmt.lib import numbers, urls

register = template.Library()
register.filter("floatformat", numbers.floatformat, is_safe=True)
register.simple_tag(urls.id_url, name="id_url")


class KeptURLNode(defaulttags.URLNode):
    """Django's `{% url %}`; a URL without arguments comes from `named_url`."""

    def render(self, context):
        if self.args or self.kwargs:
            return super().render(context)
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = urls.named_url(view_name, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    """Django's `{% url %}` tag, its node a `KeptURLNode`."""
    node = defaulttags.url(parser, token)
    node.__class__ = KeptURLNode
    return node
