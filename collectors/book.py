"""The local order book: price levels of one market, kept as the venue's diffs dictate.

Layout, chosen so that the work per changed level stays a few dict operations and the rest
waits for the 1 s sample:

- each side is a dict price -> quantity and its best price, which a level can only improve or,
  when it is the best and goes away, make one C-level max/min over the side recompute;
- for the sample, levels are grouped in price buckets (bucket = int(price × per_bucket), about
  0.01 % of the price wide) with the sum of price × quantity per bucket and a sorted list of the
  non-empty buckets. Events only note which prices changed; the buckets they touch are brought
  up to date when a sample, an iteration or the band depth needs them. Depth within a band is
  then the bucket sums inside it plus the levels of the one bucket holding the edge, and walking
  from the touch sorts one bucket at a time. int(price × per_bucket) never decreases as the price
  grows, so bucket order is price order.

Prices and quantities arrive as strings; float() of the same string is always the same float,
so a level is removed by exact key match.

The book knows what it does not know: a REST snapshot holds at most N levels per side, and the
levels between the snapshot's deepest price and anything deeper stay unknown unless a diff
touches them (reference/binance-api spot web_socket_streams, "How to manage a local order book
correctly", the NOTE on the snapshot limit). ``known_bid_edge`` / ``known_ask_edge`` are those
deepest snapshot prices (None when the snapshot held the whole side).
"""
from bisect import bisect_left, bisect_right, insort
from itertools import compress, islice
from operator import itemgetter

BUCKET_FRACTION = 1e-4  # bucket width relative to the price at the snapshot
INFINITY = float("inf")

# Valid `limit` values of GET /api/v3/depth and /fapi/v1/depth (market_data_endpoints, Order Book).
# A snapshot of exactly one of these sizes is taken as truncated when the request limit is unknown.
SNAPSHOT_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000, 5000})

_price_of = itemgetter(0)
_qty_of = itemgetter(1)


class BookSide:
    __slots__ = ("is_bid", "per_bucket", "qty_of", "best", "changed", "members", "sums", "buckets")

    def __init__(self, is_bid, per_bucket=1.0):
        self.is_bid = is_bid
        self.per_bucket = per_bucket  # 1 / bucket width
        self.qty_of = {}  # price -> quantity
        self.best = None
        self.changed = {}  # price -> its quantity when the buckets were last brought up to date (None: absent)
        self.members = {}  # bucket -> set of prices
        self.sums = {}  # bucket -> sum of price × quantity
        self.buckets = []  # non-empty buckets, ascending

    def load(self, levels):
        prices, qtys = _parse(levels)
        qty_of = self.qty_of = dict(compress(zip(prices, qtys), qtys))
        self.changed = dict.fromkeys(qty_of)
        if qty_of:
            self.best = max(qty_of) if self.is_bid else min(qty_of)

    def apply(self, levels, float=float, infinity=INFINITY):
        # float/infinity as locals: this loop runs once per changed level, the replay's hot path.
        qty_of = self.qty_of
        note = self.changed.setdefault  # keeps the quantity before the first change since the last sample
        best = self.best
        best_removed = False
        is_bid = self.is_bid
        for price_text, qty_text in levels:
            price = float(price_text)
            qty = float(qty_text)
            if 0.0 < qty < infinity and 0.0 < price < infinity:
                note(price, qty_of.get(price))
                qty_of[price] = qty
                if best is None or (price > best if is_bid else price < best):
                    best = price
            elif qty == 0.0:
                # Removing a level the book does not hold is normal (futures "How to manage a
                # local order book correctly", step 9).
                old = qty_of.pop(price, None)
                if old is not None:
                    note(price, old)
                    if price == best:
                        best_removed = True
            else:
                self.best = best
                raise ValueError(f"level [{price_text!r}, {qty_text!r}] is not a positive finite price and "
                                 "a non-negative finite quantity")
        if best_removed and best not in qty_of:
            # The next best: one C-level pass over the side, only when the touch level went away.
            best = (max(qty_of) if is_bid else min(qty_of)) if qty_of else None
        self.best = best

    def refresh(self):
        """Bring the buckets, their members and sums up to date with the changed prices."""
        changed = self.changed
        if not changed:
            return
        per_bucket = self.per_bucket
        qty_of = self.qty_of
        members = self.members
        sums = self.sums
        for price, old in changed.items():
            new = qty_of.get(price)
            bucket = int(price * per_bucket)
            if old is None:
                if new is None:
                    continue  # came and went between two samples
                group = members.get(bucket)
                if group is None:
                    members[bucket] = {price}
                    sums[bucket] = price * new
                    insort(self.buckets, bucket)
                else:
                    group.add(price)
                    sums[bucket] += price * new
            elif new is None:
                group = members[bucket]
                group.discard(price)
                if group:
                    sums[bucket] -= price * old
                else:
                    # Dropping the emptied bucket also drops its sum's rounding residue.
                    del members[bucket]
                    del sums[bucket]
                    buckets = self.buckets
                    del buckets[bisect_left(buckets, bucket)]
            else:
                sums[bucket] += price * (new - old)
        changed.clear()

    def levels(self):
        """(price, qty) best first, lazily: a reader that stops early sorts only what it read."""
        self.refresh()
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


class OrderBook:
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
        reference = _parse(bids or asks)[0][:1] or [1.0]
        per_bucket = 1.0 / (reference[0] * BUCKET_FRACTION)
        self.bid = BookSide(True, per_bucket)
        self.ask = BookSide(False, per_bucket)
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
        best_bid = self.bid.best
        best_ask = self.ask.best
        return best_bid is not None and best_ask is not None and best_bid >= best_ask

    def band_notional(self, bid_floor, ask_ceiling):
        """(Σ price × qty of bids priced >= bid_floor, Σ of asks priced <= ask_ceiling), in quote.

        The same sums as compliance.metrics.depth_within_band over the in-band levels (held equal
        by tests/collectors/test_book_band_sums.py): the bucket sums inside the band plus the
        levels of the bucket holding the edge.
        """
        side = self.bid
        side.refresh()
        bid_quote = 0.0
        edge = int(bid_floor * side.per_bucket)
        group = side.members.get(edge)
        if group:
            qty_of = side.qty_of
            for price in group:
                if price >= bid_floor:
                    bid_quote += price * qty_of[price]
        buckets = side.buckets
        bid_quote += sum(map(side.sums.__getitem__, buckets[bisect_right(buckets, edge):]))
        side = self.ask
        side.refresh()
        ask_quote = 0.0
        edge = int(ask_ceiling * side.per_bucket)
        group = side.members.get(edge)
        if group:
            qty_of = side.qty_of
            for price in group:
                if price <= ask_ceiling:
                    ask_quote += price * qty_of[price]
        buckets = side.buckets
        ask_quote += sum(map(side.sums.__getitem__, buckets[:bisect_left(buckets, edge)]))
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
