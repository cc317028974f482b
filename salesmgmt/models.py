"""Infrastructure tables shared by every app (no business data here)."""

from django.db import models
from django.utils import timezone


class OutboxTask(models.Model):
    """Background work recorded in the same transaction as the change that needs it.

    A row is deleted once the broker accepted the task; rows left behind (broker down, publish
    failed) are sent again by the `flush_outbox` beat job, so a Redis outage loses no work.
    `key` coalesces duplicates: the same work pending twice is one row.
    """

    name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    key = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.name}{tuple(self.args)}"


class Freshness(models.Model):
    """The version of one freshness key (`salesmgmt.freshness`): bumped after a commit that changed what the key
    stands for (a region's deals, a person's targets, anything), read into the keys of cached pages."""

    key = models.CharField(max_length=64, primary_key=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "salesmgmt_freshness"

    def __str__(self):
        return f"{self.key}={self.version}"
