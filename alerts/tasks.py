"""Celery doors: a few lines each, calling services and the dispatcher."""
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import delivery, services


@shared_task(ignore_result=True)
def evaluate_alerts() -> int:
    recorded = services.evaluate_all()
    if recorded:
        deliver_notifications.delay()
    return recorded


@shared_task(ignore_result=True)
def deliver_notifications() -> dict:
    # Also runs on a beat: it picks up retries that came due and claims whose lease expired.
    return delivery.deliver_due()


@shared_task(ignore_result=True)
def send_daily_digest() -> int:
    recorded = services.record_daily_digest(day=(timezone.now() - timedelta(days=1)).date())
    deliver_notifications.delay()
    return recorded
