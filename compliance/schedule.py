"""The compliance engine's periodic work (merged into Celery beat by config/celery.py)."""
from celery.schedules import crontab

from config.env import envfloat

BEAT_SCHEDULE = {
    "compliance-roll-up": {
        "task": "compliance.tasks.roll_up_recent_minutes",
        "schedule": envfloat("COMPLIANCE_ROLL_UP_EVERY_SECONDS", 60.0),
    },
    # 00:00 UTC (CELERY_TIMEZONE is UTC): judge and score the day that just closed.
    "compliance-closed-day": {"task": "compliance.tasks.judge_closed_day", "schedule": crontab(minute=0, hour=0)},
    # DESIGN.md 'Liquidity score': logged every 15 minutes.
    "compliance-score-24h": {"task": "compliance.tasks.score_trailing_24h", "schedule": crontab(minute="*/15")},
    "compliance-minute-bar-retention": {"task": "compliance.tasks.drop_old_minute_bars", "schedule": crontab(minute=20, hour=0)},
}
