"""The dashboard's reads show the compliance engine's verdicts (hand-computed expectations below)."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from compliance import judging
from compliance.models import Market
from compliance.rollups import roll_up
from dashboard import selectors

from .conftest import clear_samples, make_market, sample, write_samples

pytestmark = pytest.mark.django_db

DAY = datetime(2024, 3, 10, tzinfo=timezone.utc)
NOW = DAY + timedelta(hours=1, seconds=30)  # 60 closed minutes of the day


def minute(i, s=0):
    return DAY + timedelta(minutes=i, seconds=s)


def judged(market, now=NOW):
    """Run the engine as beat does: roll the minutes up, judge the day so far."""
    roll_up(start=DAY, end=now, market_ids=[market.id])
    judging.judge_day(market=market, day=DAY.date(), now=now)


def row_of(symbol, now=NOW):
    return next(r for r in selectors.overview_rows(now=now) if r["symbol"] == symbol)


def test_overview_uptime_is_the_engines_with_the_breach_budget():
    # Tier 1 preset: target ≤ 0.5 %, max 0.8 %, depth ≥ $25k, uptime 98 %; no volatility (mid constant).
    m = make_market("BTCUSDT", effective_from=DAY)
    rows = [sample(m.id, minute(i, s)) for i in range(50) for s in (0, 30)]
    rows += [sample(m.id, minute(i), spread=0.6) for i in range(50, 55)]  # above target: not compliant
    rows += [sample(m.id, minute(i), valid=False) for i in range(55, 60)]  # crossed book: unknown
    write_samples(rows)
    judged(m)
    u = row_of("BTCUSDT")["uptime"]
    assert (u["minutes_elapsed"], u["compliant_minutes"], u["non_compliant_minutes"], u["unknown_minutes"]) == (60, 50, 5, 5)
    assert u["raw_pct"] == pytest.approx(50 / 60 * 100)  # 83.33 %
    assert u["budget_allowed_minutes"] == pytest.approx(28.8)  # 1440 × 2 %
    assert u["breach_budget_minutes"] == 18  # floor(28.8 − 10)
    assert u["status"] == "ok"  # 10 lost < 90 % of 28.8
    assert u["judged_until"] == minute(60).isoformat()


def test_uptime_is_a_breach_once_unrecoverable_and_escalation_follows():
    # DESIGN.md worked check: 29 lost minutes exceed the 28.8-minute budget of a 98 % day.
    m = make_market("BTCUSDT", effective_from=DAY)
    write_samples([sample(m.id, minute(i)) for i in range(31)])  # minutes 31–59: no data (unknown)
    judged(m)
    row = row_of("BTCUSDT")
    assert row["uptime"]["compliant_minutes"] == 31 and row["uptime"]["breach_budget_minutes"] == -1
    assert row["uptime"]["status"] == "breach" and row["status"] == "breach"
    assert row["escalation"] == {"level": "warning", "violation_days_90d": 1}  # the uptime violation


def test_an_excused_outage_is_left_out_of_the_budget(admin):
    m = make_market("BTCUSDT", effective_from=DAY)
    write_samples([sample(m.id, minute(i)) for i in range(31)])
    judging.excuse_outage(market=m, start=minute(31), end=minute(60), reason="exchange maintenance", excused_by=admin)
    judged(m)
    u = row_of("BTCUSDT")["uptime"]
    assert u["excused_minutes"] == 29 and u["unknown_minutes"] == 0
    assert u["budget_allowed_minutes"] == pytest.approx((1440 - 29) * 0.02)  # 28.22
    assert u["breach_budget_minutes"] == 28 and u["status"] == "ok"
    assert u["raw_pct"] == pytest.approx(100.0)  # 31 of 31 measured minutes


def test_one_sample_out_of_range_spoils_the_minute_under_the_default_rule_but_not_under_share():
    strict = make_market("AAAUSDT", effective_from=DAY)
    lenient = make_market("BBBUSDT", effective_from=DAY, minute_rule="share", minute_rule_share_pct=50)
    for m in (strict, lenient):
        write_samples([sample(m.id, minute(0, 0)), sample(m.id, minute(0, 1)), sample(m.id, minute(0, 2), spread=0.7)])
        judged(m, now=minute(1, 5))
    assert row_of("AAAUSDT", now=minute(1, 5))["uptime"]["compliant_minutes"] == 0
    assert row_of("BBBUSDT", now=minute(1, 5))["uptime"]["compliant_minutes"] == 1


def test_the_live_book_is_judged_by_the_engines_rule(settings):
    m = make_market("BTCUSDT", effective_from=DAY)
    fresh = NOW - timedelta(seconds=1)
    cases = [
        (dict(spread=0.9), "spread_pct", "breach"),  # above the 0.8 % maximum
        (dict(spread=0.75), "spread_pct", "warning"),  # above 90 % of it (0.72 %)
        (dict(spread=0.6), "spread_pct", "ok"),  # above target (uptime suffers) but not a KPI warning
        (dict(bid_usd=13_000, ask_usd=13_000), "depth_usd", "warning"),  # $26k: under 10 % headroom over $25k
        (dict(bid_usd=10_000, ask_usd=10_000), "depth_usd", "breach"),
    ]
    for kwargs, kpi, status in cases:
        write_samples([sample(m.id, fresh, **kwargs)])
        live = row_of("BTCUSDT")["live"]
        assert live["kpis"][kpi]["status"] == status, (kwargs, live["kpis"])
        clear_samples()
    write_samples([sample(m.id, fresh, complete=False)])
    live = row_of("BTCUSDT")["live"]
    assert live["depth_lower_bound"] and live["depth_bid_complete"] is False
    old = NOW - timedelta(seconds=settings.STALE_AFTER_SECONDS + 1)
    write_samples([sample(m.id, old)])
    m2 = make_market("ETHUSDT", effective_from=DAY)
    write_samples([sample(m2.id, old)])
    row = row_of("ETHUSDT")
    assert row["live"]["stale"] and row["live"]["kpis"]["spread_pct"]["status"] == "unknown" and row["status"] == "unknown"


def test_overview_marks_a_market_without_data_stale_and_a_breaching_one_breach():
    make_market("QUIETUSDT")
    wide = make_market("WIDEUSDT")
    write_samples([sample(wide.id, NOW - timedelta(seconds=1), spread=1.2)])
    rows = {r["symbol"]: r for r in selectors.overview_rows(now=NOW)}
    assert rows["QUIETUSDT"]["live"]["stale"] and rows["QUIETUSDT"]["status"] == "unknown"
    assert rows["QUIETUSDT"]["live"]["ts"] is None
    assert rows["WIDEUSDT"]["live"]["kpis"]["spread_pct"]["status"] == "breach" and rows["WIDEUSDT"]["status"] == "breach"


def test_uptime_today_lists_the_engines_minute_outcomes_and_curve():
    m = make_market("BTCUSDT", effective_from=DAY)
    write_samples([sample(m.id, minute(i)) for i in range(20)] + [sample(m.id, minute(20), spread=0.6)])
    roll_up(start=DAY, end=minute(30), market_ids=[m.id])
    today = selectors.uptime_today(m.id, now=minute(30, 1))
    outcomes = [x["outcome"] for x in today["minutes"]]
    assert outcomes == ["compliant"] * 20 + ["non_compliant"] + ["unknown"] * 9
    # one point per quarter hour and the last closed minute: 15/15, 20/30
    assert [(c["minute"], round(c["raw_pct"], 2)) for c in today["curve"]] == [
        (minute(15).isoformat(), 100.0), (minute(30).isoformat(), 66.67)]


def test_live_series_has_a_null_for_every_second_without_valid_data():
    m = make_market()
    write_samples([sample(m.id, NOW.replace(microsecond=0) - timedelta(seconds=s)) for s in (0, 1, 4)])
    series = selectors.live_series(m.id, now=NOW, seconds=5)
    assert series["spread_pct"] == [0.05, None, None, 0.05, 0.05]


def test_history_is_the_engines_minute_bars_and_the_previous_period():
    m = make_market()
    write_samples([sample(m.id, minute(0, 0), spread=0.1), sample(m.id, minute(0, 1), spread=0.3), sample(m.id, minute(2))])
    roll_up(start=minute(0), end=minute(3), market_ids=[m.id])
    bars = selectors.minute_bars(m.id, start=minute(0), end=minute(3), compare=True)
    assert bars["current"]["spread_avg"] == [pytest.approx(0.2), None, pytest.approx(0.05)]
    assert bars["current"]["spread_max"][0] == pytest.approx(0.3)
    assert bars["current"]["coverage"] == [pytest.approx(2 / 60, abs=1e-4), None, pytest.approx(1 / 60, abs=1e-4)]
    assert bars["previous"]["spread_avg"] == [None, None, None]  # 23:57–00:00 the day before: no data


def test_bad_ranges_are_refused_with_a_reason():
    with pytest.raises(selectors.BadRange, match="not a date"):
        selectors.parse_range("yesterday", None, now=NOW)
    with pytest.raises(selectors.BadRange, match="after its start"):
        selectors.parse_range("2024-03-10", "2024-03-09", now=NOW)
    with pytest.raises(selectors.BadRange, match="at most 31 days"):
        selectors.parse_range("2024-01-01", "2024-03-01", now=NOW)


def test_overview_table_sends_each_set_of_terms_once_and_only_what_the_table_shows():
    for symbol in ("AAAUSDT", "BBBUSDT"):
        make_market(symbol)
    make_market("CCCUSDT", spread_max_pct=Decimal("3.5"))
    write_samples([sample(m_id, NOW - timedelta(seconds=1)) for m_id in Market.objects.values_list("id", flat=True)])
    table = selectors.overview_table(now=NOW)
    rows = {r["symbol"]: r for r in table["rows"]}
    assert len(table["terms"]) == 2 and rows["AAAUSDT"]["terms"] == rows["BBBUSDT"]["terms"] != rows["CCCUSDT"]["terms"]
    assert table["terms"][rows["CCCUSDT"]["terms"]]["spread_max_pct"] == 3.5
    full = {r["symbol"]: r for r in selectors.overview_rows(now=NOW)}
    a = rows["AAAUSDT"]
    assert "limits" not in a and "mid" not in a["live"] and "value" not in a["live"]["kpis"]["spread_pct"]
    # The values shown are the full row's; the live part keeps the shape a live update patches in.
    assert a["live"]["spread_pct"] == full["AAAUSDT"]["live"]["spread_pct"] and a["status"] == full["AAAUSDT"]["status"]
    assert a["live"]["kpis"]["spread_pct"]["status"] == full["AAAUSDT"]["live"]["kpis"]["spread_pct"]["status"]
    assert a["uptime"]["status"] == full["AAAUSDT"]["uptime"]["status"]
