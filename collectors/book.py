"""The local order book: price levels of one market, kept as the venue's diffs dictate.

``OrderBook`` is the compiled book (collectors/_book.c, built by scripts/build_ext.py, which
`make venv` runs): levels in sorted arrays, the best at the end, texts parsed straight from the
decoded JSON. ``PyOrderBook`` below is the reference implementation in pure Python: it states
what the book must do, and tests/collectors/test_book_compiled.py holds the compiled book equal
to it (and its band sums bit for bit equal to compliance.metrics). The compiled book shows the
same public interface (load_snapshot, apply, touch, best_bid/best_ask, crossed, band_notional,
bids()/asks()/top(n) best first, known edges, bid_qty/ask_qty, len); the per-side objects
(``book.bid``, ``book.ask``) are the Python book's own.

The Python book's layout, chosen so that the work per changed level is a few dict operations and
one multiply-add, and a sample reads only what it needs:

- each side is a dict price -> quantity. A level is handled by its key, sign × price (-price for
  bids, price for asks), so that "better" means "smaller key" on both sides and one loop serves
  both;
- the best key is tracked as levels arrive; when the best level goes away the next comes from a
  heap of the side's keys (pushed when a level appears, dropped lazily when found removed at the
  top), not from a pass over the side. Walks from the touch (slippage, top-N evidence) read the
  heap best first without consuming it;
- depth within a band is kept as it changes: a threshold key sits a little inside the band's edge,
  the sum of price × quantity of the levels at or better than it is updated per level, and the
  levels beyond it are kept in a short sorted list of keys; the band's depth is that sum plus the
  listed levels up to the edge. The first band read places the threshold (one pass over the
  side); it moves only when the edge leaves a margin around it (the mid moved), and the sum is
  re-added from the levels every RESUM_EVERY reads to bound float drift.

Prices and quantities arrive as strings; float() of the same string is always the same float,
so a level is removed by exact key match.

The book knows what it does not know: a REST snapshot holds at most N levels per side, and the
levels between the snapshot's deepest price and anything deeper stay unknown unless a diff
touches them (reference/binance-api spot web_socket_streams, "How to manage a local order book
correctly", the NOTE on the snapshot limit). ``known_bid_edge`` / ``known_ask_edge`` are those
deepest snapshot prices (None when the snapshot held the whole side).
"""
import logging
from bisect import bisect_left, bisect_right, insort
from heapq import heapify, heappop, heappush
from itertools import compress, islice
from operator import itemgetter, mul, not_

INFINITY = float("inf")
THRESHOLD_MARGIN = 0.001  # the band sum's threshold sits this far (relative) inside the band's edge
RESUM_EVERY = 64  # band reads between exact re-sums of the threshold sum, which bound its float drift
# How venues write a zero quantity ("0", "0.000", "0.00000000"...); other spellings go through float().
ZERO_TEXTS = frozenset(["0"] + ["0." + "0" * decimals for decimals in range(1, 19)])

# Valid `limit` values of GET /api/v3/depth and /fapi/v1/depth (market_data_endpoints, Order Book).
# A snapshot of exactly one of these sizes is taken as truncated when the request limit is unknown.
SNAPSHOT_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000, 5000})

_price_of = itemgetter(0)
_qty_of = itemgetter(1)


class BookSide:
    __slots__ = ("sign", "qty_of", "best_key", "heap", "threshold", "inner_sum", "outer", "reads")

    def __init__(self, is_bid):
        self.sign = -1.0 if is_bid else 1.0  # key = sign × price: the better level has the smaller key
        self.qty_of = {}  # price -> quantity
        self.best_key = INFINITY  # INFINITY: empty side
        self.heap = []  # keys of the levels, best on top; may hold keys of removed levels
        self.threshold = INFINITY  # threshold key; INFINITY: no band sum placed yet (all levels count)
        self.inner_sum = 0.0  # Σ price × qty of the levels whose key <= threshold
        self.outer = []  # keys of the levels beyond the threshold, ascending
        self.reads = 0

    @property
    def best(self):
        best_key = self.best_key
        return None if best_key == INFINITY else self.sign * best_key

    def load(self, levels):
        prices, qtys = _parse(levels)
        qty_of = self.qty_of = dict(compress(zip(prices, qtys), qtys))
        sign = self.sign
        self.heap = heap = [sign * price for price in qty_of]
        heapify(heap)
        self.best_key = heap[0] if heap else INFINITY
        self.threshold = INFINITY
        self.inner_sum = sum(price * qty for price, qty in qty_of.items())
        self.outer = []

    def apply(self, levels, float=float, infinity=INFINITY, heappush=heappush, zero_texts=ZERO_TEXTS):
        # Globals as locals: this loop runs once per changed level, the hot path.
        qty_of = self.qty_of
        get = qty_of.get
        pop = qty_of.pop
        sign = self.sign
        best_key = self.best_key
        heap = self.heap
        threshold = self.threshold
        inner_sum = self.inner_sum
        outer = self.outer
        best_removed = False
        try:
            for price_text, qty_text in levels:
                price = float(price_text)
                # Half the levels of a diff are removals: their quantity text is told by a set lookup.
                qty = 0.0 if qty_text in zero_texts else float(qty_text)
                if qty == 0.0:
                    # Removing a level the book does not hold is normal (futures "How to manage a
                    # local order book correctly", step 9).
                    old = pop(price, None)
                    if old is not None:
                        key = sign * price
                        if key <= threshold:
                            inner_sum -= price * old
                        else:
                            del outer[bisect_left(outer, key)]
                        if key == best_key:
                            best_removed = True
                elif 0.0 < qty < infinity and 0.0 < price < infinity:
                    old = get(price, 0.0)  # held quantities are positive: 0.0 means a new level
                    qty_of[price] = qty
                    key = sign * price
                    if key <= threshold:
                        inner_sum += price * (qty - old)
                    if not old:
                        heappush(heap, key)
                        if key < best_key:
                            best_key = key
                        if key > threshold:
                            insort(outer, key)
                else:
                    raise ValueError(f"level [{price_text!r}, {qty_text!r}] is not a positive finite price and "
                                     "a non-negative finite quantity")
        finally:
            # Also after a bad level: the levels before it are applied, and the best and the sum follow them.
            self.inner_sum = inner_sum
            if best_removed and sign * best_key not in qty_of:
                # The next best: the heap's top, once the keys of removed levels above it are dropped.
                while heap and sign * heap[0] not in qty_of:
                    heappop(heap)
                best_key = heap[0] if heap else INFINITY
            self.best_key = best_key
            if len(heap) > 2 * len(qty_of) + 1024:
                self.heap = heap = [sign * price for price in qty_of]
                heapify(heap)

    def band_notional(self, edge):
        """Σ price × qty of the levels priced >= edge (bids) or <= edge (asks)."""
        sign = self.sign
        edge_key = sign * edge
        threshold = self.threshold
        self.reads += 1
        if not (threshold <= edge_key <= threshold + 2 * THRESHOLD_MARGIN * abs(edge_key)) or \
                self.reads % RESUM_EVERY == 0:
            self._place_threshold(edge_key - THRESHOLD_MARGIN * abs(edge_key))
        outer = self.outer
        prices = list(map(sign.__mul__, outer[:bisect_right(outer, edge_key)]))
        return self.inner_sum + sum(map(mul, prices, map(self.qty_of.__getitem__, prices)))

    def _place_threshold(self, threshold):
        """Place the threshold and sum the levels at or better than it (C-level passes)."""
        qty_of = self.qty_of
        keys = list(map(self.sign.__mul__, qty_of))
        inside = list(map(threshold.__ge__, keys))
        self.threshold = threshold
        self.inner_sum = sum(map(mul, compress(qty_of, inside), compress(qty_of.values(), inside)))
        self.outer = sorted(compress(keys, map(not_, inside)))

    def levels(self):
        """(price, qty) best first, lazily: a best-first walk of the heap that leaves it intact."""
        heap = self.heap
        size = len(heap)
        if not size:
            return
        qty_of = self.qty_of
        sign = self.sign
        last = None
        frontier = [(heap[0], 0)]
        while frontier:
            key, index = heappop(frontier)
            child = 2 * index + 1
            if child < size:
                heappush(frontier, (heap[child], child))
                if child + 1 < size:
                    heappush(frontier, (heap[child + 1], child + 1))
            price = sign * key
            qty = qty_of.get(price)
            # Keys of removed levels are skipped; a level removed and added again has two keys.
            if qty is not None and key != last:
                last = key
                yield price, qty


def _parse(levels):
    """Prices and quantities of [price, qty] string pairs, all checked before any is applied."""
    try:
        prices = list(map(float, map(_price_of, levels)))
        qtys = list(map(float, map(_qty_of, levels)))
    except (IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"levels are not [price, quantity] pairs ({exc}): {str(levels)[:200]}") from None
    # NaN fails every comparison and makes the sum NaN, so these four cover NaN, ±inf and signs.
    if prices and not (min(prices) > 0.0 and sum(prices) < INFINITY and min(qtys) >= 0.0 and sum(qtys) < INFINITY):
        raise ValueError(f"levels with a price that is not positive and finite or a quantity that is negative "
                         f"or not finite: {str(levels)[:200]}")
    return prices, qtys


class PyOrderBook:
    __slots__ = ("update_id", "bid", "ask", "known_bid_edge", "known_ask_edge")

    def __init__(self):
        self.clear()

    def clear(self):
        self.update_id = 0
        self.bid = BookSide(True)
        self.ask = BookSide(False)
        self.known_bid_edge = None
        self.known_ask_edge = None

    def load_snapshot(self, update_id, bids, asks, limit=None):
        """Replace the book by a REST snapshot (levels as [price, qty] strings, best first).

        ``limit`` is the number of levels requested per side; a side that came back full may have
        been cut, so its deepest price becomes the known edge.
        """
        self.clear()
        self.bid.load(bids)
        self.ask.load(asks)
        self.update_id = update_id
        if _truncated(len(bids), limit) and self.bid.qty_of:
            self.known_bid_edge = min(self.bid.qty_of)
        if _truncated(len(asks), limit) and self.ask.qty_of:
            self.known_ask_edge = max(self.ask.qty_of)

    def apply(self, bids, asks, update_id):
        """Set absolute quantities ([price, qty] strings; qty 0 removes the level).

        ValueError on a level that is not a price and a quantity; the bid side may then be
        applied and the ask side not, so the book must be rebuilt (collectors.sync does).
        """
        if bids:
            self.bid.apply(bids)
        if asks:
            self.ask.apply(asks)
        self.update_id = update_id

    @property
    def bid_qty(self):
        return self.bid.qty_of

    @property
    def ask_qty(self):
        return self.ask.qty_of

    @property
    def best_bid(self):
        return self.bid.best

    @property
    def best_ask(self):
        return self.ask.best

    def touch(self):
        """(best bid, best ask), either None when its side is empty."""
        return self.bid.best, self.ask.best

    def crossed(self):
        # best bid >= best ask, in keys; an empty side's INFINITY key never crosses.
        return -self.bid.best_key >= self.ask.best_key

    def band_notional(self, bid_floor, ask_ceiling):
        """(Σ price × qty of bids priced >= bid_floor, Σ of asks priced <= ask_ceiling), in quote.

        The same sums as compliance.metrics.depth_within_band over the in-band levels (held equal
        by tests/collectors/test_book_band_sums.py), kept as the levels change (BookSide).
        """
        return self.bid.band_notional(bid_floor), self.ask.band_notional(ask_ceiling)

    def bids(self):
        """All bid levels as (price, qty), best first (lazy)."""
        return self.bid.levels()

    def asks(self):
        return self.ask.levels()

    def top(self, n):
        """The best n levels of each side, as ([(price, qty)...], [(price, qty)...])."""
        return list(islice(self.bids(), n)), list(islice(self.asks(), n))

    def __len__(self):
        return len(self.bid.qty_of) + len(self.ask.qty_of)


def _truncated(count, limit):
    if limit is None:
        return count in SNAPSHOT_LIMITS
    return count >= limit


try:
    from collectors._book import OrderBook
except ImportError:  # not compiled: the product still runs, 3-4x slower (test_book_compiled fails)
    logging.getLogger(__name__).warning(
        "collectors._book is not built (python scripts/build_ext.py): using the pure-Python order book")
    OrderBook = PyOrderBook
