"""Properties of compliance.metrics that must hold on any valid book (hypothesis)."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.metrics import band_coverage, band_edges, depth_within_band, slippage_pct, spread_pct

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TICKS = st.sampled_from([0.00001, 0.01, 0.1, 0.5, 10.0])
QTY = st.floats(min_value=0.0001, max_value=1000.0, allow_nan=False, allow_infinity=False)


@st.composite
def books(draw):
    """An uncrossed book on a tick grid: (bids descending, asks ascending)."""
    tick = draw(TICKS)
    bid_ticks = draw(st.integers(min_value=100, max_value=10_000_000))
    gap = draw(st.integers(min_value=1, max_value=50))
    bid_offsets = sorted(draw(st.sets(st.integers(min_value=0, max_value=min(bid_ticks - 1, 2000)), min_size=1, max_size=40)))
    ask_offsets = sorted(draw(st.sets(st.integers(min_value=0, max_value=2000), min_size=1, max_size=40)))
    # The touch is always present: offsets are re-based so the first level sits at offset 0.
    bids = [(round((bid_ticks - (o - bid_offsets[0])) * tick, 10), draw(QTY)) for o in bid_offsets]
    asks = [(round((bid_ticks + gap + (o - ask_offsets[0])) * tick, 10), draw(QTY)) for o in ask_offsets]
    return bids, asks


@QUICK
@given(books(), st.sampled_from(["ask", "mid"]))
def test_spread_is_positive_on_an_uncrossed_book(book, denominator):
    bids, asks = book
    assert spread_pct(bids[0][0], asks[0][0], denominator) > 0


@QUICK
@given(books())
def test_spread_over_mid_is_at_least_spread_over_ask(book):
    bids, asks = book
    assert spread_pct(bids[0][0], asks[0][0], "mid") >= spread_pct(bids[0][0], asks[0][0], "ask")


@QUICK
@given(
    books(),
    st.floats(min_value=0.01, max_value=20.0),
    st.floats(min_value=0.0, max_value=20.0),
    st.sampled_from(["mid", "touch"]),
)
def test_depth_is_monotone_in_band_width(book, narrow, extra, reference):
    bids, asks = book
    narrow_edges = band_edges(bids[0][0], asks[0][0], narrow, reference)
    wide_edges = band_edges(bids[0][0], asks[0][0], narrow + extra, reference)
    narrow_bid, narrow_ask = depth_within_band(bids, asks, *narrow_edges)
    wide_bid, wide_ask = depth_within_band(bids, asks, *wide_edges)
    assert narrow_bid <= wide_bid
    assert narrow_ask <= wide_ask


@QUICK
@given(books(), st.floats(min_value=0.01, max_value=20.0), st.integers(min_value=0, max_value=5))
def test_depth_on_a_slice_past_the_edge_equals_the_full_book(book, band, extra_levels):
    bids, asks = book
    floor, ceiling = band_edges(bids[0][0], asks[0][0], band)
    in_bids = sum(1 for price, _ in bids if price >= floor)
    in_asks = sum(1 for price, _ in asks if price <= ceiling)
    sliced = depth_within_band(bids[: in_bids + extra_levels], asks[: in_asks + extra_levels], floor, ceiling)
    assert sliced == depth_within_band(bids, asks, floor, ceiling)


@QUICK
@given(books(), st.floats(min_value=0.01, max_value=20.0), st.integers(min_value=1, max_value=40))
def test_a_complete_band_coverage_means_the_truncated_depth_is_exact(book, band, kept):
    """A book known only down to its kth level: exact when coverage says so, else a lower bound."""
    bids, asks = book
    floor, ceiling = band_edges(bids[0][0], asks[0][0], band)
    known_bids, known_asks = bids[:kept], asks[:kept]
    bid_complete, ask_complete = band_coverage(
        floor,
        ceiling,
        None if len(known_bids) == len(bids) else known_bids[-1][0],
        None if len(known_asks) == len(asks) else known_asks[-1][0],
    )
    known_bid_usd, known_ask_usd = depth_within_band(known_bids, known_asks, floor, ceiling)
    full_bid_usd, full_ask_usd = depth_within_band(bids, asks, floor, ceiling)
    assert known_bid_usd == full_bid_usd if bid_complete else known_bid_usd <= full_bid_usd
    assert known_ask_usd == full_ask_usd if ask_complete else known_ask_usd <= full_ask_usd


@QUICK
@given(
    books(),
    st.floats(min_value=1.0, max_value=1e7),
    st.floats(min_value=1.0, max_value=1e7),
    st.booleans(),
)
def test_slippage_is_monotone_in_order_size(book, size_a, size_b, buy):
    bids, asks = book
    side = asks if buy else bids
    small, large = sorted((size_a, size_b))
    slip_small = slippage_pct(side, small)
    slip_large = slippage_pct(side, large)
    if slip_small is None:
        assert slip_large is None  # a book that cannot fill an order cannot fill a larger one
    elif slip_large is not None:
        assert slip_small >= 0
        assert slip_small <= slip_large + 1e-9 * max(1.0, slip_large)


@QUICK
@given(books(), st.booleans())
def test_slippage_of_exactly_the_side_total_fills(book, buy):
    bids, asks = book
    side = asks if buy else bids
    total = sum(price * qty for price, qty in side)
    assert slippage_pct(side, total) is not None
    assert slippage_pct(side, total * 1.001) is None


@QUICK
@given(books())
def test_generated_books_are_valid(book):
    """Guard the generator: crossed or unsorted books would make the properties above vacuous."""
    bids, asks = book
    assert all(a[0] > b[0] for a, b in zip(bids, bids[1:]))
    assert all(a[0] < b[0] for a, b in zip(asks, asks[1:]))
    assert 0 < bids[0][0] < asks[0][0]
