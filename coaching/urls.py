"""The weekly review's screens (issue 13): home pages, the review, the pipeline flow, the funnel and the
driver diagnosis, the forecast call and the meeting. Each part keeps its own block below."""

from django.urls import path  # noqa: F401  (the blocks below use it)

from coaching.views import analytics as analytics_views

app_name = "coaching"

urlpatterns: list = [
    # -- home pages and the review (coaching/views/home.py, coaching/views/review.py)
    # -- pipeline flow and at-risk deals (coaching/views/flow.py)
    # -- funnel, win rate and cycle, driver diagnosis (coaching/views/analytics.py)
    path("funnel/", analytics_views.funnel_page, name="funnel"),
    path("drivers/", analytics_views.drivers_page, name="drivers"),
    # -- forecast call (coaching/views/forecast.py)
    # -- meetings and action items (coaching/views/meetings.py)
]
