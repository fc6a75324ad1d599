"""The alerts app's periodic work (merged into Celery beat by config/celery.py)."""
from celery.schedules import crontab

from config.env import envfloat

BEAT_SCHEDULE = {
    "alerts-evaluate": {"task": "alerts.tasks.evaluate_alerts", "schedule": envfloat("ALERTS_EVALUATE_EVERY_SECONDS", 5.0)},
    "alerts-deliver": {"task": "alerts.tasks.deliver_notifications", "schedule": envfloat("ALERTS_DELIVER_EVERY_SECONDS", 10.0)},
    # 00:00 UTC (CELERY_TIMEZONE is UTC): the digest of the day that just closed.
    "alerts-daily-digest": {"task": "alerts.tasks.send_daily_digest", "schedule": crontab(minute=0, hour=0)},
}
