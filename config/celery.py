import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lcm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each app states its own periodic work in <app>/schedule.py as BEAT_SCHEDULE = {...}.
BEAT_APPS = ("compliance", "collectors", "alerts", "reports")


def _beat_schedule() -> dict:
    schedule = {}
    for name in BEAT_APPS:
        try:
            module = importlib.import_module(f"{name}.schedule")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.schedule":
                raise
            continue
        schedule.update(module.BEAT_SCHEDULE)
    return schedule


app.conf.beat_schedule = _beat_schedule()
