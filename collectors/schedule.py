"""Periodic work of the collectors (merged into Celery beat by config/celery.py)."""
from celery.schedules import crontab

from config.env import envfloat

# The collectors queue is filled by long-running shard tasks, so the short ones go to "default".
BEAT_SCHEDULE = {
    # Takeover within 60 s: lease TTL (20 s) + this period.
    "collectors-supervise": {"task": "collectors.tasks.supervise", "schedule": envfloat("COLLECTOR_SUPERVISE_S", 10.0),
                             "options": {"queue": "default"}},
    # apiTradingStatus: weight 1 per call (or 10 without symbol); once a minute is far inside the limits.
    "collectors-indicators": {"task": "collectors.tasks.poll_indicators", "schedule": envfloat("INDICATOR_POLL_S", 60.0),
                              "options": {"queue": "default"}},
    "collectors-partitions": {"task": "collectors.tasks.maintain_partitions", "schedule": crontab(minute=5),
                              "options": {"queue": "default"}},
}
