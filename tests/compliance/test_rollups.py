"""Minute bars from samples (compliance/rollups.py), against the real Postgres."""
from datetime import datetime, timedelta, timezone

import pytest

from compliance.rollups import roll_up, roll_up_pending
from compliance.selectors import minute_bars
from tests.compliance.engine_support import Sample, insert_samples, make_market, seconds

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


def test_a_minute_bar_summarises_its_samples():
    market = make_market(at=T0 - timedelta(days=1))
    samples = seconds(T0, 60, spread=0.2)
    samples[10].spread = 0.7  # above the 0.5 % target maximum
    samples[20].spread = None  # invalid second
    samples[30].depth_bid = 1000.0  # depth below the $25k minimum
    del samples[40]  # missing second
    insert_samples(market.pk, samples)
    roll_up_pending()
    bar = minute_bars(market_id=market.pk, start=T0, end=T0 + timedelta(minutes=1))[T0]
    assert (bar.samples, bar.valid_samples, bar.judged_samples, bar.in_range_samples) == (59, 58, 58, 56)
    assert bar.spread_max == pytest.approx(0.7)
    assert bar.spread_min == pytest.approx(0.2)
    assert bar.depth_total_min == pytest.approx(21_000)
    assert not bar.judged_mask >> 20 & 1 and not bar.judged_mask >> 40 & 1 and bar.judged_mask >> 41 & 1
    assert not bar.in_range_mask >> 10 & 1 and not bar.in_range_mask >> 30 & 1 and bar.in_range_mask >> 11 & 1
