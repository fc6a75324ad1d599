"""Celery doors to the compliance engine: each task calls compliance.judging / rollups and returns.

Judging fans out one task per market and day, so the markets spread over the workers.
"""
from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from . import judging
from .models import Market
from .rollups import roll_up_pending
from .selectors import active_markets


@shared_task
def roll_up_recent_minutes() -> int:
    """Every minute: roll up the minutes whose samples arrived or changed (late data included),
    then judge again each (market, day) those minutes belong to. A market that sent nothing
    (its collector is down) is judged too, so its silent minutes count as unknown now rather
    than when data returns. Returns the days dispatched."""
    touched = roll_up_pending()
    today = timezone.now().date()
    silent = set(active_markets().values_list("pk", flat=True)) - {m for m, day in touched if day == today}
    for market_id, day in sorted(touched | {(m, today) for m in silent}):
        judge_market_day.delay(market_id, day.isoformat())
    return len(touched) + len(silent)


@shared_task
def judge_market_day(market_id: int, day: str, score: bool = False) -> bool:
    """Judge one market's UTC day (closed, or so far today); with score, also store the closed
    day's liquidity score. False when no obligation governs the day."""
    now = timezone.now()
    market = Market.objects.select_related("venue").get(pk=market_id)
    result = judging.judge_day(market=market, day=date.fromisoformat(day), now=now)
    if result is not None and score:
        judging.score_closed_day(market=market, day=result.day, now=now)
    return result is not None


@shared_task
def judge_closed_day() -> int:
    """00:00 UTC: the day that just closed, for every active market, with its liquidity score."""
    roll_up_pending()
    day = (timezone.now() - timedelta(minutes=1)).date()
    markets = list(active_markets().values_list("pk", flat=True))
    for market_id in markets:
        judge_market_day.delay(market_id, day.isoformat(), score=True)
    return len(markets)


@shared_task
def score_trailing_24h() -> int:
    """Every 15 minutes: the trailing-24 h liquidity score of every active market."""
    now = timezone.now()
    return sum(judging.score_trailing_24h(market=m, now=now) is not None for m in active_markets())


@shared_task
def drop_old_minute_bars() -> list[str]:
    """Daily retention of minute bars: whole daily partitions older than MINUTE_BAR_RETENTION_DAYS
    (default about five years: the bars are the audit evidence that outlives the 1 s samples)."""
    from config.env import envint

    from .partitions import drop_partitions_before
    from .rollups import MINUTE_BAR_TABLE

    cutoff = timezone.now().date() - timedelta(days=envint("MINUTE_BAR_RETENTION_DAYS", 1830))
    return drop_partitions_before(cutoff, tables=(MINUTE_BAR_TABLE,))
