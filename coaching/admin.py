"""Admin: forecast submissions, meetings and action items are read-only here (they change through the
services: a held meeting and a dated forecast are records)."""

from django.contrib import admin

from coaching import models
from salesmgmt.admin import ReadOnlyAdmin


@admin.register(models.ForecastSubmission)
class ForecastSubmissionAdmin(ReadOnlyAdmin):
    list_display = ("period_key", "level", "owner", "region", "week", "commit", "best_case", "submitted_at")
    list_filter = ("level", "period_key")
    search_fields = ("owner__username", "region__name")
    date_hierarchy = "submitted_at"


@admin.register(models.Meeting)
class MeetingAdmin(ReadOnlyAdmin):
    list_display = ("title", "region", "week", "status", "held_at", "held_by")
    list_filter = ("status",)
    search_fields = ("title", "region__name")


@admin.register(models.ActionItem)
class ActionItemAdmin(ReadOnlyAdmin):
    list_display = ("what", "owner", "due_date", "status", "region", "meeting", "closed_in")
    list_filter = ("status",)
    search_fields = ("what", "owner__username")


@admin.register(models.CoachingSession)
class CoachingSessionAdmin(ReadOnlyAdmin):
    list_display = ("date", "rep", "manager", "region", "focus_kind", "focus", "acknowledged_at")
    list_filter = ("focus_kind",)
    search_fields = ("focus", "rep__username", "manager__username")


@admin.register(models.Commitment)
class CommitmentAdmin(ReadOnlyAdmin):
    list_display = ("what", "rep", "due_date", "status", "session", "reviewed_in")
    list_filter = ("status",)
    search_fields = ("what", "rep__username")


@admin.register(models.ProjectReview)
class ProjectReviewAdmin(ReadOnlyAdmin):
    list_display = ("title", "region", "date", "status", "held_at", "held_by")
    list_filter = ("status",)
    search_fields = ("title", "region__name")
