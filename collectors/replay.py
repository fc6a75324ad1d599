"""Replaying recorded raw messages through the same parsing, sync, book and sampling code as live
collection (DESIGN.md 'Raw capture and replay').

A Replay routes CaptureLines (collectors.capture) to one MarketReplay per symbol: diffs to its
BookSync, REST snapshots to the same, bookTicker frames to an observer. Each market samples on
its own exchange time: before a diff stamped past a second boundary is applied, the samples of
the seconds it passes are taken. Malformed or unusable messages are counted and skipped.
"""
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from collectors import binance
from collectors.sampler import SecondClock
from collectors.sync import BookSync, Outcome

ENVELOPE = binance.ENVELOPE
ENVELOPE_LENGTH = len(ENVELOPE)

# Quotes valued at 1 USD (DESIGN.md 'Depth within ±2 %': stablecoin quotes at 1).
STABLE_QUOTES = ("USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USDP", "USD")


def stable_quote(symbol):
    """True when the symbol is quoted in a USD stablecoin (a COIN-M contract is quoted in coins' USD
    but sized in contracts, so its depth is not price × qty: not treated as stable)."""
    return "_" not in symbol and symbol.upper().endswith(STABLE_QUOTES)


class MarketReplay:
    """One symbol's sync state, sampler and second clock during a replay."""

    def __init__(self, symbol, kind, sampler=None, quote_usd=None):
        self.symbol = symbol
        self.kind = kind
        self.sync = BookSync(chained=kind.chained)
        self.sampler = sampler
        self.clock = SecondClock()
        self.quote_usd = quote_usd  # USD per unit of quote; None: unknown, USD figures left NULL
        self.outcomes = defaultdict(int)  # Outcome -> count (not a Counter: see Replay.counts)


class Replay:
    """Feeds capture lines through the book pipeline and reports to the given observers.

    on_event(market): after every diff applied to a synced book (the buffered diffs a snapshot
    syncs are reported as one call, after the last of them).
    on_sample(market, sample) and on_evidence(market, evidence): the 1 s samples and top-N
    snapshots, when a sampler factory is given. on_ticker(market, ticker): bookTicker frames.
    quote_usd_of(symbol): USD per unit of the symbol's quote, or None when unknown; by default 1 for
    stablecoin quotes (stable_quote) and unknown otherwise.
    """

    def __init__(self, *, kind=None, sampler_factory=None, on_event=None, on_sample=None, on_evidence=None,
                 on_ticker=None, quote_usd_of=None):
        self.kind = kind
        self.quote_usd_of = quote_usd_of or (lambda symbol: 1.0 if stable_quote(symbol) else None)
        self.sampler_factory = sampler_factory
        self.on_event = on_event
        self.on_sample = on_sample
        self.on_evidence = on_evidence
        self.on_ticker = on_ticker
        self.markets = {}
        # Tallies updated per message: defaultdict(int), whose += stays in C (a Counter's goes through
        # Python-level dispatch, as it defines __delitem__).
        self.counts = defaultdict(int)
        self.other = 0  # messages of no use to the book (trades, subscription replies, other venues)
        self.malformed_examples = []
        self._orphan_snapshots = {}  # symbol (None: not stated) -> snapshot seen before its first diff
        self._stream_kinds = {}  # combined-stream name (bytes) -> binance.stream_kind of it

    def feed_all(self, lines):
        for line in lines:
            self.feed(line)
        return self

    def feed(self, line):
        raw = line.raw
        try:
            if line.url is None and raw.startswith(ENVELOPE):
                # A combined-stream frame: routed by its stream name, read without decoding, so
                # frames of streams the book does not use (trades, klines...) cost next to nothing.
                # The kind of each stream name is looked up once (a capture has a handful).
                stream = raw[ENVELOPE_LENGTH:raw.find(b'"', ENVELOPE_LENGTH)]
                kind = self._stream_kinds.get(stream)
                if kind is None:
                    kind = binance.stream_kind(stream.decode("ascii", "replace"))
                    if len(self._stream_kinds) < 256:  # bounded, whatever a damaged file holds
                        self._stream_kinds[stream] = kind
                if kind == "depth":
                    self._diff(binance.parse_diff(binance.stream_data(raw)))
                elif kind == "bookTicker":
                    self.counts["bookTicker"] += 1
                    if self.on_ticker is not None:
                        self._ticker(binance.parse_book_ticker(binance.stream_data(raw)))
                else:
                    self.other += 1
                return
            message = binance.decode(raw)
            if line.url is not None:
                self._rest(line.url, message)
            elif "lastUpdateId" in message:
                self.counts["snapshot"] += 1
                self._snapshot(None, binance.parse_snapshot(message))
            elif message.get("e") == "depthUpdate":
                self._diff(binance.parse_diff(message))
            else:
                self.other += 1
        except binance.MalformedMessage as exc:
            self.counts["malformed"] += 1
            if len(self.malformed_examples) < 5:
                self.malformed_examples.append(str(exc))

    def _ticker(self, ticker):
        market = self.markets.get(ticker.symbol)
        if market is not None:
            self.on_ticker(market, ticker)

    def _rest(self, url, message):
        parts = urlsplit(url)
        if not parts.path.endswith("/depth"):
            self.other += 1
            return
        self.counts["snapshot"] += 1
        query = parse_qs(parts.query)
        limit = query.get("limit", [None])[0]
        snapshot = binance.parse_snapshot(message, int(limit) if limit and limit.isdigit() else None)
        self._snapshot(query.get("symbol", [None])[0], snapshot)

    def _market(self, diff):
        symbol = diff.symbol
        kind = self.kind or binance.kind_for_diff(diff)
        sampler = self.sampler_factory(symbol) if self.sampler_factory is not None else None
        market = self.markets[symbol] = MarketReplay(symbol, kind, sampler, self.quote_usd_of(symbol))
        return market

    def _diff(self, diff):
        self.counts["depth"] += 1
        market = self.markets.get(diff.symbol)
        if market is None:
            market = self._market(diff)
        if market.sampler is not None and diff.event_time_ms is not None:
            for ts_ms in market.clock.due(diff.event_time_ms):
                self._take_sample(market, ts_ms)
        outcome = market.sync.diff(diff)
        market.outcomes[outcome] += 1
        if self._orphan_snapshots and market.sync.needs_snapshot:
            orphan = self._orphan_snapshots.pop(diff.symbol, None) or self._orphan_snapshots.pop(None, None)
            if orphan is not None:
                self._snapshot(diff.symbol, orphan)
        if self.on_event is not None and (outcome is Outcome.APPLIED or outcome is Outcome.SYNCED):
            self.on_event(market)

    def _snapshot(self, symbol, snapshot):
        if symbol is None:
            symbol = snapshot_owner(self.markets)
        symbol = symbol.upper() if symbol else None
        market = self.markets.get(symbol)
        if market is None:
            # A snapshot recorded before the first diff of its stream: keep it until a diff names it.
            self._orphan_snapshots[symbol] = snapshot
            return
        outcome = market.sync.snapshot(snapshot)
        market.outcomes[outcome] += 1
        if self.on_event is not None and outcome is Outcome.SYNCED:
            self.on_event(market)

    def _take_sample(self, market, ts_ms):
        sample = market.sampler.sample(market.sync, ts_ms, quote_usd=market.quote_usd)
        if self.on_sample is not None:
            self.on_sample(market, sample)
        if self.on_evidence is not None:
            evidence = market.sampler.evidence(market.sync, ts_ms)
            if evidence is not None:
                self.on_evidence(market, evidence)


def snapshot_owner(markets):
    """The symbol a snapshot without one belongs to: the only market of a one-symbol capture."""
    if len(markets) == 1:
        return next(iter(markets))
    if markets:
        raise binance.MalformedMessage("a depth snapshot without a symbol in a capture of several symbols")
    return None
