"""Gathering a market's evidence for a period: stored samples, obligation versions, verdicts.

This is the one place where a report reads the domain. Every verdict and formula comes from
the compliance engine; what is added here is only selection (which rows, which version
governs which minute) and presentation statistics over the stored samples (percentiles).
"""
from datetime import datetime, timedelta

from django.db import connection

from compliance.models import ExchangeIndicator, Market
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
                "created_at": version.created_at,
                "terms": terms,
                "changes_from_previous": changes,
            }
        )
        previous = terms
    return entries


# Per-minute roll-up of the 1 s samples. Both spread columns are read; the version in force
# at the minute says which one its clause uses.
MINUTE_SQL = """
SELECT date_trunc('minute', ts) AS minute,
       count(*) AS samples,
       count(*) FILTER (WHERE valid) AS valid_samples,
       avg(spread_ask_pct) FILTER (WHERE valid), max(spread_ask_pct) FILTER (WHERE valid),
       avg(spread_mid_pct) FILTER (WHERE valid), max(spread_mid_pct) FILTER (WHERE valid),
       avg(depth_bid_usd) FILTER (WHERE valid), avg(depth_ask_usd) FILTER (WHERE valid),
       min(depth_bid_usd + depth_ask_usd) FILTER (WHERE valid),
       min(depth_bid_usd) FILTER (WHERE valid), min(depth_ask_usd) FILTER (WHERE valid),
       bool_and(depth_bid_complete AND depth_ask_complete) FILTER (WHERE valid),
       avg(slip_buy_pct) FILTER (WHERE valid), avg(slip_sell_pct) FILTER (WHERE valid)
FROM compliance_sample
WHERE market_id = %s AND ts >= %s AND ts < %s
GROUP BY 1 ORDER BY 1
"""

# Statistics of the 1 s samples over the minutes one version governs (presentation only).
STATS_SQL = """
SELECT count(*), count(*) FILTER (WHERE valid),
       avg({spread}) FILTER (WHERE valid),
       percentile_cont(ARRAY[{pcts}]) WITHIN GROUP (ORDER BY {spread}) FILTER (WHERE valid),
       max({spread}) FILTER (WHERE valid),
       avg(depth_bid_usd) FILTER (WHERE valid), avg(depth_ask_usd) FILTER (WHERE valid),
       min(depth_bid_usd) FILTER (WHERE valid), min(depth_ask_usd) FILTER (WHERE valid),
       count(*) FILTER (WHERE valid AND NOT (depth_bid_complete AND depth_ask_complete)),
       avg(slip_buy_pct) FILTER (WHERE valid), avg(slip_sell_pct) FILTER (WHERE valid),
       count(*) FILTER (WHERE valid AND (slip_buy_pct IS NULL OR slip_sell_pct IS NULL))
FROM compliance_sample
WHERE market_id = %s AND ts >= %s AND ts < %s
"""


def _stats(market_id: int, lo: datetime, hi: datetime, denominator: str) -> dict:
    sql = STATS_SQL.format(spread=SPREAD_COLUMN[denominator], pcts=", ".join(str(p) for p in PERCENTILES))
    with connection.cursor() as cur:
        cur.execute(sql, [market_id, lo, hi])
        (n, valid, s_avg, s_pct, s_max, b_avg, a_avg, b_min, a_min, incomplete, buy, sell, unfillable) = cur.fetchone()
    p50, p95, p99 = s_pct if s_pct else (None, None, None)
    return {
        "samples": n,
        "valid_samples": valid,
        "spread": {"denominator": denominator, "avg_pct": s_avg, "p50_pct": p50, "p95_pct": p95, "p99_pct": p99, "max_pct": s_max},
        "depth": {
            "bid_avg_usd": b_avg, "ask_avg_usd": a_avg,
            "total_avg_usd": None if b_avg is None else b_avg + a_avg,
            "bid_min_usd": b_min, "ask_min_usd": a_min, "incomplete_seconds": incomplete,
        },
        "slippage": {"buy_avg_pct": buy, "sell_avg_pct": sell, "unfillable_seconds": unfillable},
    }


def _minute_bars(market_id: int, start: datetime, end: datetime, periods) -> list[MinuteBar]:
    """One bar per minute of the period; a minute without any sample is an empty, unknown bar."""
    with connection.cursor() as cur:
        cur.execute(MINUTE_SQL, [market_id, start, end])
        by_minute = {row[0]: row[1:] for row in cur.fetchall()}
    bars = []
    minute = start
    i = 0
    while minute < end:
        while i < len(periods) and periods[i][1] <= minute:
            i += 1
        version = periods[i][2] if i < len(periods) and periods[i][0] <= minute else None
        (n, valid, ask_avg, ask_max, mid_avg, mid_max, bid_avg, ask_dep_avg, dep_min, bid_min, ask_min, complete, buy,
         sell) = by_minute.get(minute, (0, 0) + (None,) * 12)
        use_mid = version is not None and version.spread_denominator == "mid"
        s_avg, s_max = (mid_avg, mid_max) if use_mid else (ask_avg, ask_max)
        bar = dict(
            minute=minute, obligation_version=None if version is None else version.version, samples=n,
            valid_samples=valid, spread_avg_pct=s_avg, spread_max_pct=s_max, depth_bid_avg_usd=bid_avg,
            depth_ask_avg_usd=ask_dep_avg, depth_min_usd=dep_min, depth_complete=complete,
            slip_buy_avg_pct=buy, slip_sell_avg_pct=sell,
        )
        bars.append(MinuteBar(status=_minute_status(bar, version, bid_min, ask_min), **bar))
        minute += timedelta(minutes=1)
    return bars


def _minute_status(bar: dict, version, bid_min, ask_min) -> str:
    if version is None:
        return "no_obligation"
    if bar["valid_samples"] == 0:
        return "unknown"
    if bar["spread_max_pct"] > float(version.spread_target_max_pct):
        return "non_compliant"
    if version.depth_counts_for_uptime:
        if version.depth_min_usd is not None and bar["depth_min_usd"] < float(version.depth_min_usd):
            return "non_compliant"
        if version.depth_min_side_usd is not None and min(bid_min, ask_min) < float(version.depth_min_side_usd):
            return "non_compliant"
    return "compliant"


def _uptime_result(bars: list[MinuteBar], stats: dict, required) -> dict:
    counts = {s: 0 for s in ("compliant", "non_compliant", "exempt", "excused", "unknown", "no_obligation")}
    for bar in bars:
        counts[bar.status] += 1
    minutes = len(bars)
    seconds = minutes * 60
    raw = counts["compliant"] / minutes * 100 if minutes else None
    # DESIGN.md 'Uptime': unknown minutes count as non-compliant unless excused; exempt
    # minutes count only in the exemption-adjusted figure.
    adjusted = (counts["compliant"] + counts["exempt"] + counts["excused"]) / minutes * 100 if minutes else None
    required = None if required is None else float(required)
    return {
        "minutes": minutes,
        "compliant_minutes": counts["compliant"],
        "non_compliant_minutes": counts["non_compliant"],
        "exempt_minutes": counts["exempt"],
        "excused_minutes": counts["excused"],
        "unknown_minutes": counts["unknown"],
        "coverage_pct": stats["valid_samples"] / seconds * 100 if seconds else None,
        "uptime_raw_pct": raw,
        "uptime_adjusted_pct": adjusted,
        "uptime_required_pct": required,
        "passed": None if required is None or adjusted is None else adjusted >= required,
        **stats,
    }


def _incidents(bars: list[MinuteBar], versions: dict) -> list[Incident]:
    """Runs of consecutive minutes failing the same test (or without data), per version."""
    incidents = []
    open_runs: dict[str, dict] = {}

    def close(kind):
        run = open_runs.pop(kind)
        incidents.append(Incident(kind=kind, start=run["start"], end=run["end"], peak=run["peak"], limit=run["limit"],
                                  unit=run["unit"], exempted=run["exempted"], obligation_version=run["version"]))

    for bar in bars:
        version = versions.get(bar.obligation_version)
        failing = {}
        if version is not None and bar.status == "unknown":
            failing["outage"] = (None, None, "")
        elif version is not None and bar.status in ("non_compliant", "exempt"):
            limit = float(version.spread_target_max_pct)
            if bar.spread_max_pct > limit:
                failing["spread_above_target"] = (bar.spread_max_pct, limit, "%")
            if version.depth_counts_for_uptime and version.depth_min_usd is not None and bar.depth_min_usd < float(version.depth_min_usd):
                failing["depth_below_min"] = (bar.depth_min_usd, float(version.depth_min_usd), "USD")
        for kind in list(open_runs):
            run = open_runs[kind]
            if kind not in failing or run["version"] != bar.obligation_version or run["end"] != bar.minute:
                close(kind)
        for kind, (value, limit, unit) in failing.items():
            end = bar.minute + timedelta(minutes=1)
            run = open_runs.get(kind)
            if run is None:
                open_runs[kind] = {"start": bar.minute, "end": end, "peak": value, "limit": limit, "unit": unit,
                                   "exempted": bar.status == "exempt", "version": bar.obligation_version}
                continue
            run["end"] = end
            run["exempted"] = run["exempted"] and bar.status == "exempt"
            if value is not None:
                run["peak"] = max(run["peak"], value) if kind != "depth_below_min" else min(run["peak"], value)
    for kind in list(open_runs):
        close(kind)
    return incidents


def gather(market: Market, start: datetime, end: datetime) -> MarketEvidence:
    periods = obligation_periods(market_id=market.id, start=start, end=end)
    bars = _minute_bars(market.id, start, end, periods)
    results = []
    for lo, hi, version in periods:
        governed = [b for b in bars if lo <= b.minute < hi]
        stats = _stats(market.id, lo, hi, version.spread_denominator)
        results.append({"obligation_version": version.version, "obligation_version_id": version.id,
                        "from": lo, "to": hi, **_uptime_result(governed, stats, version.uptime_required_pct)})
    total = _total(market.id, start, end, results, bars)
    versions = {v.version: v for _, _, v in periods}
    return MarketEvidence(
        market=market_identity(market),
        obligations=obligation_entries(periods),
        bars=bars,
        results=results,
        total=total,
        incidents=_incidents(bars, versions),
        behaviour=behaviour(market, start, end),
        fees={},
        escalation={},
    )


def _total(market_id: int, start: datetime, end: datetime, results: list[dict], bars: list[MinuteBar]) -> dict:
    """The whole period. Percentiles use the latest version's spread denominator; a period
    spanning versions is passed only if each version's own minutes pass its own clause."""
    denominator = results[-1]["spread"]["denominator"] if results else "ask"
    total = _uptime_result(bars, _stats(market_id, start, end, denominator), None)
    verdicts = [r["passed"] for r in results if r["passed"] is not None]
    total["uptime_required_pct"] = None
    total["passed"] = all(verdicts) if verdicts else None
    total["no_obligation_minutes"] = sum(1 for b in bars if b.status == "no_obligation")
    return total


def behaviour(market: Market, start: datetime, end: datetime) -> dict:
    """What the exchange reported (apiTradingStatus polls) in the period, and its locks."""
    rows = list(
        ExchangeIndicator.objects.filter(market=market, observed_at__gte=start, observed_at__lt=end).order_by("observed_at", "indicator", "id")
    )
    latest = {}
    for row in rows:
        latest[row.indicator] = row
    return {
        "exchange_reported": [
            {"indicator": r.indicator, "value": r.value, "trigger_value": r.trigger_value, "is_locked": r.is_locked,
             "observed_at": r.observed_at}
            for _, r in sorted(latest.items())
        ],
        "exchange_polls": len(rows),
        "locks": [
            {"indicator": r.indicator, "observed_at": r.observed_at, "planned_recover_time": r.planned_recover_time,
             "value": r.value, "trigger_value": r.trigger_value}
            for r in rows if r.is_locked
        ],
    }
