"""A report over samples replayed from a real Binance capture agrees with the samples themselves."""
import json
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from collectors.capture import read_binance_capture
from collectors.replay import Replay
from collectors.sampler import Sampler
from reports import services
from reports.periods import range_period
from reports.storage import file_path

from .conftest import UTC, write_sample_tuples

CAPTURE = Path("/work/shared/data/binance-captures/spot_btcusdt_20240808.gz")
# The capture runs from 23:54:13 to 23:59:59 UTC: the whole minutes it covers.
START, END = datetime(2024, 8, 8, 23, 55, tzinfo=UTC), datetime(2024, 8, 9, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not CAPTURE.exists(), reason="the shared captures are not present")]


def replayed_samples(market_id):
    """The 1 s samples the collectors' own replay (parsing, sync, book, sampler) makes of the capture."""
    samples = []
    replay = Replay(sampler_factory=lambda symbol: Sampler(market_id, band_pct=2.0),
                    on_sample=lambda market, sample: samples.append(sample))
    replay.feed_all(read_binance_capture(CAPTURE))
    return [s for s in samples if START <= s.ts < END]


def test_report_over_a_replayed_capture_agrees_with_the_samples(market):
    samples = replayed_samples(market.id)
    assert len(samples) == 300 and sum(s.valid for s in samples) > 250
    write_sample_tuples(samples)
    report = services.request_report(scope="market", market_id=market.id, period=range_period(START, END), enqueue=False,
                                      now=datetime(2030, 1, 1, tzinfo=UTC))
    report = services.generate_report(report.pk)
    assert report.status == "done", report.error
    doc = json.loads(file_path(report.directory, "report.json").read_bytes())
    total = doc["markets"][0]["total"]

    # Straight from the samples, under the tier-1 preset: a minute is compliant when every valid
    # sample has spread (ask denominator) <= 0.5 % and bid + ask depth >= $25,000; unknown without one.
    by_minute = defaultdict(list)
    for s in samples:
        if s.valid:
            by_minute[s.ts.replace(second=0, microsecond=0)].append(s)
    expected = {}
    minute = START
    while minute < END:
        valid = by_minute.get(minute, [])
        if not valid:
            expected[minute] = "unknown"
        elif all(s.spread_ask_pct <= 0.5 and s.depth_bid_usd + s.depth_ask_usd >= 25_000 for s in valid):
            expected[minute] = "compliant"
        else:
            expected[minute] = "non_compliant"
        minute += timedelta(minutes=1)
    valid = [s for s in samples if s.valid]
    spreads = [s.spread_ask_pct for s in valid]

    assert total["minutes"] == 5
    assert total["compliant_minutes"] == sum(v == "compliant" for v in expected.values())
    assert total["unknown_minutes"] == sum(v == "unknown" for v in expected.values())
    assert total["valid_samples"] == len(valid)
    assert total["coverage_pct"] == pytest.approx(len(valid) / 300 * 100, abs=1e-6)
    assert total["spread"]["avg_pct"] == pytest.approx(statistics.fmean(spreads), abs=2e-6)
    assert total["spread"]["max_pct"] == pytest.approx(max(spreads), abs=2e-6)
    # percentile_cont is the linear interpolation that statistics.quantiles' 'inclusive' method uses.
    assert total["spread"]["p50_pct"] == pytest.approx(statistics.median(spreads), abs=2e-6)
    assert total["spread"]["p95_pct"] == pytest.approx(statistics.quantiles(spreads, n=100, method="inclusive")[94], abs=2e-6)
    assert total["depth"]["bid_avg_usd"] == pytest.approx(statistics.fmean(s.depth_bid_usd for s in valid), rel=1e-9)
    assert total["depth"]["incomplete_seconds"] == sum(not (s.depth_bid_complete and s.depth_ask_complete) for s in valid)

    lines = file_path(report.directory, "minute_bars.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [(r["minute"], r["status"]) for r in rows] == [(m.strftime("%Y-%m-%dT%H:%M:%SZ"), v) for m, v in expected.items()]
    for r in rows:
        minute_spreads = [s.spread_ask_pct for s in by_minute[datetime.strptime(r["minute"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)]]
        if minute_spreads:
            assert float(r["spread_max_pct"]) == pytest.approx(max(minute_spreads), abs=1e-6)
