"""The weekly review's screens (issue 13): home pages, the review, the pipeline flow, the funnel and the
driver diagnosis, the forecast call and the meeting. Each part keeps its own block below."""

from django.urls import path

from coaching.views import analytics as analytics_views
from coaching.views import flow, review
from coaching.views import forecast as forecast_views
from coaching.views import meetings as meeting_views
from coaching.views import projects as project_views
from coaching.views import scorecard as scorecard_views
from coaching.views import sessions as session_views

app_name = "coaching"

urlpatterns: list = [
    # -- home pages and the review (coaching/views/home.py, coaching/views/review.py); the home page is the
    #    site's root, `home` in salesmgmt/urls.py
    path("", review.review, name="review"),
    # -- pipeline flow and at-risk deals (coaching/views/flow.py)
    path("flow/", flow.flow, name="flow"),
    path("flow/box/", flow.flow_box, name="flow_box"),
    path("at-risk/", flow.at_risk, name="at_risk"),
    # -- funnel, win rate and cycle, driver diagnosis (coaching/views/analytics.py)
    path("funnel/", analytics_views.funnel_page, name="funnel"),
    path("drivers/", analytics_views.drivers_page, name="drivers"),
    # -- forecast call (coaching/views/forecast.py)
    path("forecast/", forecast_views.forecast, name="forecast"),
    path("forecast/submit/", forecast_views.forecast_submit, name="forecast_submit"),
    path("forecast/team/", forecast_views.forecast_team_submit, name="forecast_team_submit"),
    # -- meetings and action items (coaching/views/meetings.py)
    path("meetings/", meeting_views.meeting_list, name="meetings"),
    path("meetings/<int:pk>/", meeting_views.meeting_detail, name="meeting"),
    path("meetings/<int:pk>/edit/", meeting_views.meeting_edit, name="meeting_edit"),
    path("meetings/<int:pk>/items/", meeting_views.item_create, name="meeting_item_create"),
    path("meetings/<int:pk>/items/<int:item_pk>/status/", meeting_views.item_status, name="meeting_item_status"),
    path("meetings/<int:pk>/hold/", meeting_views.meeting_hold, name="meeting_hold"),
    path("meetings/<int:pk>/print/", meeting_views.meeting_print, name="meeting_print"),
    path("meetings/<int:pk>/export.xlsx", meeting_views.meeting_export, name="meeting_export"),
    # -- 1:1 coaching sessions (coaching/views/sessions.py)
    path("coaching/", session_views.session_list, name="coaching_sessions"),
    path("coaching/<int:pk>/", session_views.session_detail, name="coaching_session"),
    path("coaching/<int:pk>/edit/", session_views.session_edit, name="coaching_session_edit"),
    path("coaching/<int:pk>/commitments/", session_views.commitment_add, name="coaching_commitment_add"),
    path("coaching/<int:pk>/follow-up/<int:commitment_pk>/", session_views.follow_up, name="coaching_follow_up"),
    path("coaching/<int:pk>/acknowledge/", session_views.acknowledge, name="coaching_acknowledge"),
    path("coaching/<int:pk>/print/", session_views.session_print, name="coaching_session_print"),
    # -- project analysis meetings (coaching/views/projects.py)
    path("projects/", project_views.review_list, name="project_reviews"),
    path("projects/<int:pk>/", project_views.review_detail, name="project_review"),
    path("projects/<int:pk>/edit/", project_views.review_edit, name="project_review_edit"),
    path("projects/<int:pk>/deals/<int:deal_pk>/", project_views.entry_save, name="project_entry_save"),
    path("projects/<int:pk>/deals/<int:deal_pk>/decisions/", project_views.decision_add, name="project_decision_add"),
    path("projects/<int:pk>/hold/", project_views.review_hold, name="project_review_hold"),
    path("projects/<int:pk>/export.xlsx", project_views.review_export, name="project_review_export"),
    # -- the scorecard (coaching/views/scorecard.py)
    path("scorecard/", scorecard_views.scorecard, name="scorecard"),
    path("scorecard/config/", scorecard_views.scorecard_config, name="scorecard_config"),
    path("scorecard/export.xlsx", scorecard_views.scorecard_export, name="scorecard_export"),
]
