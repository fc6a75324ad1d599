"""Alert rules, their live state, the audit trail of what happened, channels and deliveries.

Delivery is a record first (the healthchecks style): a Notification row exists, unique per
(event, channel), before anything is sent; a dispatcher claims it with a conditional UPDATE
and a lease, so two dispatchers never send it twice and a crashed one's claim expires.
"""
import hashlib
import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from compliance.models import Market, Venue

from . import kinds
from .machine import AlertState, Notice, Status


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class AlertRule(models.Model):
    """One condition watched on one market. Thresholds default from the obligation in force."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=32, choices=kinds.KIND_CHOICES)
    threshold = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True,
        help_text="Empty = derived from the market's obligation in force (see the rule kind).",
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    for_seconds = models.PositiveIntegerField(help_text="How long the condition must hold before the alert fires.")
    clear_seconds = models.PositiveIntegerField(default=60, help_text="How long it must be back in range before it resolves.")
    renotify_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60)], help_text="At most one firing notice per this interval."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["market_id", "kind"]
        constraints = [models.UniqueConstraint(fields=["market", "kind"], name="alert_rule_unique_kind_per_market")]

    def __str__(self):
        return f"{self.market} · {self.get_kind_display()}"

    @property
    def fingerprint(self) -> str:
        """Stable identity of this alert across episodes (de-duplication key for receivers)."""
        return hashlib.sha256(f"{self.kind}:{self.market_id}".encode()).hexdigest()[:16]


class Alert(models.Model):
    """The live state of a rule's state machine (alerts.machine), plus acknowledgement and mute."""

    rule = models.OneToOneField(AlertRule, on_delete=models.CASCADE, related_name="alert")
    status = models.CharField(max_length=8, choices=[(s.value, s.value) for s in Status], default=Status.OK)
    episode = models.PositiveIntegerField(default=0)
    breach_since = models.DateTimeField(null=True, blank=True)
    firing_since = models.DateTimeField(null=True, blank=True)
    clear_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    announced = models.CharField(max_length=8, blank=True, choices=[(n.value, n.value) for n in Notice])
    firing_announced_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True, help_text="Last observed KPI value.")
    limit = models.FloatField(null=True, blank=True, help_text="The limit it was compared with.")
    detail = models.CharField(max_length=300, blank=True)
    evaluated_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When state and value were last recorded: on a state change, and every pass while pending or firing. "
                  "EvaluationClock says how far every rule has been evaluated.",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ack_note = models.TextField(blank=True)
    muted_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-firing_since"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        episode = f", episode {self.episode}" if self.episode else ""
        return f"{self.rule}: {self.status}{episode}"

    def machine_state(self) -> AlertState:
        return AlertState(
            status=Status(self.status), episode=self.episode, breach_since=self.breach_since,
            firing_since=self.firing_since, clear_since=self.clear_since, resolved_at=self.resolved_at,
            announced=Notice(self.announced) if self.announced else None, firing_announced_at=self.firing_announced_at,
        )

    def apply_machine_state(self, s: AlertState) -> None:
        for name in ("episode", "breach_since", "firing_since", "clear_since", "resolved_at", "firing_announced_at"):
            setattr(self, name, getattr(s, name))
        self.status = s.status.value
        self.announced = s.announced.value if s.announced else ""


class EventKind(models.TextChoices):
    PENDING = "pending", "Pending"
    CANCELLED = "cancelled", "Back in range before firing"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
    NOTICE = "notice", "Notice sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MUTED = "muted", "Muted"
    UNMUTED = "unmuted", "Unmuted"
    RULE_CHANGED = "rule_changed", "Rule changed"


class AlertEvent(models.Model):
    """Append-only history and audit trail: state changes, notices, acks, mutes, rule edits."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    notice = models.CharField(max_length=8, blank=True, choices=[(n.value, n.value) for n in Notice])
    episode = models.PositiveIntegerField()
    at = models.DateTimeField(db_index=True)
    value = models.FloatField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        what = f"{self.get_kind_display()} ({self.notice})" if self.notice else self.get_kind_display()
        return f"{self.at:%Y-%m-%d %H:%M:%S} UTC · {what} · {self.alert.rule}"


class EvaluationClock(models.Model):
    """How far every enabled rule has been evaluated: one row. An evaluation pass moves it forward
    with a conditional write that also locks it, so two passes never interleave and a late pass
    (an older `now`) does nothing instead of stepping the alerts back in time."""

    evaluated_through = models.DateTimeField()

    def __str__(self):
        return f"alerts evaluated through {self.evaluated_through:%Y-%m-%d %H:%M:%S} UTC"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    WEBHOOK = "webhook", "Webhook"


class Channel(models.Model):
    """Where notices go; `config` is the transport's JSON, parsed into its typed config on use."""

    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    config = models.JSONField()
    enabled = models.BooleanField(default=True)
    daily_digest = models.BooleanField(default=False, help_text="Also receives the daily compliance digest.")
    broken_at = models.DateTimeField(null=True, blank=True, help_text="Set on a permanent delivery error.")
    broken_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"


class Route(models.Model):
    """Sends matching alerts to a channel; an empty field matches anything."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="routes")
    venue = models.ForeignKey(Venue, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    rule_kind = models.CharField(max_length=32, blank=True, choices=kinds.KIND_CHOICES)
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)

    def matches(self, rule: AlertRule) -> bool:
        return (
            (self.venue_id is None or self.venue_id == rule.market.venue_id)
            and (self.market_id is None or self.market_id == rule.market_id)
            and (not self.rule_kind or self.rule_kind == rule.kind)
            and SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[self.min_severity]
        )


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending (claimed)"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """One message to one channel, recorded before it is sent. The payload is frozen at creation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(AlertEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    digest_day = models.DateField(null=True, blank=True)
    is_test = models.BooleanField(default=False)
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Exactly one delivery per (alert state change, channel) and per (digest day, channel).
            models.UniqueConstraint(fields=["event", "channel"], condition=Q(event__isnull=False), name="notification_once_per_event"),
            models.UniqueConstraint(
                fields=["digest_day", "channel"], condition=Q(digest_day__isnull=False), name="notification_once_per_digest"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
