"""The local order book: price levels of one market, kept as the venue's diffs dictate.

Layout, chosen for a diff stream where most changed levels are inserted or removed (about
70 % on BTCUSDT spot) rather than resized: each side is a dict price -> quantity, plus the
levels grouped in price buckets (bucket = int(price × per_bucket), about 0.01 % of the price
wide) with a running sum of price × quantity per bucket and a short sorted list of the non-empty
buckets. The best price is tracked as levels come and go, so the touch is O(1); nothing is
re-sorted per event; depth within a band is the sum of the bucket totals inside it plus the
levels of the one bucket that holds the edge; walking from the touch sorts one bucket at a time.
int(price × per_bucket) never decreases as the price grows, so the bucket order is the price
order.

Prices and quantities arrive as strings; float() of the same string is always the same float,
so a level is removed by exact key match.

The book knows what it does not know: a REST snapshot holds at most N levels per side, and the
levels between the snapshot's deepest price and anything deeper stay unknown unless a diff
touches them (reference/binance-api spot web_socket_streams, "How to manage a local order book
correctly", the NOTE on the snapshot limit). ``known_bid_edge`` / ``known_ask_edge`` are those
deepest snapshot prices (None when the snapshot held the whole side).
"""
from bisect import bisect_left, bisect_right
from itertools import islice

BUCKET_FRACTION = 1e-4  # bucket width relative to the price at the snapshot
INFINITY = float("inf")

# Valid `limit` values of GET /api/v3/depth and /fapi/v1/depth (market_data_endpoints, Order Book).
# A snapshot of exactly one of these sizes is taken as truncated when the request limit is unknown.
SNAPSHOT_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000, 5000})


class BookSide:
    """One side's levels. ``best_of`` is max for bids, min for asks."""

    __slots__ = ("qty_of", "members", "sums", "buckets", "best", "is_bid")

    def __init__(self, is_bid):
        self.is_bid = is_bid
        self.qty_of = {}  # price -> quantity
        self.members = {}  # bucket -> set of prices
        self.sums = {}  # bucket -> sum of price × quantity
        self.buckets = []  # non-empty buckets, ascending
        self.best = None

    def load(self, levels, per_bucket):
        qty_of = self.qty_of
        for price_text, qty_text in levels:
            price = float(price_text)
            qty = float(qty_text)
            if not (0.0 < price < INFINITY and 0.0 <= qty < INFINITY):
                raise ValueError(f"snapshot level [{price_text!r}, {qty_text!r}] is not a price and a quantity")
            if qty:
                qty_of[price] = qty
        members = self.members
        sums = self.sums
        for price, qty in qty_of.items():
            bucket = int(price * per_bucket)
            if bucket in members:
                members[bucket].add(price)
                sums[bucket] += price * qty
            else:
                members[bucket] = {price}
                sums[bucket] = price * qty
        self.buckets = sorted(members)
        if qty_of:
            self.best = max(qty_of) if self.is_bid else min(qty_of)

    def renew_best(self):
        """The best price after the best level was removed: the best of the outermost bucket."""
        buckets = self.buckets
        if not buckets:
            self.best = None
        elif self.is_bid:
            self.best = max(self.members[buckets[-1]])
        else:
            self.best = min(self.members[buckets[0]])

    def levels(self):
        """(price, qty) best first, lazily: a reader that stops early sorts only what it read."""
        qty_of = self.qty_of
        members = self.members
        if self.is_bid:
            for bucket in reversed(self.buckets):
                for price in sorted(members[bucket], reverse=True):
                    yield price, qty_of[price]
        else:
            for bucket in self.buckets:
                for price in sorted(members[bucket]):
                    yield price, qty_of[price]


def _set_levels(side, levels, per_bucket, float=float, int=int, infinity=INFINITY):
    # float/int/infinity as locals: this loop runs once per changed level and is the replay's hot path.
    qty_of = side.qty_of
    members = side.members
    sums = side.sums
    is_bid = side.is_bid
    for price_text, qty_text in levels:
        price = float(price_text)
        qty = float(qty_text)
        old = qty_of.get(price)
        if 0.0 < qty < infinity:
            qty_of[price] = qty
            if old is not None:
                sums[int(price * per_bucket)] += price * (qty - old)
                continue
            if not 0.0 < price < infinity:
                del qty_of[price]
                raise ValueError(f"price {price_text!r} is not a positive finite price")
            bucket = int(price * per_bucket)
            group = members.get(bucket)
            if group is None:
                members[bucket] = {price}
                sums[bucket] = price * qty
                buckets = side.buckets
                buckets.insert(bisect_left(buckets, bucket), bucket)
            else:
                group.add(price)
                sums[bucket] += price * qty
            best = side.best
            if best is None or (price > best if is_bid else price < best):
                side.best = price
        elif qty == 0.0:
            # Removing a level the book does not hold is normal (futures "How to manage a local
            # order book correctly", step 9).
            if old is None:
                continue
            del qty_of[price]
            bucket = int(price * per_bucket)
            group = members[bucket]
            group.discard(price)
            if group:
                sums[bucket] -= price * old
            else:
                # Dropping the emptied bucket also drops its sum's rounding residue.
                del members[bucket]
                del sums[bucket]
                buckets = side.buckets
                del buckets[bisect_left(buckets, bucket)]
            if price == side.best:
                side.renew_best()
        else:
            raise ValueError(f"quantity {qty_text!r} at {price_text!r} is negative, infinite or not a number")


class OrderBook:
    __slots__ = ("update_id", "bid", "ask", "per_bucket", "known_bid_edge", "known_ask_edge")

    def __init__(self):
        self.clear()

    def clear(self):
        self.update_id = 0
        self.bid = BookSide(True)
        self.ask = BookSide(False)
        self.per_bucket = 1.0  # 1 / bucket width, set from the price at the snapshot
        self.known_bid_edge = None
        self.known_ask_edge = None

    def load_snapshot(self, update_id, bids, asks, limit=None):
        """Replace the book by a REST snapshot (levels as [price, qty] strings, best first).

        ``limit`` is the number of levels requested per side; a side that came back full may have
        been cut, so its deepest price becomes the known edge.
        """
        self.clear()
        self.update_id = update_id
        reference = next((float(price) for price, _ in (bids or asks)), 1.0)
        if not 0.0 < reference < INFINITY:
            raise ValueError(f"snapshot price {reference!r} is not a positive finite price")
        self.per_bucket = 1.0 / (reference * BUCKET_FRACTION)
        self.bid.load(bids, self.per_bucket)
        self.ask.load(asks, self.per_bucket)
        if _truncated(len(bids), limit) and self.bid.qty_of:
            self.known_bid_edge = min(self.bid.qty_of)
        if _truncated(len(asks), limit) and self.ask.qty_of:
            self.known_ask_edge = max(self.ask.qty_of)

    def apply(self, bids, asks, update_id):
        """Set absolute quantities ([price, qty] strings; qty 0 removes the level).

        ValueError on a level that is not a price and a quantity; the book may then hold part
        of the event and must be rebuilt (collectors.sync does).
        """
        if bids:
            _set_levels(self.bid, bids, self.per_bucket)
        if asks:
            _set_levels(self.ask, asks, self.per_bucket)
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
        best_bid = self.bid.best
        best_ask = self.ask.best
        return best_bid is not None and best_ask is not None and best_bid >= best_ask

    def band_notional(self, bid_floor, ask_ceiling):
        """(Σ price × qty of bids priced >= bid_floor, Σ of asks priced <= ask_ceiling), in quote.

        The same sums as compliance.metrics.depth_within_band over the in-band levels (held equal
        by tests/collectors/test_book_band_sums.py): the bucket totals inside the band plus the
        levels of the bucket holding the edge.
        """
        per_bucket = self.per_bucket
        side = self.bid
        bid_quote = 0.0
        edge = int(bid_floor * per_bucket)
        group = side.members.get(edge)
        if group:
            qty_of = side.qty_of
            for price in group:
                if price >= bid_floor:
                    bid_quote += price * qty_of[price]
        buckets = side.buckets
        sums = side.sums
        for position in range(bisect_right(buckets, edge), len(buckets)):
            bid_quote += sums[buckets[position]]
        side = self.ask
        ask_quote = 0.0
        edge = int(ask_ceiling * per_bucket)
        group = side.members.get(edge)
        if group:
            qty_of = side.qty_of
            for price in group:
                if price <= ask_ceiling:
                    ask_quote += price * qty_of[price]
        buckets = side.buckets
        sums = side.sums
        for position in range(bisect_left(buckets, edge)):
            ask_quote += sums[buckets[position]]
        return bid_quote, ask_quote

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
