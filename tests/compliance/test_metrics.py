"""Hand-computed cases for compliance.metrics (DESIGN.md 'Book metrics')."""
import math
from decimal import Decimal

import pytest

from compliance.metrics import (
    InvalidBook,
    band_coverage,
    band_edges,
    depth_within_band,
    mid_price,
    own_at_touch,
    own_depth_share_pct,
    own_quote_deviation_pct,
    presence_pct,
    quote_usd_rate,
    slippage_pct,
    spread_pct,
)


def test_mid_price():
    assert mid_price(99.0, 101.0) == 100.0


def test_spread_pct_over_ask_and_over_mid():
    # 99 / 101: (101 − 99) / 101 × 100 = 1.980198…; over the mid 100: 2 / 100 × 100 = 2.
    assert spread_pct(99.0, 101.0) == pytest.approx(200 / 101, rel=1e-15)
    assert spread_pct(99.0, 101.0, denominator="ask") == pytest.approx(1.98019801980198, rel=1e-12)
    assert spread_pct(99.0, 101.0, denominator="mid") == pytest.approx(2.0, rel=1e-15)


def test_spread_pct_over_ask_never_exceeds_over_mid():
    # The ask is the larger denominator, which is why the article's form reads conservatively.
    assert spread_pct(61837.62, 61837.63, "ask") < spread_pct(61837.62, 61837.63, "mid")


@pytest.mark.parametrize(
    "bid, ask, message",
    [
        (101.0, 100.0, "crossed"),
        (100.0, 100.0, "locked"),
        (None, 100.0, "bid side is empty"),
        (99.0, None, "ask side is empty"),
        (0.0, 100.0, "best_bid must be a positive"),
        (99.0, math.nan, "best_ask must be a positive"),
        (99.0, math.inf, "best_ask must be a positive"),
        ("99", 100.0, "best_bid must be a number"),
    ],
)
def test_invalid_book_is_not_a_spread(bid, ask, message):
    with pytest.raises(InvalidBook, match=message):
        spread_pct(bid, ask)
    with pytest.raises(InvalidBook, match=message):
        mid_price(bid, ask)


def test_invalid_book_is_a_value_error_and_unknown_denominator_is_named():
    assert issubclass(InvalidBook, ValueError)
    with pytest.raises(ValueError, match="denominator must be one of"):
        spread_pct(99.0, 101.0, denominator="bid")


def test_band_edges_mid_and_touch():
    floor, ceiling = band_edges(99.0, 101.0)
    assert floor == pytest.approx(98.0) and ceiling == pytest.approx(102.0)
    floor, ceiling = band_edges(99.0, 101.0, band_pct=1.0, reference="touch")
    assert floor == pytest.approx(98.01) and ceiling == pytest.approx(102.01)
    floor, ceiling = band_edges(99.0, 101.0, band_pct=0.05)  # 5 bps, Bybit's MM terms
    assert floor == pytest.approx(99.95) and ceiling == pytest.approx(100.05)
    # The obligation stores the band as a Decimal.
    assert band_edges(99.0, 101.0, band_pct=Decimal("2")) == band_edges(99.0, 101.0, band_pct=2.0)


@pytest.mark.parametrize("band, reference", [(0, "mid"), (-1, "mid"), (100, "mid"), (2, "bid")])
def test_band_edges_reject_bad_parameters(band, reference):
    with pytest.raises(ValueError):
        band_edges(99.0, 101.0, band_pct=band, reference=reference)


def test_level_exactly_at_the_mid_band_edges_is_inside():
    # mid 10.15: the bid floor is 10.15 × 0.98 = 9.947 exactly in decimal, but the float
    # product is 9.947000000000001, above a level the exchange sends as "9.947".
    floor, ceiling = band_edges(10.14, 10.16)
    assert floor > float("9.947")  # the rounding this test is about
    bid_usd, ask_usd = depth_within_band(
        [(10.14, 1.0), (9.947, 2.0), (9.946, 100.0)],
        [(10.16, 1.0), (10.353, 3.0), (10.354, 100.0)],
        floor,
        ceiling,
    )
    assert bid_usd == pytest.approx(10.14 + 2 * 9.947)
    assert ask_usd == pytest.approx(10.16 + 3 * 10.353)

    # mid 10.03: the ceiling 10.03 × 1.02 = 10.2306 computes as 10.230599999999999.
    floor, ceiling = band_edges(10.02, 10.04)
    assert ceiling < float("10.2306")
    _, ask_usd = depth_within_band([], [(10.04, 1.0), (10.2306, 1.0), (10.2307, 50.0)], floor, ceiling)
    assert ask_usd == pytest.approx(10.04 + 10.2306)


def test_depth_within_band_sums_notional_in_usd():
    bids = [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0), (97.0, 100.0)]
    asks = [(101.0, 1.0), (102.0, 0.5), (103.0, 100.0)]
    # 100 + 198 + 294 = 592 on the bid side; 101 + 51 = 152 on the ask side.
    assert depth_within_band(bids, asks, 98.0, 102.0) == pytest.approx((592.0, 152.0))
    # An ETHBTC-style quote at 60,000 USD per quote unit.
    assert depth_within_band(bids, asks, 98.0, 102.0, quote_usd=60000.0) == pytest.approx((592.0 * 60000, 152.0 * 60000))


def test_depth_within_band_stops_at_the_edge_and_accepts_generators():
    consumed = []

    def bids():
        for level in [(100.0, 1.0), (97.0, 1.0), (96.0, 1.0), (95.0, 1.0)]:
            consumed.append(level)
            yield level

    bid_usd, ask_usd = depth_within_band(bids(), iter([]), 98.0, 102.0)
    assert (bid_usd, ask_usd) == (100.0, 0.0)
    assert consumed == [(100.0, 1.0), (97.0, 1.0)]  # nothing read past the first level out of the band


def test_depth_within_band_rejects_unsorted_and_bad_levels():
    with pytest.raises(InvalidBook, match="Bids must be sorted"):
        depth_within_band([(99.0, 1.0), (100.0, 1.0)], [], 98.0, 102.0)
    with pytest.raises(InvalidBook, match="Asks must be sorted"):
        depth_within_band([], [(101.0, 1.0), (101.0, 1.0)], 98.0, 102.0)
    with pytest.raises(InvalidBook, match="quantity"):
        depth_within_band([(99.0, -1.0)], [], 98.0, 102.0)
    with pytest.raises(InvalidBook, match="price"):
        depth_within_band([], [(math.nan, 1.0)], 98.0, 102.0)
    with pytest.raises(ValueError, match="quote_usd"):
        depth_within_band([], [], 98.0, 102.0, quote_usd=0)


def test_band_coverage():
    # Band 98–102; the snapshot reached 97.5 on bids (past the floor) and 101.5 on asks (short of it).
    assert band_coverage(98.0, 102.0, 97.5, 101.5) == (True, False)
    assert band_coverage(98.0, 102.0, 98.5, 103.0) == (False, True)
    assert band_coverage(98.0, 102.0, None, None) == (True, True)
    # A known edge exactly at the band edge covers it, rounding included.
    floor, ceiling = band_edges(10.14, 10.16)
    assert band_coverage(floor, ceiling, 9.947, 10.353) == (True, True)


def test_slippage_multi_level_walk():
    asks = [(100.0, 10.0), (101.0, 10.0), (102.0, 100.0)]
    # $2,000 buy: 1,000 at 100 (10 units), 1,010 at 101 (10 units) would exceed, so
    # 1,000 at 101 = 9.900990… units. VWAP = 2000 / 19.900990… = 100.497512…
    vwap = 2000 / (10 + 1000 / 101)
    assert slippage_pct(asks, 2000.0) == pytest.approx((vwap - 100) / 100 * 100, rel=1e-12)
    assert slippage_pct(asks, 2000.0) == pytest.approx(0.4975124378109453, rel=1e-12)
    # Filled inside the first level: VWAP is the touch.
    assert slippage_pct(asks, 500.0) == 0.0


def test_slippage_sell_side_and_quote_conversion():
    bids = [(100.0, 1.0), (90.0, 10.0)]
    # $200 sell: 100 at 100 (1 unit) + 100 at 90 (1.111… units); VWAP = 200 / 2.111… = 94.7368…
    assert slippage_pct(bids, 200.0) == pytest.approx((100 - 200 / (1 + 100 / 90)) / 100 * 100, rel=1e-12)
    # Quote worth 2 USD: $400 is the same 200 quote units.
    assert slippage_pct(bids, 400.0, quote_usd=2.0) == pytest.approx(slippage_pct(bids, 200.0), rel=1e-12)


def test_slippage_cannot_fill_is_none():
    asks = [(100.0, 10.0), (101.0, 10.0)]  # 2,010 in total
    assert slippage_pct(asks, 10000.0) is None
    assert slippage_pct([], 10000.0) is None
    # Exactly the book's size fills.
    assert slippage_pct(asks, 2010.0) == pytest.approx((2010 / 20 - 100), rel=1e-12)


def test_slippage_rejects_unsorted_and_bad_size():
    with pytest.raises(InvalidBook, match="sorted best first"):
        slippage_pct([(100.0, 1.0), (101.0, 1.0), (100.5, 1.0)], 1000.0)
    with pytest.raises(ValueError, match="order_usd"):
        slippage_pct([(100.0, 1.0)], 0)


def test_quote_usd_rate():
    assert quote_usd_rate("stable") == 1.0
    assert quote_usd_rate("market", 61837.625) == 61837.625
    with pytest.raises(ValueError, match="needs the conversion market's mid"):
        quote_usd_rate("market", None)
    with pytest.raises(ValueError, match="conversion_mid must be a positive"):
        quote_usd_rate("market", -1.0)
    with pytest.raises(ValueError, match="must be one of"):
        quote_usd_rate("fiat", 1.0)


def test_own_quote_deviation_pct():
    # Own bid 99.95 against a best bid of 100: 0.05 %, the LP guide's limit.
    assert own_quote_deviation_pct(99.95, 100.0) == pytest.approx(0.05)
    assert own_quote_deviation_pct(100.0, 100.0) == 0.0
    with pytest.raises(ValueError):
        own_quote_deviation_pct(99.0, 0.0)


def test_own_depth_share_pct():
    assert own_depth_share_pct(5000.0, 50000.0) == pytest.approx(10.0)
    assert own_depth_share_pct(0.0, 0.0) is None
    with pytest.raises(ValueError, match="exceeds the band's total"):
        own_depth_share_pct(60000.0, 50000.0)
    with pytest.raises(ValueError, match="non-negative"):
        own_depth_share_pct(-1.0, 10.0)


def test_own_at_touch_and_presence():
    assert own_at_touch(100.0, 101.0, 100.0, 101.0) is True
    assert own_at_touch(99.9, 101.0, 100.0, 101.0) is False  # bid behind the touch
    assert own_at_touch(100.0, 101.1, 100.0, 101.0) is False  # ask behind the touch
    assert own_at_touch(100.0, None, 100.0, 101.0) is False  # one-sided
    assert own_at_touch(100.05, 101.0, 100.0, 101.0) is True  # book lagging the own order
    assert presence_pct([True, True, False, True]) == 75.0
    assert presence_pct([]) is None
    with pytest.raises(ValueError, match="booleans"):
        presence_pct([1, 0])


def test_slippage_fills_a_book_holding_exactly_the_order_after_many_levels():
    # Found by hypothesis: the running remainder's rounding error scales with the order,
    # so a tiny last level after a large one read as 'cannot fill'.
    bids = [(0.001, 1.0), (0.00099, 862.0), (0.00098, 55.0), (0.00097, 37.0), (0.00096, 15.0),
            (0.00095, 2.0), (0.00094, 43.0), (0.00093, 0.125)]
    total = sum(price * qty for price, qty in bids)
    assert slippage_pct(bids, total) is not None
    assert slippage_pct(bids, total * 1.000001) is None
