"""Celery doors to the compliance engine: each task calls compliance.judging / rollups and returns."""
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import judging
from .models import Market
from .rollups import roll_up_pending
from .selectors import active_markets


@shared_task
def roll_up_recent_minutes() -> int:
    """Every minute: roll up the minutes whose samples arrived or changed (late data included),
    then re-judge each day those minutes belong to. Returns the number of days judged."""
    now = timezone.now()
    touched = roll_up_pending()
    markets = Market.objects.select_related("venue").in_bulk({m for m, _ in touched})
    for market_id, day in sorted(touched):
        judging.judge_day(market=markets[market_id], day=day, now=now)
    return len(touched)


@shared_task
def judge_closed_day() -> int:
    """00:00 UTC: the day that just closed, for every active market, and its liquidity score."""
    now = timezone.now()
    roll_up_pending()
    day = (now - timedelta(minutes=1)).date()
    judged = 0
    for market in active_markets():
        if judging.judge_day(market=market, day=day, now=now) is not None:
            judging.score_closed_day(market=market, day=day, now=now)
            judged += 1
    return judged


@shared_task
def score_trailing_24h() -> int:
    """Every 15 minutes: the trailing-24 h liquidity score of every active market."""
    now = timezone.now()
    return sum(judging.score_trailing_24h(market=m, now=now) is not None for m in active_markets())
