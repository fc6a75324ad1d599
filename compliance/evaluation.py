"""Judging minutes and days from minute bars: pure functions, plain values in and out.

DESIGN.md 'How a period is judged', 'Uptime' and 'Breaches, warnings, escalation' are the
specification. The minute bars come from compliance/rollups.py (SQL); each bar's in-range counts
and per-second masks were computed with the limits of the obligation version that governs that
minute, so judging here never mixes versions.

Units. Each evaluation method judges a minute in units: `minute` and `random_minute` one unit per
minute, `snapshot_share` one per snapshot second (every N s), `presence` one per second. A minute's
compliant fraction is compliant units / units; uptime is the sum of those fractions over the
minutes, so a day whose obligation changes method mid-day still adds up. Unknown units (no valid,
judgeable sample) are never compliant.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

MINUTE = timedelta(minutes=1)
SECONDS_PER_MINUTE = 60
VOLATILITY_WINDOW_MINUTES = 5  # 'realized volatility over the trailing 5 minutes' (DESIGN.md 'Uptime')
VOLATILITY_AVERAGE_MINUTES = 24 * 60  # '… or 2× the 24 h average'
LIQUIDITY_ALERT_SPREAD_PCT = 2.0  # reference/cex-listing-spread-depth-uptime-compliance.txt, line 2
LIQUIDITY_ALERT_WINDOW = timedelta(hours=72)  # same line: 'within 72 hours of detection'
ESCALATION_WINDOW_DAYS = 90
SCORE_MAX = 1000


class EvaluationError(ValueError):
    """Inputs that cannot be judged (an unknown method, a bar from another minute, …)."""


# --- Obligation terms as plain numbers -------------------------------------------------------


def _num(value) -> float | None:
    return None if value is None else float(value)


def _exact(value) -> Fraction | None:
    """A percentage from a DecimalField, exactly: 98 % of 1440 minutes is 1411.2, not 1411.19…"""
    return None if value is None else Fraction(Decimal(value))


@dataclass(frozen=True)
class Terms:
    """The obligation terms the judge needs, from ObligationVersion.terms() (TERM_FIELDS)."""

    spread_target_max_pct: float
    spread_max_pct: float
    depth_min_usd: float | None
    depth_min_side_usd: float | None
    depth_counts_for_uptime: bool
    uptime_required_pct: Fraction | None
    evaluation_method: str
    minute_rule: str
    minute_rule_share_pct: Fraction
    snapshot_interval_s: int
    snapshot_day_share_pct: Fraction
    presence_required_pct: Fraction
    vol_trigger_pct: float | None
    vol_trigger_multiple: float | None
    vol_cap_multiple: float
    vol_recovery_minutes: int
    early_warning_fraction: float
    version_id: int | None = None

    @classmethod
    def from_terms(cls, terms: Mapping, *, version_id: int | None = None) -> Terms:
        method = terms["evaluation_method"]
        if method not in METHODS:
            raise EvaluationError(f"Unknown evaluation method {method!r}; expected one of {', '.join(METHODS)}.")
        if terms["minute_rule"] not in MINUTE_RULES:
            raise EvaluationError(f"Unknown minute rule {terms['minute_rule']!r}; expected one of {', '.join(MINUTE_RULES)}.")
        return cls(
            spread_target_max_pct=float(terms["spread_target_max_pct"]),
            spread_max_pct=float(terms["spread_max_pct"]),
            depth_min_usd=_num(terms["depth_min_usd"]),
            depth_min_side_usd=_num(terms["depth_min_side_usd"]),
            depth_counts_for_uptime=bool(terms["depth_counts_for_uptime"]),
            uptime_required_pct=_exact(terms["uptime_required_pct"]),
            evaluation_method=method,
            minute_rule=terms["minute_rule"],
            minute_rule_share_pct=_exact(terms["minute_rule_share_pct"]),
            snapshot_interval_s=int(terms["snapshot_interval_s"]),
            snapshot_day_share_pct=_exact(terms["snapshot_day_share_pct"]),
            presence_required_pct=_exact(terms["presence_required_pct"]),
            vol_trigger_pct=_num(terms["vol_trigger_pct"]),
            vol_trigger_multiple=_num(terms["vol_trigger_multiple"]),
            vol_cap_multiple=float(terms["vol_cap_multiple"]),
            vol_recovery_minutes=int(terms["vol_recovery_minutes"]),
            early_warning_fraction=float(terms["early_warning_fraction"]),
            version_id=version_id,
        )

    @property
    def required_pct(self) -> Fraction | None:
        """The day's clause for this method: uptime, snapshot day share or presence."""
        if self.evaluation_method == "snapshot_share":
            return self.snapshot_day_share_pct
        if self.evaluation_method == "presence":
            return self.presence_required_pct
        return self.uptime_required_pct


METHODS = ("minute", "snapshot_share", "random_minute", "presence")
MINUTE_RULES = ("all_valid", "share", "average")


# --- Minute bars -----------------------------------------------------------------------------


class Bar(NamedTuple):
    """One row of compliance_minute_bar (see migration 0005 for what each column means).
    A named tuple: a day's 1440 bars are built straight from the rows, cheaply."""

    minute: datetime
    obligation_version_id: int | None
    samples: int
    valid_samples: int
    judged_samples: int
    in_range_samples: int
    judged_mask: int
    in_range_mask: int
    presence_samples: int
    spread_min: float | None = None
    spread_avg: float | None = None
    spread_max: float | None = None
    depth_bid_min: float | None = None
    depth_bid_avg: float | None = None
    depth_ask_min: float | None = None
    depth_ask_avg: float | None = None
    depth_total_min: float | None = None
    depth_incomplete_samples: int = 0
    slip_buy_avg: float | None = None
    slip_sell_avg: float | None = None
    slip_unfillable_samples: int = 0
    mid_low: float | None = None
    mid_high: float | None = None


class Outcome(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class MinuteJudgement:
    minute: datetime
    units: int
    compliant_units: int
    unknown_units: int

    @property
    def non_compliant_units(self) -> int:
        return self.units - self.compliant_units - self.unknown_units

    @property
    def outcome(self) -> Outcome:
        if self.compliant_units == self.units:
            return Outcome.COMPLIANT
        if self.non_compliant_units > 0:
            return Outcome.NON_COMPLIANT
        return Outcome.UNKNOWN


def random_second(seed: str, market_id: int, minute: datetime) -> int:
    """The second (0–59) that `random_minute` samples in this minute: a hash of the seed, the
    market and the minute, so every re-run of the same period picks the same seconds while the
    desk cannot predict them without the seed."""
    epoch_minute = int(minute.timestamp()) // SECONDS_PER_MINUTE
    digest = hashlib.sha256(f"{seed}:{market_id}:{epoch_minute}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SECONDS_PER_MINUTE


def snapshot_seconds(minute: datetime, interval_s: int) -> list[int]:
    """Seconds of this minute that are snapshots (UTC epoch second divisible by the interval)."""
    if not 1 <= interval_s <= SECONDS_PER_MINUTE:
        raise EvaluationError(f"Snapshot interval must be 1–60 s, got {interval_s}.")
    first = int(minute.timestamp())
    return [s for s in range(SECONDS_PER_MINUTE) if (first + s) % interval_s == 0]


def _depth_ok(bar: Bar, terms: Terms, *, use_average: bool) -> bool:
    if not terms.depth_counts_for_uptime:
        return True
    if use_average:
        bid, ask = bar.depth_bid_avg, bar.depth_ask_avg
        total = None if bid is None or ask is None else bid + ask
    else:
        bid, ask, total = bar.depth_bid_min, bar.depth_ask_min, bar.depth_total_min
    if total is None:
        return False
    if terms.depth_min_usd is not None and total < terms.depth_min_usd:
        return False
    return terms.depth_min_side_usd is None or min(bid, ask) >= terms.depth_min_side_usd


def judge_minute(bar: Bar | None, terms: Terms, *, minute: datetime, market_id: int, seed: str) -> MinuteJudgement:
    """Judge one minute under one obligation version; `bar` None means no sample at all."""
    if bar is not None and bar.minute != minute:
        raise EvaluationError(f"Bar of {bar.minute.isoformat()} given to judge {minute.isoformat()}.")
    if bar is not None and bar.obligation_version_id != terms.version_id:
        raise EvaluationError(
            f"Bar of {minute.isoformat()} was rolled up under obligation {bar.obligation_version_id}, "
            f"not {terms.version_id}: roll the minute up again before judging it."
        )
    method = terms.evaluation_method
    if method == "snapshot_share":
        seconds = snapshot_seconds(minute, terms.snapshot_interval_s)
        return _judge_seconds(minute, seconds, bar)
    if method == "random_minute":
        return _judge_seconds(minute, [random_second(seed, market_id, minute)], bar)
    if method == "presence":
        if bar is None:
            return MinuteJudgement(minute, SECONDS_PER_MINUTE, 0, SECONDS_PER_MINUTE)
        return MinuteJudgement(minute, SECONDS_PER_MINUTE, bar.presence_samples, SECONDS_PER_MINUTE - bar.valid_samples)
    # method == "minute"
    if bar is None or bar.judged_samples == 0:
        return MinuteJudgement(minute, 1, 0, 1)
    if terms.minute_rule == "all_valid":
        ok = bar.in_range_samples == bar.judged_samples
    elif terms.minute_rule == "share":
        ok = Fraction(bar.in_range_samples * 100, bar.judged_samples) >= terms.minute_rule_share_pct
    else:  # average: the minute's mean (each 1 s sample holds its second) within range
        ok = bar.spread_avg <= terms.spread_target_max_pct and _depth_ok(bar, terms, use_average=True)
    return MinuteJudgement(minute, 1, int(ok), 0)


def _judge_seconds(minute: datetime, seconds: Sequence[int], bar: Bar | None) -> MinuteJudgement:
    judged = bar.judged_mask if bar else 0
    in_range = bar.in_range_mask if bar else 0
    unknown = sum(1 for s in seconds if not judged >> s & 1)
    compliant = sum(1 for s in seconds if in_range >> s & 1)
    return MinuteJudgement(minute, len(seconds), compliant, unknown)


# --- Volatility exemption ------------------------------------------------------------------


def parkinson_variance(mid_low: float | None, mid_high: float | None) -> float | None:
    """One minute's variance from its high/low mid (Parkinson 1980: ln(H/L)² / 4 ln 2).

    A range estimator needs only min and max, so the roll-up stays one hash aggregate in SQL
    and any batching of the samples gives the same number.
    """
    if mid_low is None or mid_high is None or mid_low <= 0:
        return None
    return math.log(mid_high / mid_low) ** 2 / (4 * math.log(2))


def realized_volatility_pct(variances: Sequence[float | None], window: int = VOLATILITY_WINDOW_MINUTES) -> list[float | None]:
    """Trailing-`window`-minute realized volatility, %, for each position (None without data)."""
    out: list[float | None] = []
    total, known = 0.0, 0
    for i, v in enumerate(variances):
        if v is not None:
            total, known = total + v, known + 1
        if i >= window and variances[i - window] is not None:
            total, known = total - variances[i - window], known - 1
        out.append(100 * math.sqrt(max(total, 0.0)) if known else None)
    return out


def volatile_minutes(vols: Sequence[float | None], terms_at: Sequence[Terms]) -> list[bool]:
    """Is the exemption's trigger met at each of the last len(terms_at) minutes: above the
    trigger %, or above the multiple of the trailing 24 h average volatility (DESIGN.md 'Uptime',
    'Volatility exemption'). `vols` may start earlier: the minutes before feed the average."""
    offset = len(vols) - len(terms_at)
    if offset < 0:
        raise EvaluationError("More minutes to judge than volatility figures.")
    total, count, out = 0.0, 0, []
    for i, vol in enumerate(vols):
        if vol is not None:
            total, count = total + vol, count + 1
        if i >= VOLATILITY_AVERAGE_MINUTES:
            dropped = vols[i - VOLATILITY_AVERAGE_MINUTES]
            if dropped is not None:
                total, count = total - dropped, count - 1
        if i < offset:
            continue
        terms = terms_at[i - offset]
        average = total / count if count else None
        hot = vol is not None and (
            (terms.vol_trigger_pct is not None and vol > terms.vol_trigger_pct)
            or (terms.vol_trigger_multiple is not None and average and vol > terms.vol_trigger_multiple * average)
        )
        out.append(bool(hot))
    return out


def widened_within_cap(bar: Bar | None, terms: Terms) -> bool:
    """Non-compliant only because the spread widened, and by no more than the cap."""
    if bar is None or bar.judged_samples == 0 or bar.spread_max is None:
        return False
    spread = bar.spread_avg if terms.minute_rule == "average" else bar.spread_max
    return spread <= terms.vol_cap_multiple * terms.spread_target_max_pct and _depth_ok(
        bar, terms, use_average=terms.minute_rule == "average"
    )


@dataclass(frozen=True)
class ExemptionEpisode:
    started: datetime
    subsided: datetime | None  # first calm minute; None while still volatile at the data's end
    recovered: datetime | None  # first compliant minute after subsiding
    status: str  # "exempt" (recovered in time), "failed" (not back in range in time), "pending"
    exempt_minutes: tuple[datetime, ...] = field(default=())


def volatility_exemptions(
    minutes: Sequence[datetime],
    outcomes: Sequence[Outcome],
    volatile: Sequence[bool],
    widened: Sequence[bool],
    recovery_minutes: Sequence[int],
) -> list[ExemptionEpisode]:
    """Episodes of volatility and which non-compliant minutes they exempt.

    An episode starts at a volatile minute. Widening within the cap is exempt provided the
    spread is back in range (a compliant minute) within the recovery window after volatility
    subsides; volatility returning before recovery extends the episode. Otherwise its minutes
    count as breaches (status 'failed'). When the data ends before the window closes the episode
    is 'pending' and exempts nothing yet. Unknown minutes are never exempt.
    """
    n, episodes, i = len(minutes), [], 0
    while i < n:
        if not volatile[i]:
            i += 1
            continue
        start, k, subsided, recovered, status = i, i, None, None, "pending"
        while k < n:
            if volatile[k]:
                subsided = None
            else:
                if subsided is None:
                    subsided = k
                if outcomes[k] == Outcome.COMPLIANT:
                    recovered, status = k, "exempt"
                    break
                if k - subsided >= recovery_minutes[k]:
                    status = "failed"
                    break
            k += 1
        end = recovered if recovered is not None else k
        exempt = (
            tuple(minutes[j] for j in range(start, end) if outcomes[j] == Outcome.NON_COMPLIANT and widened[j])
            if status == "exempt"
            else ()
        )
        episodes.append(
            ExemptionEpisode(
                started=minutes[start],
                subsided=minutes[subsided] if subsided is not None else None,
                recovered=minutes[recovered] if recovered is not None else None,
                status=status,
                exempt_minutes=exempt,
            )
        )
        i = max(k, start + 1)
    return episodes


# --- A judged period: uptime, breach budget, breaches -----------------------------------------


@dataclass(frozen=True)
class PeriodVerdict:
    minutes_total: int  # minutes of the period (1440 for a day)
    minutes_elapsed: int
    compliant_minutes: Fraction  # sum of per-minute compliant fractions (raw)
    exempt_minutes: Fraction
    non_compliant_minutes: Fraction
    unknown_minutes: Fraction
    excused_minutes: Fraction
    required_pct: Fraction | None
    valid_seconds: int

    @property
    def measured_total(self) -> Fraction:
        """Minutes the clause measures: the period less excused outages."""
        return self.minutes_total - self.excused_minutes

    def _uptime(self, compliant: Fraction, denominator: Fraction) -> float | None:
        return None if denominator <= 0 else float(compliant * 100 / denominator)

    @property
    def uptime_raw_pct(self) -> float | None:
        """Compliant minutes / minutes elapsed (less excused); for a closed day / 1440."""
        return self._uptime(self.compliant_minutes, self.minutes_elapsed - self.excused_minutes)

    @property
    def uptime_adjusted_pct(self) -> float | None:
        return self._uptime(self.compliant_minutes + self.exempt_minutes, self.minutes_elapsed - self.excused_minutes)

    @property
    def lost_minutes(self) -> Fraction:
        """Non-compliant (after exemption) plus unknown, unexcused minutes so far."""
        return self.non_compliant_minutes - self.exempt_minutes + self.unknown_minutes

    @property
    def breach_budget_minutes(self) -> int | None:
        """Minutes of non-compliance still allowed in the period before the clause fails;
        negative once it has failed. E.g. 98 % of 1440 needs 1411.2 minutes: 28 may be lost."""
        if self.required_pct is None:
            return None
        allowed = self.measured_total * (1 - self.required_pct / 100)
        return math.floor(allowed - self.lost_minutes)

    @property
    def unrecoverable(self) -> bool:
        budget = self.breach_budget_minutes
        return budget is not None and budget < 0

    @property
    def passed(self) -> bool | None:
        """The closed period's verdict (for a running day: whether it still can pass)."""
        if self.required_pct is None:
            return None
        if self.minutes_elapsed < self.minutes_total:
            return not self.unrecoverable
        if self.measured_total <= 0:
            return True  # the whole period excused: nothing to fail
        return (self.compliant_minutes + self.exempt_minutes) * 100 >= self.required_pct * self.measured_total

    @property
    def coverage_pct(self) -> float:
        seconds = self.minutes_elapsed * SECONDS_PER_MINUTE
        return 100.0 * self.valid_seconds / seconds if seconds else 0.0


@dataclass(slots=True)
class MinuteRecord:
    """Everything the day's judge knows about one minute."""

    minute: datetime
    terms: Terms
    bar: Bar | None
    judgement: MinuteJudgement
    excused: bool = False


def judge_minutes(
    bars: Mapping[datetime, Bar], terms_at: Sequence[tuple[datetime, Terms]], *, market_id: int, seed: str,
    excused: Iterable[tuple[datetime, datetime]] = (),
) -> list[MinuteRecord]:
    """Judge each (minute, terms) under its own obligation version."""
    excused = list(excused)
    records = []
    for minute, terms in terms_at:
        bar = bars.get(minute)
        judgement = judge_minute(bar, terms, minute=minute, market_id=market_id, seed=seed)
        is_excused = judgement.unknown_units > 0 and any(lo <= minute < hi for lo, hi in excused)
        records.append(MinuteRecord(minute, terms, bar, judgement, is_excused))
    return records


def exempt_minutes_of(
    records: Sequence[MinuteRecord], prior_variances: Sequence[float | None] = ()
) -> tuple[set[datetime], list[ExemptionEpisode]]:
    """Run the volatility exemption over judged minutes (in order). `prior_variances` are the
    per-minute variances of the minutes just before them (for the 24 h average)."""
    variances = [*prior_variances, *(parkinson_variance(r.bar.mid_low, r.bar.mid_high) if r.bar else None for r in records)]
    vols = realized_volatility_pct(variances)
    terms = [r.terms for r in records]
    episodes = volatility_exemptions(
        [r.minute for r in records],
        [r.judgement.outcome for r in records],
        volatile_minutes(vols, terms),
        [widened_within_cap(r.bar, r.terms) for r in records],
        [t.vol_recovery_minutes for t in terms],
    )
    exempt = {m for e in episodes for m in e.exempt_minutes}
    return exempt, episodes


def period_verdict(records: Sequence[MinuteRecord], exempt: set[datetime], *, minutes_total: int) -> PeriodVerdict:
    """Uptime and breach budget of the judged minutes (the period's own minutes only)."""
    # Sums per unit size (1 for minute methods, 6 for 10 s snapshots, 60 for presence): exact
    # fractions without a Fraction per minute.
    sums: dict[int, list[int]] = {}
    valid_seconds = 0
    minutes_by_required: dict[int, list] = {}
    for r in records:
        j = r.judgement
        acc = sums.setdefault(j.units, [0, 0, 0, 0, 0])  # compliant, non-compliant, unknown, excused, exempt
        non_compliant = j.units - j.compliant_units - j.unknown_units
        acc[0] += j.compliant_units
        acc[1] += non_compliant
        acc[3 if r.excused else 2] += j.unknown_units
        if non_compliant and r.minute in exempt:
            acc[4] += non_compliant
        if r.bar is not None:
            valid_seconds += r.bar.valid_samples
        key = id(r.terms)  # a version's Terms object is shared by its minutes; hashing it per minute is slow
        if key in minutes_by_required:
            minutes_by_required[key][1] += 1
        else:
            minutes_by_required[key] = [r.terms.required_pct, 1]
    total = [sum((Fraction(acc[k], units) for units, acc in sums.items()), Fraction(0)) for k in range(5)]
    # A clause changed mid-day weighs each version by the minutes it governed.
    required = None
    if records and all(pct is not None for pct, _ in minutes_by_required.values()):
        required_weighted = sum((pct * n for pct, n in minutes_by_required.values()), Fraction(0))
        required = required_weighted / len(records)
    if required is not None and len(records) < minutes_total:
        # The running day's remaining minutes will be judged by the version now in force.
        remaining = minutes_total - len(records)
        required = (required_weighted + records[-1].terms.required_pct * remaining) / minutes_total
    return PeriodVerdict(
        minutes_total=minutes_total,
        minutes_elapsed=len(records),
        compliant_minutes=total[0],
        exempt_minutes=total[4],
        non_compliant_minutes=total[1],
        unknown_minutes=total[2],
        excused_minutes=total[3],
        required_pct=required,
        valid_seconds=valid_seconds,
    )


@dataclass(frozen=True)
class BreachRun:
    kind: str  # spread_max | depth_min
    first_minute: datetime
    last_minute: datetime
    minutes: int
    worst_value: float
    limit_value: float
    version_id: int | None


def hard_breaches(records: Sequence[MinuteRecord], exempt: set[datetime]) -> list[BreachRun]:
    """Minutes with the spread above the maximum permitted (unless volatility-exempt) or depth
    below the minimum, gathered per kind (first, last minute, count, worst value)."""
    found: dict[str, BreachRun] = {}

    def note(kind, r, value, limit, worse):
        run = found.get(kind)
        if run is None:
            found[kind] = BreachRun(kind, r.minute, r.minute, 1, value, limit, r.terms.version_id)
        else:
            found[kind] = BreachRun(
                kind, run.first_minute, r.minute, run.minutes + 1, worse(run.worst_value, value), run.limit_value, run.version_id
            )

    for r in records:
        bar, t = r.bar, r.terms
        if bar is None or bar.judged_samples == 0:
            continue
        if bar.spread_max is not None and bar.spread_max > t.spread_max_pct and r.minute not in exempt:
            note("spread_max", r, bar.spread_max, t.spread_max_pct, max)
        if bar.depth_total_min is not None:
            if t.depth_min_usd is not None and bar.depth_total_min < t.depth_min_usd:
                note("depth_min", r, bar.depth_total_min, t.depth_min_usd, min)
            elif t.depth_min_side_usd is not None and min(bar.depth_bid_min, bar.depth_ask_min) < t.depth_min_side_usd:
                note("depth_min", r, min(bar.depth_bid_min, bar.depth_ask_min), t.depth_min_side_usd, min)
    return list(found.values())


# --- Status of a KPI against its limit -------------------------------------------------------


class KpiStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"
    UNKNOWN = "unknown"


def upper_limit_status(value: float | None, limit: float | None, early_warning_fraction: float) -> KpiStatus:
    """A KPI that must stay at or below its limit (spread, cancel ratio): warning above
    fraction × limit, e.g. a spread over 90 % of the maximum."""
    if limit is None:
        return KpiStatus.OK
    if value is None:
        return KpiStatus.UNKNOWN
    if value > limit:
        return KpiStatus.BREACH
    return KpiStatus.WARNING if value > early_warning_fraction * limit else KpiStatus.OK


def lower_limit_status(value: float | None, limit: float | None, early_warning_fraction: float) -> KpiStatus:
    """A KPI that must stay at or above its limit (depth): warning when the limit is more than
    the fraction of the value, i.e. less than 1 − fraction headroom (depth under $27.8k on a
    $25k minimum at 90 %)."""
    if limit is None:
        return KpiStatus.OK
    if value is None:
        return KpiStatus.UNKNOWN
    if value < limit:
        return KpiStatus.BREACH
    return KpiStatus.WARNING if limit > early_warning_fraction * value else KpiStatus.OK


def uptime_status(verdict: PeriodVerdict, early_warning_fraction: float) -> KpiStatus:
    """Breach once the day is unrecoverable; warning once the fraction of the breach budget
    the day started with is used up."""
    allowed = None if verdict.required_pct is None else verdict.measured_total * (1 - verdict.required_pct / 100)
    return budget_status(
        allowed_minutes=allowed, lost_minutes=verdict.lost_minutes, unrecoverable=verdict.unrecoverable,
        minutes_elapsed=verdict.minutes_elapsed, early_warning_fraction=early_warning_fraction,
    )


def budget_status(
    *, allowed_minutes: float | Fraction | None, lost_minutes: float | Fraction, unrecoverable: bool, minutes_elapsed: int,
    early_warning_fraction: float,
) -> KpiStatus:
    """uptime_status from a period's figures, as a stored DailyResult keeps them (allowed None:
    the clause is not enforced)."""
    if allowed_minutes is None:
        return KpiStatus.OK
    if minutes_elapsed == 0:
        return KpiStatus.UNKNOWN
    if unrecoverable:
        return KpiStatus.BREACH
    lost, allowed = Fraction(lost_minutes), Fraction(allowed_minutes)
    if allowed <= 0:
        return KpiStatus.WARNING if lost > 0 else KpiStatus.OK
    return KpiStatus.WARNING if lost >= Fraction(early_warning_fraction) * allowed else KpiStatus.OK


def book_statuses(
    *, spread_pct: float | None, depth_usd: float | None, depth_side_usd: float | None, terms: Terms
) -> dict[str, KpiStatus]:
    """The book's KPIs against the obligation (DESIGN.md 'Breaches, warnings, escalation'):
    spread against the maximum permitted, band depth against the combined and per-side
    minimums, each with its early warning. The same rule for a 1 s sample (the live view) and
    a minute's worst values; None means not known (stale, invalid or no data)."""
    fraction = terms.early_warning_fraction
    return {
        "spread_pct": upper_limit_status(spread_pct, terms.spread_max_pct, fraction),
        "depth_usd": lower_limit_status(depth_usd, terms.depth_min_usd, fraction),
        "depth_side_usd": lower_limit_status(depth_side_usd, terms.depth_min_side_usd, fraction),
    }


_SEVERITY = (KpiStatus.OK, KpiStatus.UNKNOWN, KpiStatus.WARNING, KpiStatus.BREACH)


def worst_status(statuses: Iterable[KpiStatus]) -> KpiStatus:
    """breach > warning > unknown > ok: a KPI that cannot be judged never reads as OK, and
    never hides a known breach or warning. OK when there is nothing to judge."""
    return max(statuses, key=_SEVERITY.index, default=KpiStatus.OK)


# --- 72 h liquidity-alert clock, escalation ladder -------------------------------------------


def liquidity_alert_clock_starts(minutes_above: Iterable[datetime], open_clock_started: datetime | None) -> list[datetime]:
    """When new 72 h clocks start: the first minute above 2 % not inside a running clock's
    72 h (a running clock is not restarted by the spread staying wide)."""
    starts = []
    current = open_clock_started
    for minute in sorted(minutes_above):
        if current is None or minute >= current + LIQUIDITY_ALERT_WINDOW:
            current = minute
            starts.append(minute)
    return starts


ESCALATION_LADDER = ("warning", "penalty", "delisting_review")


def escalation_level(violation_days: Iterable[date], on: date) -> tuple[str | None, int]:
    """(level, violation days in the rolling 90 days ending `on`): 1st → warning, 2nd → penalty,
    3rd and later → delisting review (DESIGN.md 'Breaches, warnings, escalation'). A violation
    day is a UTC day with at least one hard breach, so one bad day is one step."""
    count = len({d for d in violation_days if on - timedelta(days=ESCALATION_WINDOW_DAYS) < d <= on})
    if count == 0:
        return None, 0
    return ESCALATION_LADDER[min(count, len(ESCALATION_LADDER)) - 1], count


# --- Liquidity score -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreComponent:
    name: str
    value: float | None
    kpi: float | None
    ratio: float | None  # 0–1, None when the component has no KPI or no data

    @property
    def points(self) -> float | None:
        return None if self.ratio is None else round(self.ratio * SCORE_MAX / 4, 1)


def _ratio_at_most(value: float | None, kpi: float | None) -> float | None:
    if value is None or kpi is None:
        return None
    return 1.0 if value <= kpi else kpi / value


def _ratio_at_least(value: float | None, kpi: float | None) -> float | None:
    if value is None or kpi is None or kpi <= 0:
        return None
    return min(1.0, value / kpi)


def liquidity_score(
    *, spread_avg_pct: float | None, depth_avg_usd: float | None, uptime_pct: float | None,
    slippage_avg_pct: float | None, slippage_fillable_share: float | None, terms: Terms,
) -> tuple[float | None, list[ScoreComponent]]:
    """0–1000: four components, 250 points each, each the measured value against its KPI.

    - spread: 24 h average spread vs the target maximum; full marks at or below it, else KPI/value;
    - depth: average band depth vs the minimum (combined, or 2 × the per-side minimum); value/KPI capped at 1;
    - uptime: the window's exemption-adjusted uptime vs the required uptime; value/KPI capped at 1;
    - slippage: the average $10k-order slippage vs the target maximum spread (a market order should
      not move the price further than the contracted quote width), times the share of samples in
      which the book could fill the order at all.
    A component without a KPI or without data is left out and the others scaled up to 1000.
    """
    depth_kpi = terms.depth_min_usd if terms.depth_min_usd is not None else (
        2 * terms.depth_min_side_usd if terms.depth_min_side_usd is not None else None
    )
    slip_ratio = _ratio_at_most(slippage_avg_pct, terms.spread_target_max_pct)
    if slippage_fillable_share is not None:
        slip_ratio = slippage_fillable_share * (slip_ratio if slip_ratio is not None else 0.0)
    required = float(terms.uptime_required_pct) if terms.uptime_required_pct is not None else None
    components = [
        ScoreComponent("spread", spread_avg_pct, terms.spread_target_max_pct, _ratio_at_most(spread_avg_pct, terms.spread_target_max_pct)),
        ScoreComponent("depth", depth_avg_usd, depth_kpi, _ratio_at_least(depth_avg_usd, depth_kpi)),
        ScoreComponent("uptime", uptime_pct, required, _ratio_at_least(uptime_pct, required)),
        ScoreComponent("slippage", slippage_avg_pct, terms.spread_target_max_pct, slip_ratio),
    ]
    ratios = [c.ratio for c in components if c.ratio is not None]
    if not ratios or spread_avg_pct is None:
        return None, components
    return round(SCORE_MAX * sum(ratios) / len(ratios), 1), components


def score_minutes(records: Sequence[MinuteRecord], exempt: set[datetime]) -> tuple[float | None, list[ScoreComponent]]:
    """The liquidity score of any run of judged minutes (a closed day, the trailing 24 h, a
    report's period): averages over the minute bars weighted by their valid seconds, the
    exemption-adjusted uptime of the minutes, against the terms of the last minute."""
    if not records:
        return None, []
    verdict = period_verdict(records, exempt, minutes_total=len(records))
    bars = [r.bar for r in records if r.bar is not None and r.bar.valid_samples]
    valid = sum(b.valid_samples for b in bars)
    fillable = sum(b.valid_samples - b.slip_unfillable_samples for b in bars)
    slip_bars = [b for b in bars if b.slip_buy_avg is not None and b.slip_sell_avg is not None]
    slip_weight = sum(b.valid_samples - b.slip_unfillable_samples for b in slip_bars)
    return liquidity_score(
        spread_avg_pct=sum(b.spread_avg * b.valid_samples for b in bars) / valid if valid else None,
        depth_avg_usd=sum((b.depth_bid_avg + b.depth_ask_avg) * b.valid_samples for b in bars) / valid if valid else None,
        uptime_pct=verdict.uptime_adjusted_pct,
        slippage_avg_pct=(
            sum((b.slip_buy_avg + b.slip_sell_avg) / 2 * (b.valid_samples - b.slip_unfillable_samples) for b in slip_bars)
            / slip_weight if slip_weight else None
        ),
        slippage_fillable_share=fillable / valid if valid else None,
        terms=records[-1].terms,
    )
