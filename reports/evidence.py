"""Gathering a market's evidence for a period: minute bars, obligation versions, verdicts.

This is the one place where a report reads the domain. Every verdict and formula comes from
the compliance engine — compliance.rollups (minute bars in SQL), compliance.evaluation
(minute judgements, volatility exemption, period verdicts, hard breaches, liquidity score,
escalation ladder), compliance.behaviour and compliance.fees. What is added here is only
selection (which rows, which version governs which minute), grouping of judged minutes into
incidents, and descriptive statistics of the stored 1 s samples (average and percentiles).
"""
from datetime import date, datetime, timedelta

from django.db import connection

from compliance import behaviour, evaluation, fees, judging, selectors
from compliance.models import ExchangeIndicator, Market, OwnFill, OwnOrder, Violation
from compliance.selectors import obligation_periods

from .builders import Incident, MarketEvidence, MinuteBar

SPREAD_COLUMN = {"ask": "spread_ask_pct", "mid": "spread_mid_pct"}
PERCENTILES = (0.5, 0.95, 0.99)


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


# Descriptive statistics of the 1 s samples over an interval (for the tables, not for verdicts).
STATS_SQL = """
SELECT count(*) FILTER (WHERE valid),
       avg({spread}) FILTER (WHERE valid),
       percentile_cont(ARRAY[{pcts}]) WITHIN GROUP (ORDER BY {spread}) FILTER (WHERE valid),
       max({spread}) FILTER (WHERE valid),
       avg(depth_bid_usd) FILTER (WHERE valid), avg(depth_ask_usd) FILTER (WHERE valid),
       min(depth_bid_usd) FILTER (WHERE valid), min(depth_ask_usd) FILTER (WHERE valid),
       count(*) FILTER (WHERE valid AND NOT (coalesce(depth_bid_complete, false) AND coalesce(depth_ask_complete, false))),
       avg(slip_buy_pct) FILTER (WHERE valid), avg(slip_sell_pct) FILTER (WHERE valid),
       count(*) FILTER (WHERE valid AND (slip_buy_pct IS NULL OR slip_sell_pct IS NULL))
FROM compliance_sample
WHERE market_id = %s AND ts >= %s AND ts < %s
"""


def sample_statistics(market_id: int, lo: datetime, hi: datetime, denominator: str) -> dict:
    sql = STATS_SQL.format(spread=SPREAD_COLUMN[denominator], pcts=", ".join(str(p) for p in PERCENTILES))
    with connection.cursor() as cur:
        # One worker: a parallel aggregate may sum floats in another order and change the last bits.
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cur.execute(sql, [market_id, lo, hi])
        (valid, s_avg, s_pct, s_max, b_avg, a_avg, b_min, a_min, incomplete, buy, sell, unfillable) = cur.fetchone()
    p50, p95, p99 = s_pct if s_pct else (None, None, None)
    return {
        "valid_samples": valid,
        "spread": {"denominator": denominator, "avg_pct": s_avg, "p50_pct": p50, "p95_pct": p95, "p99_pct": p99, "max_pct": s_max},
        "depth": {
            "bid_avg_usd": b_avg, "ask_avg_usd": a_avg, "total_avg_usd": None if b_avg is None else b_avg + a_avg,
            "bid_min_usd": b_min, "ask_min_usd": a_min, "incomplete_seconds": incomplete,
        },
        "slippage": {"buy_avg_pct": buy, "sell_avg_pct": sell, "unfillable_seconds": unfillable},
    }


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


def _incidents(records: list[evaluation.MinuteRecord], exempt: set[datetime], version_of: dict) -> list[Incident]:
    """Runs of consecutive judged minutes that were not compliant (or had no data), per version."""
    incidents = []
    run = None
    for r in records + [None]:
        status = None if r is None else minute_status(r, exempt)
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


def _hard_breaches(records, exempt, version_of) -> tuple[list[Incident], set[date]]:
    """The engine's hard breaches, per UTC day as compliance.models.Violation records them."""
    by_day: dict[date, list] = {}
    for r in records:
        by_day.setdefault(r.minute.date(), []).append(r)
    incidents, days = [], set()
    for day, day_records in sorted(by_day.items()):
        for run in evaluation.hard_breaches(day_records, exempt):
            days.add(day)
            incidents.append(Incident(kind=run.kind, start=run.first_minute, end=run.last_minute + evaluation.MINUTE,
                                      peak=run.worst_value, limit=run.limit_value, unit="%" if run.kind == "spread_max" else "USD",
                                      exempted=False, obligation_version=version_of[run.version_id]))
    return incidents, days


def escalation(market: Market, end: datetime, breach_days: set[date]) -> dict:
    """Ladder position on the period's last day: stored violation days plus this period's breach days."""
    on = (end - timedelta(microseconds=1)).date()
    stored = set(
        Violation.objects.filter(market=market, day__gt=on - timedelta(days=evaluation.ESCALATION_WINDOW_DAYS), day__lte=on)
        .values_list("day", flat=True)
    )
    level, count = evaluation.escalation_level(stored | breach_days, on)
    return {"on": on.isoformat(), "level": level or "none", "violation_days_90d": count,
            "violation_days": sorted(d.isoformat() for d in stored | breach_days if on - timedelta(days=evaluation.ESCALATION_WINDOW_DAYS) < d <= on)}


def _millis(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


def own_orders(market: Market, start: datetime, end: datetime) -> list[behaviour.OrderRecord]:
    rows = OwnOrder.objects.filter(market=market, placed_at__gte=start, placed_at__lt=end).order_by("placed_at", "order_id")
    return [
        behaviour.OrderRecord(order_id=o.order_id, side=o.side, order_type=o.order_type, time_in_force=o.time_in_force,
                              price=o.price, orig_qty=o.orig_qty, executed_qty=o.executed_qty, status=o.status,
                              placed_ms=_millis(o.placed_at), closed_ms=_millis(o.closed_at), cum_quote_qty=o.cum_quote_qty)
        for o in rows
    ]


def own_fills(market: Market, start: datetime, end: datetime) -> list[behaviour.FillRecord]:
    rows = OwnFill.objects.filter(market=market, traded_at__gte=start, traded_at__lt=end).order_by("traded_at", "trade_id")
    return [
        behaviour.FillRecord(trade_id=f.trade_id, order_id=f.order_id, side=f.side, price=f.price, qty=f.qty, quote_qty=f.quote_qty,
                             commission=f.commission, commission_asset=f.commission_asset, is_maker=f.is_maker,
                             traded_ms=_millis(f.traded_at))
        for f in rows
    ]


def local_behaviour(orders: list, fills: list, dust_notional_usd) -> dict:
    """The desk's own order behaviour over the whole period (compliance.behaviour formulas)."""
    indicators = {}
    placed = [o for o in orders if o.was_placed]
    for value in (behaviour.unfilled_ratio(placed), behaviour.ioc_fok_expiration_ratio(placed),
                  behaviour.quick_cancel_ratio(placed, behaviour.Indicator.ICR),
                  behaviour.quick_cancel_ratio(placed, behaviour.Indicator.GCR),
                  behaviour.dust_ratio(placed, dust_notional_usd)):
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


def fee_summary(fills: list) -> dict:
    """Fees and rebates of the period's fills (compliance.fees); commission in a non-stable asset
    without a USD rate is reported as such rather than guessed."""
    if not fills:
        return {}
    try:
        summary = fees.fees_and_rebates(fills)
    except ValueError as exc:
        return {"unavailable": str(exc)}
    return {"maker_volume_usd": summary.maker_volume_usd, "taker_volume_usd": summary.taker_volume_usd,
            "fees_paid_usd": summary.fees_paid_usd, "rebates_earned_usd": summary.rebates_earned_usd,
            "net_fee_usd": summary.net_fee_usd}


def exchange_behaviour(market: Market, start: datetime, end: datetime) -> dict:
    """What the exchange reported (apiTradingStatus polls) in the period, and its locks."""
    rows = list(ExchangeIndicator.objects.filter(market=market, observed_at__gte=start, observed_at__lt=end)
                .order_by("observed_at", "indicator", "id"))
    latest = {r.indicator: r for r in rows}
    return {
        "exchange_polls": len(rows),
        "exchange_reported": [
            {"indicator": r.indicator, "value": r.value, "trigger_value": r.trigger_value, "is_locked": r.is_locked,
             "observed_at": r.observed_at} for _, r in sorted(latest.items())
        ],
        "locks": [
            {"indicator": r.indicator, "observed_at": r.observed_at, "planned_recover_time": r.planned_recover_time,
             "value": r.value, "trigger_value": r.trigger_value} for r in rows if r.is_locked
        ],
    }


def gather(market: Market, start: datetime, end: datetime, *, now: datetime) -> MarketEvidence:
    """The market's evidence for [start, end). `now` bounds what the engine may judge (the
    exemption's recovery window may reach past the period's end)."""
    periods = obligation_periods(market_id=market.id, start=start, end=end)
    span = judging.judge_span(market=market, start=start, end=end, now=now)
    records, exempt = span.records, span.exempt
    version_of = {v.id: v.version for _, _, v in periods}
    terms_of = {v.id: evaluation.Terms.from_terms(v.terms(), version_id=v.id) for _, _, v in periods}

    results = []
    for lo, hi, version in periods:
        own = [r for r in records if lo <= r.minute < hi]
        verdict = evaluation.period_verdict(own, exempt, minutes_total=len(own))
        stats = sample_statistics(market.id, lo, hi, version.spread_denominator)
        results.append({"obligation_version": version.version, "obligation_version_id": version.id, "from": lo, "to": hi,
                         **_verdict_block(verdict, stats)})
    total = _total(market, start, end, records, exempt, periods, results)

    bars = selectors.minute_bars(market_id=market.id, start=start, end=end)
    by_minute = {r.minute: r for r in records}
    minute_bars = []
    minute = start
    while minute < end:
        r = by_minute.get(minute)
        status = "no_obligation" if r is None else minute_status(r, exempt)
        version = None if r is None else version_of[r.terms.version_id]
        minute_bars.append(_minute_bar(minute, bars.get(minute), version, status))
        minute += evaluation.MINUTE

    breaches, breach_days = _hard_breaches(records, exempt, version_of)
    orders, fills = own_orders(market, start, end), own_fills(market, start, end)
    return MarketEvidence(
        market=market_identity(market),
        obligations=obligation_entries(periods),
        bars=minute_bars,
        results=results,
        total=total,
        incidents=_incidents(records, exempt, version_of) + breaches,
        exemption_episodes=[{"started": e.started, "subsided": e.subsided, "recovered": e.recovered, "status": e.status,
                             "exempt_minutes": len(e.exempt_minutes)} for e in span.episodes],
        liquidity_scores=liquidity_scores(market, start, end, now=now) if periods else [],
        behaviour={"local": local_behaviour(orders, fills, periods[-1][2].dust_notional_usd if periods else behaviour.DUST_NOTIONAL_USD),
                   **exchange_behaviour(market, start, end)},
        fees=fee_summary(fills),
        escalation=escalation(market, end, breach_days),
    )


def liquidity_scores(market: Market, start: datetime, end: datetime, *, now: datetime) -> list[dict]:
    """The engine's closed-day liquidity score of each whole UTC day in the period (computed and
    stored by compliance.judging.score_closed_day, which is idempotent)."""
    scores = []
    day = start.date() if start == datetime.combine(start.date(), datetime.min.time(), tzinfo=start.tzinfo) else start.date() + timedelta(days=1)
    while judging.day_bounds(day)[1] <= end:
        score = judging.score_closed_day(market=market, day=day, now=now)
        if score is not None:
            scores.append({"day": day.isoformat(), "score": score.score, "obligation_version_id": score.obligation_version_id,
                           "components": score.components})
        day += timedelta(days=1)
    return scores


def _total(market, start, end, records, exempt, periods, results) -> dict:
    """The whole period, each minute judged by its own version."""
    if not periods:
        return {"minutes": int((end - start).total_seconds() // 60), "passed": None, "uptime_raw_pct": None,
                "uptime_adjusted_pct": None, "uptime_required_pct": None, "unknown_minutes": None, "no_obligation_minutes":
                int((end - start).total_seconds() // 60)}
    verdict = evaluation.period_verdict(records, exempt, minutes_total=len(records))
    if len(periods) == 1 and (periods[0][0], periods[0][1]) == (start, end):
        # One version over the whole period: its statistics are the period's (no second scan of the samples).
        stats = {k: results[0][k] for k in ("valid_samples", "spread", "depth", "slippage")}
    else:
        stats = sample_statistics(market.id, start, end, periods[-1][2].spread_denominator)
    total = _verdict_block(verdict, stats)
    # Spread statistics use the latest version's denominator; a period spanning versions passes
    # only if each version's own minutes pass its own clause.
    verdicts = [r["passed"] for r in results if r["passed"] is not None]
    total["passed"] = all(verdicts) if verdicts else None
    total["no_obligation_minutes"] = int((end - start).total_seconds() // 60) - len(records)
    return total
