"""The nav bell: the user's unread notifications, one COUNT query per page."""

from django import template

from targets.alerts.selectors import unread_count

register = template.Library()


@register.inclusion_tag("targets/alerts/_nav_unread.html", takes_context=True)
def nav_unread(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"unread_count": unread_count(user)}
