"""Book and own-quote metrics: pure functions over plain floats (DESIGN.md 'Book metrics').

The live collector, the roll-ups and the audit reports all call these, so a number is
computed one way everywhere. Conventions:

- prices and quantities are floats as the exchange sent them (parsed from its strings);
- a book side is an iterable of (price, qty) levels, best first: bids descending, asks
  ascending. Callers may pass any slice of a side that starts at the touch;
- percentages are returned in percent (0.1 means 0.1 %), money in USD.

Bad input raises ValueError (InvalidBook for a book that cannot be measured), never a
silently wrong number.
"""
import math
from collections.abc import Iterable
from decimal import Decimal

# A level priced exactly at a band edge is inside the band. The edge is a product such as
# mid × 0.98, which binary floats may land one ulp beside its decimal value (for example
# 0.3 × 0.98 = 0.29400000000000004), so edge comparisons allow this relative slack. It is
# far below any venue's tick (a 0.01 tick at 100,000 is 1e-7 relative), so it can never
# admit a level that is a real tick outside the band.
EDGE_TOLERANCE = 1e-12

SPREAD_DENOMINATORS = ("ask", "mid")
BAND_REFERENCES = ("mid", "touch")
QUOTE_CONVERSIONS = ("stable", "market")

Level = tuple[float, float]


class InvalidBook(ValueError):
    """The book cannot be measured: an empty side, a crossed or locked touch, a bad level.

    DESIGN.md: 'A crossed or empty side is not a spread: the sample is flagged invalid and
    the book resynced.' Callers catch this to flag the sample.
    """


def _check_positive(name: str, value: float) -> float:
    # Decimal is accepted for parameters read from an obligation (DecimalField), e.g. band_pct.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not (0 < value < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def _check_touch(best_bid: float | None, best_ask: float | None) -> None:
    if best_bid is None:
        raise InvalidBook("The bid side is empty: no spread or mid without a best bid.")
    if best_ask is None:
        raise InvalidBook("The ask side is empty: no spread or mid without a best ask.")
    try:
        _check_positive("best_bid", best_bid)
        _check_positive("best_ask", best_ask)
    except ValueError as exc:
        raise InvalidBook(str(exc)) from None
    if best_bid >= best_ask:
        # On an exchange a bid at or above the best ask would have traded, so a local book
        # showing it is out of sync: locked (equal) or crossed, it is not a spread.
        state = "locked" if best_bid == best_ask else "crossed"
        raise InvalidBook(f"The book is {state}: best bid {best_bid!r} >= best ask {best_ask!r}.")


def mid_price(best_bid: float, best_ask: float) -> float:
    """(best bid + best ask) / 2 of a valid (uncrossed, two-sided) book."""
    _check_touch(best_bid, best_ask)
    return (best_bid + best_ask) / 2


def spread_pct(best_bid: float, best_ask: float, denominator: str = "ask") -> float:
    """(best ask − best bid) / denominator × 100, the denominator being the best ask or the mid.

    'ask' is the listing-compliance article's conservative form and the default; 'mid' is
    Gate's, Amberdata's and most MMAs' (DESIGN.md 'Spread %'). Reports state which one.
    """
    _check_touch(best_bid, best_ask)
    if denominator == "ask":
        base = best_ask
    elif denominator == "mid":
        base = (best_bid + best_ask) / 2
    else:
        raise ValueError(f"Spread denominator must be one of {SPREAD_DENOMINATORS}, got {denominator!r}.")
    return (best_ask - best_bid) / base * 100


def band_edges(best_bid: float, best_ask: float, band_pct: float = 2.0, reference: str = "mid") -> tuple[float, float]:
    """(bid floor, ask ceiling) of the depth band.

    reference='mid': mid × (1 − band/100) and mid × (1 + band/100) (DESIGN.md default);
    reference='touch': best bid × (1 − band/100) and best ask × (1 + band/100), as Kaiko
    measures it. Levels exactly at an edge are inside (see EDGE_TOLERANCE).
    """
    _check_touch(best_bid, best_ask)
    band_pct = _check_positive("band_pct", band_pct)
    if band_pct >= 100:
        raise ValueError(f"band_pct must be below 100 %, got {band_pct!r}.")
    fraction = band_pct / 100
    if reference == "mid":
        mid = (best_bid + best_ask) / 2
        return mid * (1 - fraction), mid * (1 + fraction)
    if reference == "touch":
        return best_bid * (1 - fraction), best_ask * (1 + fraction)
    raise ValueError(f"Band reference must be one of {BAND_REFERENCES}, got {reference!r}.")


def _side_notional(levels: Iterable[Level], edge: float, is_bid: bool, side: str) -> float:
    """Sum of price × qty of the levels up to the edge; stops at the first level beyond it."""
    total = 0.0
    previous = None
    for price, qty in levels:
        if not (0 < price < math.inf):
            raise InvalidBook(f"{side} level price must be positive and finite, got {price!r}.")
        if is_bid:
            if price < edge:
                break
            if previous is not None and price >= previous:
                raise InvalidBook(f"Bids must be sorted best first (descending): {price!r} after {previous!r}.")
        else:
            if price > edge:
                break
            if previous is not None and price <= previous:
                raise InvalidBook(f"Asks must be sorted best first (ascending): {price!r} after {previous!r}.")
        if not (0 <= qty < math.inf):
            raise InvalidBook(f"{side} level quantity must be non-negative and finite, got {qty!r} at {price!r}.")
        total += price * qty
        previous = price
    return total


def depth_within_band(
    bids: Iterable[Level],
    asks: Iterable[Level],
    bid_floor: float,
    ask_ceiling: float,
    quote_usd: float = 1.0,
) -> tuple[float, float]:
    """USD value resting in the band: (bids priced ≥ floor, asks priced ≤ ceiling).

    Each side must be sorted best first; reading stops at the first level past the edge,
    so a caller can pass a whole side or any slice of it that starts at the touch. A level
    exactly at the edge counts. quote_usd converts quote currency to USD (quote_usd_rate).
    """
    bid_floor = _check_positive("bid_floor", bid_floor)
    ask_ceiling = _check_positive("ask_ceiling", ask_ceiling)
    quote_usd = _check_positive("quote_usd", quote_usd)
    bid_quote = _side_notional(bids, bid_floor * (1 - EDGE_TOLERANCE), True, "Bid")
    ask_quote = _side_notional(asks, ask_ceiling * (1 + EDGE_TOLERANCE), False, "Ask")
    return bid_quote * quote_usd, ask_quote * quote_usd


def band_coverage(
    bid_floor: float,
    ask_ceiling: float,
    known_bid_edge: float | None,
    known_ask_edge: float | None,
) -> tuple[bool, bool]:
    """(bid side complete, ask side complete): does the local book reach each band edge?

    known_bid_edge / known_ask_edge is the deepest price down/up to which the local book is
    known to be complete (the REST snapshot's last level; None when the whole side is
    known). Beyond it, diffs only add levels that changed, so a band reaching past it makes
    that side's depth a lower bound (DESIGN.md 'Band coverage'; data/README.md on BTCUSDT).
    """
    bid_floor = _check_positive("bid_floor", bid_floor)
    ask_ceiling = _check_positive("ask_ceiling", ask_ceiling)
    bid_complete = True
    ask_complete = True
    if known_bid_edge is not None:
        known_bid_edge = _check_positive("known_bid_edge", known_bid_edge)
        bid_complete = bid_floor >= known_bid_edge * (1 - EDGE_TOLERANCE)
    if known_ask_edge is not None:
        known_ask_edge = _check_positive("known_ask_edge", known_ask_edge)
        ask_complete = ask_ceiling <= known_ask_edge * (1 + EDGE_TOLERANCE)
    return bid_complete, ask_complete


def slippage_pct(levels: Iterable[Level], order_usd: float, quote_usd: float = 1.0) -> float | None:
    """Slippage of a market order of order_usd against one side, or None if it cannot fill.

    Walks the side from the touch (asks for a buy, bids for a sell) until order_usd is
    filled; slippage % = |VWAP − touch| / touch × 100 (DESIGN.md 'Slippage of a $10,000
    market order'). None means the side's depth is less than the order: a finding in itself.
    """
    order_usd = _check_positive("order_usd", order_usd)
    quote_usd = _check_positive("quote_usd", quote_usd)
    order_quote = order_usd / quote_usd
    remaining_quote = order_quote
    spent_quote = 0.0
    bought_base = 0.0
    touch = previous = direction = None
    for price, qty in levels:
        if not (0 < price < math.inf):
            raise InvalidBook(f"Level price must be positive and finite, got {price!r}.")
        if not (0 <= qty < math.inf):
            raise InvalidBook(f"Level quantity must be non-negative and finite, got {qty!r} at {price!r}.")
        if qty == 0:
            continue
        if touch is None:
            touch = price
        else:
            # Either side may be walked, so the direction is learnt from the first step.
            step = (price > previous) - (price < previous)
            if step == 0 or (direction is not None and step != direction):
                raise InvalidBook(f"Levels must be sorted best first: {price!r} after {previous!r}.")
            direction = step
        previous = price
        level_quote = price * qty
        # The slack keeps a book holding exactly the order's size from reading as 'cannot fill'
        # through rounding of the running sum, whose error scales with the order, not with
        # what remains of it (a tiny last level after many large ones).
        if level_quote >= remaining_quote - order_quote * EDGE_TOLERANCE:
            take_quote = min(level_quote, remaining_quote)
            spent_quote += take_quote
            bought_base += take_quote / price
            vwap = spent_quote / bought_base
            return abs(vwap - touch) / touch * 100
        spent_quote += level_quote
        bought_base += qty
        remaining_quote -= level_quote
    return None


def quote_usd_rate(quote_conversion: str, conversion_mid: float | None = None) -> float:
    """USD per unit of quote currency: 1 for a stablecoin quote, else the conversion market's mid.

    DESIGN.md 'Depth within ±2 %': stablecoin quotes at 1; other quotes via a configured
    conversion market (e.g. ETHBTC's BTC via BTCUSDT's mid).
    """
    if quote_conversion == "stable":
        return 1.0
    if quote_conversion == "market":
        if conversion_mid is None:
            raise ValueError("A market-converted quote needs the conversion market's mid; none is known.")
        return _check_positive("conversion_mid", conversion_mid)
    raise ValueError(f"Quote conversion must be one of {QUOTE_CONVERSIONS}, got {quote_conversion!r}.")


def own_quote_deviation_pct(own_best: float, touch: float) -> float:
    """|own best − touch| / touch × 100, per side (the LP guide's 'price deviation ≤ 0.05 %',
    reference/binance-liquidity-provider-guide.txt, first paragraph and step 3)."""
    own_best = _check_positive("own_best", own_best)
    touch = _check_positive("touch", touch)
    return abs(own_best - touch) / touch * 100


def own_depth_share_pct(own_band_usd: float, total_band_usd: float) -> float | None:
    """Own share of the depth in the band, %, or None when the band is empty (no share to have).

    The LP guide's 'top 10 % of depth' obligation (reference/binance-liquidity-provider-guide.txt,
    strategy step 1). The own orders rest in the same book, so own > total means the two
    figures come from different moments or bands: an error, not a share above 100 %.
    """
    for name, value in (("own_band_usd", own_band_usd), ("total_band_usd", total_band_usd)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
            raise ValueError(f"{name} must be a non-negative finite number, got {value!r}.")
    if total_band_usd == 0:
        if own_band_usd > 0:
            raise ValueError(f"Own depth {own_band_usd!r} USD in an empty band: the inputs disagree.")
        return None
    if own_band_usd > total_band_usd * (1 + EDGE_TOLERANCE):
        raise ValueError(
            f"Own depth {own_band_usd!r} USD exceeds the band's total {total_band_usd!r} USD: the inputs disagree."
        )
    return min(own_band_usd / total_band_usd, 1.0) * 100


def own_at_touch(
    own_best_bid: float | None,
    own_best_ask: float | None,
    best_bid: float,
    best_ask: float,
) -> bool:
    """Are the desk's own orders at the touch on both sides (two-sided presence at the best)?

    Own orders rest in the book, so the own best bid can only be at the best bid or below
    it; an own price at or better than the touch counts as at it, which also tolerates a
    book that lags the order stream by a message. A missing own side (None) is not present.
    """
    _check_touch(best_bid, best_ask)
    if own_best_bid is None or own_best_ask is None:
        return False
    own_best_bid = _check_positive("own_best_bid", own_best_bid)
    own_best_ask = _check_positive("own_best_ask", own_best_ask)
    return (
        own_best_bid >= best_bid * (1 - EDGE_TOLERANCE)
        and own_best_ask <= best_ask * (1 + EDGE_TOLERANCE)
    )


def presence_pct(flags: Iterable[bool]) -> float | None:
    """Share of samples flagged present, %; None when there are no samples (unknown, not 0 %)."""
    present = 0
    count = 0
    for flag in flags:
        if not isinstance(flag, bool):
            raise ValueError(f"Presence flags must be booleans, got {flag!r}.")
        present += flag
        count += 1
    if count == 0:
        return None
    return present / count * 100
