"""The weekly review's screens (issue 13): home pages, the review, the pipeline flow, the funnel and the
driver diagnosis, the forecast call and the meeting. Each part keeps its own block below."""

from django.urls import path  # noqa: F401  (the blocks below use it)

from coaching.views import flow

app_name = "coaching"

urlpatterns: list = [
    # -- home pages and the review (coaching/views/home.py, coaching/views/review.py)
    # -- pipeline flow and at-risk deals (coaching/views/flow.py)
    path("flow/", flow.flow, name="flow"),
    path("flow/box/", flow.flow_box, name="flow_box"),
    path("at-risk/", flow.at_risk, name="at_risk"),
    # -- funnel, win rate and cycle, driver diagnosis (coaching/views/analytics.py)
    # -- forecast call (coaching/views/forecast.py)
    # -- meetings and action items (coaching/views/meetings.py)
]
