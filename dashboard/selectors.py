"""Reads behind the dashboard's pages, JSON APIs and sockets (services write, selectors read).

Every time is UTC. A status is one of OK / WARNING / BREACH / UNKNOWN (plus NOT_ENFORCED for
an uptime clause the contract leaves out), judged against the obligation version in force
(DESIGN.md 'Breaches, warnings, escalation'): a hard breach past the limit, an early warning
once a KPI has used `early_warning_fraction` of its limit, unknown when there is no valid,
fresh data — never OK by default.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import connection
from django.core.cache import cache
from django.db.models import Count, Max, Q

from compliance import metrics
from compliance.models import ExchangeIndicator, Market, ObligationVersion, OwnOrder, TierPreset
from compliance.selectors import active_markets

OK, WARNING, BREACH, UNKNOWN, NOT_ENFORCED = "ok", "warning", "breach", "unknown", "not_enforced"
STATUS_LABEL = {OK: "OK", WARNING: "Warning", BREACH: "Breach", UNKNOWN: "Unknown", NOT_ENFORCED: "Not enforced"}
_SEVERITY = {NOT_ENFORCED: 0, OK: 0, UNKNOWN: 1, WARNING: 2, BREACH: 3}

# Ranges a page may ask for: a minute-bar history of at most this long, and live windows.
MAX_HISTORY = timedelta(days=31)
LIVE_WINDOW_SECONDS = 900
OPEN_ORDER_STATUSES = ("NEW", "PARTIALLY_FILLED")


class UnknownMarket(LookupError):
    pass


class BadRange(ValueError):
    pass


def worst(*statuses: str) -> str:
    return max(statuses, key=lambda s: _SEVERITY[s]) if statuses else UNKNOWN


def _f(value) -> float | None:
    return None if value is None else float(value)


def day_start(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------- obligations


def limits_of(version: ObligationVersion | None) -> dict | None:
    """The terms the dashboard judges against, as plain JSON-ready numbers."""
    if version is None:
        return None
    return {
        "version_id": version.pk,
        "version": version.version,
        "spread_field": "spread_mid_pct" if version.spread_denominator == "mid" else "spread_ask_pct",
        "spread_denominator": version.spread_denominator,
        "spread_target_min_pct": _f(version.spread_target_min_pct),
        "spread_target_max_pct": _f(version.spread_target_max_pct),
        "spread_max_pct": _f(version.spread_max_pct),
        "depth_band_pct": _f(version.depth_band_pct),
        "depth_min_usd": _f(version.depth_min_usd),
        "depth_min_side_usd": _f(version.depth_min_side_usd),
        "depth_counts_for_uptime": version.depth_counts_for_uptime,
        "uptime_required_pct": _f(version.uptime_required_pct),
        "minute_rule": version.minute_rule,
        "minute_rule_share_pct": _f(version.minute_rule_share_pct),
        "max_cancel_ratio_pct": _f(version.max_cancel_ratio_pct),
        "early_warning_fraction": _f(version.early_warning_fraction),
        "indicator_warning_fraction": _f(version.indicator_warning_fraction),
        "evaluation_method": version.evaluation_method,
    }


def obligations_in_force(market_ids: list[int], *, at: datetime) -> dict[int, ObligationVersion]:
    """The version in force at `at` for each market (markets without one are absent)."""
    rows = (
        ObligationVersion.objects.filter(market_id__in=market_ids, effective_from__lte=at)
        .select_related("preset", "changed_by")
        .order_by("market_id", "-effective_from", "-version")
        .distinct("market_id")
    )
    return {v.market_id: v for v in rows}


def _periods(market_ids: list[int], start: datetime, end: datetime) -> list[tuple[int, datetime, datetime, ObligationVersion]]:
    """(market, lo, hi, version) for every version governing part of [start, end)."""
    versions = ObligationVersion.objects.filter(market_id__in=market_ids, effective_from__lt=end).order_by(
        "market_id", "effective_from", "version"
    )
    by_market: dict[int, list[ObligationVersion]] = {}
    for v in versions:
        by_market.setdefault(v.market_id, []).append(v)
    periods = []
    for market_id, vs in by_market.items():
        for i, v in enumerate(vs):
            lo = max(v.effective_from, start)
            hi = min(vs[i + 1].effective_from, end) if i + 1 < len(vs) else end
            if lo < hi:
                periods.append((market_id, lo, hi, v))
    return periods


# ---------------------------------------------------------------------------- 1 s samples

SAMPLE_COLUMNS = (
    "ts", "valid", "best_bid", "best_ask", "mid", "spread_ask_pct", "spread_mid_pct", "band_pct",
    "depth_bid_usd", "depth_ask_usd", "depth_bid_complete", "depth_ask_complete", "slip_buy_pct", "slip_sell_pct",
)


def latest_samples(market_ids: list[int], *, now: datetime) -> dict[int, dict]:
    """Each market's newest sample of the last day (the PK (market_id, ts) makes this an index probe each)."""
    if not market_ids:
        return {}
    cols = ", ".join(f"s.{c}" for c in SAMPLE_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT m.id, {cols} FROM unnest(%s::int[]) AS m(id)
                JOIN LATERAL (SELECT * FROM compliance_sample s WHERE s.market_id = m.id
                              AND s.ts > %s AND s.ts <= %s ORDER BY s.ts DESC LIMIT 1) s ON true""",
            [market_ids, now - timedelta(days=1), now],
        )
        return {row[0]: dict(zip(SAMPLE_COLUMNS, row[1:])) for row in cur.fetchall()}


def judge_sample(sample: dict | None, limits: dict | None, *, now: datetime) -> dict:
    """A sample (stored row or live payload) judged against the limits: the overview cells that move every second."""
    ts = sample.get("ts") if sample else None
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if isinstance(ts, (int, float)):
        ts = datetime.fromtimestamp(ts, tz=timezone.utc)
    age_s = (now - ts).total_seconds() if ts else None
    stale = age_s is None or age_s > settings.STALE_AFTER_SECONDS
    valid = bool(sample and sample.get("valid")) and not stale
    field = limits["spread_field"] if limits else "spread_ask_pct"
    spread = _f(sample.get(field)) if valid else None
    bid, ask = (_f(sample.get("depth_bid_usd")), _f(sample.get("depth_ask_usd"))) if valid else (None, None)
    lower_bound = valid and not (sample.get("depth_bid_complete", True) and sample.get("depth_ask_complete", True))
    return {
        "ts": ts.isoformat() if ts else None,
        "age_s": None if age_s is None else round(age_s, 1),
        "stale": stale,
        "valid": valid,
        "mid": _f(sample.get("mid")) if valid else None,
        "best_bid": _f(sample.get("best_bid")) if valid else None,
        "best_ask": _f(sample.get("best_ask")) if valid else None,
        "spread_pct": spread,
        "depth_bid_usd": bid,
        "depth_ask_usd": ask,
        "depth_bid_complete": bool(sample.get("depth_bid_complete", True)) if valid else None,
        "depth_ask_complete": bool(sample.get("depth_ask_complete", True)) if valid else None,
        "depth_lower_bound": lower_bound,
        "slip_buy_pct": _f(sample.get("slip_buy_pct")) if valid else None,
        "slip_sell_pct": _f(sample.get("slip_sell_pct")) if valid else None,
        "spread": spread_status(spread, limits),
        "depth": depth_status(bid, ask, limits, lower_bound=lower_bound),
    }


def spread_status(spread: float | None, limits: dict | None) -> dict:
    if limits is None:
        return {"status": UNKNOWN, "text": "no obligation"}
    if spread is None:
        return {"status": UNKNOWN, "text": "no valid data"}
    mx, target, ew = limits["spread_max_pct"], limits["spread_target_max_pct"], limits["early_warning_fraction"]
    if spread > mx:
        return {"status": BREACH, "text": f"above max {mx:g} %"}
    if spread > target:
        return {"status": WARNING, "text": f"above target {target:g} %"}
    if spread >= ew * mx:
        return {"status": WARNING, "text": f"≥ {ew:.0%} of max"}
    return {"status": OK, "text": f"≤ target {target:g} %"}


def depth_status(bid: float | None, ask: float | None, limits: dict | None, *, lower_bound: bool = False) -> dict:
    """Depth against the combined and per-side minimums; a lower bound is said so, never shown as exact."""
    if limits is None:
        return {"status": UNKNOWN, "text": "no obligation"}
    total_min, side_min, ew = limits["depth_min_usd"], limits["depth_min_side_usd"], limits["early_warning_fraction"]
    if total_min is None and side_min is None:
        return {"status": NOT_ENFORCED, "text": "no minimum"}
    if bid is None or ask is None:
        return {"status": UNKNOWN, "text": "no valid data"}
    # usage = minimum / depth: above 1 is a breach, above the warning fraction an early warning.
    checks = []
    if total_min is not None:
        checks.append((total_min / max(bid + ask, 1e-9), f"min ${total_min:,.0f}"))
    if side_min is not None:
        checks.append((side_min / max(min(bid, ask), 1e-9), f"min ${side_min:,.0f}/side"))
    usage, label = max(checks)
    suffix = " (lower bound)" if lower_bound else ""
    if usage > 1:
        return {"status": BREACH, "text": f"below {label}{suffix}"}
    if usage >= ew:
        return {"status": WARNING, "text": f"near {label}{suffix}"}
    return {"status": OK, "text": f"above {label}{suffix}"}


# ---------------------------------------------------------------------------- uptime

# One definition of a compliant minute (DESIGN.md 'Uptime'): per UTC minute under each version,
# judged by its minute rule; minutes with no valid sample are unknown (they count against uptime).
_MINUTE_VERDICTS = """
WITH p AS (
  SELECT * FROM unnest(%(p_market)s::int[], %(p_lo)s::timestamptz[], %(p_hi)s::timestamptz[], %(p_mid)s::bool[],
                       %(p_spread)s::float8[], %(p_depth)s::float8[], %(p_side)s::float8[], %(p_counts)s::bool[],
                       %(p_rule)s::text[], %(p_share)s::float8[])
    AS p(market_id, lo, hi, use_mid, spread_limit, depth_min, side_min, depth_counts, rule, share)
), s AS (
  SELECT p.market_id, date_trunc('minute', s.ts) AS minute, p.rule, p.share, p.spread_limit, p.depth_min,
         p.side_min, p.depth_counts,
         CASE WHEN p.use_mid THEN s.spread_mid_pct ELSE s.spread_ask_pct END AS spread,
         s.depth_bid_usd + s.depth_ask_usd AS depth, LEAST(s.depth_bid_usd, s.depth_ask_usd) AS side_depth
  FROM p JOIN compliance_sample s ON s.market_id = p.market_id AND s.ts >= p.lo AND s.ts < p.hi
  WHERE s.valid AND s.ts < %(until)s
), g AS (
  SELECT market_id, minute, rule, share,
         count(*) AS n,
         count(*) FILTER (WHERE spread <= spread_limit AND (NOT depth_counts OR (
             (depth_min IS NULL OR depth >= depth_min) AND (side_min IS NULL OR side_depth >= side_min)))) AS n_ok,
         avg(spread) <= min(spread_limit) AND (NOT bool_and(depth_counts) OR (
             (min(depth_min) IS NULL OR avg(depth) >= min(depth_min))
             AND (min(side_min) IS NULL OR avg(side_depth) >= min(side_min)))) AS avg_ok
  FROM s GROUP BY market_id, minute, rule, share
), verdicts AS (
  SELECT market_id, minute,
         bool_and(CASE rule WHEN 'share' THEN n_ok * 100.0 >= share * n
                            WHEN 'average' THEN avg_ok ELSE n_ok = n END) AS compliant
  FROM g GROUP BY market_id, minute
)
"""


def _verdict_params(periods, until: datetime) -> dict:
    return {
        "p_market": [p[0] for p in periods],
        "p_lo": [p[1] for p in periods],
        "p_hi": [p[2] for p in periods],
        "p_mid": [p[3].spread_denominator == "mid" for p in periods],
        "p_spread": [float(p[3].spread_target_max_pct) for p in periods],
        "p_depth": [_f(p[3].depth_min_usd) for p in periods],
        "p_side": [_f(p[3].depth_min_side_usd) for p in periods],
        "p_counts": [p[3].depth_counts_for_uptime for p in periods],
        "p_rule": [p[3].minute_rule for p in periods],
        "p_share": [float(p[3].minute_rule_share_pct) for p in periods],
        "until": until,
    }


def uptime_today(market_ids: list[int], *, now: datetime) -> dict[int, dict]:
    """Uptime so far today per market (closed minutes only) and the breach budget left.

    budget = minutes under obligation today × (1 − required %); every non-compliant or unknown
    minute spends one; below zero the day's clause can no longer be met (a hard breach).
    It only changes when a minute closes (or an obligation changes), so it is cached until then.
    """
    minute_now = now.replace(second=0, microsecond=0)
    newest = ObligationVersion.objects.aggregate(n=Max("id"))["n"]
    digest = hashlib.sha1(",".join(map(str, sorted(market_ids))).encode()).hexdigest()
    key = f"dashboard:uptime:{minute_now:%Y%m%d%H%M}:{newest}:{digest}"
    result = cache.get(key)
    if result is None:
        result = _uptime_today(market_ids, now=now)
        cache.set(key, result, timeout=90)
    return result


def _uptime_today(market_ids: list[int], *, now: datetime) -> dict[int, dict]:
    start, minute_now = day_start(now), now.replace(second=0, microsecond=0)
    end_of_day = start + timedelta(days=1)
    periods = _periods(market_ids, start, end_of_day)
    if not periods:
        return {}
    # A market's periods are contiguous from its first version on: its minutes run from there.
    first: dict[int, datetime] = {}
    for market_id, lo, _, _ in periods:
        first.setdefault(market_id, lo.replace(second=0, microsecond=0))
    elapsed = {i: max(0, int((minute_now - lo).total_seconds() // 60)) for i, lo in first.items()}
    total = {i: int((end_of_day - lo).total_seconds() // 60) for i, lo in first.items()}
    with connection.cursor() as cur:
        cur.execute(
            _MINUTE_VERDICTS + "SELECT market_id, count(*) FILTER (WHERE compliant), count(*) FROM verdicts GROUP BY market_id",
            _verdict_params(periods, minute_now),
        )
        counted = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    current = obligations_in_force(market_ids, at=now)
    result = {}
    for market_id in elapsed:
        compliant, known = counted.get(market_id, (0, 0))
        required = _f(current[market_id].uptime_required_pct) if market_id in current else None
        result[market_id] = uptime_verdict(
            compliant=compliant, known=known, elapsed=elapsed[market_id], total=total[market_id],
            required_pct=required, early_warning_fraction=_f(current[market_id].early_warning_fraction) if market_id in current else 0.9,
        )
    return result


def uptime_verdict(*, compliant: int, known: int, elapsed: int, total: int, required_pct: float | None,
                   early_warning_fraction: float) -> dict:
    uptime = round(compliant / elapsed * 100, 2) if elapsed else None
    verdict = {
        "uptime_pct": uptime, "compliant_minutes": compliant, "unknown_minutes": max(0, elapsed - known),
        "elapsed_minutes": elapsed, "required_pct": required_pct, "budget_minutes": None, "budget_left_minutes": None,
    }
    if required_pct is None:
        return {**verdict, "status": NOT_ENFORCED, "text": "not enforced"}
    budget = total * (1 - required_pct / 100)
    spent = elapsed - compliant
    left = budget - spent
    verdict.update(budget_minutes=round(budget, 1), budget_left_minutes=round(left, 1))
    if elapsed == 0:
        return {**verdict, "status": UNKNOWN, "text": "no closed minute yet"}
    if left < 0:
        return {**verdict, "status": BREACH, "text": f"unrecoverable: {-left:.0f} min over budget"}
    if budget and spent >= early_warning_fraction * budget:
        return {**verdict, "status": WARNING, "text": f"{left:.0f} min of budget left"}
    return {**verdict, "status": OK, "text": f"{left:.0f} min of budget left"}


def uptime_timeline(market_id: int, *, now: datetime) -> list[dict]:
    """Today's closed minutes for one market: compliant true/false, or null when unknown."""
    start, minute_now = day_start(now), now.replace(second=0, microsecond=0)
    periods = _periods([market_id], start, minute_now)
    if not periods:
        return []
    params = _verdict_params(periods, minute_now)
    params.update(first=periods[0][1].replace(second=0, microsecond=0), last=minute_now - timedelta(minutes=1))
    with connection.cursor() as cur:
        cur.execute(
            _MINUTE_VERDICTS + """SELECT m.minute, v.compliant FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz,
               interval '1 minute') AS m(minute) LEFT JOIN verdicts v ON v.minute = m.minute ORDER BY m.minute""",
            params,
        )
        return [{"minute": m.isoformat(), "compliant": c} for m, c in cur.fetchall()]


# ---------------------------------------------------------------------------- order behaviour


def order_behaviour(market_ids: list[int], limits_by_market: dict[int, dict | None], *, now: datetime) -> dict[int, dict]:
    """Today's cancel ratio from the desk's orders, and the exchange's latest quantitative-rule indicators."""
    placed = (
        OwnOrder.objects.filter(market_id__in=market_ids, placed_at__gte=day_start(now), placed_at__lte=now)
        .values("market_id")
        .annotate(placed=Count("id"), cancelled=Count("id", filter=Q(status="CANCELED")))
    )
    counts = {row["market_id"]: row for row in placed}
    indicators = (
        ExchangeIndicator.objects.filter(market_id__in=market_ids, observed_at__gte=now - timedelta(hours=1))
        .order_by("market_id", "indicator", "-observed_at")
        .distinct("market_id", "indicator")
    )
    by_market: dict[int, list] = {}
    for ind in indicators:
        by_market.setdefault(ind.market_id, []).append(ind)
    result = {}
    for market_id in market_ids:
        limits = limits_by_market.get(market_id)
        row = counts.get(market_id)
        gauges = []
        if row and row["placed"]:
            ratio = row["cancelled"] / row["placed"] * 100
            limit = limits["max_cancel_ratio_pct"] if limits else None
            gauges.append({
                "name": "Cancel ratio", "source": "local", "value": round(ratio, 3), "unit": "%", "trigger": limit,
                "detail": f"{row['cancelled']} of {row['placed']} orders today",
                "status": _gauge_status(ratio, limit, limits["early_warning_fraction"] if limits else 0.9),
            })
        for ind in by_market.get(market_id, []):
            fraction = limits["indicator_warning_fraction"] if limits else 0.8
            status = BREACH if ind.is_locked else _gauge_status(ind.value, ind.trigger_value, fraction)
            gauges.append({
                "name": ind.indicator, "source": "exchange", "value": ind.value, "unit": "", "trigger": ind.trigger_value,
                "locked": ind.is_locked, "observed_at": ind.observed_at.isoformat(),
                "recover_at": ind.planned_recover_time.isoformat() if ind.planned_recover_time else None,
                "status": status,
            })
        status = worst(*(g["status"] for g in gauges)) if gauges else UNKNOWN
        locks = [g for g in gauges if g.get("locked")]
        recover = next((i.planned_recover_time for i in by_market.get(market_id, []) if i.is_locked), None)
        text = (f"locked until {recover:%Y-%m-%d %H:%M:%S} UTC" if recover else "locked" if locks else
                f"{len(gauges)} indicator(s)" if gauges else "no order data")
        result[market_id] = {"status": status, "text": text, "gauges": gauges}
    return result


def _gauge_status(value: float, trigger: float | None, fraction: float) -> str:
    if trigger is None:
        return UNKNOWN
    if value >= trigger:
        return BREACH
    if value >= fraction * trigger:
        return WARNING
    return OK


# ---------------------------------------------------------------------------- overview


def overview_rows(*, now: datetime) -> list[dict]:
    """Every monitored market with each obligation's status: the overview's server-rendered first paint."""
    markets = list(active_markets())
    ids = [m.id for m in markets]
    versions = obligations_in_force(ids, at=now)
    limits = {i: limits_of(versions.get(i)) for i in ids}
    samples = latest_samples(ids, now=now)
    uptimes = uptime_today(ids, now=now)
    behaviour = order_behaviour(ids, limits, now=now)
    rows = []
    for m in markets:
        live = judge_sample(samples.get(m.id), limits[m.id], now=now)
        uptime = uptimes.get(m.id) or {"status": UNKNOWN, "text": "no obligation today", "uptime_pct": None}
        rows.append(overview_row(m, limits[m.id], live, uptime, behaviour[m.id]))
    return rows


def overview_row(market: Market, limits: dict | None, live: dict, uptime: dict, behaviour: dict) -> dict:
    overall = market_status(live, uptime, behaviour)
    return {
        "market_id": market.id, "venue": market.venue.name, "tier": market.venue.tier, "symbol": market.symbol,
        "limits": limits, "live": live, "uptime": uptime,
        "behaviour": {"status": behaviour["status"], "text": behaviour["text"]},
        # The engine's liquidity score and escalation ladder are not stored yet: shown as unknown, never invented.
        "score": None, "escalation": None,
        "status": overall,
    }


def market_status(live: dict, uptime: dict, behaviour: dict) -> str:
    """The row's verdict: unknown when the book is not known now (stale or invalid); else the worst known obligation.

    An obligation that cannot be judged yet (no own orders, no closed minute) does not hide what is known.
    """
    if live["stale"] or UNKNOWN in (live["spread"]["status"], live["depth"]["status"]):
        return UNKNOWN
    known = [s for s in (live["spread"]["status"], live["depth"]["status"], uptime["status"], behaviour["status"]) if s != UNKNOWN]
    return worst(*known)


def live_update(payload: dict, limits: dict | None, *, now: datetime) -> dict:
    """A collector's market.update payload judged for the browser (the socket's message)."""
    return {"market_id": int(payload["market_id"]), "live": judge_sample(payload, limits, now=now)}


def limits_for_markets(market_ids: list[int] | None, *, now: datetime) -> dict[int, dict | None]:
    ids = market_ids if market_ids is not None else list(active_markets().values_list("id", flat=True))
    versions = obligations_in_force(ids, at=now)
    return {i: limits_of(versions.get(i)) for i in ids}


# ---------------------------------------------------------------------------- market page


def market(market_id: int) -> Market:
    try:
        return Market.objects.select_related("venue", "conversion_market").get(pk=market_id)
    except Market.DoesNotExist:
        raise UnknownMarket(f"There is no market with id {market_id}.") from None


def live_series(market_id: int, *, now: datetime, seconds: int = LIVE_WINDOW_SECONDS) -> dict:
    """The last `seconds` of 1 s samples, one point per second; a second with no valid sample is null (a gap, not data)."""
    m = market(market_id)
    limits = limits_of(obligations_in_force([m.id], at=now).get(m.id))
    field = limits["spread_field"] if limits else "spread_ask_pct"
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
        "market_id": m.id, "limits": limits, "now": now.isoformat(),
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
    """Minute bars over [start, end) (spread avg/max, depth min per side, valid coverage); null for minutes without data.

    With `compare`, the previous period of the same length, its times shifted onto this one's.
    """
    m = market(market_id)
    limits = limits_of(obligations_in_force([m.id], at=end).get(m.id))
    result = {"market_id": m.id, "limits": limits, "start": start.isoformat(), "end": end.isoformat(),
              "current": _bars(m.id, start, end, limits)}
    if compare:
        span = end - start
        previous = _bars(m.id, start - span, start, limits)
        previous["minute"] = result["current"]["minute"][: len(previous["minute"])]
        result["previous"] = previous
    return result


def _bars(market_id: int, start: datetime, end: datetime, limits: dict | None) -> dict:
    field = limits["spread_field"] if limits else "spread_ask_pct"
    first = start.replace(second=0, microsecond=0)
    last = end - timedelta(microseconds=1)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT t.minute, b.spread_avg, b.spread_max, b.depth_bid_min, b.depth_ask_min, b.coverage
                FROM generate_series(%s::timestamptz, date_trunc('minute', %s::timestamptz), interval '1 minute') AS t(minute)
                LEFT JOIN (SELECT date_trunc('minute', ts) AS minute, avg({field}) AS spread_avg, max({field}) AS spread_max,
                                  min(depth_bid_usd) AS depth_bid_min, min(depth_ask_usd) AS depth_ask_min,
                                  count(*) / 60.0 AS coverage
                           FROM compliance_sample WHERE market_id = %s AND ts >= %s AND ts < %s AND valid
                           GROUP BY 1) b ON b.minute = t.minute
                ORDER BY t.minute""",
            [first, last, market_id, start, end],
        )
        rows = cur.fetchall()
    keys = ("minute", "spread_avg", "spread_max", "depth_bid_min", "depth_ask_min", "coverage")
    out = {k: [] for k in keys}
    for row in rows:
        out["minute"].append(row[0].isoformat())
        for k, v in zip(keys[1:], row[1:]):
            out[k].append(None if v is None else round(float(v), 6))
    return out


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
    rate = _quote_usd(m, now=now)
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


def _quote_usd(m: Market, *, now: datetime) -> float | None:
    if m.quote_conversion == "stable":
        return metrics.quote_usd_rate("stable")
    sample = latest_samples([m.conversion_market_id], now=now).get(m.conversion_market_id)
    if not sample or not sample["valid"] or sample["mid"] is None:
        return None
    return metrics.quote_usd_rate("market", sample["mid"])


def api_health(market: Market, *, now: datetime) -> dict | None:
    """The venue's REST health over the last hour and 24 h (collectors.models.ApiResponse), or None before it exists."""
    try:
        from collectors.models import ApiResponse
    except ImportError:
        return None
    recent = ApiResponse.objects.filter(venue_id=market.venue_id, at__gt=now - timedelta(hours=24), at__lte=now)
    counts = recent.aggregate(
        total=Count("id"),
        http_429=Count("id", filter=Q(http_status=429)),
        http_418=Count("id", filter=Q(http_status=418)),
        http_401=Count("id", filter=Q(http_status=401)),
        code_1021=Count("id", filter=Q(error_code=-1021)),
        no_response=Count("id", filter=Q(http_status=0)),
    )
    last = recent.order_by("-at").first()
    return {
        **counts,
        "last_at": last.at.isoformat() if last else None,
        "used_weight_1m": last.used_weight_1m if last else None,
        "latency_ms": round(last.latency_ms, 1) if last else None,
    }


def market_page(market_id: int, *, now: datetime) -> dict:
    m = market(market_id)
    version = obligations_in_force([m.id], at=now).get(m.id)
    limits = limits_of(version)
    live = judge_sample(latest_samples([m.id], now=now).get(m.id), limits, now=now)
    uptime = uptime_today([m.id], now=now).get(m.id) or {"status": UNKNOWN, "text": "no obligation today"}
    behaviour = order_behaviour([m.id], {m.id: limits}, now=now)[m.id]
    return {
        "market": m, "obligation": version, "limits": limits, "live": live, "uptime": uptime,
        "behaviour": behaviour, "api_health": api_health(m, now=now),
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
