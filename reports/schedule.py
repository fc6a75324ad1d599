from celery.schedules import crontab

# 00:00 UTC: the closed day (and, on the 1st, the closed month). Two minutes past midnight
# lets the last second's samples and the engine's roll-up of the last minute land first.
BEAT_SCHEDULE = {
    "reports-closed-periods": {
        "task": "reports.schedule_closed_periods",
        "schedule": crontab(minute=2, hour=0),
    },
    # Reports left 'running' by a worker that died are queued again once their lease runs out.
    "reports-reclaim-stale": {
        "task": "reports.reclaim_stale",
        "schedule": crontab(minute="*/5"),
    },
}
