"""Where the alert rules' inputs come from: one MarketSignals per market per evaluation.

Everything the rules read enters here, so switching a source is a change in this file only.
The book KPIs are the newest 1 s sample (compliance_sample, compliance/migrations/0002_timeseries.py)
so a blow-out is seen within seconds rather than after the minute roll-up; today's uptime and
the escalation standing are the compliance engine's judged results (DailyResult, Violation).

Every source is read for all markets at once (one query per kind of signal), so a pass costs
the same number of queries for 10 markets as for 500.
"""
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from compliance.evaluation import ESCALATION_WINDOW_DAYS, escalation_level
from compliance.models import DailyResult, ExchangeIndicator, Market, OwnOrder, Violation

from .kinds import MarketSignals

CANCEL_WINDOW = timedelta(hours=24)
INDICATOR_MAX_AGE = timedelta(minutes=30)  # apiTradingStatus is polled far more often than this
RATE_LIMIT_WINDOW = timedelta(minutes=5)
LOOKBACK = timedelta(minutes=10)  # how far back to look for the newest sample


def signals_of_markets(*, markets: list[Market], now: datetime) -> dict[int, MarketSignals]:
    """{market_id: MarketSignals} for the given markets (venue loaded) as of `now`."""
    ids = [m.id for m in markets]
    books = _books(market_ids=ids, now=now)
    uptimes = _uptimes_today(market_ids=ids, now=now)
    cancel_ratios = _cancel_ratios_pct(market_ids=ids, now=now)
    indicators = _indicators(markets=markets, now=now)
    escalation = _escalation_steps(market_ids=ids, now=now)
    rate_limit_hits = _rate_limit_hits(venue_ids={m.venue_id for m in markets}, now=now)
    result = {}
    for m in markets:
        indicator_name, indicator_ratio, locked, lock_detail = indicators[m.id]
        result[m.id] = MarketSignals(
            now=now,
            venue_tier=m.venue.tier,
            cancel_ratio_pct=cancel_ratios.get(m.id),
            indicator_name=indicator_name,
            indicator_ratio=indicator_ratio,
            locked=locked,
            lock_detail=lock_detail,
            escalation_step=escalation[m.id],
            rate_limit_hits=None if rate_limit_hits is None else rate_limit_hits.get(m.venue_id, 0),
            **books[m.id],
            **uptimes.get(m.id, {}),
        )
    return result


def _books(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """Newest sample and newest valid sample per market: two index probes per market on the
    (market_id, ts) primary key, newest first, rather than a scan of the lookback window."""
    stale = timedelta(seconds=settings.STALE_AFTER_SECONDS)
    with connection.cursor() as cur:
        cur.execute(
            """SELECT m.id, latest.ts, valid.ts, valid.spread_ask_pct, valid.spread_mid_pct, valid.depth_bid_usd, valid.depth_ask_usd
               FROM unnest(%(ids)s::bigint[]) AS m(id)
               LEFT JOIN LATERAL (
                   SELECT ts FROM compliance_sample
                   WHERE market_id = m.id AND ts <= %(now)s AND ts > %(since)s ORDER BY ts DESC LIMIT 1
               ) latest ON true
               LEFT JOIN LATERAL (
                   SELECT ts, spread_ask_pct, spread_mid_pct, depth_bid_usd, depth_ask_usd FROM compliance_sample
                   WHERE market_id = m.id AND valid AND ts <= %(now)s AND ts > %(since)s ORDER BY ts DESC LIMIT 1
               ) valid ON true""",
            {"ids": market_ids, "now": now, "since": now - LOOKBACK},
        )
        rows = cur.fetchall()
    books = {}
    for market_id, latest_ts, valid_ts, spread_ask, spread_mid, depth_bid, depth_ask in rows:
        book = {
            "latest_sample_age_s": (now - latest_ts).total_seconds() if latest_ts else None,
            "latest_valid_age_s": (now - valid_ts).total_seconds() if valid_ts else None,
            "fresh": valid_ts is not None and now - valid_ts <= stale,
        }
        if valid_ts is not None:
            book.update(spread_ask_pct=spread_ask, spread_mid_pct=spread_mid, depth_bid_usd=depth_bid, depth_ask_usd=depth_ask)
        books[market_id] = book
    return books


def _uptimes_today(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """Today's judged uptime so far (compliance.judging writes it on its beat); unknown until then."""
    uptimes = {}
    for today in DailyResult.objects.filter(market_id__in=market_ids, day=now.date()):
        if today.uptime_required_pct is None:
            continue
        uptimes[today.market_id] = {
            "uptime_lost_minutes": today.details.get("lost_minutes"),
            "uptime_allowed_minutes": today.details.get("budget_allowed_minutes"),
            "uptime_budget_minutes": today.breach_budget_minutes,
            "uptime_unrecoverable": today.unrecoverable,
        }
    return uptimes


def _cancel_ratios_pct(*, market_ids: list[int], now: datetime) -> dict[int, float]:
    """Cancelled / placed own orders over the last 24 h, for markets that placed any."""
    counts = (
        OwnOrder.objects.filter(market_id__in=market_ids, placed_at__gt=now - CANCEL_WINDOW, placed_at__lte=now)
        .values("market_id")
        .annotate(placed=Count("id"), cancelled=Count("id", filter=Q(status="CANCELED")))
    )
    return {c["market_id"]: c["cancelled"] / c["placed"] * 100 for c in counts}


def _escalation_steps(*, market_ids: list[int], now: datetime) -> dict[int, int]:
    """Violation days in the rolling window per market, counted by the compliance engine's ladder
    (compliance.evaluation.escalation_level, as compliance.selectors.escalation_standing does)."""
    on = now.date()
    days = defaultdict(list)
    for market_id, day in Violation.objects.filter(
        market_id__in=market_ids, day__gt=on - timedelta(days=ESCALATION_WINDOW_DAYS), day__lte=on
    ).values_list("market_id", "day"):
        days[market_id].append(day)
    return {market_id: escalation_level(days[market_id], on)[1] for market_id in market_ids}


def _indicators(*, markets: list[Market], now: datetime) -> dict[int, tuple[str | None, float | None, bool | None, str]]:
    """Latest apiTradingStatus row per indicator, the symbol's own and the account's (market empty)."""
    rows = (
        ExchangeIndicator.objects.filter(
            venue_id__in={m.venue_id for m in markets}, observed_at__gt=now - INDICATOR_MAX_AGE, observed_at__lte=now
        )
        .filter(Q(market_id__in=[m.id for m in markets]) | Q(market__isnull=True))
        .order_by("venue_id", "indicator", "market_id", "-observed_at")
        .distinct("venue_id", "indicator", "market_id")
    )
    own, account = defaultdict(list), defaultdict(list)
    for r in rows:
        (account[r.venue_id] if r.market_id is None else own[r.market_id]).append(r)
    return {m.id: _indicator_standing(own[m.id] + account[m.venue_id]) for m in markets}


def _indicator_standing(rows: list[ExchangeIndicator]) -> tuple[str | None, float | None, bool | None, str]:
    """(worst indicator as text, its value / trigger, locked, what locks it) of a market's latest rows."""
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


def _rate_limit_hits(*, venue_ids: set[int], now: datetime) -> dict[int, int] | None:
    """429 + 418 responses per venue in the window (venues without any are absent); None when the
    collectors' API-health log is not installed."""
    try:
        from collectors.models import ApiResponse
    except ImportError:
        return None
    return dict(
        ApiResponse.objects.filter(venue_id__in=venue_ids, http_status__in=(429, 418), at__gt=now - RATE_LIMIT_WINDOW, at__lte=now)
        .values_list("venue_id")
        .annotate(n=Count("id"))
    )
