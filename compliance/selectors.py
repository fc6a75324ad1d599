"""Reads of the domain (the HackSoft split: services write, selectors read)."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from django.db import connection

from . import behaviour
from .evaluation import (
    ESCALATION_WINDOW_DAYS, Bar, KpiStatus, Terms, escalation_level, lower_limit_status, upper_limit_status,
)
from .models import (
    DailyResult, ExchangeIndicator, LiquidityAlertClock, LiquidityScore, Market, ObligationVersion, OwnOrder, QuoteConversion,
    Violation,
)


class NoObligation(LookupError):
    """The market had no obligation in force at that instant."""


def obligation_in_force(*, market_id: int, at: datetime) -> ObligationVersion:
    version = (
        ObligationVersion.objects.filter(market_id=market_id, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .first()
    )
    if version is None:
        raise NoObligation(f"market {market_id} has no obligation in force at {at.isoformat()}")
    return version


def obligation_periods(*, market_id: int, start: datetime, end: datetime) -> list[tuple[datetime, datetime, ObligationVersion]]:
    """The versions in force over [start, end), each with the sub-interval it governs."""
    return obligation_periods_of_markets(market_ids=[market_id], start=start, end=end)[market_id]


def obligation_periods_of_markets(
    *, market_ids: list[int], start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, datetime, ObligationVersion]]]:
    """obligation_periods for several markets in one query: {market_id: periods}."""
    by_market: dict[int, list[ObligationVersion]] = {m: [] for m in market_ids}
    for v in ObligationVersion.objects.filter(market_id__in=market_ids, effective_from__lt=end).order_by(
        "market_id", "effective_from", "version"
    ):
        by_market[v.market_id].append(v)
    result = {}
    for market_id, versions in by_market.items():
        periods = []
        for i, v in enumerate(versions):
            lo = max(v.effective_from, start)
            hi = min(versions[i + 1].effective_from, end) if i + 1 < len(versions) else end
            if lo < hi:
                periods.append((lo, hi, v))
        result[market_id] = periods
    return result


def active_markets():
    return Market.objects.filter(is_active=True, venue__is_active=True).select_related("venue", "conversion_market")


def markets_overview() -> list[dict]:
    """One row per active market with the obligation currently in force (newest version)."""
    latest = ObligationVersion.objects.order_by("market_id", "-effective_from", "-version").distinct("market_id")
    by_market = {v.market_id: v for v in latest}
    return [{"market": m, "obligation": by_market.get(m.id)} for m in active_markets()]


# --- The compliance engine's reads: minute bars, stored results, a market's live status ---

MINUTE_BAR_COLUMNS = Bar._fields  # compliance_minute_bar columns, in Bar's order
LIVE_BAR_MAX_AGE = timedelta(minutes=2)
ORDER_CYCLE = timedelta(milliseconds=behaviour.QUANT_CYCLE_MS)  # an older latest bar means the KPIs are unknown now


def minute_bars(*, market_id: int, start: datetime, end: datetime) -> dict[datetime, Bar]:
    """The market's minute bars (compliance_minute_bar) with minute in [start, end), by minute."""
    # The minute comes back as epoch seconds: a day's 1440 timestamps parse several times faster.
    columns = ("date_part('epoch', minute)::bigint",) + MINUTE_BAR_COLUMNS[1:]
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(columns)} FROM compliance_minute_bar "
            "WHERE market_id = %s AND minute >= %s AND minute < %s ORDER BY minute",
            [market_id, start, end],
        )
        bars = {}
        for row in cur.fetchall():
            minute = datetime.fromtimestamp(row[0], tz=timezone.utc)
            bars[minute] = Bar(minute, *row[1:])
        return bars


def minute_mid_ranges(*, market_id: int, start: datetime, end: datetime) -> dict[datetime, tuple[float, float]]:
    """(mid_low, mid_high) of the market's minutes in [start, end): the volatility history."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT minute, mid_low, mid_high FROM compliance_minute_bar "
            "WHERE market_id = %s AND minute >= %s AND minute < %s AND mid_low IS NOT NULL",
            [market_id, start, end],
        )
        return {minute: (low, high) for minute, low, high in cur.fetchall()}


def escalation_standing(*, market_id: int, on: date) -> dict:
    """Where the market stands on the 90-day ladder on `on` (level None = no violation)."""
    days = Violation.objects.filter(
        market_id=market_id, day__gt=on - timedelta(days=ESCALATION_WINDOW_DAYS), day__lte=on
    ).values_list("day", flat=True)
    level, count = escalation_level(days, on)
    return {"level": level, "violation_days_90d": count}


def market_status(*, market_id: int, now: datetime) -> dict:
    """Current KPIs against the obligation in force, each ok / warning / breach / unknown, with
    today's uptime and breach budget, the latest liquidity score, the escalation standing and
    any running 72 h liquidity-alert clock. Reads stored results; judges nothing."""
    try:
        version = obligation_in_force(market_id=market_id, at=now)
    except NoObligation:
        return {"market_id": market_id, "obligation": None, "status": KpiStatus.UNKNOWN}
    terms = Terms.from_terms(version.terms(), version_id=version.pk)
    fraction = terms.early_warning_fraction
    minute = now.replace(second=0, microsecond=0)
    bars = minute_bars(market_id=market_id, start=minute - LIVE_BAR_MAX_AGE, end=minute + timedelta(minutes=1))
    bar = bars[max(bars)] if bars else None
    live = bar is not None and bar.valid_samples > 0
    spread = bar.spread_max if live else None
    depth = bar.depth_total_min if live else None
    depth_side = min(bar.depth_bid_min, bar.depth_ask_min) if live else None
    kpis = {
        "spread_pct": {"value": spread, "limit": terms.spread_max_pct,
                       "status": upper_limit_status(spread, terms.spread_max_pct, fraction)},
        "depth_usd": {"value": depth, "limit": terms.depth_min_usd,
                      "status": lower_limit_status(depth, terms.depth_min_usd, fraction)},
        "depth_side_usd": {"value": depth_side, "limit": terms.depth_min_side_usd,
                           "status": lower_limit_status(depth_side, terms.depth_min_side_usd, fraction)},
    }
    today = DailyResult.objects.filter(market_id=market_id, day=now.date()).first()
    if today is None:
        uptime = {"status": KpiStatus.UNKNOWN}
    else:
        allowed, lost = today.details.get("budget_allowed_minutes"), today.details.get("lost_minutes", 0)
        if today.uptime_required_pct is None:
            state = KpiStatus.OK
        elif today.unrecoverable:
            state = KpiStatus.BREACH
        elif allowed is not None and lost >= fraction * allowed and lost > 0:
            state = KpiStatus.WARNING
        else:
            state = KpiStatus.OK
        uptime = {
            "status": state, "raw_pct": today.uptime_raw_pct, "adjusted_pct": today.uptime_adjusted_pct,
            "required_pct": today.uptime_required_pct, "breach_budget_minutes": today.breach_budget_minutes,
            "unrecoverable": today.unrecoverable, "coverage_pct": today.coverage_pct, "as_of": today.computed_at,
        }
    kpis["uptime_pct"] = uptime
    order = [KpiStatus.OK, KpiStatus.UNKNOWN, KpiStatus.WARNING, KpiStatus.BREACH]
    score = LiquidityScore.objects.filter(market_id=market_id).order_by("-window_end").first()
    clock = LiquidityAlertClock.objects.filter(market_id=market_id, deadline__gt=now).order_by("-detected_at").first()
    return {
        "market_id": market_id,
        "obligation": {"id": version.pk, "version": version.version, "evaluation_method": version.evaluation_method},
        "as_of_minute": bar.minute if bar else None,
        "kpis": kpis,
        "status": max((k["status"] for k in kpis.values()), key=order.index),
        "score": None if score is None else {"score": score.score, "window": score.window, "window_end": score.window_end,
                                             "components": score.components},
        "escalation": escalation_standing(market_id=market_id, on=now.date()),
        "liquidity_alert_clock": None if clock is None else {
            "detected_at": clock.detected_at, "deadline": clock.deadline, "remaining": clock.deadline - now,
            "peak_spread_pct": clock.peak_spread_pct,
        },
    }


def order_behaviour(*, market_id: int, now: datetime) -> dict:
    """The desk's order behaviour in the market over the 10-minute cycle ending `now`
    (compliance/behaviour.py), beside what the exchange last reported (ExchangeIndicator):
    cancel ratio against the obligation's limit, and each quantitative-rule indicator against
    its trigger (the exchange's trigger value when it reported one, else the configured rule)."""
    market = Market.objects.select_related("venue", "conversion_market").get(pk=market_id)
    version = obligation_in_force(market_id=market_id, at=now)
    end_ms = int(now.timestamp() * 1000)
    orders = [
        behaviour.OrderRecord(
            order_id=o.order_id, side=o.side, order_type=o.order_type, time_in_force=o.time_in_force, price=o.price,
            orig_qty=o.orig_qty, executed_qty=o.executed_qty, status=o.status, cum_quote_qty=o.cum_quote_qty,
            placed_ms=int(o.placed_at.timestamp() * 1000),
            closed_ms=None if o.closed_at is None else int(o.closed_at.timestamp() * 1000),
        )
        for o in OwnOrder.objects.filter(market_id=market_id, placed_at__gt=now - ORDER_CYCLE, placed_at__lte=now)
    ]
    cycle = behaviour.placed_in_window(orders, end_ms, behaviour.QUANT_CYCLE_MS)
    cancel = behaviour.cancel_ratio_pct(cycle)
    limit = float(version.max_cancel_ratio_pct)
    reported = {
        r.indicator: r
        for r in ExchangeIndicator.objects.filter(market_id=market_id, observed_at__lte=now)
        .order_by("indicator", "-observed_at").distinct("indicator")
    }
    quote_usd = _quote_usd(market, now)
    locals_ = behaviour.quantitative_indicators(
        orders, end_ms, dust_notional_usd=version.dust_notional_usd, quote_usd=quote_usd
    ) if quote_usd is not None else {}
    triggers = {name: r.trigger_value for name, r in reported.items()}
    fraction = version.indicator_warning_fraction
    indicators = {}
    for indicator, local in locals_.items():
        trigger = behaviour.trigger_for(indicator, triggers)
        exchange = reported.get(indicator.value)
        indicators[indicator.value] = {
            "value": local.value, "orders": local.orders, "trigger_value": trigger,
            "status": behaviour.judge_indicator(
                local.value, trigger_value=trigger, warning_fraction=fraction, orders=local.orders,
                min_orders=behaviour.FUTURES_THRESHOLDS_2020[indicator].min_orders,
            ),
            "exchange": None if exchange is None else {
                "value": exchange.value, "trigger_value": exchange.trigger_value, "is_locked": exchange.is_locked,
                "observed_at": exchange.observed_at,
                "status": behaviour.judge_indicator(
                    exchange.value, trigger_value=exchange.trigger_value, warning_fraction=fraction,
                    is_locked=exchange.is_locked,
                ),
            },
        }
    return {
        "market_id": market_id,
        "obligation": {"id": version.pk, "version": version.version},
        "window": {"start": now - ORDER_CYCLE, "end": now},
        "orders_placed": len(cycle),
        "cancel_ratio_pct": {"value": cancel, "limit": limit,
                             "status": upper_limit_status(cancel, limit, float(version.early_warning_fraction))},
        "quote_usd": quote_usd,
        "indicators": indicators,
    }


def _quote_usd(market: Market, now: datetime) -> Decimal | None:
    """USD per unit of the market's quote: 1 for a stablecoin quote, else the conversion
    market's latest valid mid at or before `now` (None when there is none)."""
    if market.quote_conversion == QuoteConversion.STABLE:
        return Decimal(1)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT mid FROM compliance_sample WHERE market_id = %s AND ts <= %s AND ts > %s AND valid "
            "ORDER BY ts DESC LIMIT 1",
            [market.conversion_market_id, now, now - LIVE_BAR_MAX_AGE],
        )
        row = cur.fetchone()
    return None if row is None else Decimal(repr(row[0]))


# --- Reads for audit reports: several markets at once ------------------------------------------


def bars_rolled_at_by_day(*, market_ids: list[int], start: datetime, end: datetime) -> dict[tuple[int, date], datetime]:
    """{(market_id, UTC day): when its newest bar in [start, end) was rolled up}: a stored
    result computed before that is out of date."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT market_id, (minute AT TIME ZONE 'UTC')::date, max(rolled_at) FROM compliance_minute_bar "
            "WHERE market_id = ANY(%s) AND minute >= %s AND minute < %s GROUP BY 1, 2",
            [market_ids, start, end],
        )
        return {(market_id, day): rolled for market_id, day, rolled in cur.fetchall()}


def quote_usd_over(*, market: Market, start: datetime, end: datetime) -> Decimal | None:
    """USD per unit of the market's quote over [start, end): 1 for a stablecoin quote, else the
    conversion market's mean minute mid (None when it has no valid minute then)."""
    if market.quote_conversion == QuoteConversion.STABLE:
        return Decimal(1)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT avg((mid_low + mid_high) / 2) FROM compliance_minute_bar "
            "WHERE market_id = %s AND minute >= %s AND minute < %s AND mid_low IS NOT NULL",
            [market.conversion_market_id, start, end],
        )
        (mid,) = cur.fetchone()
    return None if mid is None else Decimal(repr(mid))
