"""The weekly review's screens (issue 13): home pages, the review, the pipeline flow, the funnel and the
driver diagnosis, the forecast call and the meeting. Each part keeps its own block below."""

from django.urls import path

from coaching.views import review

app_name = "coaching"

urlpatterns: list = [
    # -- home pages and the review (coaching/views/home.py, coaching/views/review.py); the home page is the
    #    site's root, `home` in salesmgmt/urls.py
    path("", review.review, name="review"),
    # -- pipeline flow and at-risk deals (coaching/views/flow.py)
    # -- funnel, win rate and cycle, driver diagnosis (coaching/views/analytics.py)
    # -- forecast call (coaching/views/forecast.py)
    # -- meetings and action items (coaching/views/meetings.py)
]
