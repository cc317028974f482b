"""A deal's stage badge and close date as every deal list, card and page shows them: `{% stage_badge deal %}`,
`{% close_date deal today %}`. Tags written in Python rather than included templates: a deal list shows fifty rows,
and an include costs each of them a template lookup and a context of its own, more than the markup itself."""

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def stage_badge(deal) -> str:
    """The deal's stage (green when won, grey when lost) and its probability."""
    stage = deal.stage
    kind = " won" if stage.is_won else " lost" if stage.is_lost else ""
    return format_html(
        '<span class="stage{}" data-testid="stage-{}">{}</span> <small class="muted">{}%</small>',
        kind,
        deal.pk,
        stage.display_name,
        deal.probability,
    )


@register.simple_tag
def close_date(deal, today=None) -> str:
    """The expected close date (YYYY-MM-DD, "—" when none), flagged overdue when it passed (`today`: the day the
    page is for; none: never flagged) on a deal still open."""
    day = deal.expected_close_date
    if not day:
        return "—"
    stage = deal.stage
    if today and day < today and not stage.is_won and not stage.is_lost:
        return format_html('{} <span class="badge warn">{}</span>', day.isoformat(), gettext("overdue"))
    return day.isoformat()
