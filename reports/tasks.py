"""Celery doors to reports.services (thin: each calls one service)."""
from celery import shared_task
from django.utils import timezone

from . import services
from .models import Status, Trigger


@shared_task(name="reports.generate")
def generate_report_task(report_id: int) -> str:
    report = services.generate_report(report_id)
    if report.status == Status.DONE and report.trigger == Trigger.SCHEDULED:
        services.email_report(report)
    return report.status


@shared_task(name="reports.schedule_closed_periods")
def schedule_closed_periods_task() -> int:
    return len(services.schedule_closed_periods(now=timezone.now()))


@shared_task(name="reports.reclaim_stale")
def reclaim_stale_reports_task() -> int:
    return len(services.reclaim_stale_reports(now=timezone.now()))
