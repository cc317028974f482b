"""Every page that shows a review body (the live review, a meeting, its print page) loads what its charts and
tables need: plotly.js and the review's stylesheet. Without them a held meeting's charts stay blank."""

from pathlib import Path

from django.conf import settings

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def _including(names: set[str]) -> set[Path]:
    """Templates that include one of `names` (their paths relative to templates/), directly or through partials."""
    found: set[Path] = set()
    wanted = set(names)
    while True:
        more = {
            p
            for p in TEMPLATES.rglob("*.html")
            if p not in found and any(f'"{name}"' in p.read_text(encoding="utf-8") for name in wanted)
        }
        if not more:
            return found
        found |= more
        wanted |= {p.relative_to(TEMPLATES).as_posix() for p in more}


def test_every_page_with_a_review_body_loads_plotly_and_the_review_styles():
    pages = [p for p in _including({"coaching/review/_body.html"}) if not p.name.startswith("_")]
    assert {p.relative_to(TEMPLATES).as_posix() for p in pages} >= {
        "coaching/review/review.html",
        "coaching/meetings/detail.html",
        "coaching/meetings/print.html",
    }
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "vendor/plotly-" in text and "css/review.css" in text, page
