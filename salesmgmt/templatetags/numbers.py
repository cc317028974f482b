"""A template builtin (settings.TEMPLATES): `|floatformat` is `salesmgmt.lib.numbers.floatformat`, Django's filter
with the same output, written faster (a deal list or a rep's targets show hundreds of figures a page)."""

from django import template

from salesmgmt.lib import numbers

register = template.Library()
register.filter("floatformat", numbers.floatformat, is_safe=True)
