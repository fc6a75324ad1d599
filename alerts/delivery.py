"""Sending recorded notifications: claim, send, record — the work queue is the table.

Guarantees and the one residual window:
- A Notification row exists (unique per event and channel) before anything is sent.
- A dispatcher claims a row with a conditional UPDATE that succeeds for exactly one
  dispatcher (queued and due, or sending with an expired lease), so two never send it twice.
- A dispatcher killed after claiming leaves the row 'sending' with a lease; when the lease
  expires any dispatcher reclaims it, so nothing queued is lost and, if the kill came before
  the transport was reached, the message still goes out exactly once.
- Residual window (at-least-once): killed after the receiver accepted the message but before
  the 'sent' UPDATE, or a send outliving its lease. Then the message can arrive twice; the
  delivery id is stable across retries (webhook X-LCM-Delivery, email Message-ID) so
  receivers can drop the duplicate. Slack has no such key. The lease is longer than any
  transport timeout to keep the second case out.
"""
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.utils import timezone

from config.env import envfloat, envint

from .models import Channel, DeliveryStatus, Notification
from .transports import TRANSPORTS, DeliveryError, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    lease_seconds: float = envfloat("ALERTS_CLAIM_LEASE_SECONDS", 120.0)
    retry_base_seconds: float = envfloat("ALERTS_RETRY_BASE_SECONDS", 15.0)
    retry_cap_seconds: float = envfloat("ALERTS_RETRY_CAP_SECONDS", 900.0)
    max_attempts: int = envint("ALERTS_MAX_ATTEMPTS", 40)  # ~8 h at the cap, then 'failed' and shown

    def retry_delay(self, attempts: int, retry_after_s: float | None = None) -> float:
        delay = min(self.retry_cap_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1))
        return max(delay, retry_after_s or 0)


DEFAULT_POLICY = Policy()


def due_ids(*, now: datetime, limit: int = 100) -> list:
    return list(
        Notification.objects.filter(
            Q(status=DeliveryStatus.QUEUED, next_attempt_at__lte=now) | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now),
            channel__enabled=True, channel__broken_at__isnull=True,
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )


def claim(notification_id, *, now: datetime, policy: Policy = DEFAULT_POLICY) -> uuid.UUID | None:
    """The claim token if this caller now owns the notification, else None."""
    token = uuid.uuid4()
    changed = Notification.objects.filter(
        Q(status=DeliveryStatus.QUEUED, next_attempt_at__lte=now) | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now),
        pk=notification_id,
    ).update(
        status=DeliveryStatus.SENDING, claim_token=token, claimed_until=now + timedelta(seconds=policy.lease_seconds),
        attempts=F("attempts") + 1,
    )
    return token if changed == 1 else None


def send_claimed(notification_id, token: uuid.UUID, *, policy: Policy = DEFAULT_POLICY) -> str:
    """Send a claimed notification and record the outcome; returns the resulting status."""
    n = Notification.objects.select_related("channel").get(pk=notification_id)
    mine = Notification.objects.filter(pk=notification_id, claim_token=token)
    started = time.monotonic()
    try:
        transport = TRANSPORTS[n.channel.kind](n.channel.config)
        transport.send(Message.from_payload(n.payload), delivery_id=str(n.pk))
    except (DeliveryError, ValidationError) as exc:
        # A stored config that no longer parses (edited in the admin) is as permanent as a 410.
        permanent = not isinstance(exc, DeliveryError) or exc.permanent
        now = timezone.now()
        error = str(exc)[:1000]
        if permanent:
            mine.update(status=DeliveryStatus.FAILED, last_error=error, claim_token=None, claimed_until=None)
            mark_broken(n.channel, reason=error, now=now)
            return DeliveryStatus.FAILED
        if n.attempts >= policy.max_attempts:
            mine.update(status=DeliveryStatus.FAILED, last_error=f"gave up after {n.attempts} attempts: {error}",
                        claim_token=None, claimed_until=None)
            return DeliveryStatus.FAILED
        delay = policy.retry_delay(n.attempts, getattr(exc, "retry_after_s", None))
        mine.update(status=DeliveryStatus.QUEUED, last_error=error, claim_token=None, claimed_until=None,
                    next_attempt_at=now + timedelta(seconds=delay))
        log.warning("notification %s to %s failed (attempt %d), retry in %.0f s: %s", n.pk, n.channel, n.attempts, delay, error)
        return DeliveryStatus.QUEUED
    recorded = mine.update(
        status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error="", claim_token=None, claimed_until=None,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    if not recorded:
        log.error("notification %s was sent but its claim had expired and moved on: it may arrive twice", n.pk)
    return DeliveryStatus.SENT


def deliver_due(*, policy: Policy = DEFAULT_POLICY, limit: int = 100) -> dict[str, int]:
    """One pass of the dispatcher: each due notification is tried at most once."""
    outcome: dict[str, int] = {}
    for notification_id in due_ids(now=timezone.now(), limit=limit):
        token = claim(notification_id, now=timezone.now(), policy=policy)
        if token is None:
            continue  # another dispatcher has it
        status = send_claimed(notification_id, token, policy=policy)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


def mark_broken(channel: Channel, *, reason: str, now: datetime) -> None:
    Channel.objects.filter(pk=channel.pk, broken_at__isnull=True).update(broken_at=now, broken_reason=reason[:300])
    log.error("channel %s marked broken: %s", channel, reason)
