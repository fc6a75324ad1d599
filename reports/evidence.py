"""Gathering the markets' evidence for a period: minute bars, obligation versions, verdicts.

This is the one place where a report reads the domain. Every verdict and formula comes from
the compliance engine — compliance.rollups (minute bars in SQL), compliance.judging.judge_span
(each market's minutes judged once), compliance.evaluation (period verdicts, hard breaches,
liquidity score, escalation ladder), compliance.behaviour and compliance.fees. What is added
here is only selection (which rows, which version governs which minute), grouping of judged
minutes into incidents, and descriptive statistics: sums over the judged minute bars, and spread
percentiles from the 1 s samples (one query for every market and version of the report).

Reads are batched across the report's markets (one query per kind of row, not one per market);
only the engine's judging (judging.judge_span) runs per market, and it runs once: the per-day
verdicts and liquidity scores are the engine's stored ones (DailyResult, LiquidityScore) when
they are current, else computed from the same judged minutes.
"""
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from django.db import connection, connections, transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import Greatest

from compliance import behaviour, evaluation, fees, judging, selectors
from compliance.models import (
    DailyResult, ExchangeIndicator, ExcusedOutage, LiquidityScore, Market, ObligationVersion, OwnFill, OwnOrder, QuoteConversion,
    ScoreWindow, Violation,
)
from compliance.rollups import ceil_minute
from config.env import envstr

from .builders import Incident, MarketEvidence, MinuteBar

PERCENTILES = (0.5, 0.95, 0.99)
# The pieces' spreads are held in memory while they are sorted: a 100-market day (8.5 M
# seconds) needs ~300 MB, instead of spilling to disk at the 4 MB default.
PERCENTILE_WORK_MEM = envstr("REPORTS_PERCENTILE_WORK_MEM", "1GB")
VIP_VOLUME_WINDOW = timedelta(days=30)  # the ladders' 30-day volume (compliance/fees.py)
# The MM program's maker rate to compare the VIP ladder with, % (negative = rebate). Default:
# the worked example of reference/maker-fee-rebates-vip-ladder.txt ('a −0.003 % program').
PROGRAM_MAKER_RATE_PCT = Decimal(envstr("REPORTS_PROGRAM_MAKER_RATE_PCT", "-0.003"))
# Fee ladders on record per exchange (compliance/fees.py; Binance's VIP thresholds are not in
# the reference, so only its Regular tier).
FEE_LADDERS = {
    "okx": ("OKX USDT-margined futures, 2026", fees.OKX_USDT_M_LADDER),
    "binance": ("Binance USDT-M futures, Regular only", fees.BINANCE_USDT_M_REGULAR),
}

Progress = Callable[[int, int, str], None]  # (steps done, steps, what is being done)


def market_identity(market: Market) -> dict:
    return {
        "id": market.id,
        "venue": market.venue.name,
        "exchange": market.venue.exchange,
        "market_type": market.venue.market_type,
        "tier": market.venue.tier,
        "symbol": market.symbol,
        "base_asset": market.base_asset,
        "quote_asset": market.quote_asset,
        "quote_conversion": market.quote_conversion,
    }


def obligation_entries(periods) -> list[dict]:
    """Each version in force in the period, the sub-interval it governs and what changed from the one before."""
    entries = []
    previous = None
    for lo, hi, version in periods:
        terms = version.terms()
        changes = {}
        if previous is not None:
            changes = {k: {"from": previous[k], "to": v} for k, v in terms.items() if previous[k] != v}
        entries.append(
            {
                "id": version.id,
                "version": version.version,
                "effective_from": version.effective_from,
                "in_force_from": lo,
                "in_force_to": hi,
                "changed_by": version.changed_by.get_username() if version.changed_by_id else None,
                "reason": version.reason,
                "terms": terms,
                "changes_from_previous": changes,
            }
        )
        previous = terms
    return entries


# --- Statistics: sums over the judged minute bars, percentiles from the samples ---------------


def bar_statistics(bars: list[evaluation.Bar], denominator: str) -> dict:
    """Averages, extremes and counts of the valid seconds, from their minute bars (each bar's
    averages weighted by its valid seconds; slippage by the seconds both sides could fill)."""
    bars = [b for b in bars if b.valid_samples]
    valid = sum(b.valid_samples for b in bars)
    fillable = [(b, b.valid_samples - b.slip_unfillable_samples) for b in bars
                if b.slip_buy_avg is not None and b.slip_sell_avg is not None]
    fill_weight = sum(w for _, w in fillable)

    def mean(attr):
        return sum(getattr(b, attr) * b.valid_samples for b in bars) / valid if valid else None

    def slip(attr):
        return sum(getattr(b, attr) * w for b, w in fillable) / fill_weight if fill_weight else None

    bid_avg, ask_avg = mean("depth_bid_avg"), mean("depth_ask_avg")
    return {
        "valid_samples": valid,
        "spread": {"denominator": denominator, "avg_pct": mean("spread_avg"), "p50_pct": None, "p95_pct": None,
                   "p99_pct": None, "max_pct": max((b.spread_max for b in bars), default=None)},
        "depth": {
            "bid_avg_usd": bid_avg, "ask_avg_usd": ask_avg, "total_avg_usd": None if bid_avg is None else bid_avg + ask_avg,
            "bid_min_usd": min((b.depth_bid_min for b in bars), default=None),
            "ask_min_usd": min((b.depth_ask_min for b in bars), default=None),
            "incomplete_seconds": sum(b.depth_incomplete_samples for b in bars),
        },
        "slippage": {"buy_avg_pct": slip("slip_buy_avg"), "sell_avg_pct": slip("slip_sell_avg"),
                     "unfillable_seconds": sum(b.slip_unfillable_samples for b in bars)},
    }


# One row per piece (a market's version interval, or its whole period when versions changed):
# the spread percentiles of its valid seconds, and for a whole period the average and maximum
# (in the latest version's denominator; exact numeric sum, so the order rows arrive in cannot
# change the last digit). Two forms of the same aggregate, by the report's shape:
#  - few markets: each piece aggregates its own rows, read through the primary key
#    (market_id, ts);
#  - many markets: one scan of the period's day partitions, each piece's spreads hashed into
#    an array and sorted on its own. A market's seconds are interleaved with every other
#    market's in the heap (the sampler writes all markets each second), so a piece read
#    through the key visits nearly every page of the day: 100 of them read the day ~100 times
#    (68 s for a 100-market day on the loaded 2-core machine, against 13 s for one scan).
#    percentile_cont over a GROUP BY would first sort every sample by piece (20 s).
_SPREAD = "CASE WHEN p.use_mid THEN s.spread_mid_pct ELSE s.spread_ask_pct END"
_PIECES = """unnest(%(idx)s::int[], %(market)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[], %(use_mid)s::bool[],
             %(is_total)s::bool[]) AS p(idx, market_id, lo, hi, use_mid, is_total)"""
PERCENTILES_BY_KEY_SQL = f"""
SELECT p.idx, x.* FROM {_PIECES}
CROSS JOIN LATERAL (
    SELECT percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {_SPREAD}),
           avg(({_SPREAD})::numeric) FILTER (WHERE p.is_total)::float8, max({_SPREAD}) FILTER (WHERE p.is_total)
    FROM compliance_sample s
    -- the constant bounds prune the day partitions at plan time
    WHERE s.market_id = p.market_id AND s.ts >= p.lo AND s.ts < p.hi AND s.valid AND s.ts >= %(start)s AND s.ts < %(end)s
) x
"""
PERCENTILES_BY_SCAN_SQL = f"""
SELECT idx, (SELECT percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY v) FROM unnest(spreads) AS v),
       total_avg, total_max
FROM (
    SELECT p.idx, array_agg({_SPREAD}) AS spreads,
           avg(({_SPREAD})::numeric) FILTER (WHERE p.is_total)::float8 AS total_avg,
           max({_SPREAD}) FILTER (WHERE p.is_total) AS total_max
    FROM {_PIECES}
    JOIN compliance_sample s ON s.market_id = p.market_id AND s.ts >= p.lo AND s.ts < p.hi
    WHERE s.valid AND s.ts >= %(start)s AND s.ts < %(end)s AND s.market_id = ANY(%(market)s::int[])
    GROUP BY p.idx
) pieces
"""
BY_KEY_MAX_MARKETS = 8  # up to this many markets, each piece is read through the primary key


def spread_percentiles(pieces: list[tuple[int, datetime, datetime, str, bool]], start: datetime, end: datetime) -> list[tuple]:
    """For each (market_id, lo, hi, denominator, is_total): (percentiles, avg, max) of the valid seconds' spread."""
    if not pieces:
        return []
    params = {
        "fractions": list(PERCENTILES), "idx": list(range(len(pieces))), "market": [p[0] for p in pieces],
        "lo": [p[1] for p in pieces], "hi": [p[2] for p in pieces], "use_mid": [p[3] == "mid" for p in pieces],
        "is_total": [p[4] for p in pieces], "start": start, "end": end,
    }
    by_key = len({p[0] for p in pieces}) <= BY_KEY_MAX_MARKETS
    out = [((None,) * len(PERCENTILES), None, None)] * len(pieces)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL work_mem = '{PERCENTILE_WORK_MEM}'")
        if not by_key:
            cur.execute("SET LOCAL enable_sort = off")  # hash the pieces (see PERCENTILES_BY_SCAN_SQL)
        cur.execute(PERCENTILES_BY_KEY_SQL if by_key else PERCENTILES_BY_SCAN_SQL, params)
        for idx, pcts, avg, mx in cur.fetchall():
            out[idx] = (tuple(pcts) if pcts else (None,) * len(PERCENTILES), avg, mx)
    return out


def _with_percentiles(stats: dict, percentiles: tuple) -> dict:
    stats["spread"].update(zip(("p50_pct", "p95_pct", "p99_pct"), percentiles))
    return stats


# --- Verdicts, minute statuses, incidents ------------------------------------------------------


def minute_status(record: evaluation.MinuteRecord, exempt: set[datetime]) -> str:
    if record.excused:
        return "excused"
    if record.minute in exempt:
        return "exempt"
    return str(record.judgement.outcome)


def _minute_bar(minute: datetime, bar: evaluation.Bar | None, version: int | None, status: str) -> MinuteBar:
    if bar is None:
        return MinuteBar(minute, version, status, 0, 0, None, None, None, None, None, None, None, None)
    return MinuteBar(
        minute=minute, obligation_version=version, status=status, samples=bar.samples, valid_samples=bar.valid_samples,
        spread_avg_pct=bar.spread_avg, spread_max_pct=bar.spread_max, depth_bid_avg_usd=bar.depth_bid_avg,
        depth_ask_avg_usd=bar.depth_ask_avg, depth_min_usd=bar.depth_total_min,
        depth_complete=None if bar.valid_samples == 0 else bar.depth_incomplete_samples == 0,
        slip_buy_avg_pct=bar.slip_buy_avg, slip_sell_avg_pct=bar.slip_sell_avg,
    )


def _verdict_block(verdict: evaluation.PeriodVerdict, stats: dict) -> dict:
    return {
        "minutes": verdict.minutes_elapsed,
        "compliant_minutes": float(verdict.compliant_minutes),
        "non_compliant_minutes": float(verdict.non_compliant_minutes - verdict.exempt_minutes),
        "exempt_minutes": float(verdict.exempt_minutes),
        "excused_minutes": float(verdict.excused_minutes),
        "unknown_minutes": float(verdict.unknown_minutes),
        "coverage_pct": verdict.coverage_pct,
        "uptime_raw_pct": verdict.uptime_raw_pct,
        "uptime_adjusted_pct": verdict.uptime_adjusted_pct,
        "uptime_required_pct": None if verdict.required_pct is None else float(verdict.required_pct),
        "breach_budget_minutes": verdict.breach_budget_minutes,
        "passed": verdict.passed,
        **stats,
    }


def _incidents(records: list[evaluation.MinuteRecord], statuses: list[str], version_of: dict) -> list[Incident]:
    """Runs of consecutive judged minutes that were not compliant (or had no data), per version."""
    incidents = []
    run = None
    for r, status in zip(records + [None], statuses + [None]):
        kind = {"non_compliant": "non_compliant", "exempt": "non_compliant", "unknown": "outage", "excused": "outage"}.get(status)
        version = None if r is None else version_of[r.terms.version_id]
        if run is not None and (kind != run["kind"] or version != run["version"] or r.minute != run["end"]):
            incidents.append(Incident(kind=run["kind"], start=run["start"], end=run["end"], peak=run["peak"], limit=run["limit"],
                                      unit=run["unit"], exempted=run["exempted"], obligation_version=run["version"]))
            run = None
        if kind is None:
            continue
        spread = r.bar.spread_max if r.bar is not None and r.bar.judged_samples else None
        if run is None:
            is_outage = kind == "outage"
            run = {"kind": kind, "start": r.minute, "end": r.minute, "peak": None, "version": version,
                   "limit": None if is_outage else r.terms.spread_target_max_pct, "unit": "" if is_outage else "%",
                   "exempted": True}
        run["end"] = r.minute + evaluation.MINUTE
        run["exempted"] = run["exempted"] and status in ("exempt", "excused")
        if kind == "non_compliant" and spread is not None:
            run["peak"] = spread if run["peak"] is None else max(run["peak"], spread)
    return incidents


def _records_by_day(records: list[evaluation.MinuteRecord]) -> dict[date, list[evaluation.MinuteRecord]]:
    by_day: dict[date, list] = {}
    for r in records:
        by_day.setdefault(r.minute.date(), []).append(r)
    return by_day


def _hard_breaches(by_day, exempt, version_of) -> tuple[list[Incident], set[date]]:
    """The engine's hard breaches, per UTC day as compliance.models.Violation records them."""
    incidents, days = [], set()
    for day, day_records in sorted(by_day.items()):
        for run in evaluation.hard_breaches(day_records, exempt):
            days.add(day)
            incidents.append(Incident(kind=run.kind, start=run.first_minute, end=run.last_minute + evaluation.MINUTE,
                                      peak=run.worst_value, limit=run.limit_value, unit="%" if run.kind == "spread_max" else "USD",
                                      exempted=False, obligation_version=version_of[run.version_id]))
    return incidents, days


def escalation(on: date, stored_days: set[date], breach_days: set[date]) -> dict:
    """Ladder position on the period's last day: stored violation days plus this period's breach days."""
    window_start = on - timedelta(days=evaluation.ESCALATION_WINDOW_DAYS)
    days = {d for d in stored_days | breach_days if window_start < d <= on}
    level, count = evaluation.escalation_level(days, on)
    return {"on": on.isoformat(), "level": level or "none", "violation_days_90d": count,
            "violation_days": sorted(d.isoformat() for d in days)}


# --- Per day: the engine's stored closed-day results when current -------------------------------


def _whole_days(start: datetime, end: datetime) -> list[date]:
    first = start.date() if start == judging.day_bounds(start.date())[0] else start.date() + timedelta(days=1)
    days = []
    while judging.day_bounds(first)[1] <= end:
        days.append(first)
        first += timedelta(days=1)
    return days


def _score_doc(score, components) -> dict:
    return {"score": score, "components": {c.name: {"value": c.value, "kpi": c.kpi, "ratio": c.ratio, "points": c.points}
                                           for c in components}}


def current_stored_days(market_ids: list[int], days: list[date]) -> tuple[dict, dict]:
    """The engine's stored closed-day results that are still current, as ({(market_id, day):
    LiquidityScore}, {(market_id, day): DailyResult}): computed after the day closed, after every
    bar that judging the day reads was rolled up (the 24 h of volatility history before it and
    the recovery look-ahead after it included), and after the market's last obligation change
    and excused-outage change."""
    if not days:
        return {}, {}
    scores = LiquidityScore.objects.filter(
        market_id__in=market_ids, window=ScoreWindow.CLOSED_DAY, window_end__in=[judging.day_bounds(d)[1] for d in days]
    )
    scores = {(s.market_id, s.window_start.date()): s for s in scores}
    results = {(r.market_id, r.day): r
               for r in DailyResult.objects.filter(market_id__in=market_ids, day__in=days, is_closed=True)}
    if not scores and not results:
        return {}, {}
    first, last = judging.day_bounds(days[0])[0], judging.day_bounds(days[-1])[1]
    rolled = selectors.bars_rolled_at_by_day(market_ids=market_ids, start=first - judging.DAY, end=last + judging.DAY)
    obligation_changed = dict(
        ObligationVersion.objects.filter(market_id__in=market_ids).values_list("market_id").annotate(changed=Max("created_at"))
    )
    outage_changed = dict(
        ExcusedOutage.objects.filter(market_id__in=market_ids).values_list("market_id")
        .annotate(changed=Max(Greatest("created_at", "revoked_at")))
    )

    def current(stored: dict) -> dict:
        out = {}
        for (market_id, day), row in stored.items():
            inputs = [rolled.get((market_id, day + timedelta(days=k))) for k in (-1, 0, 1)]
            inputs += [obligation_changed.get(market_id), outage_changed.get(market_id), judging.day_bounds(day)[1]]
            if all(t is None or row.computed_at >= t for t in inputs):
                out[(market_id, day)] = row
        return out

    return current(scores), current(results)


def daily_results(market_id: int, by_day, verdict_of, stored: dict) -> list[dict]:
    """Each whole UTC day's verdict: the engine's stored DailyResult when current, else judged
    from the report's minutes (the same evaluation.period_verdict)."""
    out = []
    for day, day_records in sorted(by_day.items()):
        row = stored.get((market_id, day))
        if row is not None:
            out.append({"day": day.isoformat(), "source": "stored", "minutes": row.minutes_elapsed,
                        "unknown_minutes": float(row.unknown_minutes), "uptime_raw_pct": row.uptime_raw_pct,
                        "uptime_adjusted_pct": row.uptime_adjusted_pct, "uptime_required_pct": row.uptime_required_pct,
                        "passed": row.passed})
        elif len(day_records) == 1440:
            v = verdict_of(day_records)
            out.append({"day": day.isoformat(), "source": "computed", "minutes": v.minutes_elapsed,
                        "unknown_minutes": float(v.unknown_minutes), "uptime_raw_pct": v.uptime_raw_pct,
                        "uptime_adjusted_pct": v.uptime_adjusted_pct,
                        "uptime_required_pct": None if v.required_pct is None else float(v.required_pct), "passed": v.passed})
    return out


def liquidity_scores(market_id: int, by_day, score_of, stored: dict) -> list[dict]:
    """Each whole UTC day's score: the engine's stored one when current, else scored from the
    report's judged minutes (evaluation.score_minutes, the formula the engine stores)."""
    out = []
    for day, day_records in sorted(by_day.items()):
        score = stored.get((market_id, day))
        if score is not None:
            out.append({"day": day.isoformat(), "source": "stored", "score": score.score,
                        "obligation_version_id": score.obligation_version_id, "components": score.components})
        elif len(day_records) == 1440:
            out.append({"day": day.isoformat(), "source": "computed", **score_of(day_records),
                        "obligation_version_id": day_records[-1].terms.version_id})
    return out


# --- Order behaviour: the worst 10-minute cycle, beside the exchange's report ------------------


def _millis(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


def _from_millis(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _order_record(o: OwnOrder) -> behaviour.OrderRecord:
    return behaviour.OrderRecord(order_id=o.order_id, side=o.side, order_type=o.order_type, time_in_force=o.time_in_force,
                                 price=o.price, orig_qty=o.orig_qty, executed_qty=o.executed_qty, status=o.status,
                                 placed_ms=_millis(o.placed_at), closed_ms=_millis(o.closed_at), cum_quote_qty=o.cum_quote_qty)


def _fill_record(f: OwnFill) -> behaviour.FillRecord:
    return behaviour.FillRecord(trade_id=f.trade_id, order_id=f.order_id, side=f.side, price=f.price, qty=f.qty,
                                quote_qty=f.quote_qty, commission=f.commission, commission_asset=f.commission_asset,
                                is_maker=f.is_maker, traded_ms=_millis(f.traded_at))


_QUANT = tuple(behaviour.Indicator)
CANCEL_RATIO = "cancel_ratio_pct"


def _contributions(order: behaviour.OrderRecord, dust_notional_usd, quote_usd: Decimal) -> list[tuple[float, float, int]]:
    """What one order adds to each measure's (numerator, denominator, orders counted), read off
    the engine's own functions applied to that order alone: the count ratios weigh each counted
    order 1, UFR weighs it by its ordered quantity (compliance.behaviour.unfilled_ratio)."""
    values = behaviour.quantitative_indicators([order], order.placed_ms, dust_notional_usd=dust_notional_usd, quote_usd=quote_usd)
    out = []
    for indicator in _QUANT:
        v = values[indicator]
        weight = float(order.orig_qty) if indicator == behaviour.Indicator.UFR else v.orders
        out.append(((v.value or 0.0) * weight, weight, v.orders))
    out.append((behaviour.cancel_ratio_pct([order]) / 100, 1, 1))
    return out


def worst_cycles(orders: list[behaviour.OrderRecord], start_ms: int, end_ms: int, *, dust_notional_usd, quote_usd: Decimal,
                 reported_triggers: dict, warning_fraction, max_cancel_ratio_pct: float, early_warning_fraction: float) -> dict:
    """Each quantitative-rule indicator in its worst 10-minute cycle of the period, and the
    cancel ratio likewise. A cycle is the orders placed in (end − 10 min, end] (behaviour.
    quantitative_indicators, as the live selector judges it), for every minute end in
    (start, end] with an order in it. The worst cycle is the highest value among cycles that
    reach the recording threshold (of equal values, the first with the most orders); when none
    does, the highest of all, marked not judged.

    A desk near the thresholds places thousands of orders per cycle, so cycles are not judged
    one by one: running sums of each order's contribution locate the worst cycle (linear in the
    orders), and the engine's functions then give that cycle's value."""
    placed = sorted((o for o in orders if o.was_placed), key=lambda o: o.placed_ms)
    times = [o.placed_ms for o in placed]
    cycle, minute = behaviour.QUANT_CYCLE_MS, behaviour.MINUTE_MS
    ends = sorted({e for t in times for e in range(-(-t // minute) * minute, t + cycle, minute) if start_ms < e <= end_ms})
    names = [*map(str, _QUANT), CANCEL_RATIO]
    # running[k][i]: measure k's (numerator, denominator, orders) over the first i orders
    running = [[(0.0, 0.0, 0)] for _ in names]
    for order in placed:
        for k, (num, den, counted) in enumerate(_contributions(order, dust_notional_usd, quote_usd)):
            n0, d0, c0 = running[k][-1]
            running[k].append((n0 + num, d0 + den, c0 + counted))
    thresholds = [*(behaviour.FUTURES_THRESHOLDS_2020[i].min_orders for i in _QUANT), 0]
    best: dict[str, tuple] = {}  # name → ((judged, value, orders), cycle end)
    for e in ends:
        lo, hi = bisect_right(times, e - cycle), bisect_right(times, e)
        for k, name in enumerate(names):
            (n1, d1, c1), (n0, d0, c0) = running[k][hi], running[k][lo]
            if d1 - d0 <= 0:
                continue
            key = (c1 - c0 >= thresholds[k], (n1 - n0) / (d1 - d0), c1 - c0)  # equal values: more orders weigh more
            if name not in best or key > best[name][0]:
                best[name] = (key, e)

    def exact(name: str):
        """(value, orders, cycle end) of the located cycle, by the engine's functions."""
        if name not in best:
            return None, 0, None
        e = best[name][1]
        window = placed[bisect_right(times, e - cycle): bisect_right(times, e)]
        if name == CANCEL_RATIO:
            return behaviour.cancel_ratio_pct(window), len(window), e
        v = behaviour.quantitative_indicators(window, e, dust_notional_usd=dust_notional_usd, quote_usd=quote_usd)[
            behaviour.Indicator(name)]
        return v.value, v.orders, e

    out = {}
    for indicator in _QUANT:
        trigger = behaviour.trigger_for(indicator, reported_triggers)
        min_orders = behaviour.FUTURES_THRESHOLDS_2020[indicator].min_orders
        value, count, e = exact(str(indicator))
        out[str(indicator)] = {
            "value": value, "orders": count, "cycle_end": _from_millis(e), "trigger_value": trigger, "min_orders": min_orders,
            "status": str(behaviour.judge_indicator(value, trigger_value=trigger, warning_fraction=warning_fraction,
                                                    orders=count, min_orders=min_orders)),
        }
    value, count, e = exact(CANCEL_RATIO)
    out[CANCEL_RATIO] = {
        "value": value, "orders": count, "cycle_end": _from_millis(e), "limit": max_cancel_ratio_pct,
        "status": str(evaluation.upper_limit_status(value, max_cancel_ratio_pct, early_warning_fraction)),
    }
    return out


def local_behaviour(orders: list, fills: list, dust_notional_usd, quote_usd: Decimal | None) -> dict:
    """The desk's own order behaviour over the whole period (compliance.behaviour formulas)."""
    placed = [o for o in orders if o.was_placed]
    indicators = {}
    if quote_usd is not None:
        for value in (behaviour.unfilled_ratio(placed), behaviour.ioc_fok_expiration_ratio(placed),
                      behaviour.quick_cancel_ratio(placed, behaviour.Indicator.ICR),
                      behaviour.quick_cancel_ratio(placed, behaviour.Indicator.GCR),
                      behaviour.dust_ratio(placed, dust_notional_usd, quote_usd)):
            indicators[str(value.indicator)] = {"value": value.value, "orders": value.orders}
    survival = behaviour.distribution(behaviour.survival_times_ms(orders))
    maker_taker = behaviour.maker_taker_pct(fills)
    return {
        "orders_placed": len(placed),
        "fills": len(fills),
        "cancel_ratio_pct": behaviour.cancel_ratio_pct(orders),
        "indicators_over_period": indicators,
        "survival_ms": None if survival is None else {"count": survival.count, "mean": survival.mean, "median": survival.median,
                                                      "p90": survival.p90, "max": survival.max},
        "maker_ratio_pct": None if maker_taker is None else maker_taker[0],
        "taker_proportion_pct": None if maker_taker is None else maker_taker[1],
    }


def exchange_behaviour(rows: list[ExchangeIndicator]) -> dict:
    """What the exchange reported (apiTradingStatus polls) in the period: per indicator its
    latest and its highest value, and every lock."""
    latest = {r.indicator: r for r in rows}
    highest: dict[str, ExchangeIndicator] = {}
    for r in rows:
        if r.value is not None and (r.indicator not in highest or r.value > highest[r.indicator].value):
            highest[r.indicator] = r
    return {
        "exchange_polls": len(rows),
        "exchange_reported": [
            {"indicator": name, "value": r.value, "trigger_value": r.trigger_value, "is_locked": r.is_locked,
             "observed_at": r.observed_at,
             "highest_value": highest[name].value if name in highest else None,
             "highest_observed_at": highest[name].observed_at if name in highest else None}
            for name, r in sorted(latest.items())
        ],
        "locks": [
            {"indicator": r.indicator, "observed_at": r.observed_at, "planned_recover_time": r.planned_recover_time,
             "value": r.value, "trigger_value": r.trigger_value} for r in rows if r.is_locked
        ],
    }


# --- Fees: the period's fees and rebates, the VIP tier, ladder vs MM program -------------------


def venue_volumes_30d(venue_ids: list[int], end: datetime) -> dict[int, dict]:
    """The desk's USD volume on each venue over the 30 days before `end` (fills in stablecoin-quoted
    markets; fills in other quotes are counted apart, not guessed into USD)."""
    rows = (OwnFill.objects.filter(market__venue_id__in=venue_ids, traded_at__gte=end - VIP_VOLUME_WINDOW, traded_at__lt=end)
            .values_list("market__venue_id", "market__quote_conversion", "is_maker")
            .annotate(Sum("quote_qty"), Count("id")))
    out = {v: {"maker_usd": Decimal(0), "taker_usd": Decimal(0), "fills_not_in_usd": 0} for v in venue_ids}
    for venue_id, conversion, is_maker, volume, count in rows:
        if conversion != QuoteConversion.STABLE:
            out[venue_id]["fills_not_in_usd"] += count
        else:
            out[venue_id]["maker_usd" if is_maker else "taker_usd"] += volume
    return out


def fee_summary(fills: list, quote_usd: Decimal | None, exchange: str, volume_30d: dict) -> dict:
    """Fees and rebates of the period's fills (compliance.fees); the VIP tier the venue's
    30-day volume reaches on the exchange's ladder, and that tier's maker fee on the same flow
    against the MM program's rate. A commission in a non-stable asset without a USD rate is
    reported as such rather than guessed."""
    out: dict = {}
    if fills:
        try:
            if quote_usd is None:
                raise ValueError("The quote has no USD rate in this period (its conversion market has no valid minute).")
            summary = fees.fees_and_rebates(fills, quote_usd=quote_usd)
            out["period"] = {"maker_volume_usd": summary.maker_volume_usd, "taker_volume_usd": summary.taker_volume_usd,
                             "fees_paid_usd": summary.fees_paid_usd, "rebates_earned_usd": summary.rebates_earned_usd,
                             "net_fee_usd": summary.net_fee_usd}
        except ValueError as exc:
            out["period"] = {"unavailable": str(exc)}
    volume = volume_30d["maker_usd"] + volume_30d["taker_usd"]
    if exchange not in FEE_LADDERS:
        out["vip"] = {"unavailable": f"No fee ladder on record for {exchange} (compliance/fees.py)."}
        return out
    ladder_name, ladder = FEE_LADDERS[exchange]
    tier = fees.vip_tier(volume, ladder)
    above = [t for t in ladder if t.min_volume_30d_usd > tier.min_volume_30d_usd]
    following = min(above, key=lambda t: t.min_volume_30d_usd) if above else None
    out["vip"] = {
        "ladder": ladder_name, "volume_30d_usd": volume, "maker_volume_30d_usd": volume_30d["maker_usd"],
        "fills_not_in_usd": volume_30d["fills_not_in_usd"], "tier": tier.name, "maker_rate_pct": tier.maker_rate_pct,
        "taker_rate_pct": tier.taker_rate_pct, "next_tier": following and following.name,
        "volume_to_next_tier_usd": following and following.min_volume_30d_usd - volume,
    }
    if volume > 0:
        comparison = fees.ladder_vs_program(volume, volume_30d["maker_usd"] / volume * 100, tier.maker_rate_pct,
                                            PROGRAM_MAKER_RATE_PCT)
        out["ladder_vs_program"] = {
            "monthly_volume_usd": volume, "maker_volume_usd": comparison.maker_volume_usd,
            "ladder_maker_rate_pct": tier.maker_rate_pct, "program_maker_rate_pct": PROGRAM_MAKER_RATE_PCT,
            "ladder_maker_fee_usd": comparison.ladder_maker_fee_usd, "program_maker_fee_usd": comparison.program_maker_fee_usd,
            "swing_usd": comparison.swing_usd,
        }
    return out


# --- One market, and every market of a report ---------------------------------------------------


def _grouped(rows, key) -> dict[int, list]:
    out = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


def _on_own_connection(function, *args):
    """Run in a worker thread, on that thread's own database connection, closed afterwards."""
    try:
        return function(*args)
    finally:
        connections.close_all()


def gather_all(markets: list[Market], start: datetime, end: datetime, *, now: datetime,
               progress: Progress = lambda done, steps, note: None) -> list[MarketEvidence]:
    """The markets' evidence for [start, end). `now` bounds what the engine may judge (the
    exemption's recovery window may reach past the period's end)."""
    ids = [m.id for m in markets]
    periods_of = selectors.obligation_periods_of_markets(market_ids=ids, start=start, end=end)
    # Spread percentiles: every market's versions (and whole period, where versions changed) in one query.
    pieces, piece_of = [], {}
    for market_id in ids:
        periods = periods_of[market_id]
        for lo, hi, version in periods:
            piece_of[(market_id, version.id)] = len(pieces)
            pieces.append((market_id, ceil_minute(lo), ceil_minute(hi), version.spread_denominator, False))
        if len(periods) > 1:
            piece_of[(market_id, None)] = len(pieces)
            pieces.append((market_id, ceil_minute(periods[0][0]), ceil_minute(periods[-1][1]),
                           periods[-1][2].spread_denominator, True))
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The percentile query is Postgres' work and the judging Python's: on their own
        # connection they overlap. Inside a caller's transaction (a test) its rows are visible
        # to this connection only, so the query then runs here, after the judging.
        pending = None if connection.in_atomic_block else pool.submit(_on_own_connection, spread_percentiles, pieces, start, end)
        spans = {}
        for i, market in enumerate(markets):
            progress(i, len(markets), f"judging {market.venue.name} {market.symbol} ({i + 1}/{len(markets)})")
            spans[market.id] = judging.judge_span(market=market, start=start, end=end, now=now)
        progress(len(markets), len(markets), "spread percentiles, statistics, scores, order behaviour and fees")
        percentiles = pending.result() if pending is not None else spread_percentiles(pieces, start, end)

    on = (end - timedelta(microseconds=1)).date()
    stored_violations = _grouped(
        Violation.objects.filter(market_id__in=ids, day__gt=on - timedelta(days=evaluation.ESCALATION_WINDOW_DAYS), day__lte=on)
        .order_by().values_list("market_id", "day").distinct(), key=lambda r: r[0])
    stored_scores, stored_results = current_stored_days(ids, _whole_days(start, end))
    cycle = timedelta(milliseconds=behaviour.QUANT_CYCLE_MS)
    orders = _grouped(OwnOrder.objects.filter(market_id__in=ids, placed_at__gt=start - cycle, placed_at__lt=end)
                      .order_by("market_id", "placed_at", "order_id"), key=lambda o: o.market_id)
    fills = _grouped(OwnFill.objects.filter(market_id__in=ids, traded_at__gte=start, traded_at__lt=end)
                     .order_by("market_id", "traded_at", "trade_id"), key=lambda f: f.market_id)
    reported = _grouped(ExchangeIndicator.objects.filter(market_id__in=ids, observed_at__gte=start, observed_at__lt=end)
                        .order_by("market_id", "observed_at", "indicator", "id"), key=lambda r: r.market_id)
    volumes = venue_volumes_30d(sorted({m.venue_id for m in markets}), end)

    gathered = []
    for market in markets:
        periods, span = periods_of[market.id], spans[market.id]
        gathered.append(_market_evidence(
            market, start, end, periods, span, percentiles, piece_of,
            stored_days={d for _, d in stored_violations.get(market.id, [])}, stored_scores=stored_scores,
            stored_results=stored_results,
            orders=orders.get(market.id, []), fills=fills.get(market.id, []), reported=reported.get(market.id, []),
            volume_30d=volumes[market.venue_id],
        ))
    return gathered


def _market_evidence(market, start, end, periods, span, percentiles, piece_of, *, stored_days, stored_scores, stored_results,
                     orders, fills, reported, volume_30d) -> MarketEvidence:
    records, exempt = span.records, span.exempt
    version_of = {v.id: v.version for _, _, v in periods}
    statuses = [minute_status(r, exempt) for r in records]
    by_version = _grouped(records, key=lambda r: r.terms.version_id)
    verdicts: dict[tuple, evaluation.PeriodVerdict] = {}

    def verdict_of(rs: list) -> evaluation.PeriodVerdict:
        # A one-version day's version, total and day are the same minutes: judged once.
        key = (rs[0].minute, rs[-1].minute, len(rs)) if rs else ()
        if key not in verdicts:
            verdicts[key] = evaluation.period_verdict(rs, exempt, minutes_total=len(rs))
        return verdicts[key]

    scores: dict[tuple, dict] = {}

    def score_of(rs: list) -> dict:
        key = (rs[0].minute, rs[-1].minute, len(rs))
        if key not in scores:
            scores[key] = _score_doc(*evaluation.score_minutes(rs, exempt))
        return scores[key]

    results = []
    for lo, hi, version in periods:
        own = by_version.get(version.id, [])
        verdict = verdict_of(own)
        pcts, _, _ = percentiles[piece_of[(market.id, version.id)]]
        stats = _with_percentiles(bar_statistics([r.bar for r in own if r.bar is not None], version.spread_denominator), pcts)
        results.append({"obligation_version": version.version, "obligation_version_id": version.id, "from": lo, "to": hi,
                        **_verdict_block(verdict, stats)})
    total = _total(market, start, end, records, verdict_of(records), periods, results, percentiles, piece_of)

    by_minute = {r.minute: (r, s) for r, s in zip(records, statuses)}
    ungoverned = {}
    if len(by_minute) < int((end - start) / evaluation.MINUTE):
        ungoverned = selectors.minute_bars(market_id=market.id, start=start, end=end)
    minute_bars = []
    minute = start
    while minute < end:
        if minute in by_minute:
            r, status = by_minute[minute]
            minute_bars.append(_minute_bar(minute, r.bar, version_of[r.terms.version_id], status))
        else:
            minute_bars.append(_minute_bar(minute, ungoverned.get(minute), None, "no_obligation"))
        minute += evaluation.MINUTE

    by_day = _records_by_day(records)
    breaches, breach_days = _hard_breaches(by_day, exempt, version_of)
    order_records = [_order_record(o) for o in orders]
    in_period = [o for o in order_records if o.placed_ms >= _millis(start)]
    fill_records = [_fill_record(f) for f in fills]
    quote_usd = selectors.quote_usd_over(market=market, start=start, end=end)
    last = periods[-1][2] if periods else None
    dust = last.dust_notional_usd if last else behaviour.DUST_NOTIONAL_USD
    exchange = exchange_behaviour(reported)
    behaviour_block = {"local": local_behaviour(in_period, fill_records, dust, quote_usd), **exchange}
    if last is not None and quote_usd is not None:
        behaviour_block["worst_cycle"] = worst_cycles(
            order_records, _millis(start), _millis(end), dust_notional_usd=dust, quote_usd=quote_usd,
            reported_triggers={r["indicator"]: r["trigger_value"] for r in exchange["exchange_reported"]
                               if r["trigger_value"] is not None},
            warning_fraction=last.indicator_warning_fraction, max_cancel_ratio_pct=float(last.max_cancel_ratio_pct),
            early_warning_fraction=float(last.early_warning_fraction),
        )
    return MarketEvidence(
        market=market_identity(market),
        obligations=obligation_entries(periods),
        bars=minute_bars,
        results=results,
        total=total,
        incidents=_incidents(records, statuses, version_of) + breaches,
        exemption_episodes=[{"started": e.started, "subsided": e.subsided, "recovered": e.recovered, "status": e.status,
                             "exempt_minutes": len(e.exempt_minutes)} for e in span.episodes],
        daily_results=daily_results(market.id, by_day, verdict_of, stored_results),
        liquidity_scores=liquidity_scores(market.id, by_day, score_of, stored_scores),
        liquidity_score=score_of(records) if records else None,
        behaviour=behaviour_block,
        fees=fee_summary(fill_records, quote_usd, market.venue.exchange, volume_30d),
        escalation=escalation((end - timedelta(microseconds=1)).date(), stored_days, breach_days),
    )


def _total(market, start, end, records, verdict, periods, results, percentiles, piece_of) -> dict:
    """The whole period, each minute judged by its own version."""
    if not periods:
        return {"minutes": int((end - start).total_seconds() // 60), "passed": None, "uptime_raw_pct": None,
                "uptime_adjusted_pct": None, "uptime_required_pct": None, "unknown_minutes": None, "no_obligation_minutes":
                int((end - start).total_seconds() // 60)}
    if len(periods) == 1:
        # One version over the period: its statistics are the period's.
        stats = {k: results[0][k] for k in ("valid_samples", "spread", "depth", "slippage")}
    else:
        denominator = periods[-1][2].spread_denominator
        stats = bar_statistics([r.bar for r in records if r.bar is not None], denominator)
        pcts, avg, mx = percentiles[piece_of[(market.id, None)]]
        _with_percentiles(stats, pcts)
        if any(v.spread_denominator != denominator for _, _, v in periods):
            # The bars hold each version's own denominator: the period's spread is taken from the samples.
            stats["spread"].update(avg_pct=avg, max_pct=mx)
    total = _verdict_block(verdict, stats)
    # Spread statistics use the latest version's denominator; a period spanning versions passes
    # only if each version's own minutes pass its own clause.
    verdicts = [r["passed"] for r in results if r["passed"] is not None]
    total["passed"] = all(verdicts) if verdicts else None
    total["no_obligation_minutes"] = int((end - start).total_seconds() // 60) - len(records)
    return total
