"""The markup of the plan grid's figures (`targets/editor/_grid.html`), from what `editor.GridCells` prepares:
`{% grid_cells row.cells %}` (the <td>s of a row of `GridCell`s, or the one cell of a refused edit) and
`{% grid_att figure %}` (the actual and attainment under a figure, a `GridFigure`).

Built here in f-strings, every value escaped (`_e`), rather than in a template loop: a page holds GRID_PAGE
x ~13 cells, and the template engine's ~20 variable lookups a cell made the 100-row page 80 % slower
(bench/bench_grid.py: ~100 ms against ~55 ms); `str.format_map` over templates of the cells was still ~10 %
slower than f-strings. Presentation only: the figures come formatted.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from targets.views.editor import GridCell, GridFigure

register = template.Library()

NOTHING = SafeString("")


def _e(value: object) -> str:
    """`value` escaped for HTML text or a quoted attribute, as `django.utils.html.escape` does (the stdlib
    `escape` it wraps, without its lazy-string checks: nothing here is lazy). Most values are numbers and
    ids, so a search for the five characters comes first: cheaper than five replacements, cell after cell."""
    text = value if isinstance(value, str) else str(value)
    return escape(text) if _NEEDS_ESCAPE.search(text) else text


_NEEDS_ESCAPE = re.compile(r"[&<>\"']")


@register.simple_tag
def grid_att(figure: GridFigure | None) -> SafeString:
    """The actual and attainment % under a figure, coloured by its pace gap ("—" for a zero target);
    nothing without one."""
    return SafeString(_att(figure))


def _att(figure: GridFigure | None) -> str:
    if figure is None:
        return ""
    shown = f"{_e(figure.pct_text)}%" if figure.pct_text else "—"
    pace = _e(figure.pace)
    return (
        f'<small class="att-cell att-pace pace-{pace or "none"}" data-testid="att-{_e(figure.testid)}" '
        f'data-actual="{_e(figure.actual)}" data-rate="{_e(figure.rate)}" data-pace="{pace}" '
        f'title="{_e(figure.title)}">{_e(figure.actual_text)} · {shown}</small>'
    )


@register.simple_tag(takes_context=True)
def grid_cells(context, cells: list[GridCell]) -> SafeString:
    """The <td>s of `cells`. A sum of several leaves, or an empty cell, is read-only. A cell that is one leaf
    carries its id and data-leaf and, when the plan may be edited (`can_edit`), an input posting its new amount
    to `cell_url` + the leaf; a refused edit shows what was typed and the message, above the attainment.
    Every value is escaped (`_e`)."""
    editable = context.get("can_edit")
    label, url = _e(_("Target")), _e(context.get("cell_url", ""))
    html = []
    for cell in cells:
        testid, value, text = _e(cell.testid), _e(cell.value), _e(cell.text)
        notes = _att(cell.att)
        if cell.error:
            notes = f'<small class="errorlist" role="alert" data-testid="cell-error">{_e(cell.error)}</small>{notes}'
        if cell.leaf is None:
            html.append(f'<td class="num" data-testid="{testid}" data-value="{value}">{text}{notes}</td>')
            continue
        leaf = int(cell.leaf)
        opening = (
            f'<td class="num cell{" refused" if cell.error else ""}" id="cell-{leaf}" data-testid="{testid}" '
            f'data-leaf="{leaf}" data-value="{value}">'
        )
        if not editable:
            html.append(f"{opening}{text}{notes}</td>")
            continue
        shown = _e(cell.typed) if cell.error else value
        html.append(
            f'{opening}<input name="amount" value="{shown}" inputmode="decimal" autocomplete="off" '
            f'aria-label="{label}" hx-post="{url}{leaf}/" hx-trigger="change" hx-include="#grid-params" '
            f'hx-target="#grid" hx-swap="outerHTML" hx-vals="{_e(cell.vals)}" data-testid="{testid}-input">'
            f"{notes}</td>"
        )
    return SafeString("".join(html))
