"""URLs of the attainment screens."""

from django.urls import path

from targets.views import attainment

urlpatterns = [
    path("leaderboard/", attainment.leaderboard, name="leaderboard"),
]
