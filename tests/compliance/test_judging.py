"""Judging stored days (compliance/judging.py) against the real Postgres."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone as djtz

from compliance import judging, services
from compliance.models import DailyResult, ExcusedOutage, LiquidityAlertClock, Violation
from compliance.rollups import roll_up_pending
from compliance.selectors import market_status
from compliance.tasks import roll_up_recent_minutes
from tests.compliance.engine_support import insert_samples, make_market, seconds

DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
pytestmark = pytest.mark.django_db


def no_volatility(**terms):
    return {"vol_trigger_pct": None, "vol_trigger_multiple": None, **terms}


def test_obligation_changed_mid_day_judges_each_version_its_own_minutes(admin_user):
    market = make_market(at=DAY - timedelta(days=1), user=admin_user, **no_volatility())  # target max 0.5 %
    insert_samples(market.pk, seconds(DAY, 20 * 60, spread=0.4))
    roll_up_pending()
    v2 = services.change_obligation(
        market=market, terms={"spread_target_max_pct": Decimal("0.3")}, changed_by=admin_user,
        reason="tighter contract from 00:10", effective_from=DAY + 10 * MIN,
    )
    # The version was recorded after the bars were rolled: judging re-rolls minutes 10–19 under v2.
    result = judging.judge_day(market=market, day=DAY.date(), now=DAY + 20 * MIN)
    assert (result.minutes_elapsed, result.compliant_minutes, result.non_compliant_minutes) == (20, 10, 10)
    assert [v["version"] for v in result.obligation_versions] == [1, 2]
    assert result.obligation_versions[1] == {
        "id": v2.pk, "version": 2, "from": (DAY + 10 * MIN).isoformat(), "to": (DAY + 1440 * MIN).isoformat(),
        "evaluation_method": "minute",
    }
    per_version = result.details["per_version"]
    assert per_version[str(v2.pk)]["uptime_raw_pct"] == 0.0 and per_version[str(v2.pk)]["minutes"] == 10
    assert result.uptime_raw_pct == 50.0 and result.is_closed is False
    # 10 lost of 28.8 allowed: 18 minutes of budget left, the day can still pass.
    assert result.breach_budget_minutes == 18 and result.passed is True


def test_a_version_effective_mid_minute_governs_from_the_next_minute(admin_user):
    market = make_market(at=DAY - timedelta(days=1), user=admin_user, **no_volatility())
    insert_samples(market.pk, seconds(DAY, 3 * 60, spread=0.4))
    services.change_obligation(market=market, terms={"spread_target_max_pct": Decimal("0.3")}, changed_by=admin_user,
                               reason="from 00:01:30", effective_from=DAY + timedelta(seconds=90))
    roll_up_pending()
    result = judging.judge_day(market=market, day=DAY.date(), now=DAY + 3 * MIN)
    assert (result.compliant_minutes, result.non_compliant_minutes) == (2, 1)


def test_closed_day_with_a_gap_fails_unless_the_outage_is_excused(admin_user):
    market = make_market(at=DAY - timedelta(days=1), user=admin_user, **no_volatility())
    # 30 compliant minutes, then the collector was down from 00:30 to the end of the day.
    insert_samples(market.pk, seconds(DAY, 30 * 60, spread=0.2))
    roll_up_pending()
    now = DAY + timedelta(days=1, minutes=5)
    result = judging.judge_day(market=market, day=DAY.date(), now=now)
    assert result.is_closed and result.minutes_elapsed == 1440
    assert result.unknown_minutes == 1440 - 30 and result.passed is False and result.unrecoverable
    assert Violation.objects.get(market=market, day=DAY.date(), kind="uptime").minutes == 1410

    with pytest.raises(ValidationError, match="Say why"):
        judging.excuse_outage(market=market, start=DAY + 30 * MIN, end=DAY + 1440 * MIN, reason=" ", excused_by=admin_user)
    with pytest.raises(ValidationError, match="before it starts"):
        judging.excuse_outage(market=market, start=DAY + MIN, end=DAY, reason="x", excused_by=admin_user)
    outage = judging.excuse_outage(market=market, start=DAY + 30 * MIN, end=DAY + 1440 * MIN, reason="exchange maintenance",
                                   excused_by=admin_user)
    result = DailyResult.objects.get(market=market, day=DAY.date())  # the excuse re-judged the day
    assert (result.excused_minutes, result.unknown_minutes, result.uptime_raw_pct) == (1410, 0, 100.0)
    assert result.passed is True and not Violation.objects.filter(market=market, kind="uptime").exists()

    judging.revoke_excused_outage(outage=outage, revoked_by=admin_user, reason="it was our collector after all")
    with pytest.raises(ValidationError, match="already revoked"):
        judging.revoke_excused_outage(outage=outage, revoked_by=admin_user, reason="again")
    audited = ExcusedOutage.objects.get(pk=outage.pk)
    assert (audited.created_by, audited.reason, audited.revoked_by) == (admin_user, "exchange maintenance", admin_user)
    assert DailyResult.objects.get(market=market, day=DAY.date()).passed is False


def test_hard_breaches_the_72h_clock_and_live_status(admin_user):
    market = make_market(at=DAY - timedelta(days=1), user=admin_user, **no_volatility())  # tier 1
    insert_samples(market.pk, seconds(DAY, 60, spread=0.2) + seconds(DAY + MIN, 60, spread=2.5)
                   + seconds(DAY + 2 * MIN, 60, spread=0.75, depth_bid=13_000.0, depth_ask=13_000.0))
    now = DAY + 3 * MIN + timedelta(seconds=5)
    roll_up_pending()
    result = judging.judge_day(market=market, day=DAY.date(), now=now)
    assert (result.compliant_minutes, result.non_compliant_minutes) == (1, 2)
    kinds = {v.kind: v for v in Violation.objects.filter(market=market)}
    assert set(kinds) == {"spread_max"} and kinds["spread_max"].worst_value == pytest.approx(2.5)
    clock = LiquidityAlertClock.objects.get(market=market)
    assert clock.detected_at == DAY + MIN and clock.deadline == DAY + MIN + timedelta(hours=72)
    judging.judge_day(market=market, day=DAY.date(), now=now)  # re-running changes nothing
    assert LiquidityAlertClock.objects.filter(market=market).count() == 1

    status = market_status(market_id=market.pk, now=now)
    assert status["kpis"]["spread_pct"]["status"] == "warning"  # 0.75 % > 90 % of the 0.8 % maximum
    assert status["kpis"]["depth_usd"]["status"] == "warning"  # $26k: under 10 % headroom over $25k
    assert status["kpis"]["uptime_pct"]["breach_budget_minutes"] == 26
    assert status["escalation"] == {"level": "warning", "violation_days_90d": 1}
    assert status["liquidity_alert_clock"]["remaining"] == clock.deadline - now
    assert status["status"] == "warning"
    stale = market_status(market_id=market.pk, now=now + timedelta(minutes=10))
    assert stale["kpis"]["spread_pct"]["status"] == "unknown"


def test_judging_a_future_day_is_refused(admin_user):
    market = make_market(at=DAY, user=admin_user)
    with pytest.raises(ValidationError, match="not started"):
        judging.judge_day(market=market, day=DAY.date(), now=DAY - MIN)


@pytest.fixture
def celery_eager():
    """Run the tasks a beat task dispatches in-process (the real task code, no worker)."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_minute_task_rolls_up_and_judges_today(admin_user, celery_eager):
    now = djtz.now()
    start = now.replace(second=0, microsecond=0) - 3 * MIN
    if start.date() != now.date():  # just after midnight: stay within one day
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    market = make_market(at=start - timedelta(days=1), user=admin_user, **no_volatility())
    insert_samples(market.pk, seconds(start, 120, spread=0.2))
    assert roll_up_recent_minutes() == 1
    result = DailyResult.objects.get(market=market, day=start.date())
    assert result.is_closed is False and result.compliant_minutes == 2
    assert roll_up_recent_minutes() == 1  # nothing new, but a silent market is judged again


def test_the_minute_task_counts_a_silent_collector_as_unknown_time(admin_user, celery_eager):
    now = djtz.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - start < 12 * MIN:
        pytest.skip("needs 12 minutes of today behind us")
    market = make_market(at=start - timedelta(days=1), user=admin_user, **no_volatility())
    insert_samples(market.pk, seconds(start, 120, spread=0.2))  # then the collector died
    roll_up_pending()  # an earlier pass saw the samples; this minute's pass sees nothing new
    assert roll_up_recent_minutes() == 1
    result = DailyResult.objects.get(market=market, day=start.date())
    assert result.compliant_minutes == 2
    assert result.unknown_minutes == result.minutes_elapsed - 2 >= 10


def test_the_midnight_task_judges_and_scores_the_closed_day(admin_user, celery_eager):
    from compliance.models import LiquidityScore
    from compliance.tasks import judge_closed_day

    # At 00:00 UTC the day just closed is (now − 1 minute)'s; run at another time, it is today so far.
    closed_day = (djtz.now() - timedelta(minutes=1)).date()
    start = datetime.combine(closed_day, datetime.min.time(), tzinfo=timezone.utc)
    market = make_market(at=start - timedelta(days=1), user=admin_user, **no_volatility())
    insert_samples(market.pk, seconds(start, 120, spread=0.2))
    assert judge_closed_day() >= 1
    result = DailyResult.objects.get(market=market, day=closed_day)
    assert result.compliant_minutes == 2 and result.obligation_versions[0]["version"] == 1
    score = LiquidityScore.objects.get(market=market, window="closed_day")
    assert score.window_start == start and score.score is not None
