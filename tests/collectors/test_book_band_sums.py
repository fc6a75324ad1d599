"""OrderBook.band_notional (band sums kept as the book changes) against the pure
compliance.metrics.depth_within_band over the whole book: equal to float rounding."""
import random
from pathlib import Path

import pytest

from collectors.book import OrderBook
from collectors.capture import read_binance_capture
from collectors.replay import Replay
from compliance import metrics

CAPTURES = Path("/work/shared/data/binance-captures")
SLACK = metrics.EDGE_TOLERANCE


def pure(book, floor, ceiling):
    return metrics.depth_within_band(book.bids(), book.asks(), floor, ceiling)


def ours(book, floor, ceiling):
    return book.band_notional(floor * (1 - SLACK), ceiling * (1 + SLACK))


def test_levels_exactly_at_the_edges_count_and_one_tick_beyond_does_not():
    book = OrderBook()
    book.load_snapshot(1, [["98.00", "1"], ["97.99", "5"]], [["102.00", "2"], ["102.01", "7"]])
    assert ours(book, 98.0, 102.0) == pure(book, 98.0, 102.0) == (98.0, 204.0)
    # 0.3 × 0.98 lands one ulp above 0.294: the edge level still counts, as in the metric.
    tiny = OrderBook()
    tiny.load_snapshot(1, [["0.30", "1"], ["0.294", "10"]], [["0.31", "1"]])
    floor = 0.3 * 0.98
    assert pure(tiny, floor, 0.4) == pytest.approx((0.3 + 2.94, 0.31))
    assert ours(tiny, floor, 0.4) == pytest.approx(pure(tiny, floor, 0.4), rel=1e-12)


def test_empty_and_out_of_band_sides():
    book = OrderBook()
    assert book.band_notional(1.0, 2.0) == (0.0, 0.0)
    book.load_snapshot(1, [["10.00", "1"]], [["20.00", "1"]])
    assert ours(book, 11.0, 19.0) == (0.0, 0.0) == pure(book, 11.0, 19.0)


@pytest.mark.parametrize("seed", range(5))
def test_random_books_under_random_updates(seed):
    rng = random.Random(seed)
    mid = rng.choice([0.05, 3.0, 2_650.0, 61_700.0])
    tick = mid * 1e-5
    fmt = "{:.8f}"
    bids = [[fmt.format(mid - tick * i), f"{rng.uniform(0.001, 5):.3f}"] for i in range(1, 800)]
    asks = [[fmt.format(mid + tick * i), f"{rng.uniform(0.001, 5):.3f}"] for i in range(1, 800)]
    book = OrderBook()
    book.load_snapshot(1, bids, asks)
    for update in range(2, 400):
        changes_b = [[fmt.format(mid - tick * rng.randint(1, 3000)), rng.choice(["0", f"{rng.uniform(0, 9):.3f}"])]
                     for _ in range(rng.randint(0, 30))]
        changes_a = [[fmt.format(mid + tick * rng.randint(1, 3000)), rng.choice(["0", f"{rng.uniform(0, 9):.3f}"])]
                     for _ in range(rng.randint(0, 30))]
        book.apply(changes_b, changes_a, update)
        band = rng.choice([0.5, 1.0, 2.0, 5.0])
        best_bid, best_ask = book.touch()
        floor, ceiling = metrics.band_edges(best_bid, best_ask, band)
        # Also edges placed exactly on a level's price.
        if update % 7 == 0:
            floor = rng.choice(list(book.bids()))[0]
            ceiling = rng.choice(list(book.asks()))[0]
        assert ours(book, floor, ceiling) == pytest.approx(pure(book, floor, ceiling), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("files", [
    ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"],
    ["usdm_btcusdt_20240808.gz"],
    ["usdm_ethusdt_20240718.gz", "usdm_ethusdt_20240719.gz"],
])
def test_every_sample_of_a_real_capture(files):
    compared = []
    events = iter(range(10**9))

    def on_event(market):
        book = market.sync.book
        if next(events) % 20:
            return  # every 20th diff keeps the test quick; every diff goes through the sums
        floor, ceiling = metrics.band_edges(*book.touch())
        expected = pure(book, floor, ceiling)
        compared.append(ours(book, floor, ceiling) == pytest.approx(expected, rel=1e-12))

    replay = Replay(on_event=on_event)
    for name in files:
        replay.feed_all(read_binance_capture(CAPTURES / name))
    assert len(compared) > 300 and all(compared)
