"""Reads behind the dashboard's pages, JSON APIs and sockets (services write, selectors read).

Every verdict comes from the compliance engine (compliance.selectors.markets_status and the
functions it uses): the book now judged by compliance.evaluation.book_statuses, today's uptime and
breach budget as compliance.judging last judged them, order behaviour, liquidity score, escalation
and the 72 h clock. This module only shapes them for the pages (JSON-ready, UTC ISO times) and
caches what moves at most once a minute.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q

from collectors.api_health import TRACKED
from collectors.leases import heartbeat_report
from collectors.models import ApiResponse
from compliance import evaluation, judging, metrics
from compliance import selectors as engine
from compliance.models import Market, ObligationVersion, OwnOrder, TierPreset
from compliance.rollups import floor_minute

# Ranges a page may ask for: a minute-bar history of at most this long, and live windows.
MAX_HISTORY = timedelta(days=31)
LIVE_WINDOW_SECONDS = 900
OPEN_ORDER_STATUSES = ("NEW", "PARTIALLY_FILLED")
UPTIME_CURVE_STEP_MINUTES = 15  # the 'uptime so far' curve: one engine verdict per quarter hour, and now


class UnknownMarket(LookupError):
    pass


class BadRange(ValueError):
    pass


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _f(value) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------- obligations shown


def limits_of(version: ObligationVersion | None) -> dict | None:
    """The terms a page shows beside each value (the judging is the engine's)."""
    if version is None:
        return None
    return {
        "version": version.version,
        "spread_denominator": version.spread_denominator,
        "spread_target_min_pct": _f(version.spread_target_min_pct),
        "spread_target_max_pct": _f(version.spread_target_max_pct),
        "spread_max_pct": _f(version.spread_max_pct),
        "depth_band_pct": _f(version.depth_band_pct),
        "depth_min_usd": _f(version.depth_min_usd),
        "depth_min_side_usd": _f(version.depth_min_side_usd),
        "uptime_required_pct": _f(version.uptime_required_pct),
        "evaluation_method": version.evaluation_method,
        "max_cancel_ratio_pct": _f(version.max_cancel_ratio_pct),
    }


def obligations_in_force(market_ids: list[int], *, at: datetime) -> dict[int, ObligationVersion]:
    return engine.obligations_in_force(market_ids=market_ids, at=at)


# ---------------------------------------------------------------------------- the engine's verdicts


def verdicts(market_ids: list[int], *, now: datetime) -> dict[int, dict]:
    """engine.market_verdicts, cached until the minute turns (or an obligation changes): they
    move only when the engine judges again, at most once a minute. Shared by every page and socket."""
    newest = ObligationVersion.objects.aggregate(n=Max("id"))["n"]
    digest = hashlib.sha1(",".join(map(str, sorted(market_ids))).encode()).hexdigest()
    key = f"dashboard:verdicts:{floor_minute(now):%Y%m%d%H%M}:{newest}:{digest}"
    found = cache.get(key)
    if found is None:
        found = engine.market_verdicts(market_ids=market_ids, now=now)
        cache.set(key, found, timeout=90)
    return found


def live_update(payload: dict, verdict: dict, *, now: datetime) -> dict:
    """A collector's 1 s sample (live message) judged for the browser: the book and the market's
    overall status, both computed here so the page never judges anything itself."""
    standing = engine.market_standing(verdict, payload, now=now)
    return {"market_id": verdict["market_id"], "live": standing["live"], "status": standing["status"]}


def _uptime_cell(u: dict) -> dict:
    if not u.get("judged"):
        return {"status": u["status"], "required_pct": u.get("required_pct"), "judged": False}
    keys = ("status", "judged", "raw_pct", "adjusted_pct", "required_pct", "breach_budget_minutes", "budget_allowed_minutes",
            "lost_minutes", "unrecoverable", "minutes_elapsed", "compliant_minutes", "non_compliant_minutes",
            "unknown_minutes", "excused_minutes", "exempt_minutes", "coverage_pct", "evaluation_methods")
    return {**{k: u[k] for k in keys}, "judged_until": _iso(u["judged_until"]), "as_of": _iso(u["as_of"])}


def _behaviour_cell(b: dict | None) -> dict:
    if b is None:
        return {"status": evaluation.KpiStatus.UNKNOWN, "judged": False, "text": "no obligation"}
    locked = [name for name, i in b["indicators"].items() if i["exchange"] and i["exchange"]["is_locked"]]
    cancel = b["cancel_ratio_pct"]
    if locked:
        text = "locked: " + ", ".join(locked)
    elif b["orders_placed"]:
        text = f"cancel ratio {cancel['value']:.1f} % (≤ {cancel['limit']:g} %), {b['orders_placed']} orders / 10 min"
    else:
        text = "no own orders in the last 10 min"
    return {"status": b["status"], "judged": b["judged"], "text": text}


def overview_row(market: Market, version: ObligationVersion | None, standing: dict) -> dict:
    """One overview row, JSON-ready and compact (the page renders 500 of them)."""
    score, escalation, clock = (standing.get(k) for k in ("score", "escalation", "liquidity_alert_clock"))
    return {
        "market_id": market.id, "venue": market.venue.name, "tier": market.venue.tier, "symbol": market.symbol,
        "limits": limits_of(version),
        "live": standing["live"],
        "uptime": _uptime_cell(standing["uptime"]) if version else {"status": evaluation.KpiStatus.UNKNOWN, "judged": False},
        "behaviour": _behaviour_cell(standing.get("behaviour")),
        "score": None if score is None or score["score"] is None else round(score["score"]),
        "escalation": escalation,
        "clock_deadline": None if clock is None else _iso(clock["deadline"]),
        "status": standing["status"],
    }


def overview_rows(*, now: datetime) -> list[dict]:
    """Every monitored market with each obligation's status: the overview's first paint and resync."""
    markets = list(engine.active_markets())
    ids = [m.id for m in markets]
    versions = obligations_in_force(ids, at=now)
    found = verdicts(ids, now=now)
    samples = engine.latest_samples(market_ids=ids, now=now)
    return [overview_row(m, versions.get(m.id), engine.market_standing(found[m.id], samples.get(m.id), now=now)) for m in markets]


# The overview's first paint and resync carry only what its table shows, in the same shapes the
# live updates patch (`live`, `status`); the terms are sent once per distinct set, not once per row.
_OVERVIEW_LIVE = ("ts", "stale", "spread_pct", "depth_usd", "depth_bid_usd", "depth_ask_usd", "depth_bid_complete",
                  "depth_ask_complete", "depth_lower_bound")
_OVERVIEW_LIMITS = ("spread_target_max_pct", "spread_max_pct", "depth_band_pct", "depth_min_usd", "depth_min_side_usd")
_OVERVIEW_UPTIME = ("status", "judged", "raw_pct", "adjusted_pct", "required_pct", "breach_budget_minutes",
                    "budget_allowed_minutes", "judged_until")


def _overview_slim(row: dict, terms: dict[tuple, int]) -> dict:
    live = row["live"]
    limits = row["limits"]
    key = None if limits is None else tuple(limits[k] for k in _OVERVIEW_LIMITS)
    return {
        "market_id": row["market_id"], "venue": row["venue"], "tier": row["tier"], "symbol": row["symbol"],
        "terms": None if key is None else terms.setdefault(key, len(terms)),
        "live": {**{k: live[k] for k in _OVERVIEW_LIVE}, "kpis": {k: {"status": v["status"]} for k, v in live["kpis"].items()}},
        "uptime": {k: row["uptime"][k] for k in _OVERVIEW_UPTIME if k in row["uptime"]},
        "behaviour": {"status": row["behaviour"]["status"], "text": row["behaviour"]["text"]},
        "score": row["score"], "escalation": row["escalation"], "clock_deadline": row["clock_deadline"],
        "status": row["status"],
    }


def overview_table(*, now: datetime) -> dict:
    """overview_rows as the overview page needs them: `rows` (each `terms` an index into `terms`, or None
    without an obligation) and `terms`, the distinct obligation terms shown beside the values."""
    terms: dict[tuple, int] = {}
    rows = [_overview_slim(r, terms) for r in overview_rows(now=now)]
    return {"terms": [dict(zip(_OVERVIEW_LIMITS, key)) for key in terms], "rows": rows}


# ---------------------------------------------------------------------------- market page


def market(market_id: int) -> Market:
    try:
        return Market.objects.select_related("venue", "conversion_market").get(pk=market_id)
    except Market.DoesNotExist:
        raise UnknownMarket(f"There is no market with id {market_id}.") from None


def live_series(market_id: int, *, now: datetime, seconds: int = LIVE_WINDOW_SECONDS) -> dict:
    """The last `seconds` of 1 s samples, one point per second; a second with no valid sample is null (a gap, not data)."""
    m = market(market_id)
    version = obligations_in_force([m.id], at=now).get(m.id)
    field = "spread_mid_pct" if version and version.spread_denominator == "mid" else "spread_ask_pct"
    end = now.replace(microsecond=0)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT t.ts, s.spread, s.depth_bid_usd, s.depth_ask_usd FROM
                generate_series(%(first)s::timestamptz, %(last)s::timestamptz, interval '1 second') AS t(ts)
                LEFT JOIN (SELECT DISTINCT ON (1) date_trunc('second', ts) AS second, {field} AS spread,
                                  depth_bid_usd, depth_ask_usd
                           FROM compliance_sample WHERE market_id = %(market)s AND valid
                           AND ts >= %(first)s AND ts < %(last)s + interval '1 second' ORDER BY 1, ts DESC) s
                ON s.second = t.ts ORDER BY t.ts""",
            {"first": end - timedelta(seconds=seconds - 1), "last": end, "market": m.id},
        )
        rows = cur.fetchall()
    return {
        "market_id": m.id, "limits": limits_of(version), "now": now.isoformat(),
        "ts": [r[0].isoformat() for r in rows],
        "spread_pct": [r[1] for r in rows], "depth_bid_usd": [r[2] for r in rows], "depth_ask_usd": [r[3] for r in rows],
    }


def parse_range(start: str | None, end: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """A history range from the query string (ISO dates or datetimes, UTC); clear errors for bad input."""
    def parse(text: str, name: str) -> datetime:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise BadRange(f"The {name} {text!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC).") from None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    lo = parse(start, "start") if start else now - timedelta(hours=6)
    hi = parse(end, "end") if end else now
    if hi <= lo:
        raise BadRange("The end of the range must be after its start.")
    if hi - lo > MAX_HISTORY:
        raise BadRange(f"A history range is at most {MAX_HISTORY.days} days; pick a shorter one.")
    return lo, hi


def minute_bars(market_id: int, *, start: datetime, end: datetime, compare: bool = False) -> dict:
    """The engine's minute bars over [start, end) (spread avg/max, depth min per side, valid
    coverage), null for minutes without a bar. With `compare`, the previous period of the same
    length, its times shifted onto this one's."""
    m = market(market_id)
    result = {"market_id": m.id, "limits": limits_of(obligations_in_force([m.id], at=end).get(m.id)),
              "start": start.isoformat(), "end": end.isoformat(), "current": _bars(m.id, start, end)}
    if compare:
        span = end - start
        previous = _bars(m.id, start - span, start)
        previous["minute"] = result["current"]["minute"][: len(previous["minute"])]
        result["previous"] = previous
    return result


def _bars(market_id: int, start: datetime, end: datetime) -> dict:
    bars = engine.minute_bars(market_id=market_id, start=floor_minute(start), end=end)
    out = {k: [] for k in ("minute", "spread_avg", "spread_max", "depth_bid_min", "depth_ask_min", "coverage")}
    minute = floor_minute(start)
    while minute < end:
        bar = bars.get(minute)
        out["minute"].append(minute.isoformat())
        for key in ("spread_avg", "spread_max", "depth_bid_min", "depth_ask_min"):
            value = getattr(bar, key) if bar else None
            out[key].append(None if value is None else round(value, 6))
        out["coverage"].append(round(bar.valid_samples / evaluation.SECONDS_PER_MINUTE, 4) if bar else None)
        minute += evaluation.MINUTE
    return out


def uptime_today(market_id: int, *, now: datetime) -> dict:
    """Today's minutes as the engine judges them now (compliance.judging.judge_span: each under
    its own version, volatility exemption, excused outages), and the 'uptime so far' curve: the
    engine's period verdict at every quarter hour and at the last closed minute."""
    m = market(market_id)
    start = datetime.combine(now.date(), datetime.min.time(), tzinfo=timezone.utc)
    span = judging.judge_span(market=m, start=start, end=start + timedelta(days=1), now=now)
    minutes = [
        {"minute": r.minute.isoformat(), "outcome": r.judgement.outcome.value,
         "exempt": r.minute in span.exempt, "excused": r.excused}
        for r in span.records
    ]
    curve = []
    for n in range(1, len(span.records) + 1):
        if n % UPTIME_CURVE_STEP_MINUTES == 0 or n == len(span.records):
            verdict = evaluation.period_verdict(span.records[:n], span.exempt, minutes_total=span.governed_minutes)
            curve.append({"minute": (span.records[n - 1].minute + evaluation.MINUTE).isoformat(),
                          "raw_pct": verdict.uptime_raw_pct, "adjusted_pct": verdict.uptime_adjusted_pct})
    return {"minutes": minutes, "curve": curve}


def _levels(raw) -> list[tuple[float, float]]:
    """Snapshot levels stored as [[price, qty], ...] (strings or numbers) or [{"price":..., "qty":...}]."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    out = []
    for level in raw or []:
        price, qty = (level["price"], level["qty"]) if isinstance(level, dict) else (level[0], level[1])
        out.append((float(price), float(qty)))
    return out


def book_depth(market_id: int, *, now: datetime) -> dict:
    """The latest stored top-N book as cumulative USD depth per side, the band edges, and the desk's open orders."""
    m = market(market_id)
    limits = limits_of(obligations_in_force([m.id], at=now).get(m.id))
    with connection.cursor() as cur:
        cur.execute(
            """SELECT ts, bids, asks FROM compliance_book_snapshot WHERE market_id = %s AND ts > %s AND ts <= %s
               ORDER BY ts DESC LIMIT 1""",
            [m.id, now - timedelta(days=1), now],
        )
        row = cur.fetchone()
    own = [
        {"side": o.side, "price": float(o.price), "qty": float(o.orig_qty - o.executed_qty), "order_id": o.order_id}
        for o in OwnOrder.objects.filter(market=m, status__in=OPEN_ORDER_STATUSES).order_by("price")[:500]
    ]
    if row is None:
        return {"market_id": m.id, "ts": None, "bids": None, "asks": None, "own": own, "band": None}
    ts, bids, asks = row[0], sorted(_levels(row[1]), reverse=True), sorted(_levels(row[2]))
    rate = _f(engine.quotes_usd(market_ids=[m.id], now=now)[m.id])
    band_pct = limits["depth_band_pct"] if limits else 2.0
    band = None
    if bids and asks and bids[0][0] < asks[0][0]:
        lo, hi = metrics.band_edges(bids[0][0], asks[0][0], band_pct, "mid")
        band = {"low": lo, "high": hi, "pct": band_pct, "mid": metrics.mid_price(bids[0][0], asks[0][0])}
    return {
        "market_id": m.id, "ts": ts.isoformat(), "band": band, "usd_rate": rate, "own": own,
        "bids": _cumulative(bids, rate), "asks": _cumulative(asks, rate),
    }


def _cumulative(levels: list[tuple[float, float]], rate: float | None) -> dict:
    price, total, running = [], [], 0.0
    for p, q in levels:
        running += p * q * (rate or 0.0)
        price.append(p)
        total.append(round(running, 2))
    return {"price": price, "cum_usd": total}


def api_health(m: Market, *, now: datetime) -> dict:
    """The venue's REST health over the last 24 h (collectors.models.ApiResponse) and its
    collectors' clock offset to the exchange, from the shard heartbeats (collectors.leases)."""
    recent = ApiResponse.objects.filter(venue_id=m.venue_id, at__gt=now - timedelta(hours=24), at__lte=now)
    counts = recent.aggregate(total=Count("id"), no_response=Count("id", filter=Q(http_status=0)),
                              **{name: Count("id", filter=q) for name, q in TRACKED.items()})
    last = recent.order_by("-at").first()
    clocks = [
        {"shard": shard, "offset_ms": beat["clock_offset_ms"], "measured_at": beat.get("clock_measured_at"), "ok": beat["ok"]}
        for shard, beat in heartbeat_report(now.timestamp()).items()
        if beat.get("venue_id") == m.venue_id and beat.get("clock_offset_ms") is not None
    ]
    return {
        **counts,
        "last_at": _iso(last.at) if last else None,
        "used_weight_1m": last.used_weight_1m if last else None,
        "latency_ms": round(last.latency_ms, 1) if last else None,
        "clock": clocks,
    }


def market_page(market_id: int, *, now: datetime) -> dict:
    m = market(market_id)
    version = obligations_in_force([m.id], at=now).get(m.id)
    standing = engine.market_standing(
        verdicts([m.id], now=now)[m.id], engine.latest_samples(market_ids=[m.id], now=now).get(m.id), now=now
    )
    row = overview_row(m, version, standing)
    behaviour = standing.get("behaviour")
    return {
        "market": m, "obligation": version, "limits": row["limits"], "row": row,
        "behaviour": None if behaviour is None else {**row["behaviour"], **_behaviour_detail(behaviour)},
        "api_health": api_health(m, now=now),
    }


def _behaviour_detail(b: dict) -> dict:
    return {
        "orders_placed": b["orders_placed"],
        "cancel_ratio_pct": b["cancel_ratio_pct"],
        "indicators": {
            name: {**{k: i[k] for k in ("value", "orders", "trigger_value", "status")},
                   "exchange": None if i["exchange"] is None else {
                       **{k: i["exchange"][k] for k in ("value", "trigger_value", "is_locked", "status")},
                       "observed_at": _iso(i["exchange"]["observed_at"]),
                       "planned_recover_time": _iso(i["exchange"]["planned_recover_time"])}}
            for name, i in b["indicators"].items()
        },
    }


# ---------------------------------------------------------------------------- obligations page


def obligations_table(*, now: datetime) -> list[dict]:
    markets = list(Market.objects.select_related("venue").order_by("venue__tier", "venue__name", "symbol"))
    versions = obligations_in_force([m.id for m in markets], at=now)
    return [{"market": m, "obligation": versions.get(m.id)} for m in markets]


def obligation_log(market_id: int) -> list[ObligationVersion]:
    return list(
        ObligationVersion.objects.filter(market_id=market_id).select_related("preset", "changed_by").order_by("-version")
    )


def tier_preset(market: Market) -> TierPreset | None:
    return TierPreset.objects.filter(tier=market.venue.tier).first()
