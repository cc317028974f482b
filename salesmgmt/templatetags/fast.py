"""Template builtins (settings.TEMPLATES) that make every page cheaper to render, each writing exactly what Django's
own writes: `|floatformat` is `salesmgmt.lib.numbers.floatformat` (Django's filter, written faster); `{% url %}` of
a name without arguments is reversed once (`salesmgmt.lib.urls.named_url`: the navigation of every page asks for
twenty-five), and of a name and a row's id once per name, whatever the row (`salesmgmt.lib.urls.id_url`, also the
tag `{% id_url name pk %}`)."""

from django import template
from django.template import defaulttags
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape

from salesmgmt.lib import numbers, urls

register = template.Library()
register.filter("floatformat", numbers.floatformat, is_safe=True)
register.simple_tag(urls.id_url, name="id_url")


class KeptURLNode(defaulttags.URLNode):
    """Django's `{% url %}`; a URL without arguments comes from `named_url`, and one whose only argument is a row's
    id (a non-negative integer) from `id_url`: a list's rows ask for several each."""

    def render(self, context):
        pk = None
        if self.kwargs or len(self.args) > 1:
            return super().render(context)
        if self.args:
            pk = self.args[0].resolve(context)
            if type(pk) is not int or pk < 0:
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
            url = urls.named_url(view_name, current_app) if pk is None else urls.id_url(view_name, pk, current_app)
        except ValueError:  # not a URL of one integer id (`id_url`): as Django reverses it
            return super().render(context)
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
