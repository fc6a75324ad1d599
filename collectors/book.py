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
from collections import defaultdict
from itertools import islice

# Band sums are kept per price bucket this wide, relative to the price at the snapshot: a ±2 %
# band spans ~200 buckets per side, and a sample sums those plus the levels of the two buckets at
# each edge instead of every level in the band.
BUCKET_FRACTION = 1e-4
INFINITY = float("inf")

# Valid `limit` values of GET /api/v3/depth and /fapi/v1/depth (market_data_endpoints, Order Book).
# A snapshot of exactly one of these sizes is taken as truncated when the request limit is unknown.
SNAPSHOT_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000, 5000})


class OrderBook:
    __slots__ = (
        "update_id", "bid_qty", "ask_qty", "_bid_keys", "_ask_keys", "known_bid_edge", "known_ask_edge",
        "_per_bucket", "_bid_sums", "_ask_sums",
    )

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
        self._per_bucket = 1.0  # 1 / bucket width
        self._bid_sums = defaultdict(float)  # bucket -> sum of price × qty of its levels
        self._ask_sums = defaultdict(float)

    def load_snapshot(self, update_id, bids, asks, limit=None):
        """Replace the book by a REST snapshot (levels as [price, qty] strings, best first).

        ``limit`` is the number of levels requested per side; a side that came back full may have
        been cut, so its deepest price becomes the known edge.
        """
        self.clear()
        self.update_id = update_id
        bid_qty = self.bid_qty
        ask_qty = self.ask_qty
        for levels, qty_of in ((bids, bid_qty), (asks, ask_qty)):
            for price_text, qty_text in levels:
                price = float(price_text)
                qty = float(qty_text)
                if not (0.0 < price < INFINITY and 0.0 <= qty < INFINITY):
                    raise ValueError(f"snapshot level [{price_text!r}, {qty_text!r}] is not a price and a quantity")
                if qty:
                    qty_of[price] = qty
        self._bid_keys = sorted(bid_qty)
        self._ask_keys = sorted(-p for p in ask_qty)
        reference = self._bid_keys[-1] if bid_qty else (-self._ask_keys[-1] if ask_qty else 1.0)
        per_bucket = self._per_bucket = 1.0 / (reference * BUCKET_FRACTION)
        for qty_of, sums in ((bid_qty, self._bid_sums), (ask_qty, self._ask_sums)):
            for price, qty in qty_of.items():
                sums[int(price * per_bucket)] += price * qty
        if _truncated(len(bids), limit):
            self.known_bid_edge = self._bid_keys[0]
        if _truncated(len(asks), limit):
            self.known_ask_edge = -self._ask_keys[0]

    def apply(self, bids, asks, update_id):
        """Set absolute quantities ([price, qty] strings; qty 0 removes the level)."""
        per_bucket = self._per_bucket
        if bids:
            _set_levels(bids, self.bid_qty, self._bid_keys, 1.0, self._bid_sums, per_bucket)
        if asks:
            _set_levels(asks, self.ask_qty, self._ask_keys, -1.0, self._ask_sums, per_bucket)
        self.update_id = update_id

    def band_notional(self, bid_floor, ask_ceiling):
        """(Σ price × qty of bids priced >= bid_floor, Σ of asks priced <= ask_ceiling), in quote.

        The same sums as compliance.metrics.depth_within_band over the in-band levels, read from
        the bucket sums (tests/collectors/test_book_band_sums.py holds them equal): the levels of
        the edge bucket and its inner neighbour are summed one by one, the buckets further in as
        kept. int(price × per_bucket) never decreases as the price grows, so each level is counted
        exactly once.
        """
        per_bucket = self._per_bucket
        bid_quote = 0.0
        keys = self._bid_keys
        if keys and keys[-1] >= bid_floor:
            qty_of = self.bid_qty
            inner = int(bid_floor * per_bucket) + 1
            i = bisect_left(keys, bid_floor)
            n = len(keys)
            while i < n:
                price = keys[i]
                if int(price * per_bucket) > inner:
                    sums = self._bid_sums
                    for bucket in range(inner + 1, int(keys[-1] * per_bucket) + 1):
                        bid_quote += sums.get(bucket, 0.0)
                    break
                bid_quote += price * qty_of[price]
                i += 1
        ask_quote = 0.0
        keys = self._ask_keys
        if keys and -keys[-1] <= ask_ceiling:
            qty_of = self.ask_qty
            inner = int(ask_ceiling * per_bucket) - 1
            i = bisect_left(keys, -ask_ceiling)
            n = len(keys)
            while i < n:
                price = -keys[i]
                if int(price * per_bucket) < inner:
                    sums = self._ask_sums
                    for bucket in range(int(-keys[-1] * per_bucket), inner):
                        ask_quote += sums.get(bucket, 0.0)
                    break
                ask_quote += price * qty_of[price]
                i += 1
        return bid_quote, ask_quote

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


def _set_levels(levels, qty_of, keys, sign, sums, per_bucket):
    for price_text, qty_text in levels:
        price = float(price_text)
        qty = float(qty_text)
        old = qty_of.get(price)
        if qty > 0.0:
            if old is None:
                if not (0.0 < price < INFINITY and qty < INFINITY):
                    raise ValueError(f"level [{price_text!r}, {qty_text!r}] is not a positive finite price and quantity")
                key = sign * price
                keys.insert(bisect_left(keys, key), key)
                old = 0.0
            elif qty == INFINITY:
                raise ValueError(f"quantity {qty_text!r} at {price_text!r} is not finite")
            qty_of[price] = qty
            sums[int(price * per_bucket)] += price * (qty - old)
        elif qty == 0.0:
            # Removing a level the book does not hold is normal (futures "How to manage a local
            # order book correctly", step 9).
            if old is not None:
                del qty_of[price]
                key = sign * price
                del keys[bisect_left(keys, key)]
                sums[int(price * per_bucket)] -= price * old
        else:
            raise ValueError(f"quantity {qty_text!r} at {price_text!r} is negative or not a number")


def _truncated(count, limit):
    if limit is None:
        return count in SNAPSHOT_LIMITS
    return count >= limit
