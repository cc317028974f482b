"""Charts in the pages: one markup for every plotly figure, drawn by `static/js/charts.js`.

A figure is rendered as `<div class="chart" data-figure="{json}">` (its traces, layout and config as JSON in an
attribute, escaped): no inline script, so the Content-Security-Policy can forbid them. The page loads plotly.js
itself (`vendor/plotly-*.min.js`), as before."""

from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

# What every chart shows of plotly's own controls; a chart's config may add to it.
CONFIG = {"displaylogo": False, "responsive": True}


def chart_html(
    figure: Any, *, div_id: str | None = None, config: dict | None = None, validate: bool = True
) -> SafeString:
    """A figure (a plotly `go.Figure`, or a dict of `data` and `layout`) as a chart div for `charts.js`.

    `div_id` gives the div a fixed id (the same figure then renders the same markup every time). `validate=False`
    skips plotly's validation of a dict (graph objects cost ~30-100 ms a chart; the callers that pass plain dicts
    check their figures against plotly's schema in their tests)."""
    from plotly.io.json import to_json_plotly

    if hasattr(figure, "to_plotly_json"):
        plain = figure.to_plotly_json()
    elif validate:
        from plotly import graph_objects as go

        plain = go.Figure(figure).to_plotly_json()
    else:
        plain = dict(figure)
    payload = {
        "data": plain.get("data", []),
        "layout": plain.get("layout", {}),
        "config": CONFIG | (config or {}),
    }
    text = to_json_plotly(payload)
    if div_id:
        return format_html('<div class="chart" id="{}" data-figure="{}"></div>', div_id, text)
    return format_html('<div class="chart" data-figure="{}"></div>', text)
