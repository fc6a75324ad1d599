"""Judging a market's day or window from its minute bars, and storing what was found (writes).

Each minute is judged under the obligation version in force at the minute's start
(compliance.selectors.obligation_periods); every stored result lists the versions it used.
The arithmetic is in compliance/evaluation.py; this module loads bars, re-rolls minutes whose
bar was made under another version, and writes DailyResult, Violation, EscalationStep,
LiquidityAlertClock and LiquidityScore rows. Every function is re-runnable: it replaces what an
earlier run stored for the same period.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone as djtz

from config.env import envstr

from . import evaluation as ev
from .models import (
    DailyResult, EscalationStep, ExcusedOutage, LiquidityAlertClock, LiquidityScore, Market, ScoreWindow, Tier, Violation,
    ViolationKind,
)
from .rollups import floor_minute, roll_up
from .selectors import minute_bars, minute_mid_ranges, obligation_periods

DAY = timedelta(days=1)
# The random_minute method's seed: fixed per deployment so re-runs pick the same seconds
# (recorded in each DailyResult's details).
RANDOM_MINUTE_SEED = envstr("COMPLIANCE_RANDOM_MINUTE_SEED", "lcm-random-minute")
# Context before a judged span: the last hour judged in full (an exemption episode may start
# there), and 24 h of volatility history before it (for the 24 h average); recovery may finish
# after the span's end.
EPISODE_CONTEXT = timedelta(hours=1)
RECOVERY_LOOKAHEAD = timedelta(hours=1)  # a longer recovery window leaves the day's last episode pending
VOLATILITY_HISTORY = timedelta(hours=24, minutes=ev.VOLATILITY_WINDOW_MINUTES)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + DAY


@dataclass(frozen=True)
class JudgedSpan:
    records: list[ev.MinuteRecord]  # the span's own minutes that an obligation governs
    exempt: set[datetime]
    episodes: list[ev.ExemptionEpisode]
    governed_minutes: int  # minutes of the whole span with an obligation (elapsed or not)
    versions: list[dict]


def _terms_by_minute(market_id: int, start: datetime, end: datetime) -> list[tuple[datetime, ev.Terms, object]]:
    """(minute, terms, version) for each minute in [start, end) governed by a version (the one
    in force at the minute's start)."""
    out = []
    for lo, hi, version in obligation_periods(market_id=market_id, start=start, end=end):
        terms = ev.Terms.from_terms(version.terms(), version_id=version.pk)
        minute = lo if lo == floor_minute(lo) else floor_minute(lo) + ev.MINUTE
        while minute < hi:
            out.append((minute, terms, version))
            minute += ev.MINUTE
    return out


def _versions_used(own: list[tuple[datetime, ev.Terms, object]]) -> list[dict]:
    runs: list[list] = []  # [version, first minute, last minute]
    for minute, _, version in own:
        # A version's minutes share its object: `is` first, the primary key only where they change.
        if runs and (runs[-1][0] is version or runs[-1][0].pk == version.pk):
            runs[-1][2] = minute
        else:
            runs.append([version, minute, minute])
    return [
        {"id": v.pk, "version": v.version, "from": first.isoformat(), "to": (last + ev.MINUTE).isoformat(),
         "evaluation_method": v.evaluation_method}
        for v, first, last in runs
    ]


def judge_span(*, market: Market, start: datetime, end: datetime, now: datetime) -> JudgedSpan:
    """Judge the elapsed minutes of [start, end), with the exemption's context around them."""
    elapsed_end = min(end, floor_minute(now))
    governed = _terms_by_minute(market.pk, start - EPISODE_CONTEXT, end + RECOVERY_LOOKAHEAD)
    own = [g for g in governed if start <= g[0] < end]
    versions = _versions_used(own)
    recovery = max((t.vol_recovery_minutes for _, t, _ in own), default=0)
    after_end = end + timedelta(minutes=recovery + 1) if elapsed_end == end else end
    horizon = floor_minute(now)
    terms_at = [(m, t) for m, t, _ in governed if m < horizon and m < after_end]
    if not terms_at:
        return JudgedSpan([], set(), [], len(own), versions)
    bars = minute_bars(market_id=market.pk, start=terms_at[0][0], end=terms_at[-1][0] + ev.MINUTE)
    stale = [m for m, t in terms_at if m in bars and bars[m].obligation_version_id != t.version_id]
    if stale:  # an obligation was recorded after these minutes were rolled up
        roll_up(start=min(stale), end=max(stale) + ev.MINUTE, market_ids=[market.pk])
        bars = minute_bars(market_id=market.pk, start=terms_at[0][0], end=terms_at[-1][0] + ev.MINUTE)
    excused = ExcusedOutage.objects.filter(
        market=market, revoked_at__isnull=True, start__lt=terms_at[-1][0] + ev.MINUTE, end__gt=terms_at[0][0]
    ).values_list("start", "end")
    records = ev.judge_minutes(bars, terms_at, market_id=market.pk, seed=RANDOM_MINUTE_SEED, excused=list(excused))
    first = terms_at[0][0]
    ranges = minute_mid_ranges(market_id=market.pk, start=first - VOLATILITY_HISTORY, end=first)
    history = [
        ev.parkinson_variance(*ranges[m]) if m in ranges else None
        for m in (first - VOLATILITY_HISTORY + i * ev.MINUTE for i in range(int(VOLATILITY_HISTORY / ev.MINUTE)))
    ]
    exempt, episodes = ev.exempt_minutes_of(records, history)
    own_records = [r for r in records if start <= r.minute < elapsed_end]
    episodes = [e for e in episodes if any(start <= m < elapsed_end for m in e.exempt_minutes) or start <= e.started < elapsed_end]
    return JudgedSpan(own_records, exempt, episodes, len(own), versions)


def _per_version(records: list[ev.MinuteRecord], exempt: set[datetime]) -> dict:
    groups: dict[int, list] = {}
    for r in records:
        groups.setdefault(r.terms.version_id, []).append(r)
    out = {}
    for version_id, rs in groups.items():
        v = ev.period_verdict(rs, exempt, minutes_total=len(rs))
        out[str(version_id)] = {
            "minutes": len(rs), "compliant": float(v.compliant_minutes), "uptime_raw_pct": v.uptime_raw_pct,
            "uptime_adjusted_pct": v.uptime_adjusted_pct, "evaluation_method": rs[0].terms.evaluation_method,
        }
    return out


@transaction.atomic
def judge_day(*, market: Market, day: date, now: datetime | None = None) -> DailyResult | None:
    """Judge (or re-judge) a market's UTC day: closed, or so far today. None when no obligation
    governs any minute of it."""
    now = now or djtz.now()
    start, end = day_bounds(day)
    if start >= now:
        raise ValidationError(f"{day} has not started yet; nothing to judge.")
    span = judge_span(market=market, start=start, end=end, now=now)
    if span.governed_minutes == 0:
        return None
    verdict = ev.period_verdict(span.records, span.exempt, minutes_total=span.governed_minutes)
    closed = floor_minute(now) >= end
    allowed = (
        None if verdict.required_pct is None
        else float(verdict.measured_total * (1 - verdict.required_pct / 100))
    )
    values = dict(
        is_closed=closed,
        evaluation_methods=sorted({v["evaluation_method"] for v in span.versions}),
        obligation_versions=span.versions,
        minutes_elapsed=verdict.minutes_elapsed,
        compliant_minutes=round(verdict.compliant_minutes),
        non_compliant_minutes=round(verdict.non_compliant_minutes),
        unknown_minutes=round(verdict.unknown_minutes),
        excused_minutes=round(verdict.excused_minutes),
        exempt_minutes=round(verdict.exempt_minutes),
        uptime_raw_pct=verdict.uptime_raw_pct,
        uptime_adjusted_pct=verdict.uptime_adjusted_pct,
        uptime_required_pct=None if verdict.required_pct is None else float(verdict.required_pct),
        passed=verdict.passed,
        breach_budget_minutes=verdict.breach_budget_minutes,
        unrecoverable=verdict.unrecoverable,
        coverage_pct=verdict.coverage_pct,
        details={
            "minutes_total": verdict.minutes_total,
            "budget_allowed_minutes": allowed,
            "lost_minutes": float(verdict.lost_minutes),
            "random_minute_seed": RANDOM_MINUTE_SEED,
            "per_version": _per_version(span.records, span.exempt),
            "exemption_episodes": [
                {"started": e.started.isoformat(), "subsided": e.subsided and e.subsided.isoformat(),
                 "recovered": e.recovered and e.recovered.isoformat(), "status": e.status,
                 "exempt_minutes": len(e.exempt_minutes)}
                for e in span.episodes
            ],
        },
    )
    # One INSERT … ON CONFLICT DO UPDATE: re-judging replaces the day's row.
    (result,) = DailyResult.objects.bulk_create(
        [DailyResult(market=market, day=day, **values)],
        update_conflicts=True, unique_fields=["market", "day"], update_fields=[*values, "computed_at"],
    )
    _record_violations(market, day, span, verdict)
    _record_escalation(market, day)
    if market.venue.tier == Tier.TIER_1:
        _record_liquidity_alert_clocks(market, span.records)
    return result


def _record_violations(market: Market, day: date, span: JudgedSpan, verdict: ev.PeriodVerdict) -> None:
    Violation.objects.filter(market=market, day=day).delete()
    found = [
        Violation(market=market, day=day, kind=run.kind, first_minute=run.first_minute, last_minute=run.last_minute,
                  minutes=run.minutes, worst_value=run.worst_value, limit_value=run.limit_value,
                  obligation_version_id=run.version_id)
        for run in ev.hard_breaches(span.records, span.exempt)
    ]
    if verdict.unrecoverable and span.records:
        last = span.records[-1]
        found.append(Violation(
            market=market, day=day, kind=ViolationKind.UPTIME, first_minute=span.records[0].minute,
            last_minute=last.minute, minutes=round(verdict.lost_minutes), worst_value=verdict.uptime_adjusted_pct or 0.0,
            limit_value=float(verdict.required_pct), obligation_version_id=last.terms.version_id,
        ))
    Violation.objects.bulk_create(found)


def _record_escalation(market: Market, day: date) -> None:
    """Re-place the market on the ladder for this day and the 90 days after it (a re-judged
    day can move later steps)."""
    horizon = day + timedelta(days=ev.ESCALATION_WINDOW_DAYS)
    violation_days = set(
        Violation.objects.filter(
            market=market, day__gt=day - timedelta(days=ev.ESCALATION_WINDOW_DAYS), day__lt=horizon
        ).values_list("day", flat=True)
    )
    EscalationStep.objects.filter(market=market, day__gte=day, day__lt=horizon).exclude(day__in=violation_days).delete()
    steps = []
    for d in sorted(x for x in violation_days if x >= day):
        level, count = ev.escalation_level(violation_days, d)
        steps.append(EscalationStep(market=market, day=d, level=level, violation_days_90d=count))
    EscalationStep.objects.bulk_create(
        steps, update_conflicts=True, unique_fields=["market", "day"], update_fields=["level", "violation_days_90d"]
    )


def _record_liquidity_alert_clocks(market: Market, records: list[ev.MinuteRecord]) -> None:
    above = [(r.minute, r.bar.spread_avg) for r in records
             if r.bar is not None and r.bar.spread_avg is not None and r.bar.spread_avg > ev.LIQUIDITY_ALERT_SPREAD_PCT]
    if not above:
        return
    running = LiquidityAlertClock.objects.filter(market=market, detected_at__lte=above[0][0]).order_by("-detected_at").first()
    for detected in ev.liquidity_alert_clock_starts([m for m, _ in above], running and running.detected_at):
        LiquidityAlertClock.objects.get_or_create(
            market=market, detected_at=detected,
            defaults={"deadline": detected + ev.LIQUIDITY_ALERT_WINDOW, "peak_spread_pct": 0.0, "last_above_at": detected},
        )
    for clock in LiquidityAlertClock.objects.filter(market=market, detected_at__lte=above[-1][0], deadline__gt=above[0][0]):
        inside = [(m, s) for m, s in above if clock.detected_at <= m < clock.deadline]
        if inside:
            clock.peak_spread_pct = max(clock.peak_spread_pct, max(s for _, s in inside))
            clock.last_above_at = max(clock.last_above_at, inside[-1][0])
            clock.save(update_fields=["peak_spread_pct", "last_above_at"])


def score_window(*, market: Market, start: datetime, end: datetime, window: str, now: datetime | None = None) -> LiquidityScore | None:
    """Compute and store the liquidity score of [start, end); None without an obligation."""
    now = now or djtz.now()
    span = judge_span(market=market, start=start, end=end, now=now)
    if not span.records:
        return None
    terms = span.records[-1].terms
    score, components = ev.score_minutes(span.records, span.exempt)
    stored, _ = LiquidityScore.objects.update_or_create(
        market=market, window=window, window_end=end,
        defaults={
            "window_start": start, "score": score, "obligation_version_id": terms.version_id,
            "components": {c.name: {"value": c.value, "kpi": c.kpi, "ratio": c.ratio, "points": c.points} for c in components},
        },
    )
    return stored


def score_trailing_24h(*, market: Market, now: datetime | None = None) -> LiquidityScore | None:
    now = now or djtz.now()
    end = floor_minute(now)
    return score_window(market=market, start=end - DAY, end=end, window=ScoreWindow.TRAILING_24H, now=now)


def score_closed_day(*, market: Market, day: date, now: datetime | None = None) -> LiquidityScore | None:
    start, end = day_bounds(day)
    return score_window(market=market, start=start, end=end, window=ScoreWindow.CLOSED_DAY, now=now)


@transaction.atomic
def excuse_outage(*, market: Market, start: datetime, end: datetime, reason: str, excused_by) -> ExcusedOutage:
    """Record an operator's excused outage (audited: who, when, why) and judge again the days it
    touches."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why this outage is excused; it goes into the audit trail."})
    if excused_by is None:
        raise ValidationError({"created_by": "An excused outage needs the operator who excused it."})
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError("Outage bounds must be timezone-aware (UTC).")
    if end <= start:
        raise ValidationError({"end": f"The outage ends ({end.isoformat()}) before it starts ({start.isoformat()})."})
    outage = ExcusedOutage(market=market, start=start, end=end, reason=reason.strip(), created_by=excused_by)
    outage.full_clean()
    outage.save()
    _judge_days_of(outage)
    return outage


@transaction.atomic
def revoke_excused_outage(*, outage: ExcusedOutage, revoked_by, reason: str) -> ExcusedOutage:
    if outage.revoked_at is not None:
        raise ValidationError("This excused outage was already revoked.")
    if not reason or not reason.strip():
        raise ValidationError({"revoke_reason": "Say why the excuse is withdrawn."})
    outage.revoked_at, outage.revoked_by, outage.revoke_reason = djtz.now(), revoked_by, reason.strip()
    outage.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    _judge_days_of(outage)
    return outage


def _judge_days_of(outage: ExcusedOutage) -> None:
    now = djtz.now()
    for day in days_of(outage.start, outage.end):
        if day_bounds(day)[0] < now:
            judge_day(market=outage.market, day=day, now=now)


def days_of(start: datetime, end: datetime) -> list[date]:
    first, last = start.astimezone(timezone.utc).date(), (end - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
