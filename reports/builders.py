"""The report document: every number of a report, as plain data, in one place.

The JSON export is this document; the PDF is drawn from it (and from the same minute bars
for the charts), so the PDF never shows a number the JSON lacks. Pure: no ORM, no I/O.
Field meanings: reports/FORMAT.md.
"""
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

FORMAT = "lcm.audit-report"
FORMAT_VERSION = 1

MINUTE_COLUMNS = (
    "market_id", "venue", "symbol", "minute", "obligation_version", "status", "samples", "valid_samples",
    "spread_avg_pct", "spread_max_pct", "depth_bid_avg_usd", "depth_ask_avg_usd", "depth_min_usd",
    "depth_complete", "slip_buy_avg_pct", "slip_sell_avg_pct",
)
INCIDENT_COLUMNS = (
    "market_id", "venue", "symbol", "kind", "start", "end", "duration_s", "peak", "limit", "unit",
    "exempted", "obligation_version",
)
# Minute statuses, in the order the heatmap and tables list them.
STATUSES = ("compliant", "exempt", "excused", "non_compliant", "unknown", "no_obligation")


class MinuteBar(NamedTuple):
    """One row of minute_bars.csv (a named tuple: a 100-market day is 144,000 of them)."""

    minute: datetime
    obligation_version: int | None
    status: str
    samples: int
    valid_samples: int
    spread_avg_pct: float | None
    spread_max_pct: float | None
    depth_bid_avg_usd: float | None
    depth_ask_avg_usd: float | None
    depth_min_usd: float | None
    depth_complete: bool | None
    slip_buy_avg_pct: float | None
    slip_sell_avg_pct: float | None


@dataclass(frozen=True)
class Incident:
    kind: str
    start: datetime
    end: datetime
    peak: float | None
    limit: float | None
    unit: str
    exempted: bool
    obligation_version: int

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())


@dataclass
class MarketEvidence:
    """Everything gathered for one market and period (reports/evidence.py fills it)."""

    market: dict
    obligations: list[dict]
    bars: list[MinuteBar]
    results: list[dict]
    total: dict
    incidents: list[Incident]
    exemption_episodes: list[dict] = field(default_factory=list)
    daily_results: list[dict] = field(default_factory=list)
    liquidity_scores: list[dict] = field(default_factory=list)
    liquidity_score: dict | None = None
    behaviour: dict = field(default_factory=dict)
    fees: dict = field(default_factory=dict)
    escalation: dict = field(default_factory=dict)


def iso(value: datetime | None) -> str | None:
    """UTC, to the second, with Z (isoformat is several times faster than strftime; the times
    are UTC-aware throughout, so its first 19 characters are the UTC time)."""
    if value is None:
        return None
    if value.utcoffset():
        raise ValueError(f"{value!r} is not a UTC time.")
    return value.isoformat()[:19] + "Z"


def plain(value):
    """Contract terms are Decimals; the document holds floats, ints, strings and None only."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def minute_rows(evidence: list[MarketEvidence]):
    for ev in sorted(evidence, key=lambda e: e.market["id"]):
        m = ev.market
        for bar in ev.bars:
            yield (
                m["id"], m["venue"], m["symbol"], iso(bar.minute), bar.obligation_version, bar.status, bar.samples,
                bar.valid_samples, bar.spread_avg_pct, bar.spread_max_pct, bar.depth_bid_avg_usd, bar.depth_ask_avg_usd,
                bar.depth_min_usd, bar.depth_complete, bar.slip_buy_avg_pct, bar.slip_sell_avg_pct,
            )


def incident_rows(evidence: list[MarketEvidence]):
    for ev in sorted(evidence, key=lambda e: e.market["id"]):
        m = ev.market
        for inc in sorted(ev.incidents, key=lambda i: (i.start, i.kind)):
            yield (
                m["id"], m["venue"], m["symbol"], inc.kind, iso(inc.start), iso(inc.end), inc.duration_s, inc.peak,
                inc.limit, inc.unit, inc.exempted, inc.obligation_version,
            )


def status_counts(bars: list[MinuteBar]) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for bar in bars:
        counts[bar.status] += 1
    return counts


def build_document(*, scope: dict, period: dict, methodology: dict, evidence: list[MarketEvidence]) -> dict:
    markets = []
    for ev in sorted(evidence, key=lambda e: e.market["id"]):
        markets.append(
            {
                "market": plain(ev.market),
                "obligations": plain(ev.obligations),
                "results": plain(ev.results),
                "total": plain(ev.total),
                "minute_status_counts": status_counts(ev.bars),
                "incidents": [
                    {**plain(asdict(i)), "duration_s": i.duration_s} for i in sorted(ev.incidents, key=lambda i: (i.start, i.kind))
                ],
                "exemption_episodes": plain(ev.exemption_episodes),
                "daily_results": plain(ev.daily_results),
                "liquidity_scores": plain(ev.liquidity_scores),
                "liquidity_score": plain(ev.liquidity_score),
                "behaviour": plain(ev.behaviour),
                "fees": plain(ev.fees),
                "escalation": plain(ev.escalation),
            }
        )
    passed = [m["total"].get("passed") for m in markets]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scope": scope,
        "period": period,
        "methodology": methodology,
        "summary": {
            "markets": len(markets),
            "markets_passed": sum(1 for p in passed if p is True),
            "markets_failed": sum(1 for p in passed if p is False),
            "markets_not_enforced": sum(1 for p in passed if p is None),
            "incidents": sum(len(m["incidents"]) for m in markets),
        },
        "markets": markets,
    }


def methodology(evidence: list[MarketEvidence]) -> dict:
    """How the numbers were made, stated from the terms actually in force (DESIGN.md 'How a period is judged')."""
    terms = [o["terms"] for ev in evidence for o in ev.obligations]

    def used(key):
        return sorted({str(plain(t[key])) for t in terms if t.get(key) is not None})

    denominators, bands, references = used("spread_denominator"), used("depth_band_pct"), used("depth_reference")
    methods, rules = used("evaluation_method"), used("minute_rule")
    text = [
        "Source: the 1-second samples stored by the collectors (table compliance_sample), one per market per second, "
        "each taken from the local order book rebuilt from the exchange's snapshot and diff stream. A sample is invalid "
        "when the book was crossed, one-sided or resyncing; such seconds carry no metric.",
        f"Spread % = (best ask − best bid) / denominator × 100; denominator used: {', '.join(denominators) or 'none'} "
        "(ask = the conservative listing-compliance form; mid = the form of most MMAs).",
        f"Depth = USD value resting within ±{', '.join(bands) or '—'} % of the reference ({', '.join(references) or '—'}; "
        "mid = (best bid + best ask) / 2, touch = best bid for bids and best ask for asks), bid and ask side separately. "
        "Where the local book did not reach the band's edge the depth is a lower bound; those seconds are counted as "
        "'depth lower-bound seconds'.",
        f"Slippage = |VWAP − touch| / touch × 100 for a market order of the contracted size walking the book; "
        "a side that cannot fill it is counted under 'cannot fill'.",
        f"Evaluation method(s): {', '.join(methods) or '—'}; minute rule(s): {', '.join(rules) or '—'}. Under the minute "
        "method a UTC minute is compliant when every valid sample in it keeps the spread at or below the target maximum "
        "(and, where the obligation says so, the depth at or above the minimum).",
        "A minute without any valid sample is unknown: it never counts as compliant; it counts against uptime unless "
        "an operator excused the outage (audited). Coverage is the share of the period's seconds with a valid sample.",
        "Uptime raw = compliant minutes / minutes of the period, excused outage minutes taken out of both. "
        "Exemption-adjusted uptime also counts the minutes covered by the volatility exemption: trailing 5-minute "
        f"realized volatility (Parkinson, from each minute's high/low mid) above {', '.join(used('vol_trigger_pct')) or '—'} % "
        f"or above {', '.join(used('vol_trigger_multiple')) or '—'} × its 24 h average; widening up to "
        f"{', '.join(used('vol_cap_multiple')) or '—'} × the target maximum is exempt provided the spread is back in range "
        f"within {', '.join(used('vol_recovery_minutes')) or '—'} minutes after volatility subsides, otherwise those minutes "
        "count as breaches.",
        "Hard breaches (spread above the maximum permitted and not exempt, depth below the minimum) are listed per UTC day "
        "as the engine records violations; the escalation ladder counts violation days over a rolling 90 days "
        "(1st warning, 2nd penalty, 3rd delisting review).",
        "Liquidity score (0–1000): four components of 250 points — average spread against the target maximum, "
        "average band depth against the minimum, exemption-adjusted uptime against the required uptime, and $10k "
        "slippage against the target maximum times the share of seconds the book could fill it. Per whole UTC day it "
        "is the engine's stored closed-day score when that is current (computed after the day's data last changed), "
        "otherwise the same formula over the report's judged minutes; the period's score is that formula over all of "
        "the period's minutes.",
        "Order behaviour: Binance's quantitative-rule indicators (UFR, IFER, ICR/GCR, DR) are judged per 10-minute "
        "cycle, the orders placed in the 10 minutes before the cycle's end. The report evaluates a cycle ending at "
        "every minute of the period in which the desk had orders, and shows each indicator in its worst cycle among "
        "those reaching the rule's recording threshold (else the worst cycle, as not judged), beside the highest and "
        "latest values the exchange reported and any lock. The whole-period ratios are shown for context only.",
        "Fees: the VIP tier is the one the desk's 30-day USD volume on the venue reaches on the exchange's fee ladder; "
        "the ladder-vs-program comparison prices that tier's maker fee and the market-maker program's maker rate "
        "on the same 30-day flow (maker side only).",
        "Each minute is judged by the obligation version in force at that minute; a period spanning a change is "
        "reported per version and passes only if every version's own minutes pass its own clause.",
        "Averages, extremes and counts are taken over the valid 1-second samples through their minute bars (each "
        "minute's average weighted by its valid seconds; slippage averages by the seconds in which both sides "
        "could fill). Percentiles of the spread are taken over the valid 1-second samples themselves (continuous "
        "percentile).",
    ]
    return {
        "spread_denominators": denominators,
        "depth_bands_pct": bands,
        "depth_references": references,
        "evaluation_methods": methods,
        "minute_rules": rules,
        "text": text,
    }
