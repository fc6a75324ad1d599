"""What each kind of alert rule watches, its default limit (from the obligation in force) and
how it judges a market's signals. Pure: plain values in, a Verdict out.

Reading of "early warning at a fraction of each KPI" (DESIGN.md, 'Breaches, warnings'): a KPI
warns once it has used that fraction of its allowance — a spread at ≥ 90 % of the maximum,
a depth at ≤ minimum / 0.9 (so the warning comes before the breach, not after it).
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MarketSignals:
    """A market's current observations (alerts.signals builds them); None = not known."""

    now: datetime
    venue_tier: int
    latest_sample_age_s: float | None  # any sample, valid or not
    latest_valid_age_s: float | None
    fresh: bool  # a valid sample within the staleness window
    spread_ask_pct: float | None = None
    spread_mid_pct: float | None = None
    depth_bid_usd: float | None = None
    depth_ask_usd: float | None = None
    uptime_lost_minutes: float | None = None  # today's non-compliant minutes so far, as the engine judged them
    uptime_allowed_minutes: float | None = None  # the day's allowance of non-compliant minutes
    uptime_budget_minutes: int | None = None  # still allowed today; < 0 = the day has failed
    uptime_unrecoverable: bool | None = None
    cancel_ratio_pct: float | None = None
    indicator_name: str | None = None
    indicator_ratio: float | None = None  # worst value / trigger among the latest indicators
    locked: bool | None = None
    lock_detail: str = ""
    escalation_step: int | None = None
    collector_ok: bool | None = None  # from the collectors' heartbeats, when they report
    rate_limit_hits: int | None = None  # 429 + 418 responses in the rate-limit window
    clock_offset_ms: float | None = None


@dataclass(frozen=True)
class Verdict:
    breached: bool | None  # None: cannot be judged now (no data)
    value: float | None
    detail: str = ""


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    kpi: str  # what the value is, with its unit, for messages
    severity: str
    for_seconds: int
    default_limit: Callable[[dict, int], float | None]  # (obligation terms, venue tier) → limit; None = not applicable
    judge: Callable[[MarketSignals, float, dict], Verdict]


def _f(value) -> float | None:
    return None if value is None else float(value)


def _spread(s: MarketSignals, terms: dict) -> float | None:
    if not s.fresh:
        return None
    return s.spread_mid_pct if terms.get("spread_denominator") == "mid" else s.spread_ask_pct


def _above(value: float | None, limit: float) -> Verdict:
    return Verdict(None if value is None else value > limit, value)


def _below(value: float | None, limit: float) -> Verdict:
    return Verdict(None if value is None else value < limit, value)


def _at_least(value: float | None, limit: float) -> Verdict:
    return Verdict(None if value is None else value >= limit, value)


def _depth(s: MarketSignals) -> float | None:
    if not s.fresh or s.depth_bid_usd is None or s.depth_ask_usd is None:
        return None
    return s.depth_bid_usd + s.depth_ask_usd


def _side_depth(s: MarketSignals) -> float | None:
    if not s.fresh or s.depth_bid_usd is None or s.depth_ask_usd is None:
        return None
    return min(s.depth_bid_usd, s.depth_ask_usd)


def _budget_used_pct(s: MarketSignals) -> float | None:
    """Share of today's non-compliance allowance already spent, %."""
    if s.uptime_lost_minutes is None or s.uptime_allowed_minutes is None:
        return None
    if s.uptime_allowed_minutes <= 0:
        return 100.0 if s.uptime_lost_minutes > 0 else 0.0
    return s.uptime_lost_minutes / s.uptime_allowed_minutes * 100


def _collector(s: MarketSignals, limit: float, terms: dict) -> Verdict:
    if s.collector_ok is False:
        return Verdict(True, s.latest_sample_age_s, "the collector's heartbeat lapsed")
    if s.latest_sample_age_s is None:
        return Verdict(True, None, "no sample has ever been recorded")
    return Verdict(s.latest_sample_age_s > limit, s.latest_sample_age_s)


def _data_gap(s: MarketSignals, limit: float, terms: dict) -> Verdict:
    if s.latest_sample_age_s is None or s.latest_sample_age_s > limit:
        return Verdict(None, None)  # nothing arrives at all: that is collector_down
    age = s.latest_valid_age_s
    return Verdict(age is None or age > limit, age, "samples arrive but none is valid (crossed/empty book or resync)")


def _lock(s: MarketSignals, limit: float, terms: dict) -> Verdict:
    return Verdict(s.locked, None if s.locked is None else float(s.locked), s.lock_detail)


def _indicator(s: MarketSignals, limit: float, terms: dict) -> Verdict:
    return Verdict(None if s.indicator_ratio is None else s.indicator_ratio >= limit, s.indicator_ratio, s.indicator_name or "")


def _tier1_only(terms: dict, tier: int) -> float | None:
    # reference/cex-listing-spread-depth-uptime-compliance.txt, line 2: "A bid-ask spread exceeding 2% on a
    # Tier-1 centralized exchange triggers a liquidity alert within 72 hours of detection."
    return 2.0 if tier == 1 else None


def _uptime_terms(value: Callable[[dict], float]) -> Callable[[dict, int], float | None]:
    return lambda t, tier: None if t.get("uptime_required_pct") is None else value(t)


KINDS: dict[str, Kind] = {
    k.code: k
    for k in (
        Kind("spread_breach", "Spread above the maximum", "spread %", "critical", 60,
             lambda t, tier: _f(t["spread_max_pct"]), lambda s, lim, t: _above(_spread(s, t), lim)),
        Kind("spread_warning", "Spread early warning", "spread %", "warning", 60,
             lambda t, tier: float(t["spread_max_pct"]) * float(t["early_warning_fraction"]),
             lambda s, lim, t: _above(_spread(s, t), lim)),
        Kind("depth_breach", "Depth below the minimum", "depth within the band, USD", "critical", 60,
             lambda t, tier: _f(t.get("depth_min_usd")), lambda s, lim, t: _below(_depth(s), lim)),
        Kind("depth_warning", "Depth early warning", "depth within the band, USD", "warning", 60,
             lambda t, tier: None if t.get("depth_min_usd") is None else float(t["depth_min_usd"]) / float(t["early_warning_fraction"]),
             lambda s, lim, t: _below(_depth(s), lim)),
        Kind("depth_side_breach", "One side's depth below the minimum", "thinner side's depth, USD", "critical", 60,
             lambda t, tier: _f(t.get("depth_min_side_usd")), lambda s, lim, t: _below(_side_depth(s), lim)),
        Kind("liquidity_alert_clock", "Liquidity-alert trigger (72 h clock)", "spread %", "critical", 0,
             _tier1_only, lambda s, lim, t: _above(_spread(s, t), lim)),
        Kind("uptime_budget_low", "Uptime budget running low", "today's non-compliance allowance used, %", "warning", 0,
             _uptime_terms(lambda t: float(t["early_warning_fraction"]) * 100),
             lambda s, lim, t: _at_least(_budget_used_pct(s), lim)),
        Kind("uptime_unrecoverable", "Uptime unrecoverable today", "non-compliant minutes still allowed today", "critical", 0,
             _uptime_terms(lambda t: 0.0),
             lambda s, lim, t: Verdict(s.uptime_unrecoverable, _f(s.uptime_budget_minutes), "the uptime clause cannot be met today")),
        Kind("cancel_ratio_breach", "Cancel ratio above the limit", "cancelled / placed orders (24 h), %", "critical", 0,
             lambda t, tier: _f(t["max_cancel_ratio_pct"]), lambda s, lim, t: _above(s.cancel_ratio_pct, lim)),
        Kind("indicator_warning", "Quantitative-rule indicator near its trigger", "indicator value / trigger value", "warning", 0,
             lambda t, tier: _f(t["indicator_warning_fraction"]), _indicator),
        Kind("indicator_lock", "Trading locked by the exchange", "locked (1 = yes)", "critical", 0,
             lambda t, tier: 1.0, _lock),
        Kind("escalation_step", "Escalation step reached", "violations in the rolling 90 days", "critical", 0,
             # DESIGN.md 'Breaches': 1st violation → warning, 2nd → financial penalty, 3rd → delisting review.
             lambda t, tier: 2.0, lambda s, lim, t: _at_least(_f(s.escalation_step), lim)),
        Kind("collector_down", "Collector down", "seconds since the last sample", "critical", 30,
             lambda t, tier: 30.0, _collector),
        Kind("data_gap", "Data gap (no valid samples)", "seconds since the last valid sample", "warning", 30,
             lambda t, tier: 30.0, _data_gap),
        Kind("rate_limited", "Repeated 429/418 from the exchange", "429/418 responses in 5 min", "warning", 0,
             lambda t, tier: 3.0, lambda s, lim, t: _at_least(_f(s.rate_limit_hits), lim)),
        Kind("clock_offset", "Clock offset to the exchange", "|clock offset|, ms", "warning", 60,
             lambda t, tier: 1000.0, lambda s, lim, t: _above(None if s.clock_offset_ms is None else abs(s.clock_offset_ms), lim)),
    )
}

KIND_CHOICES = [(k.code, k.label) for k in KINDS.values()]
