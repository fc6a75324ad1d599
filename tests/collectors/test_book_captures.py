"""The rebuilt book against the exchange's own top of book, on every real capture with a snapshot.

Binance's bookTicker carries the update id `u` of the book state it shows; whenever a diff
ends at the same id, the local book after that diff must show the same best bid and ask.
A *_0809 / *_0405 / *_0719 file continues the previous day's file (data/README.md), so each
case replays the day-1 file followed by its sequel when it exists.
"""
from pathlib import Path

import pytest

from collectors.capture import read_binance_capture
from collectors.replay import Replay
from collectors.sync import Outcome

CAPTURES = Path("/work/shared/data/binance-captures")
CASES = {
    "spot_btcusdt_2024": ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"],
    "spot_ethusdt_2024": ["spot_ethusdt_20240808.gz", "spot_ethusdt_20240809.gz"],
    "usdm_btcusdt_2024-08": ["usdm_btcusdt_20240808.gz"],
    "usdm_ethusdt_2024-08": ["usdm_ethusdt_20240808.gz"],
    "usdm_btcusdt_2024-07": ["usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz"],
    "usdm_ethusdt_2024-07": ["usdm_ethusdt_20240718.gz", "usdm_ethusdt_20240719.gz"],
    "usdm_btcusdt_2023": ["usdm_btcusdt_20230404.dat.gz", "usdm_btcusdt_20230405.dat.gz"],
    "coinm_btcusd_perp": ["cm_btcusd_perp_20240808.gz", "cm_btcusd_perp_20240809.gz"],
    "coinm_ethusd_perp": ["cm_ethusd_perp_20240808.gz", "cm_ethusd_perp_20240809.gz"],
}


def test_every_capture_with_a_snapshot_is_covered():
    # spot_btcusdt_20230405.dat.gz is the only file without a snapshot anywhere in its chain.
    covered = {name for files in CASES.values() for name in files}
    on_disk = {path.name for path in CAPTURES.glob("*.gz")}
    assert on_disk - covered == {"spot_btcusdt_20230405.dat.gz"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rebuilt_touch_equals_book_ticker_at_equal_update_ids(case):
    touch_after = {}
    exchange_touch = {}
    part = 0

    def on_event(market):
        touch_after[market.sync.book.update_id] = (market.sync.book.touch(), part)

    def on_ticker(market, ticker):
        exchange_touch[ticker.update_id] = (ticker.bid, ticker.ask)

    replay = Replay(on_event=on_event, on_ticker=on_ticker)
    for part, name in enumerate(CASES[case]):
        replay.feed_all(read_binance_capture(CAPTURES / name))

    (market,) = replay.markets.values()
    assert replay.counts["malformed"] == 0
    assert market.sync.synced and market.sync.resync_count == 0
    # Only the few diffs before the snapshot line were buffered; every later one was applied,
    # across the day boundary into the sequel file.
    assert set(market.outcomes) <= {Outcome.BUFFERED, Outcome.SNAPSHOT_PENDING, Outcome.SYNCED, Outcome.APPLIED}
    assert market.outcomes[Outcome.BUFFERED] < 50

    compared = set(touch_after) & set(exchange_touch)
    assert len(compared) > 150, "too few equal update ids to say anything"
    mismatches = sorted((u, touch_after[u][0], exchange_touch[u]) for u in compared if touch_after[u][0] != exchange_touch[u])
    assert mismatches == []
    assert {touch_after[u][1] for u in compared} == set(range(len(CASES[case])))
