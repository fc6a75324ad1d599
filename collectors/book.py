"""The local order book: price levels of one market, kept as the venue's diffs dictate.

Each side is a dict price -> quantity plus a sorted list of keys with the best price at the end
(bids keyed by price, asks by -price), so the touch is O(1), an insert near the touch moves
few list slots, and the in-band slice is one bisect. Prices and quantities arrive as strings;
float() of the same string is always the same float, so a level is removed by exact key match.

The book knows what it does not know: a REST snapshot holds at most N levels per side, and the
levels between the snapshot's deepest price and anything deeper stay unknown unless a diff
touches them (reference/binance-api spot web_socket_streams, "How to manage a local order book
correctly", the NOTE on the snapshot limit). ``known_bid_edge`` / ``known_ask_edge`` are those
deepest snapshot prices (None when the snapshot held the whole side).
"""
from bisect import bisect_left
from itertools import islice

# Valid `limit` values of GET /api/v3/depth and /fapi/v1/depth (market_data_endpoints, Order Book).
# A snapshot of exactly one of these sizes is taken as truncated when the request limit is unknown.
SNAPSHOT_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000, 5000})


class OrderBook:
    __slots__ = ("update_id", "bid_qty", "ask_qty", "_bid_keys", "_ask_keys", "known_bid_edge", "known_ask_edge")

    def __init__(self):
        self.clear()

    def clear(self):
        self.update_id = 0
        self.bid_qty = {}  # price -> quantity
        self.ask_qty = {}
        self._bid_keys = []  # ascending prices: best bid last
        self._ask_keys = []  # ascending -prices: best ask last
        self.known_bid_edge = None
        self.known_ask_edge = None

    def load_snapshot(self, update_id, bids, asks, limit=None):
        """Replace the book by a REST snapshot (levels as [price, qty] strings, best first).

        ``limit`` is the number of levels requested per side; a side that came back full may have
        been cut, so its deepest price becomes the known edge.
        """
        self.clear()
        self.update_id = update_id
        bid_qty = self.bid_qty
        ask_qty = self.ask_qty
        for price_text, qty_text in bids:
            qty = float(qty_text)
            if qty:
                bid_qty[float(price_text)] = qty
        for price_text, qty_text in asks:
            qty = float(qty_text)
            if qty:
                ask_qty[float(price_text)] = qty
        self._bid_keys = sorted(bid_qty)
        self._ask_keys = sorted(-p for p in ask_qty)
        if _truncated(len(bids), limit):
            self.known_bid_edge = self._bid_keys[0]
        if _truncated(len(asks), limit):
            self.known_ask_edge = -self._ask_keys[0]

    def apply(self, bids, asks, update_id):
        """Set absolute quantities ([price, qty] strings; qty 0 removes the level)."""
        self._set_levels(bids, self.bid_qty, self._bid_keys, 1.0)
        self._set_levels(asks, self.ask_qty, self._ask_keys, -1.0)
        self.update_id = update_id

    @staticmethod
    def _set_levels(levels, qty_of, keys, sign):
        for price_text, qty_text in levels:
            price = float(price_text)
            qty = float(qty_text)
            if qty == 0.0:
                # Removing a level the book does not hold is normal (futures "How to manage a
                # local order book correctly", step 9).
                if qty_of.pop(price, None) is not None:
                    key = sign * price
                    del keys[bisect_left(keys, key)]
            else:
                if price not in qty_of:
                    key = sign * price
                    keys.insert(bisect_left(keys, key), key)
                qty_of[price] = qty

    @property
    def best_bid(self):
        keys = self._bid_keys
        return keys[-1] if keys else None

    @property
    def best_ask(self):
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def touch(self):
        """(best bid, best ask), either None when its side is empty."""
        bk = self._bid_keys
        ak = self._ask_keys
        return (bk[-1] if bk else None), (-ak[-1] if ak else None)

    def crossed(self):
        bk = self._bid_keys
        ak = self._ask_keys
        return bool(bk and ak) and bk[-1] >= -ak[-1]

    def bids_down_to(self, floor):
        """Bid levels priced >= floor, best first, as (price, qty)."""
        keys = self._bid_keys
        qty_of = self.bid_qty
        return [(p, qty_of[p]) for p in reversed(keys[bisect_left(keys, floor):])]

    def asks_up_to(self, ceiling):
        """Ask levels priced <= ceiling, best first, as (price, qty)."""
        keys = self._ask_keys
        qty_of = self.ask_qty
        return [(-k, qty_of[-k]) for k in reversed(keys[bisect_left(keys, -ceiling):])]

    def bids(self):
        """All bid levels, best first (lazy: callers that stop early pay for what they read)."""
        qty_of = self.bid_qty
        return ((p, qty_of[p]) for p in reversed(self._bid_keys))

    def asks(self):
        qty_of = self.ask_qty
        return ((-k, qty_of[-k]) for k in reversed(self._ask_keys))

    def top(self, n):
        """The best n levels of each side, as ([(price, qty)...], [(price, qty)...])."""
        return list(islice(self.bids(), n)), list(islice(self.asks(), n))

    def __len__(self):
        return len(self.bid_qty) + len(self.ask_qty)


def _truncated(count, limit):
    if limit is None:
        return count in SNAPSHOT_LIMITS
    return count >= limit
