"""Stored audit reports and who receives them.

A Report row is the record of one generation: what was asked (scope, period), how far the
work got (status, progress — the page polls it), and what came out (the files under
MEDIA_ROOT/<directory>, each with its SHA-256 in `files` and in the manifest on disk).
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from compliance.models import Market, Venue

from .periods import KINDS


class Scope(models.TextChoices):
    MARKET = "market", "One market"
    VENUE = "venue", "Every market of a venue"
    DESK = "desk", "The whole desk"


class PeriodKind(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    RANGE = "range", "Range"


assert tuple(PeriodKind.values) == KINDS


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Trigger(models.TextChoices):
    ON_DEMAND = "on_demand", "On demand"
    SCHEDULED = "scheduled", "Scheduled"


class ScopedModel(models.Model):
    scope = models.CharField(max_length=8, choices=Scope.choices)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    venue = models.ForeignKey(Venue, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True

    def clean(self):
        if self.scope == Scope.MARKET and self.market_id is None:
            raise ValidationError({"market": "A market report needs a market."})
        if self.scope == Scope.VENUE and self.venue_id is None:
            raise ValidationError({"venue": "A venue report needs a venue."})
        if self.scope != Scope.MARKET and self.market_id is not None:
            raise ValidationError({"market": "Only a market report names a market."})
        if self.scope != Scope.VENUE and self.venue_id is not None:
            raise ValidationError({"venue": "Only a venue report names a venue."})

    @property
    def scope_label(self) -> str:
        if self.scope == Scope.MARKET:
            return str(self.market)
        if self.scope == Scope.VENUE:
            return f"venue {self.venue}"
        return "whole desk"


class Report(ScopedModel):
    period_kind = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ON_DEMAND)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100, updated while generating.")
    progress_note = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the current run claimed it (its claim token).")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress of the current run: its lease.")
    finished_at = models.DateTimeField(null=True, blank=True)
    directory = models.CharField(max_length=300, blank=True, help_text="Relative to MEDIA_ROOT.")
    files = models.JSONField(default=dict, blank=True, help_text="{file name: {sha256, bytes}}, as in the manifest.")
    inputs_sha256 = models.CharField(max_length=64, blank=True, help_text="Identity of the inputs (period, markets, versions).")
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["scope", "period_kind", "period_start"])]

    def __str__(self):
        return f"Report #{self.pk}: {self.scope_label}, {self.period_start:%Y-%m-%d %H:%M} – {self.period_end:%Y-%m-%d %H:%M} UTC"

    def clean(self):
        super().clean()
        if self.period_start and self.period_end and self.period_end <= self.period_start:
            raise ValidationError({"period_end": "The period ends before it starts."})


class Subscription(ScopedModel):
    """Someone who receives the scheduled reports of a scope by e-mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions")
    email = models.EmailField(blank=True, help_text="Empty = the user's own address.")
    daily = models.BooleanField(default=True)
    monthly = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username", "scope", "id"]

    def __str__(self):
        return f"{self.address} ← {self.scope_label}"

    @property
    def address(self) -> str:
        return self.email or self.user.email

    def wants(self, period_kind: str) -> bool:
        return {"day": self.daily, "month": self.monthly}.get(period_kind, False)
