"""Where the alert rules' inputs come from: one MarketSignals per market per evaluation.

Everything the rules read enters here, so switching a source is a change in this file only.
The book KPIs and today's uptime are read from compliance_sample (the 1 s samples,
compliance/migrations/0002_timeseries.py) until the compliance engine's selectors provide
the judged figures; then `_book_and_uptime` becomes a call to them.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from compliance.models import ExchangeIndicator, Market, OwnOrder

from .kinds import MarketSignals
from .models import AlertEvent, EventKind

CANCEL_WINDOW = timedelta(hours=24)
INDICATOR_MAX_AGE = timedelta(minutes=30)  # apiTradingStatus is polled far more often than this
ESCALATION_WINDOW = timedelta(days=90)  # DESIGN.md 'Breaches': escalation ladder over a rolling 90 days
RATE_LIMIT_WINDOW = timedelta(minutes=5)
LOOKBACK = timedelta(minutes=10)  # how far back to look for the newest sample


def market_signals(*, market: Market, terms: dict, now: datetime) -> MarketSignals:
    book = _book_and_uptime(market_id=market.id, terms=terms, now=now)
    indicator_name, indicator_ratio, locked, lock_detail = _indicators(market=market, now=now)
    return MarketSignals(
        now=now,
        venue_tier=market.venue.tier,
        cancel_ratio_pct=_cancel_ratio_pct(market_id=market.id, now=now),
        indicator_name=indicator_name,
        indicator_ratio=indicator_ratio,
        locked=locked,
        lock_detail=lock_detail,
        escalation_step=_violations_90d(market_id=market.id, now=now),
        rate_limit_hits=_rate_limit_hits(venue_id=market.venue_id, now=now),
        **book,
    )


def _book_and_uptime(*, market_id: int, terms: dict, now: datetime) -> dict:
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
    book.update(_uptime_today(market_id=market_id, terms=terms, now=now))
    return book


def _uptime_today(*, market_id: int, terms: dict, now: datetime) -> dict:
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed, compliant = minutes_compliant(market_id=market_id, terms=terms, start=day_start, end=now.replace(second=0, microsecond=0))
    return {"uptime_minutes_elapsed": elapsed, "uptime_non_compliant_minutes": elapsed - compliant}


def minutes_compliant(*, market_id: int, terms: dict, start: datetime, end: datetime) -> tuple[int, int]:
    """(whole minutes in [start, end), compliant minutes among them) under the 'minute' method and
    'all valid' rule (DESIGN.md 'Uptime'). A minute without a valid sample is unknown: not compliant."""
    elapsed = int((end - start).total_seconds() // 60)
    spread_col = "spread_mid_pct" if terms.get("spread_denominator") == "mid" else "spread_ask_pct"
    depth_min = terms.get("depth_min_usd") if terms.get("depth_counts_for_uptime") else None
    side_min = terms.get("depth_min_side_usd") if terms.get("depth_counts_for_uptime") else None
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT count(*) FROM (
                  SELECT date_trunc('minute', ts) AS minute,
                         bool_and({spread_col} <= %(target)s
                                  AND (%(depth_min)s::float IS NULL OR depth_bid_usd + depth_ask_usd >= %(depth_min)s::float)
                                  AND (%(side_min)s::float IS NULL OR LEAST(depth_bid_usd, depth_ask_usd) >= %(side_min)s::float)
                         ) FILTER (WHERE valid) AS compliant
                  FROM compliance_sample
                  WHERE market_id = %(market)s AND ts >= %(start)s AND ts < %(end)s
                  GROUP BY 1) minutes
                WHERE compliant""",
            {
                "target": float(terms["spread_target_max_pct"]), "market": market_id, "start": start, "end": end,
                "depth_min": None if depth_min is None else float(depth_min),
                "side_min": None if side_min is None else float(side_min),
            },
        )
        return elapsed, cur.fetchone()[0]


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


def _violations_90d(*, market_id: int, now: datetime) -> int:
    """Days in the rolling 90 days on which a critical KPI alert of this market fired.

    Stands in for the compliance engine's violation log until it exists.
    """
    return (
        AlertEvent.objects.filter(
            alert__rule__market_id=market_id, alert__rule__severity="critical", kind=EventKind.FIRING,
            at__gt=now - ESCALATION_WINDOW, at__lte=now,
        )
        .exclude(alert__rule__kind__in=("escalation_step", "collector_down", "data_gap", "rate_limited", "clock_offset"))
        .dates("at", "day")
        .count()
    )


def _rate_limit_hits(*, venue_id: int, now: datetime) -> int | None:
    try:
        from collectors.models import ApiResponse
    except ImportError:  # collectors' API-health log not installed
        return None
    return ApiResponse.objects.filter(
        venue_id=venue_id, http_status__in=(429, 418), at__gt=now - RATE_LIMIT_WINDOW, at__lte=now
    ).count()
