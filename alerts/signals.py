"""Where the alert rules' inputs come from: one MarketSignals per market per evaluation.

Everything the rules read enters here, so switching a source is a change in this file only.
The book KPIs are the newest 1 s sample (compliance_sample, compliance/migrations/0002_timeseries.py)
so a blow-out is seen within seconds rather than after the minute roll-up; today's uptime and
the escalation standing are the compliance engine's judged results (DailyResult, Violation).
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from compliance.models import DailyResult, ExchangeIndicator, Market, OwnOrder
from compliance.selectors import escalation_standing

from .kinds import MarketSignals

CANCEL_WINDOW = timedelta(hours=24)
INDICATOR_MAX_AGE = timedelta(minutes=30)  # apiTradingStatus is polled far more often than this
RATE_LIMIT_WINDOW = timedelta(minutes=5)
LOOKBACK = timedelta(minutes=10)  # how far back to look for the newest sample


def market_signals(*, market: Market, now: datetime) -> MarketSignals:
    book = _book(market_id=market.id, now=now)
    indicator_name, indicator_ratio, locked, lock_detail = _indicators(market=market, now=now)
    return MarketSignals(
        now=now,
        venue_tier=market.venue.tier,
        cancel_ratio_pct=_cancel_ratio_pct(market_id=market.id, now=now),
        indicator_name=indicator_name,
        indicator_ratio=indicator_ratio,
        locked=locked,
        lock_detail=lock_detail,
        escalation_step=escalation_standing(market_id=market.id, on=now.date())["violation_days_90d"],
        rate_limit_hits=_rate_limit_hits(venue_id=market.venue_id, now=now),
        **book,
        **_uptime_today(market_id=market.id, now=now),
    )


def _book(*, market_id: int, now: datetime) -> dict:
    stale = timedelta(seconds=settings.STALE_AFTER_SECONDS)
    with connection.cursor() as cur:
        cur.execute(
            """SELECT ts FROM compliance_sample WHERE market_id = %s AND ts <= %s AND ts > %s ORDER BY ts DESC LIMIT 1""",
            [market_id, now, now - LOOKBACK],
        )
        latest = cur.fetchone()
        cur.execute(
            """SELECT ts, spread_ask_pct, spread_mid_pct, depth_bid_usd, depth_ask_usd FROM compliance_sample
               WHERE market_id = %s AND valid AND ts <= %s AND ts > %s ORDER BY ts DESC LIMIT 1""",
            [market_id, now, now - LOOKBACK],
        )
        valid = cur.fetchone()
    book = {
        "latest_sample_age_s": (now - latest[0]).total_seconds() if latest else None,
        "latest_valid_age_s": (now - valid[0]).total_seconds() if valid else None,
        "fresh": bool(valid) and now - valid[0] <= stale,
    }
    if valid:
        book.update(spread_ask_pct=valid[1], spread_mid_pct=valid[2], depth_bid_usd=valid[3], depth_ask_usd=valid[4])
    return book


def _uptime_today(*, market_id: int, now: datetime) -> dict:
    """Today's judged uptime so far (compliance.judging writes it on its beat); unknown until then."""
    today = DailyResult.objects.filter(market_id=market_id, day=now.date()).first()
    if today is None or today.uptime_required_pct is None:
        return {}
    return {
        "uptime_lost_minutes": today.details.get("lost_minutes"),
        "uptime_allowed_minutes": today.details.get("budget_allowed_minutes"),
        "uptime_budget_minutes": today.breach_budget_minutes,
        "uptime_unrecoverable": today.unrecoverable,
    }


def _cancel_ratio_pct(*, market_id: int, now: datetime) -> float | None:
    counts = OwnOrder.objects.filter(market_id=market_id, placed_at__gt=now - CANCEL_WINDOW, placed_at__lte=now).aggregate(
        placed=Count("id"), cancelled=Count("id", filter=Q(status="CANCELED"))
    )
    return None if not counts["placed"] else counts["cancelled"] / counts["placed"] * 100


def _indicators(*, market: Market, now: datetime) -> tuple[str | None, float | None, bool | None, str]:
    """Latest apiTradingStatus row per indicator (this symbol's and the account's)."""
    rows = (
        ExchangeIndicator.objects.filter(venue_id=market.venue_id, observed_at__gt=now - INDICATOR_MAX_AGE, observed_at__lte=now)
        .filter(Q(market_id=market.id) | Q(market__isnull=True))
        .order_by("indicator", "market_id", "-observed_at")
        .distinct("indicator", "market_id")
    )
    rows = list(rows)
    if not rows:
        return None, None, None, ""
    worst = max((r for r in rows if r.trigger_value > 0), key=lambda r: r.value / r.trigger_value, default=None)
    locks = [r for r in rows if r.is_locked]
    lock_detail = "; ".join(
        f"{r.indicator} {r.value:g} ≥ {r.trigger_value:g}"
        + (f", recovers {r.planned_recover_time:%Y-%m-%d %H:%M} UTC" if r.planned_recover_time else "")
        for r in locks
    )
    if worst is None:
        return None, None, bool(locks), lock_detail
    return f"{worst.indicator} {worst.value:g} / trigger {worst.trigger_value:g}", worst.value / worst.trigger_value, bool(locks), lock_detail


def _rate_limit_hits(*, venue_id: int, now: datetime) -> int | None:
    try:
        from collectors.models import ApiResponse
    except ImportError:  # collectors' API-health log not installed
        return None
    return ApiResponse.objects.filter(
        venue_id=venue_id, http_status__in=(429, 418), at__gt=now - RATE_LIMIT_WINDOW, at__lte=now
    ).count()
