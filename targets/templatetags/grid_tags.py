"""The markup of the plan grid's figures (`targets/editor/_grid.html`), from what `editor.GridCells` prepares:
`{% grid_cells row.cells %}` (the <td>s of a row of `GridCell`s, or the one cell of a refused edit) and
`{% grid_att figure %}` (the actual and attainment under a figure, a `GridFigure`).

Built here, every value escaped as `format_html` does, rather than in a template loop: a page holds GRID_PAGE
x ~13 cells, and the template engine's ~20 variable lookups a cell made the 100-row page 80 % slower
(bench/bench_grid.py: ~100 ms against ~55 ms). Presentation only: the figures come formatted.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from django import template
from django.utils.safestring import SafeData, SafeString
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from targets.views.editor import GridCell, GridFigure

register = template.Library()

# A sum of several leaves, or an empty cell: read-only. One leaf: editable while the plan is.
SUM = '<td class="num" data-testid="{testid}" data-value="{value}">{text}{notes}</td>'
LEAF = (
    '<td class="num cell{refused}" id="cell-{leaf}" data-testid="{testid}" data-leaf="{leaf}" data-value="{value}">'
    "{text}{notes}</td>"
)
EDITABLE = (
    '<td class="num cell{refused}" id="cell-{leaf}" data-testid="{testid}" data-leaf="{leaf}" data-value="{value}">'
    '<input name="amount" value="{shown}" inputmode="decimal" autocomplete="off" aria-label="{label}" '
    'hx-post="{url}{leaf}/" hx-trigger="change" hx-include="#grid-params" hx-target="#grid" hx-swap="outerHTML" '
    'hx-vals="{vals}" data-testid="{testid}-input">{notes}</td>'
)
REFUSED, NOTHING = SafeString(" refused"), SafeString("")
ERROR = '<small class="errorlist" role="alert" data-testid="cell-error">{error}</small>'
ATT = (
    '<small class="att-cell att-pace pace-{colour}" data-testid="att-{testid}" data-actual="{actual}" '
    'data-rate="{rate}" data-pace="{pace}" title="{title}">{actual_text} · {shown}</small>'
)


def _html(format_string: str, **values) -> SafeString:
    """`django.utils.html.format_html` with keyword arguments, each escaped once however often it is used,
    by the stdlib `escape` that Django's wraps, without the lazy-string checks of Django's `escape` and
    `mark_safe` (nothing here is lazy): half the cost, the same text. Numbers need no escaping."""
    for key, value in values.items():
        kind = value.__class__
        if kind is str:
            if value and _NEEDS_ESCAPE.search(value):
                values[key] = escape(value)
        elif kind not in _SAFE_KINDS and not isinstance(value, SafeData):
            values[key] = escape(str(value))
    return SafeString(format_string.format_map(values))


# Most values are numbers and ids: a search for the five characters `escape` replaces is cheaper than the
# five replacements, cell after cell.
_NEEDS_ESCAPE = re.compile(r"[&<>\"']")
_SAFE_KINDS = frozenset({SafeString, int})


@register.simple_tag
def grid_att(figure: GridFigure | None) -> SafeString:
    """The actual and attainment % under a figure, coloured by its pace gap ("—" for a zero target);
    nothing without one."""
    if figure is None:
        return NOTHING
    return _html(
        ATT,
        colour=figure.pace or "none",
        testid=figure.testid,
        actual=figure.actual,
        rate=figure.rate,
        pace=figure.pace,
        title=figure.title,
        actual_text=figure.actual_text,
        shown=f"{figure.pct_text}%" if figure.pct_text else "—",
    )


@register.simple_tag(takes_context=True)
def grid_cells(context, cells: list[GridCell]) -> SafeString:
    """The <td>s of `cells`. A cell that is one leaf carries its id and data-leaf and, when the plan may be
    edited (`can_edit`), an input posting its new amount to `cell_url` + the leaf; a refused edit shows what
    was typed and the message, above the attainment."""
    editable = context.get("can_edit")
    common = {"label": SafeString(escape(_("Target"))), "url": SafeString(escape(context.get("cell_url", "")))}
    html = []
    for cell in cells:
        notes = grid_att(cell.att)
        if cell.error:
            notes = _html(ERROR, error=cell.error) + notes
        values = {"testid": cell.testid, "value": cell.value, "text": cell.text, "notes": notes}
        if cell.leaf is None:
            html.append(_html(SUM, **values))
            continue
        values.update(leaf=cell.leaf, refused=REFUSED if cell.error else NOTHING)
        if editable:
            shown = cell.typed if cell.error else cell.value
            html.append(_html(EDITABLE, **values, **common, shown=shown, vals=cell.vals))
        else:
            html.append(_html(LEAF, **values))
    return SafeString("".join(html))  # every cell built by _html
