"""The order book's own rules: best tracking, ordering, bad levels, snapshot edges — for the
compiled book and the pure-Python reference alike."""
import pytest

from collectors.binance import DepthDiff, DepthSnapshot
from collectors.book import OrderBook, PyOrderBook
from collectors.sync import BookSync, Outcome


@pytest.fixture(params=[OrderBook, PyOrderBook], ids=["compiled", "python"])
def book_of(request):
    def book_of(bids, asks, limit=None):
        book = request.param()
        book.load_snapshot(1, bids, asks, limit)
        return book

    return book_of


def test_touch_follows_inserts_and_removals_of_the_best_level(book_of):
    book = book_of([["100.0", "1"], ["99.5", "2"], ["90.0", "1"]], [["101.0", "1"], ["101.5", "1"]])
    assert book.touch() == (100.0, 101.0)
    book.apply([["100.5", "3"]], [["100.9", "1"]], 2)
    assert book.touch() == (100.5, 100.9)
    book.apply([["100.5", "0.000"], ["100.0", "0"]], [["100.9", "0.00000000"]], 3)
    assert book.touch() == (99.5, 101.0)
    book.apply([["99.5", "0"]], [], 4)
    assert book.touch() == (90.0, 101.0)  # the next best sits far below
    book.apply([["90.0", "0"]], [["101.0", "0"], ["101.5", "0"]], 5)
    assert book.touch() == (None, None) and len(book) == 0
    assert not book.crossed()


def test_levels_come_best_first_and_top_n(book_of):
    book = book_of([["10.01", "1"], ["10.00", "2"], ["9.00", "3"]], [["10.02", "1"], ["11.00", "2"]])
    book.apply([["9.999", "5"]], [["10.5", "1"]], 2)
    assert list(book.bids()) == [(10.01, 1.0), (10.0, 2.0), (9.999, 5.0), (9.0, 3.0)]
    assert list(book.asks()) == [(10.02, 1.0), (10.5, 1.0), (11.0, 2.0)]
    assert book.top(2) == ([(10.01, 1.0), (10.0, 2.0)], [(10.02, 1.0), (10.5, 1.0)])


def test_quantity_update_and_removal_match_exact_prices(book_of):
    book = book_of([["61837.63000000", "1.0"]], [["61837.64000000", "2.0"]])
    book.apply([["61837.630", "4.5"]], [], 2)  # the same price written differently
    assert book.bid_qty == {61837.63: 4.5}
    book.apply([["61837.62", "0"]], [], 3)  # removing an absent level changes nothing
    assert book.bid_qty == {61837.63: 4.5}


@pytest.mark.parametrize("level", [["abc", "1"], ["1.0", "x"], ["-1.0", "2"], ["1.0", "-2"], ["nan", "1"],
                                   ["1.0", "nan"], ["inf", "1"], ["1.0", "inf"], ["1.0"]])
def test_bad_levels_are_errors_and_the_sync_rebuilds(book_of, level):
    with pytest.raises((ValueError, TypeError)):
        book_of([["100.0", "1"]], [["101.0", "1"]]).apply([level], [], 2)
    sync = BookSync(chained=False)
    sync.diff(DepthDiff("X", 1, 5, None, 1_000, [], []))
    assert sync.snapshot(DepthSnapshot(3, [["100.0", "1"]], [["101.0", "1"]])) is Outcome.SYNCED
    assert sync.diff(DepthDiff("X", 6, 6, None, 2_000, [level], [])) is Outcome.RESYNC
    assert sync.open_unknown.reason == "malformed diff" and sync.rejected


def test_bad_snapshot_is_rejected_and_another_one_asked_for():
    sync = BookSync(chained=False)
    sync.diff(DepthDiff("X", 1, 5, None, 1_000, [], []))
    assert sync.snapshot(DepthSnapshot(3, [["100.0", "oops"]], [])) is Outcome.SNAPSHOT_REJECTED
    assert sync.needs_snapshot and not sync.synced


def test_known_edges_are_the_deepest_snapshot_prices_of_a_full_side(book_of):
    full = book_of([["100", "1"], ["99", "1"]], [["101", "1"], ["102", "1"]], limit=2)
    assert (full.known_bid_edge, full.known_ask_edge) == (99.0, 102.0)
    assert book_of([["100", "1"]] * 5, [["101", "1"]] * 3).known_bid_edge == 100.0  # 5 = a valid limit
    assert book_of([["100", "1"]] * 4, [["101", "1"]] * 3).known_bid_edge is None


def test_removing_absent_or_impossible_prices_leaves_the_sample_view_intact(book_of):
    book = book_of([["100.0", "1"]], [["101.0", "1"]])
    book.apply([["nan", "0"], ["99.0", "0"]], [["inf", "0"]], 2)
    assert book.band_notional(50.0, 150.0) == (100.0, 101.0)
    assert list(book.bids()) == [(100.0, 1.0)]


def test_a_level_removed_and_added_again_is_walked_once_and_the_touch_falls_back_through_it(book_of):
    book = book_of([["100.0", "1"], ["99.0", "1"], ["98.0", "1"]], [["101.0", "1"]])
    for update in range(2, 50):  # the same level comes and goes: its key is pushed again each time
        book.apply([["99.0", "0" if update % 2 else "2"]], [], update)
    book.apply([["99.0", "3"]], [], 50)
    assert list(book.bids()) == [(100.0, 1.0), (99.0, 3.0), (98.0, 1.0)]
    book.apply([["100.0", "0"]], [], 51)
    assert book.touch() == (99.0, 101.0)
    book.apply([["99.0", "0"]], [], 52)
    assert book.touch() == (98.0, 101.0)


def test_the_key_heap_is_rebuilt_when_removed_levels_pile_up_and_the_touch_stays_right():
    book = PyOrderBook()  # the Python book's own heap
    book.load_snapshot(1, [["50.00", "1"]], [["101.00", "1"]])
    for update in range(2, 3000):
        price = f"{40 + update / 1000:.2f}"  # below the best: these keys never reach the top
        book.apply([[price, "1"]], [], update)
        book.apply([[price, "0"]], [], update)
    assert len(book.bid.heap) <= 2 * len(book.bid_qty) + 1024 + 1
    book.apply([["50.00", "0"], ["45.55", "2"]], [], 3000)
    assert book.touch() == (45.55, 101.0) and list(book.bids()) == [(45.55, 2.0)]


def test_band_depth_follows_a_moving_mid_and_levels_beyond_the_threshold(book_of):
    book = book_of([["100.00", "1"], ["99.00", "1"]], [["101.00", "1"], ["102.00", "1"]])
    assert book.band_notional(98.0, 103.0) == (199.0, 203.0)
    book.apply([["97.00", "5"], ["99.90", "1"]], [["103.50", "1"]], 2)  # beyond the edges, then inside
    assert book.band_notional(98.0, 103.0) == pytest.approx((298.9, 203.0), rel=1e-12)
    assert book.band_notional(96.0, 104.0) == pytest.approx((783.9, 306.5), rel=1e-12)  # the mid moved: re-placed
    book.apply([["97.00", "0"]], [["103.50", "0"]], 3)
    assert book.band_notional(96.0, 104.0) == pytest.approx((298.9, 203.0), rel=1e-12)
