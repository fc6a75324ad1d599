"""The compiled order book (collectors/_book.c) against the pure-Python reference book and against
compliance.metrics: built, and equal — on random books (hypothesis) and on every real capture."""
import math
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collectors.book
import collectors.sync
from collectors.book import SNAPSHOT_LIMITS, PyOrderBook
from collectors.capture import read_binance_capture
from collectors.replay import Replay
from compliance import metrics

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = Path("/work/shared/data/binance-captures")
SLACK = metrics.EDGE_TOLERANCE


def test_the_extension_is_built_current_and_used():
    # make venv (which make test, make demo and CI go through) builds it: without it the product
    # runs the Python book, several times slower, so a test run without it must not pass.
    from collectors import _book

    assert collectors.book.OrderBook is _book.OrderBook
    assert collectors.sync.OrderBook is _book.OrderBook
    built = Path(_book.__file__)
    source = ROOT / "collectors" / "_book.c"
    assert built.parent == source.parent
    assert built.stat().st_mtime >= source.stat().st_mtime, "collectors/_book.c changed: run make venv"


def compiled():
    from collectors._book import OrderBook

    return OrderBook()


def bits(value):
    return struct.pack("<d", value)


# ---- texts to floats ------------------------------------------------------------------------

def same_as_float(text):
    from collectors._book import to_float

    try:
        expected = float(text)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            to_float(text)
        return
    got = to_float(text)
    assert bits(got) == bits(expected) or (math.isnan(got) and math.isnan(expected)), text


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 24).flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
       .map(str)
       | st.floats(allow_nan=False).map(repr)
       | st.builds(lambda whole, frac: f"{whole}.{frac}", st.integers(0, 10**20), st.text("0123456789", max_size=25))
       | st.text("0123456789.eE+-_ naifINFty\x00", max_size=12))
def test_texts_parse_to_exactly_the_float_python_gives(text):
    same_as_float(text)


@pytest.mark.parametrize("text", [
    "0", "0.0", "0.00000000", "-0", "61837.63000000", "0.00012300", "9007199254740993", "9007199254740992.5",
    "123456789012345678", "1234567890123456789", "12345678901234567890", "0.1234567890123456789012",
    "1" + "0" * 22, ".5", "5.", ".", "", " 1.5", "1.5 ", "1_000.5", "1e-5", "+1", "inf", "-inf", "nan", "NaN",
    "1..2", "1.2.3", "١٢٣", "\ud800",
])
def test_edge_texts_parse_as_float_does(text):
    same_as_float(text)


def test_non_text_levels_go_through_float():
    book = compiled()
    book.load_snapshot(1, [(100, 1.5), [b"99.5", "2"]], [["101", 3]])
    assert list(book.bids()) == [(100.0, 1.5), (99.5, 2.0)] and book.touch() == (100.0, 101.0)


# ---- random books: compiled == reference ----------------------------------------------------

SPELLINGS = ("{:.1f}", "{:.2f}", "{:.8f}", "{}")


def price_text(tick, spelling):
    return spelling.format(tick / 10) if spelling != "{}" else repr(tick / 10)


prices = st.builds(price_text, st.integers(1, 80), st.sampled_from(SPELLINGS))
quantities = st.one_of(
    st.sampled_from(["0", "0.000", "0.00000000", "0.0"]),
    st.decimals(min_value="0.001", max_value="500", places=3).map(str),
    st.sampled_from(["1e-3", " 2 ", "7", "1_5"]),
)
good_levels = st.lists(st.tuples(prices, quantities).map(list), max_size=25)
bad_level = st.sampled_from([["abc", "1"], ["1.0", "x"], ["-1.0", "2"], ["1.0", "-2"], ["nan", "1"], ["1.0", "nan"],
                             ["inf", "1"], ["1.0", "inf"], ["1.0"], ["1.0", "2", "3"], [None, "1"], 5,
                             ["nan", "0"], ["-3", "0"], ["inf", "0.000"]])


@st.composite
def level_lists(draw):
    levels = draw(good_levels)
    if levels and draw(st.integers(0, 9)) == 0:
        levels.insert(draw(st.integers(0, len(levels))), draw(bad_level))
    return levels


@st.composite
def snapshots(draw):
    bids = draw(good_levels)
    asks = draw(good_levels)
    if draw(st.booleans()):  # as the venue sends them: best first, no repeats
        bids = sorted({float(p): [p, q] for p, q in bids}.values(), key=lambda level: -float(level[0]))
        asks = sorted({float(p): [p, q] for p, q in asks}.values(), key=lambda level: float(level[0]))
    if draw(st.integers(0, 9)) == 0:
        bids = bids + [draw(bad_level)]
    limit = draw(st.sampled_from([None, None, len(bids), len(asks), 3, 1000]))
    return bids, asks, limit


def outcome(call):
    try:
        return "ok", call()
    except ValueError:
        return "ValueError", None
    except TypeError:
        return "TypeError", None


def assert_same_book(ours, reference):
    assert ours.update_id == reference.update_id
    assert ours.touch() == reference.touch()
    assert (ours.best_bid, ours.best_ask) == (reference.best_bid, reference.best_ask)
    assert ours.crossed() == reference.crossed()
    assert len(ours) == len(reference)
    assert ours.bid_qty == reference.bid_qty and ours.ask_qty == reference.ask_qty
    assert list(ours.bids()) == list(reference.bids())
    assert list(ours.asks()) == list(reference.asks())
    for n in (0, 1, 3, 1000):
        assert ours.top(n) == reference.top(n)
    assert (ours.known_bid_edge, ours.known_ask_edge) == (reference.known_bid_edge, reference.known_ask_edge)


def assert_band_sums(ours, reference, floor, ceiling):
    """The compiled sums are metrics.depth_within_band's, bit for bit; the Python book's are kept
    incrementally, equal to rounding."""
    expected = metrics.depth_within_band(ours.bids(), ours.asks(), floor, ceiling)
    got = ours.band_notional(floor * (1 - SLACK), ceiling * (1 + SLACK))
    assert got == expected
    assert reference.band_notional(floor * (1 - SLACK), ceiling * (1 + SLACK)) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_snapshots_and_diffs_leave_both_books_equal(data):
    ours, reference = compiled(), PyOrderBook()
    update_id = 1
    for _ in range(data.draw(st.integers(1, 25))):
        action = data.draw(st.sampled_from(["diff"] * 8 + ["snapshot", "clear"]))
        if action == "snapshot":
            bids, asks, limit = data.draw(snapshots())
            results = [outcome(lambda book=book: book.load_snapshot(update_id, bids, asks, limit))
                       for book in (ours, reference)]
        elif action == "clear":
            results = [outcome(book.clear) for book in (ours, reference)]
        else:
            bids, asks = data.draw(level_lists()), data.draw(level_lists())
            results = [outcome(lambda book=book: book.apply(bids, asks, update_id)) for book in (ours, reference)]
        # After a bad level, the levels before it stay applied and the update id does not move: in both.
        assert results[0] == results[1]
        assert_same_book(ours, reference)
        update_id += 1
        levels = [price for price, _ in ours.bids()] + [price for price, _ in ours.asks()]
        for floor, ceiling in ((0.1, 8.0), (data.draw(st.floats(0.05, 9.0)), data.draw(st.floats(0.05, 9.0)))):
            assert_band_sums(ours, reference, floor, ceiling)
        if levels:  # edges exactly on a level
            assert_band_sums(ours, reference, data.draw(st.sampled_from(levels)), data.draw(st.sampled_from(levels)))


@pytest.mark.parametrize("count", sorted({n + d for n in SNAPSHOT_LIMITS for d in (-1, 0, 1)}))
def test_a_snapshot_of_a_request_limit_size_is_taken_as_cut_in_both(count):
    bids = [[f"{10000 - i}", "1"] for i in range(count)]
    asks = [[f"{10001 + i}", "1"] for i in range(count)]
    ours, reference = compiled(), PyOrderBook()
    for book in (ours, reference):
        book.load_snapshot(7, bids, asks)
    assert (ours.known_bid_edge, ours.known_ask_edge) == (reference.known_bid_edge, reference.known_ask_edge)
    assert (ours.known_bid_edge is not None) == (count in SNAPSHOT_LIMITS)


def test_a_walk_stops_early_if_the_book_shrinks_under_it():
    book = compiled()
    book.load_snapshot(1, [["3", "1"], ["2", "1"], ["1", "1"]], [])
    walk = book.bids()
    assert next(walk) == (3.0, 1.0)
    book.clear()
    assert list(walk) == []


# ---- real captures: compiled == reference at every event, sums == metrics -------------------

def replay_states(files, book_class, monkeypatch):
    """(update id, touch, size, top 5) after every applied diff; the whole book every 97th."""
    states = []
    events = iter(range(10**9))

    def on_event(market):
        book = market.sync.book
        state = (book.update_id, book.touch(), len(book), book.top(5))
        if next(events) % 97 == 0:
            state += (list(book.bids()), list(book.asks()), book.known_bid_edge, book.known_ask_edge)
            if book_class is not PyOrderBook:
                floor, ceiling = metrics.band_edges(*book.touch())
                expected = metrics.depth_within_band(book.bids(), book.asks(), floor, ceiling)
                assert book.band_notional(floor * (1 - SLACK), ceiling * (1 + SLACK)) == expected
        states.append(state)

    monkeypatch.setattr(collectors.sync, "OrderBook", book_class)
    replay = Replay(on_event=on_event)
    for name in files:
        replay.feed_all(read_binance_capture(CAPTURES / name))
    return states


@pytest.mark.parametrize("files", [
    ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"],
    ["usdm_btcusdt_20240808.gz"],
    ["usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz"],
    ["cm_btcusd_perp_20240808.gz"],
])
def test_every_event_of_a_real_capture_gives_the_same_book(files, monkeypatch):
    from collectors._book import OrderBook

    ours = replay_states(files, OrderBook, monkeypatch)
    reference = replay_states(files, PyOrderBook, monkeypatch)
    assert len(ours) == len(reference) > 3000
    assert ours == reference
