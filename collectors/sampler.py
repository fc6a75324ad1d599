"""The 1 s sample of one market's book, and the periodic top-N snapshot kept as audit evidence.

Every number comes from compliance.metrics (one formula, one place); this module only decides
which slice of the book each formula reads. A second whose book is resyncing, empty on a side
or crossed gives an invalid sample: its metrics are NULL and the second is unknown time, never
compliant (DESIGN.md 'Uptime').

Sample and BookEvidence fields follow the columns of compliance_sample and
compliance_book_snapshot (compliance/migrations/0002_timeseries.py) in order, so a sink can COPY
them as they are.
"""
from datetime import UTC, datetime
from typing import NamedTuple

from compliance import metrics

SLIPPAGE_ORDER_USD = 10_000.0  # DESIGN.md 'Slippage of a $10,000 market order'


class Sample(NamedTuple):
    market_id: int
    ts: datetime
    valid: bool
    update_id: int | None
    best_bid: float | None
    best_ask: float | None
    mid: float | None
    spread_ask_pct: float | None
    spread_mid_pct: float | None
    band_pct: float
    depth_bid_usd: float | None
    depth_ask_usd: float | None
    depth_bid_complete: bool | None
    depth_ask_complete: bool | None
    slip_buy_pct: float | None
    slip_sell_pct: float | None
    own_bid_dev_pct: float | None
    own_ask_dev_pct: float | None
    own_depth_share_pct: float | None
    own_at_touch: bool | None


class BookEvidence(NamedTuple):
    market_id: int
    ts: datetime
    update_id: int
    bids: list  # [[price, qty], ...] best first
    asks: list


class OwnQuotes(NamedTuple):
    """The desk's resting orders in one market, aggregated per price: {price: qty} per side."""

    bids: dict
    asks: dict


def utc_from_ms(ts_ms):
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


class Sampler:
    """Samples one market. The band and the slippage size are the obligation's parameters."""

    def __init__(self, market_id, *, band_pct=2.0, band_reference="mid", slippage_usd=SLIPPAGE_ORDER_USD,
                 evidence_every_s=60, evidence_levels=20):
        self.market_id = market_id
        self.band_pct = band_pct
        self.band_reference = band_reference
        self.slippage_usd = slippage_usd
        self.evidence_every_s = evidence_every_s
        self.evidence_levels = evidence_levels

    def invalid(self, ts, update_id=None):
        return Sample(self.market_id, ts, False, update_id, None, None, None, None, None, self.band_pct,
                      None, None, None, None, None, None, None, None, None, None)

    def sample(self, sync, ts_ms, *, quote_usd=1.0, own=None):
        """The sample of second ts_ms (epoch ms) from a collectors.sync.BookSync.

        quote_usd: USD per unit of quote (metrics.quote_usd_rate); None when not known yet, which
        leaves the USD figures NULL. own: OwnQuotes when the desk's orders are known.
        """
        ts = utc_from_ms(ts_ms)
        book = sync.book
        if not sync.synced:
            return self.invalid(ts)
        best_bid, best_ask = book.touch()
        try:
            spread_ask = metrics.spread_pct(best_bid, best_ask, "ask")
        except metrics.InvalidBook:
            return self.invalid(ts, book.update_id)
        spread_mid = metrics.spread_pct(best_bid, best_ask, "mid")
        mid = metrics.mid_price(best_bid, best_ask)
        bid_floor, ask_ceiling = metrics.band_edges(best_bid, best_ask, self.band_pct, self.band_reference)
        bid_complete, ask_complete = metrics.band_coverage(
            bid_floor, ask_ceiling, book.known_bid_edge, book.known_ask_edge
        )
        depth_bid = depth_ask = slip_buy = slip_sell = None
        own_bid_dev = own_ask_dev = own_share = own_touch = None
        if quote_usd is not None:
            # The book keeps band sums as levels change (OrderBook.band_notional), equal to
            # metrics.depth_within_band over the band (tests/collectors/test_book_band_sums.py),
            # with the same inclusive, tolerance-widened edges.
            slack = metrics.EDGE_TOLERANCE
            bid_quote, ask_quote = book.band_notional(bid_floor * (1 - slack), ask_ceiling * (1 + slack))
            depth_bid = bid_quote * quote_usd
            depth_ask = ask_quote * quote_usd
            slip_buy = metrics.slippage_pct(book.asks(), self.slippage_usd, quote_usd)
            slip_sell = metrics.slippage_pct(book.bids(), self.slippage_usd, quote_usd)
        if own is not None:
            own_best_bid = max(own.bids) if own.bids else None
            own_best_ask = min(own.asks) if own.asks else None
            if own_best_bid is not None:
                own_bid_dev = metrics.own_quote_deviation_pct(own_best_bid, best_bid)
            if own_best_ask is not None:
                own_ask_dev = metrics.own_quote_deviation_pct(own_best_ask, best_ask)
            own_touch = metrics.own_at_touch(own_best_bid, own_best_ask, best_bid, best_ask)
            if depth_bid is not None:
                own_share = self._own_share(own, bid_floor, ask_ceiling, quote_usd, depth_bid + depth_ask)
        return Sample(self.market_id, ts, True, book.update_id, best_bid, best_ask, mid, spread_ask, spread_mid,
                      self.band_pct, depth_bid, depth_ask, bid_complete, ask_complete, slip_buy, slip_sell,
                      own_bid_dev, own_ask_dev, own_share, own_touch)

    @staticmethod
    def _own_share(own, bid_floor, ask_ceiling, quote_usd, band_usd):
        own_bid_usd, own_ask_usd = metrics.depth_within_band(
            sorted(own.bids.items(), reverse=True), sorted(own.asks.items()), bid_floor, ask_ceiling, quote_usd
        )
        try:
            return metrics.own_depth_share_pct(own_bid_usd + own_ask_usd, band_usd)
        except ValueError:
            # Own orders the book does not show yet (the order stream ran ahead of the depth
            # stream): the share of this second is unknown, not above 100 %.
            return None

    def evidence(self, sync, ts_ms):
        """The top-N levels as audit evidence, on the seconds it is due and the book is known."""
        if not sync.synced or (ts_ms // 1000) % self.evidence_every_s:
            return None
        bids, asks = sync.book.top(self.evidence_levels)
        return BookEvidence(self.market_id, utc_from_ms(ts_ms), sync.book.update_id,
                            [list(level) for level in bids], [list(level) for level in asks])


class SecondClock:
    """Second boundaries crossed as exchange time advances (replay samples on event time).

    ``due(event_ms)`` gives the boundaries strictly before event_ms not yet sampled, so a
    sample at second T sees every event stamped at or before T.
    """

    def __init__(self):
        self.next_ms = None

    def due(self, event_ms):
        if self.next_ms is None:
            self.next_ms = (event_ms // 1000 + 1) * 1000
            return ()
        if event_ms <= self.next_ms:
            return ()
        start = self.next_ms
        end = (event_ms - 1) // 1000 * 1000
        self.next_ms = end + 1000
        return range(start, end + 1, 1000)
