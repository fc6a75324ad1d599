"""The 0–1000 liquidity score: four components against their KPIs (compliance.evaluation.liquidity_score)."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from compliance import evaluation as ev
from compliance import judging
from compliance.models import LiquidityScore
from compliance.rollups import roll_up_pending
from tests.compliance.engine_support import insert_samples, make_market, seconds
from tests.compliance.test_evaluation import terms


def test_hand_computed_score():
    t = terms()  # tier 1: target max 0.5 %, depth $25k, uptime 98 %
    score, components = ev.liquidity_score(
        spread_avg_pct=0.25, depth_avg_usd=20_000.0, uptime_pct=97.0, slippage_avg_pct=1.0, slippage_fillable_share=0.9,
        terms=t,
    )
    by_name = {c.name: c for c in components}
    assert by_name["spread"].ratio == 1.0 and by_name["spread"].points == 250.0
    assert by_name["depth"].ratio == pytest.approx(0.8) and by_name["depth"].points == 200.0
    assert by_name["uptime"].ratio == pytest.approx(97 / 98)
    assert by_name["slippage"].ratio == pytest.approx(0.9 * 0.5)  # 0.5 % KPI / 1.0 % measured, 90 % fillable
    assert score == round(1000 * (1 + 0.8 + 97 / 98 + 0.45) / 4, 1) == 809.9


def test_wide_spread_and_a_book_that_cannot_fill_score_low():
    t = terms()
    score, _ = ev.liquidity_score(spread_avg_pct=2.0, depth_avg_usd=50_000.0, uptime_pct=100.0, slippage_avg_pct=None,
                                  slippage_fillable_share=0.0, terms=t)
    assert score == round(1000 * (0.25 + 1 + 1 + 0) / 4, 1) == 562.5


def test_components_without_a_kpi_are_left_out():
    t = terms(depth_min_usd=None, depth_counts_for_uptime=False, uptime_required_pct=None)
    score, components = ev.liquidity_score(spread_avg_pct=0.5, depth_avg_usd=1.0, uptime_pct=50.0,
                                           slippage_avg_pct=0.25, slippage_fillable_share=1.0, terms=t)
    assert [c.points for c in components] == [250.0, None, None, 250.0]
    assert score == 1000.0
    assert ev.liquidity_score(spread_avg_pct=None, depth_avg_usd=None, uptime_pct=None, slippage_avg_pct=None,
                              slippage_fillable_share=None, terms=t)[0] is None


@pytest.mark.django_db
def test_trailing_24h_score_is_stored_with_its_components(admin_user):
    now = datetime(2026, 3, 2, 12, 0, 30, tzinfo=timezone.utc)
    market = make_market(at=now - timedelta(days=2), user=admin_user, depth_min_usd=Decimal("25000"))
    # 10 minutes of a tight, deep book; the rest of the 24 h unknown.
    insert_samples(market.pk, seconds(now.replace(second=0) - timedelta(minutes=10), 600, spread=0.25,
                                      depth_bid=20_000.0, depth_ask=20_000.0, slip=0.1))
    roll_up_pending()
    stored = judging.score_trailing_24h(market=market, now=now)
    assert stored.window == "trailing_24h" and stored.window_end == now.replace(second=0)
    c = stored.components
    assert c["spread"]["ratio"] == 1.0 and c["depth"]["ratio"] == 1.0 and c["slippage"]["ratio"] == 1.0
    assert c["uptime"]["value"] == pytest.approx(10 / 1440 * 100)  # unknown minutes are not compliant
    assert stored.score == pytest.approx(1000 * (3 + 10 / 1440 * 100 / 98) / 4, abs=0.1)
    judging.score_trailing_24h(market=market, now=now)  # re-run: same row
    assert LiquidityScore.objects.filter(market=market).count() == 1
