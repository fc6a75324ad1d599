"""Hand-computed cases for compliance/evaluation.py (pure: no database)."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from compliance import evaluation as ev
from compliance.presets import TIER_PRESETS
from compliance.models import TERM_FIELDS, ObligationTerms

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
ALL_SECONDS = (1 << 60) - 1


def terms(**overrides) -> ev.Terms:
    defaults = {f.name: f.get_default() for f in ObligationTerms._meta.get_fields() if f.name in TERM_FIELDS}
    values = {**defaults, **{k: v for k, v in TIER_PRESETS[1].items() if k != "name"}, **overrides}
    return ev.Terms.from_terms(values, version_id=overrides.pop("version_id", 1))


def bar(minute, *, in_range=60, judged=60, spread=0.2, spread_max=None, depth=40_000.0, low=100.0, high=100.0, version_id=1,
        in_range_mask=None, judged_mask=None, presence=0):
    return ev.Bar(
        minute=minute, obligation_version_id=version_id, samples=judged, valid_samples=judged, judged_samples=judged,
        in_range_samples=in_range,
        judged_mask=ALL_SECONDS if judged_mask is None else judged_mask,
        in_range_mask=(ALL_SECONDS if in_range == 60 else 0) if in_range_mask is None else in_range_mask,
        presence_samples=presence, spread_min=spread, spread_avg=spread, spread_max=spread if spread_max is None else spread_max,
        depth_bid_min=depth / 2, depth_bid_avg=depth / 2, depth_ask_min=depth / 2, depth_ask_avg=depth / 2, depth_total_min=depth,
        mid_low=low, mid_high=high,
    )


def day_minutes(n=1440, start=T0):
    return [start + timedelta(minutes=i) for i in range(n)]


def judge(bars_by_minute, t, minutes, excused=()):
    records = ev.judge_minutes(bars_by_minute, [(m, t) for m in minutes], market_id=7, seed="s", excused=excused)
    exempt, episodes = ev.exempt_minutes_of(records)
    return records, exempt, episodes


def test_1411_of_1440_minutes_is_97_99_pct_and_fails_98():
    # DESIGN.md 'Uptime': 23 h 31 min compliant of 24 h; the article's '98.4 %' is an arithmetic error.
    t = terms(vol_trigger_pct=None, vol_trigger_multiple=None)
    minutes = day_minutes()
    bars = {m: bar(m, in_range=60 if i < 1411 else 50, spread_max=0.6 if i >= 1411 else None) for i, m in enumerate(minutes)}
    records, exempt, _ = judge(bars, t, minutes)
    v = ev.period_verdict(records, exempt, minutes_total=1440)
    assert v.compliant_minutes == 1411
    assert round(v.uptime_raw_pct, 2) == 97.99
    assert v.passed is False
    assert v.breach_budget_minutes == -1  # 98 % of 1440 = 1411.2 minutes needed: 28 may be lost, 29 were
    assert v.unrecoverable


def test_1412_of_1440_passes_with_no_budget_left():
    t = terms(vol_trigger_pct=None, vol_trigger_multiple=None)
    minutes = day_minutes()
    bars = {m: bar(m, in_range=60 if i < 1412 else 0) for i, m in enumerate(minutes)}
    v = ev.period_verdict(*judge(bars, t, minutes)[:2], minutes_total=1440)
    assert v.passed is True and v.breach_budget_minutes == 0 and not v.unrecoverable
    assert v.uptime_raw_pct == pytest.approx(1412 / 1440 * 100)


def test_breach_budget_during_the_day():
    # 10:00 UTC: 600 minutes elapsed, 10 lost (7 non-compliant, 3 unknown) → 28.8 − 10 = 18 minutes left.
    t = terms(vol_trigger_pct=None, vol_trigger_multiple=None)
    minutes = day_minutes(600)
    bars = {m: bar(m, in_range=0 if i < 7 else 60) for i, m in enumerate(minutes) if not 100 <= i < 103}
    v = ev.period_verdict(*judge(bars, t, minutes)[:2], minutes_total=1440)
    assert (v.compliant_minutes, v.non_compliant_minutes, v.unknown_minutes) == (590, 7, 3)
    assert v.breach_budget_minutes == 18
    assert v.passed is True  # still recoverable
    assert v.uptime_raw_pct == pytest.approx(590 / 600 * 100)
    assert ev.uptime_status(v, 0.9) == ev.KpiStatus.OK
    # 26 lost is more than 90 % of the 28.8 allowed: early warning; 29 lost: breach.
    bars26 = {m: bar(m, in_range=0 if i < 26 else 60) for i, m in enumerate(minutes)}
    assert ev.uptime_status(ev.period_verdict(*judge(bars26, t, minutes)[:2], minutes_total=1440), 0.9) == ev.KpiStatus.WARNING
    bars29 = {m: bar(m, in_range=0 if i < 29 else 60) for i, m in enumerate(minutes)}
    v29 = ev.period_verdict(*judge(bars29, t, minutes)[:2], minutes_total=1440)
    assert v29.unrecoverable and v29.passed is False and ev.uptime_status(v29, 0.9) == ev.KpiStatus.BREACH


def test_unknown_minutes_are_never_compliant():
    t = terms()
    minutes = day_minutes(4)
    no_valid = ev.Bar(minute=minutes[1], obligation_version_id=1, samples=60, valid_samples=0, judged_samples=0,
                      in_range_samples=0, judged_mask=0, in_range_mask=0, presence_samples=0)
    bars = {minutes[0]: bar(minutes[0]), minutes[1]: no_valid}  # minutes 2, 3: no sample at all
    records, exempt, _ = judge(bars, t, minutes)
    assert [r.judgement.outcome for r in records] == [ev.Outcome.COMPLIANT] + [ev.Outcome.UNKNOWN] * 3
    v = ev.period_verdict(records, exempt, minutes_total=4)
    assert v.uptime_raw_pct == 25.0 and v.unknown_minutes == 3
    assert v.coverage_pct == 25.0
    for method in ev.METHODS:
        j = ev.judge_minute(None, terms(evaluation_method=method), minute=minutes[2], market_id=7, seed="s")
        assert j.compliant_units == 0 and j.unknown_units == j.units


def test_excused_outage_removes_only_unknown_minutes_from_the_day():
    t = terms(vol_trigger_pct=None, vol_trigger_multiple=None)
    minutes = day_minutes()
    # 60-minute collector outage (no bars) from 03:00, excused; one measured bad minute inside it.
    outage = (T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    bars = {m: bar(m) for m in minutes if not outage[0] <= m < outage[1]}
    bars[outage[0] + timedelta(minutes=5)] = bar(outage[0] + timedelta(minutes=5), in_range=0)
    records, exempt, _ = judge(bars, t, minutes, excused=[outage])
    v = ev.period_verdict(records, exempt, minutes_total=1440)
    assert v.excused_minutes == 59 and v.unknown_minutes == 0 and v.non_compliant_minutes == 1
    assert v.uptime_raw_pct == pytest.approx(1380 / 1381 * 100)
    assert v.breach_budget_minutes == int((1381 * Fraction(2, 100)) - 1)
    # Without the excuse the same hour is 59 unknown minutes: the 98 % clause fails.
    v2 = ev.period_verdict(*judge(bars, t, minutes)[:2], minutes_total=1440)
    assert v2.passed is False and v2.unknown_minutes == 59


def test_minute_rules_all_valid_share_and_average():
    m = T0
    half = bar(m, in_range=45, spread=0.45, spread_max=0.9)
    assert ev.judge_minute(half, terms(), minute=m, market_id=1, seed="s").compliant_units == 0
    assert ev.judge_minute(half, terms(minute_rule="share", minute_rule_share_pct=Decimal("75")), minute=m, market_id=1,
                           seed="s").compliant_units == 1
    assert ev.judge_minute(half, terms(minute_rule="share", minute_rule_share_pct=Decimal("80")), minute=m, market_id=1,
                           seed="s").compliant_units == 0
    assert ev.judge_minute(half, terms(minute_rule="average"), minute=m, market_id=1, seed="s").compliant_units == 1
    thin = bar(m, in_range=45, spread=0.45, depth=20_000.0)
    assert ev.judge_minute(thin, terms(minute_rule="average"), minute=m, market_id=1, seed="s").compliant_units == 0


def test_snapshot_share_counts_every_tenth_second():
    t = terms(evaluation_method="snapshot_share", snapshot_interval_s=10, snapshot_day_share_pct=Decimal("75"))
    assert ev.snapshot_seconds(T0, 10) == [0, 10, 20, 30, 40, 50]
    mask = sum(1 << s for s in (0, 10, 20, 30, 41))  # 4 of the 6 snapshot seconds in range
    j = ev.judge_minute(bar(T0, in_range=5, in_range_mask=mask), t, minute=T0, market_id=1, seed="s")
    assert (j.units, j.compliant_units, j.unknown_units) == (6, 4, 0)
    minutes = day_minutes(4)
    bars = {mm: bar(mm, in_range=5, in_range_mask=mask) for mm in minutes}
    v = ev.period_verdict(*judge(bars, t, minutes)[:2], minutes_total=4)
    assert v.uptime_raw_pct == pytest.approx(400 / 6)  # 66.7 % of snapshots: below the 75 % day share
    assert v.passed is False and v.required_pct == 75
    with pytest.raises(ev.EvaluationError):
        ev.snapshot_seconds(T0, 0)


def test_random_minute_is_deterministic_and_reads_its_second():
    seconds = [ev.random_second("seed", 7, T0 + timedelta(minutes=i)) for i in range(600)]
    assert seconds == [ev.random_second("seed", 7, T0 + timedelta(minutes=i)) for i in range(600)]
    assert all(0 <= s < 60 for s in seconds) and len(set(seconds)) > 50
    assert seconds != [ev.random_second("other", 7, T0 + timedelta(minutes=i)) for i in range(600)]
    t = terms(evaluation_method="random_minute")
    s = ev.random_second("seed", 7, T0)
    only_that = bar(T0, in_range=1, in_range_mask=1 << s)
    assert ev.judge_minute(only_that, t, minute=T0, market_id=7, seed="seed").compliant_units == 1
    all_but = bar(T0, in_range=59, in_range_mask=ALL_SECONDS & ~(1 << s))
    assert ev.judge_minute(all_but, t, minute=T0, market_id=7, seed="seed").compliant_units == 0
    gap = bar(T0, in_range=59, in_range_mask=ALL_SECONDS & ~(1 << s), judged_mask=ALL_SECONDS & ~(1 << s))
    assert ev.judge_minute(gap, t, minute=T0, market_id=7, seed="seed").unknown_units == 1


def test_presence_is_the_share_of_seconds_with_firm_two_sided_quotes():
    t = terms(evaluation_method="presence", presence_required_pct=Decimal("50"))
    minutes = day_minutes(2)
    bars = {minutes[0]: bar(minutes[0], presence=45), minutes[1]: bar(minutes[1], presence=6, judged=40)}
    records, exempt, _ = judge(bars, t, minutes)
    assert [(r.judgement.compliant_units, r.judgement.unknown_units) for r in records] == [(45, 0), (6, 20)]
    v = ev.period_verdict(records, exempt, minutes_total=2)
    assert v.uptime_raw_pct == pytest.approx((45 + 6) / 120 * 100) and v.passed is False


def test_bar_from_another_version_is_refused():
    with pytest.raises(ev.EvaluationError, match="roll the minute up again"):
        ev.judge_minute(bar(T0, version_id=2), terms(), minute=T0, market_id=1, seed="s")
    with pytest.raises(ev.EvaluationError, match="Unknown evaluation method"):
        terms(evaluation_method="hourly")


def test_hard_breaches_spread_above_maximum_and_depth_below_minimum():
    t = terms(vol_trigger_pct=None, vol_trigger_multiple=None)
    minutes = day_minutes(5)
    bars = {
        minutes[0]: bar(minutes[0]),
        minutes[1]: bar(minutes[1], in_range=0, spread_max=0.9),
        minutes[2]: bar(minutes[2], in_range=0, spread_max=1.2, depth=10_000.0),
        minutes[3]: bar(minutes[3], in_range=0, spread_max=0.7),  # above target, within maximum: no hard breach
    }
    records, exempt, _ = judge(bars, t, minutes)
    runs = {r.kind: r for r in ev.hard_breaches(records, exempt)}
    assert (runs["spread_max"].minutes, runs["spread_max"].worst_value, runs["spread_max"].limit_value) == (2, 1.2, 0.8)
    assert (runs["depth_min"].minutes, runs["depth_min"].worst_value) == (1, 10_000.0)


def test_early_warning_statuses():
    assert ev.upper_limit_status(0.70, 0.8, 0.9) == ev.KpiStatus.OK
    assert ev.upper_limit_status(0.75, 0.8, 0.9) == ev.KpiStatus.WARNING  # above 90 % of the maximum
    assert ev.upper_limit_status(0.81, 0.8, 0.9) == ev.KpiStatus.BREACH
    assert ev.upper_limit_status(None, 0.8, 0.9) == ev.KpiStatus.UNKNOWN
    assert ev.lower_limit_status(28_000, 25_000, 0.9) == ev.KpiStatus.OK
    assert ev.lower_limit_status(27_000, 25_000, 0.9) == ev.KpiStatus.WARNING  # less than 10 % headroom
    assert ev.lower_limit_status(24_999, 25_000, 0.9) == ev.KpiStatus.BREACH
    assert ev.lower_limit_status(1.0, None, 0.9) == ev.KpiStatus.OK


def test_liquidity_alert_clock_starts_once_per_72_hours():
    above = [T0 + timedelta(hours=h) for h in (1, 2, 50, 73, 74, 200)]
    assert ev.liquidity_alert_clock_starts(above, None) == [above[0], above[3], above[5]]
    assert ev.liquidity_alert_clock_starts(above[1:3], above[0]) == []
