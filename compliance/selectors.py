"""Reads of the domain (the HackSoft split: services write, selectors read)."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from django.conf import settings
from django.db import connection

from . import behaviour
from .evaluation import (
    ESCALATION_WINDOW_DAYS, MINUTE, Bar, KpiStatus, Terms, book_statuses, budget_status, escalation_level, upper_limit_status,
    worst_status,
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


def _binary_rows(sql: str, params: list) -> list[tuple]:
    """Rows of a read on Django's connection (its transaction), with results in Postgres' binary
    format: a day of bars (1440 rows of 23 numbers) loads about twice as fast as from text, and
    float8 arrives bit for bit. Django's cursors bind on the client, which cannot ask for binary."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, params, binary=True)
        return cur.fetchall()


def minute_bars(*, market_id: int, start: datetime, end: datetime) -> dict[datetime, Bar]:
    """The market's minute bars (compliance_minute_bar) with minute in [start, end), by minute."""
    # The minute comes back as epoch seconds: a day's 1440 timestamps parse several times faster.
    columns = ("date_part('epoch', minute)::bigint",) + MINUTE_BAR_COLUMNS[1:]
    rows = _binary_rows(
        f"SELECT {', '.join(columns)} FROM compliance_minute_bar "
        "WHERE market_id = %s AND minute >= %s AND minute < %s ORDER BY minute",
        [market_id, start, end],
    )
    bars = {}
    for row in rows:
        minute = datetime.fromtimestamp(row[0], tz=timezone.utc)
        bars[minute] = Bar(minute, *row[1:])
    return bars


def minute_mid_ranges(*, market_id: int, start: datetime, end: datetime) -> dict[datetime, tuple[float, float]]:
    """(mid_low, mid_high) of the market's minutes in [start, end): the volatility history."""
    rows = _binary_rows(
        "SELECT date_part('epoch', minute)::bigint, mid_low, mid_high FROM compliance_minute_bar "
        "WHERE market_id = %s AND minute >= %s AND minute < %s AND mid_low IS NOT NULL",
        [market_id, start, end],
    )
    return {datetime.fromtimestamp(epoch, tz=timezone.utc): (low, high) for epoch, low, high in rows}


def escalation_standing(*, market_id: int, on: date) -> dict:
    """Where the market stands on the 90-day ladder on `on` (level None = no violation)."""
    return escalation_standings(market_ids=[market_id], on=on)[market_id]


def escalation_standings(*, market_ids: list[int], on: date) -> dict[int, dict]:
    days: dict[int, list[date]] = {m: [] for m in market_ids}
    for market_id, day in Violation.objects.filter(
        market_id__in=market_ids, day__gt=on - timedelta(days=ESCALATION_WINDOW_DAYS), day__lte=on
    ).values_list("market_id", "day"):
        days[market_id].append(day)
    result = {}
    for market_id, violation_days in days.items():
        level, count = escalation_level(violation_days, on)
        result[market_id] = {"level": level, "violation_days_90d": count}
    return result


# --- A market's standing now: the live book, and the engine's stored verdicts -----------------

SAMPLE_COLUMNS = (
    "ts", "valid", "best_bid", "best_ask", "mid", "spread_ask_pct", "spread_mid_pct", "band_pct", "depth_bid_usd",
    "depth_ask_usd", "depth_bid_complete", "depth_ask_complete", "slip_buy_pct", "slip_sell_pct",
)
LATEST_SAMPLE_LOOKBACK = timedelta(days=1)  # older than this, a market shows 'no data' rather than its age


def latest_samples(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """Each market's newest 1 s sample at or before `now` (one primary-key probe per market)."""
    if not market_ids:
        return {}
    columns = ", ".join(f"s.{c}" for c in SAMPLE_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT m.id, {columns} FROM unnest(%s::int[]) AS m(id)
                JOIN LATERAL (SELECT * FROM compliance_sample s WHERE s.market_id = m.id AND s.ts > %s AND s.ts <= %s
                              ORDER BY s.ts DESC LIMIT 1) s ON true""",
            [market_ids, now - LATEST_SAMPLE_LOOKBACK, now],
        )
        return {row[0]: dict(zip(SAMPLE_COLUMNS, row[1:])) for row in cur.fetchall()}


def _float(value) -> float | None:
    return None if value is None else float(value)


def _sample_time(ts) -> datetime | None:
    """A sample's time: a datetime (stored row), ISO text or epoch seconds (a collector's live payload)."""
    if ts is None or isinstance(ts, datetime):
        return ts
    if isinstance(ts, str):
        return datetime.fromisoformat(ts)
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def live_book(sample: dict | None, terms: Terms | None, *, spread_denominator: str, now: datetime) -> dict:
    """The book now, from its newest 1 s sample (a stored row or a collector's live payload),
    judged by evaluation.book_statuses. A sample older than STALE_AFTER_SECONDS, or invalid
    (crossed or empty side), tells nothing about now: its KPIs are unknown, never OK."""
    ts = _sample_time(sample.get("ts")) if sample else None
    age = None if ts is None else (now - ts).total_seconds()
    stale = age is None or age > settings.STALE_AFTER_SECONDS
    known = bool(sample and sample.get("valid")) and not stale
    value = (lambda key: _float(sample.get(key))) if known else (lambda key: None)
    spread = value("spread_mid_pct" if spread_denominator == "mid" else "spread_ask_pct")
    bid, ask = value("depth_bid_usd"), value("depth_ask_usd")
    depth, side = (None, None) if bid is None or ask is None else (bid + ask, min(bid, ask))
    # A side whose book ends inside the band gives a lower bound, never an exact depth (DESIGN.md 'Band coverage').
    bid_complete = bool(sample.get("depth_bid_complete", True)) if known else None
    ask_complete = bool(sample.get("depth_ask_complete", True)) if known else None
    book = {
        "ts": None if ts is None else ts.isoformat(), "age_s": None if age is None else round(age, 1), "stale": stale,
        "valid": known, "mid": value("mid"), "best_bid": value("best_bid"), "best_ask": value("best_ask"),
        "spread_pct": spread, "depth_bid_usd": bid, "depth_ask_usd": ask, "depth_usd": depth,
        "depth_bid_complete": bid_complete, "depth_ask_complete": ask_complete,
        "depth_lower_bound": known and not (bid_complete and ask_complete),
        "slip_buy_pct": value("slip_buy_pct"), "slip_sell_pct": value("slip_sell_pct"),
    }
    if terms is None:
        book["kpis"] = {}
        return book
    statuses = book_statuses(spread_pct=spread, depth_usd=depth, depth_side_usd=side, terms=terms)
    limits = {"spread_pct": terms.spread_max_pct, "depth_usd": terms.depth_min_usd, "depth_side_usd": terms.depth_min_side_usd}
    values = {"spread_pct": spread, "depth_usd": depth, "depth_side_usd": side}
    book["kpis"] = {k: {"value": values[k], "limit": limits[k], "status": statuses[k]} for k in statuses}
    return book


def obligations_in_force(*, market_ids: list[int], at: datetime) -> dict[int, ObligationVersion]:
    """The version in force at `at` for each market (markets without one are absent)."""
    rows = (
        ObligationVersion.objects.filter(market_id__in=market_ids, effective_from__lte=at)
        .order_by("market_id", "-effective_from", "-version")
        .distinct("market_id")
    )
    return {v.market_id: v for v in rows}


def _uptime_today(result: DailyResult | None, terms: Terms) -> dict:
    """Today's uptime so far and breach budget as the engine last judged them (compliance.judging
    .judge_day: each minute under its own version, volatility-exempt, excused outages left out)."""
    if result is None:
        return {"status": KpiStatus.UNKNOWN, "required_pct": _float(terms.required_pct), "judged": False}
    details = result.details
    allowed = details.get("budget_allowed_minutes")
    versions = result.obligation_versions
    judged_from = datetime.fromisoformat(versions[0]["from"]) if versions else None
    return {
        "status": budget_status(
            allowed_minutes=allowed, lost_minutes=details.get("lost_minutes", 0), unrecoverable=result.unrecoverable,
            minutes_elapsed=result.minutes_elapsed, early_warning_fraction=terms.early_warning_fraction,
        ),
        "judged": True,
        "raw_pct": result.uptime_raw_pct, "adjusted_pct": result.uptime_adjusted_pct,
        "required_pct": result.uptime_required_pct, "evaluation_methods": result.evaluation_methods,
        "breach_budget_minutes": result.breach_budget_minutes, "budget_allowed_minutes": allowed,
        "lost_minutes": details.get("lost_minutes", 0), "unrecoverable": result.unrecoverable,
        "minutes_elapsed": result.minutes_elapsed, "minutes_total": details.get("minutes_total"),
        "compliant_minutes": result.compliant_minutes, "non_compliant_minutes": result.non_compliant_minutes,
        "unknown_minutes": result.unknown_minutes, "excused_minutes": result.excused_minutes,
        "exempt_minutes": result.exempt_minutes, "coverage_pct": result.coverage_pct,
        "judged_until": None if judged_from is None else judged_from + result.minutes_elapsed * MINUTE,
        "as_of": result.computed_at,
    }


def market_verdicts(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """What moves at most once a minute, for many markets in a few queries: the obligation in
    force (with its Terms), today's uptime and breach budget, the order behaviour of the last
    10-minute cycle, the latest liquidity score, the escalation standing and any running 72 h
    liquidity-alert clock. Markets without an obligation in force have obligation None."""
    versions = obligations_in_force(market_ids=market_ids, at=now)
    governed = list(versions)
    results = {r.market_id: r for r in DailyResult.objects.filter(market_id__in=governed, day=now.date())}
    scores = {
        s.market_id: s for s in LiquidityScore.objects.filter(market_id__in=governed)
        .order_by("market_id", "-window_end").distinct("market_id")
    }
    clocks = {
        c.market_id: c for c in LiquidityAlertClock.objects.filter(market_id__in=governed, deadline__gt=now)
        .order_by("market_id", "-detected_at").distinct("market_id")
    }
    escalation = escalation_standings(market_ids=governed, on=now.date())
    behaviour_now = orders_behaviour(market_ids=governed, now=now, versions=versions)
    verdicts = {}
    for market_id in market_ids:
        version = versions.get(market_id)
        if version is None:
            verdicts[market_id] = {"market_id": market_id, "obligation": None, "terms": None}
            continue
        terms = Terms.from_terms(version.terms(), version_id=version.pk)
        score, clock = scores.get(market_id), clocks.get(market_id)
        verdicts[market_id] = {
            "market_id": market_id,
            "obligation": {"id": version.pk, "version": version.version, "evaluation_method": version.evaluation_method,
                           "spread_denominator": version.spread_denominator},
            "terms": terms,
            "uptime": _uptime_today(results.get(market_id), terms),
            "behaviour": behaviour_now[market_id],
            "score": None if score is None else {"score": score.score, "window": score.window, "window_end": score.window_end,
                                                 "components": score.components},
            "escalation": escalation[market_id],
            "liquidity_alert_clock": None if clock is None else {
                "detected_at": clock.detected_at, "deadline": clock.deadline, "remaining": clock.deadline - now,
                "peak_spread_pct": clock.peak_spread_pct,
            },
        }
    return verdicts


def overall_status(book: dict, verdict: dict) -> KpiStatus:
    """A market's verdict: the worst of its book KPIs now, today's uptime and (when the desk's
    orders gave something to judge) its order behaviour. Unknown without an obligation."""
    if verdict["obligation"] is None:
        return KpiStatus.UNKNOWN
    statuses = [k["status"] for k in book["kpis"].values()] + [verdict["uptime"]["status"]]
    if verdict["behaviour"]["judged"]:
        statuses.append(verdict["behaviour"]["status"])
    return worst_status(statuses)


def market_standing(verdict: dict, sample: dict | None, *, now: datetime) -> dict:
    """A market's verdicts with the book judged from `sample` (stored or live)."""
    if verdict["obligation"] is None:
        book = live_book(sample, None, spread_denominator="ask", now=now)
        return {**verdict, "live": book, "kpis": {}, "status": KpiStatus.UNKNOWN}
    book = live_book(sample, verdict["terms"], spread_denominator=verdict["obligation"]["spread_denominator"], now=now)
    return {**verdict, "live": book, "kpis": {**book["kpis"], "uptime_pct": verdict["uptime"]},
            "status": overall_status(book, verdict)}


def markets_status(*, market_ids: list[int], now: datetime) -> dict[int, dict]:
    """market_status for many markets in a few queries (the overview's read)."""
    verdicts = market_verdicts(market_ids=market_ids, now=now)
    samples = latest_samples(market_ids=market_ids, now=now)
    return {m: market_standing(verdicts[m], samples.get(m), now=now) for m in market_ids}


def market_status(*, market_id: int, now: datetime) -> dict:
    """The market's KPIs now against the obligation in force, each ok / warning / breach / unknown:
    the book from its newest 1 s sample, today's uptime and breach budget as last judged, order
    behaviour, the latest liquidity score, the escalation standing and any running 72 h
    liquidity-alert clock. Reads stored results; judges nothing but the live book."""
    return markets_status(market_ids=[market_id], now=now)[market_id]


_INDICATOR_KPI = {
    behaviour.IndicatorStatus.OK: KpiStatus.OK, behaviour.IndicatorStatus.WARNING: KpiStatus.WARNING,
    behaviour.IndicatorStatus.TRIGGERED: KpiStatus.BREACH,
}
_ORDER_FIELDS = (
    "market_id", "order_id", "side", "order_type", "time_in_force", "price", "orig_qty", "executed_qty", "status",
    "cum_quote_qty", "placed_at", "closed_at",
)


def order_behaviour(*, market_id: int, now: datetime) -> dict:
    """The desk's order behaviour in the market over the 10-minute cycle ending `now`."""
    version = obligation_in_force(market_id=market_id, at=now)
    return orders_behaviour(market_ids=[market_id], now=now, versions={market_id: version})[market_id]


def orders_behaviour(*, market_ids: list[int], now: datetime, versions: dict[int, ObligationVersion]) -> dict[int, dict]:
    """The desk's order behaviour per market over the 10-minute cycle ending `now`
    (compliance/behaviour.py), beside what the exchange last reported (ExchangeIndicator):
    cancel ratio against the obligation's limit, and each quantitative-rule indicator against
    its trigger (the exchange's trigger value when it reported one, else the configured rule).
    `status` is the worst judged part; `judged` False when nothing could be judged (no orders,
    indicators under their recording threshold, no exchange report)."""
    end_ms = int(now.timestamp() * 1000)
    orders: dict[int, list] = {m: [] for m in market_ids}
    for row in OwnOrder.objects.filter(market_id__in=market_ids, placed_at__gt=now - ORDER_CYCLE, placed_at__lte=now
                                       ).values_list(*_ORDER_FIELDS):
        o = dict(zip(_ORDER_FIELDS, row))
        orders[o["market_id"]].append(behaviour.OrderRecord(
            order_id=o["order_id"], side=o["side"], order_type=o["order_type"], time_in_force=o["time_in_force"],
            price=o["price"], orig_qty=o["orig_qty"], executed_qty=o["executed_qty"], status=o["status"],
            cum_quote_qty=o["cum_quote_qty"], placed_ms=int(o["placed_at"].timestamp() * 1000),
            closed_ms=None if o["closed_at"] is None else int(o["closed_at"].timestamp() * 1000),
        ))
    reported: dict[int, dict] = {m: {} for m in market_ids}
    for r in ExchangeIndicator.objects.filter(market_id__in=market_ids, observed_at__lte=now).order_by(
        "market_id", "indicator", "-observed_at"
    ).distinct("market_id", "indicator"):
        reported[r.market_id][r.indicator] = r
    quote_usd = quotes_usd(market_ids=market_ids, now=now)
    result = {}
    for market_id in market_ids:
        version = versions[market_id]
        cycle = behaviour.placed_in_window(orders[market_id], end_ms, behaviour.QUANT_CYCLE_MS)
        cancel = behaviour.cancel_ratio_pct(cycle)
        limit = float(version.max_cancel_ratio_pct)
        cancel_status = upper_limit_status(cancel, limit, float(version.early_warning_fraction))
        locals_ = behaviour.quantitative_indicators(
            orders[market_id], end_ms, dust_notional_usd=version.dust_notional_usd, quote_usd=quote_usd[market_id]
        ) if quote_usd[market_id] is not None else {}
        exchange_reports = reported[market_id]
        triggers = {name: r.trigger_value for name, r in exchange_reports.items()}
        fraction = version.indicator_warning_fraction
        indicators = {}
        for indicator, local in locals_.items():
            trigger = behaviour.trigger_for(indicator, triggers)
            exchange = exchange_reports.get(indicator.value)
            indicators[indicator.value] = {
                "value": local.value, "orders": local.orders, "trigger_value": trigger,
                "status": behaviour.judge_indicator(
                    local.value, trigger_value=trigger, warning_fraction=fraction, orders=local.orders,
                    min_orders=behaviour.FUTURES_THRESHOLDS_2020[indicator].min_orders,
                ),
                "exchange": None if exchange is None else _exchange_report(exchange, fraction),
            }
        # What the exchange reported for an indicator not computed locally (no quote rate) still counts.
        for name, exchange in exchange_reports.items():
            if name not in indicators:
                indicators[name] = {"value": None, "orders": None, "trigger_value": exchange.trigger_value,
                                    "status": behaviour.IndicatorStatus.NOT_JUDGED,
                                    "exchange": _exchange_report(exchange, fraction)}
        judged = [cancel_status] if cancel is not None else []
        for ind in indicators.values():
            for status in (ind["status"], ind["exchange"] and ind["exchange"]["status"]):
                if status in _INDICATOR_KPI:
                    judged.append(_INDICATOR_KPI[status])
        result[market_id] = {
            "market_id": market_id,
            "obligation": {"id": version.pk, "version": version.version},
            "window": {"start": now - ORDER_CYCLE, "end": now},
            "orders_placed": len(cycle),
            "cancel_ratio_pct": {"value": cancel, "limit": limit, "status": cancel_status},
            "quote_usd": quote_usd[market_id],
            "indicators": indicators,
            "judged": bool(judged),
            "status": worst_status(judged) if judged else KpiStatus.UNKNOWN,
        }
    return result


def _exchange_report(exchange: ExchangeIndicator, fraction) -> dict:
    return {
        "value": exchange.value, "trigger_value": exchange.trigger_value, "is_locked": exchange.is_locked,
        "observed_at": exchange.observed_at, "planned_recover_time": exchange.planned_recover_time,
        "status": behaviour.judge_indicator(
            exchange.value, trigger_value=exchange.trigger_value, warning_fraction=fraction, is_locked=exchange.is_locked,
        ),
    }


def quotes_usd(*, market_ids: list[int], now: datetime) -> dict[int, Decimal | None]:
    """USD per unit of each market's quote: 1 for a stablecoin quote, else its conversion
    market's latest valid mid in the LIVE_BAR_MAX_AGE before `now` (None when there is none)."""
    markets = list(Market.objects.filter(pk__in=market_ids).values_list("pk", "quote_conversion", "conversion_market_id"))
    converted = {conv for _, kind, conv in markets if kind != QuoteConversion.STABLE and conv is not None}
    mids = {}
    if converted:
        with connection.cursor() as cur:
            cur.execute(
                """SELECT m.id, s.mid FROM unnest(%s::int[]) AS m(id)
                   JOIN LATERAL (SELECT mid FROM compliance_sample s WHERE s.market_id = m.id AND s.ts <= %s AND s.ts > %s
                                 AND s.valid ORDER BY s.ts DESC LIMIT 1) s ON true""",
                [sorted(converted), now, now - LIVE_BAR_MAX_AGE],
            )
            mids = {market_id: Decimal(repr(mid)) for market_id, mid in cur.fetchall()}
    return {
        pk: Decimal(1) if kind == QuoteConversion.STABLE else mids.get(conv)
        for pk, kind, conv in markets
    }


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
