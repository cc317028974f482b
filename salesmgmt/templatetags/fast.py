"""Template builtins (settings.TEMPLATES) that pages showing many rows use: `|floatformat` is
`salesmgmt.lib.numbers.floatformat`, Django's filter with the same output, written faster; `{% id_url name pk %}` is
`{% url name pk %}` for a row's URL (`salesmgmt.lib.urls.id_url`)."""

from django import template

from salesmgmt.lib import numbers, urls

register = template.Library()
register.filter("floatformat", numbers.floatformat, is_safe=True)
register.simple_tag(urls.id_url, name="id_url")
