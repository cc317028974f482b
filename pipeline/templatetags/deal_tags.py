"""A deal's stage badge, close date and move buttons as every deal list, card and page shows them:
`{% stage_badge deal %}`, `{% close_date deal today %}`, `{% deal_actions deal "row" %}`. Tags written in Python
rather than included templates: a deal list shows fifty rows, and an include costs each of them a template lookup
and a context of its own, more than the markup itself."""

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from salesmgmt.lib.urls import id_url

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


@register.simple_tag(takes_context=True)
def deal_actions(context, deal, ctx: str) -> str:
    """The buttons that move a deal on (`selectors.with_actions` sets `next_stage_choice` and `lost_stage_choice`):
    advance one stage (a dialog when the stage asks for evidence, else one click that posts the move) and mark
    lost (a dialog). `ctx`: where the deal is shown ("row", "card", "detail"), what the move redraws."""
    move_url = id_url("pipeline:deal_move", deal.pk)
    parts = []
    nxt = deal.next_stage_choice
    if nxt:
        label = _advance_label(nxt)
        if nxt.evidence_required:
            parts.append(_dialog_link(move_url, nxt, ctx, "small", f"advance-{deal.pk}", format_html("{} …", label)))
        else:
            swap = format_html(' hx-target="#deal-{}" hx-swap="outerHTML"', deal.pk) if ctx != "detail" else ""
            parts.append(
                format_html(
                    '<form method="post" action="{0}" hx-post="{0}" class="inline"{1}>{2}'
                    '<input type="hidden" name="stage" value="{3}"><input type="hidden" name="version" value="{4}">'
                    '<input type="hidden" name="ctx" value="{5}">'
                    '<button type="submit" class="small" data-testid="advance-{6}">{7}</button></form>',
                    move_url,
                    swap,
                    CsrfTokenNode().render(context),  # what {% csrf_token %} writes
                    nxt.pk,
                    deal.version,
                    ctx,
                    deal.pk,
                    label,
                )
            )
    lost = deal.lost_stage_choice
    if lost:
        parts.append(
            _dialog_link(move_url, lost, ctx, "small secondary outline", f"lost-{deal.pk}", gettext("Mark lost"))
        )
    return format_html('<div class="deal-actions">{}</div>', mark_safe("\n".join(parts)))  # noqa: S308 (built above)


def _dialog_link(move_url: str, stage, ctx: str, css: str, testid: str, label: str) -> str:
    """A button-styled link that opens the move to `stage` in the dialog (the page itself without htmx)."""
    return format_html(
        '<a role="button" class="{0}" href="{1}?stage={2}&amp;ctx={3}" hx-get="{1}?stage={2}&amp;ctx={3}"'
        ' hx-target="#dialog-slot" hx-swap="innerHTML" data-testid="{4}">{5}</a>',
        css,
        move_url,
        stage.pk,
        ctx,
        testid,
        label,
    )


def _advance_label(stage) -> str:
    """ "Advance to <stage>", the stage's name escaped (as `{% blocktranslate %}` writes it)."""
    return mark_safe(gettext("Advance to %(stage)s") % {"stage": conditional_escape(stage.display_name)})  # noqa: S308
