"""Replay of real recordings over the same protocol, at 1×, N× or full speed.

Readers for the two formats in /work/shared/data (see its README.md and each SOURCE.txt):
- binance-captures: gzip lines `<receive time ns|µs> <raw JSON>`; a bare `{"lastUpdateId":...}` line is
  the REST snapshot; the rest are combined-stream envelopes. A *_DAY2 file continues *_DAY1.
- cryptofeed recordings: `<url> -> <ts>: <REST body>`, `<ts>: <frame>`, plus connect/sent lines.
Stream messages go out with their recorded text unchanged. A book per symbol starts from the
recorded snapshot and follows the replayed diffs, so `GET depth` answers consistently with the
replay position.
"""
import asyncio
import gzip
import heapq
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orjson

from .auth import ApiError
from .catalog import MarketSpec, VenueSpec
from .venue import Venue, now_ms

BACKPRESSURE_HIGH = 2000  # queued messages per subscriber before a full-speed replay waits
CRYPTOFEED_REST = re.compile(r"^(\S+) -> ([0-9.]+): (.*)$")
CRYPTOFEED_FRAME = re.compile(r"^([0-9.]+): (.*)$")


@dataclass
class Recorded:
    at: float  # receive time, seconds
    stream: str | None  # None for a REST snapshot
    symbol: str
    text: str  # the recorded JSON text, unchanged


def _open(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _seconds(stamp: str) -> float:
    digits = stamp.split(".")[0]
    return int(stamp) / 1e9 if len(digits) >= 19 else int(stamp) / 1e6 if len(digits) >= 16 else float(stamp)


def _stream_of(text: str) -> tuple[str, str] | None:
    if not text.startswith('{"stream":"'):
        return None
    stream = text[len('{"stream":"'):text.index('"', len('{"stream":"'))]
    return stream, stream.split("@")[0].upper()


def read_capture(path: Path):
    """binance-captures lines; the snapshot's symbol comes from the file name (spot_btcusdt_... -> BTCUSDT)."""
    symbol = "_".join(path.name.split(".")[0].split("_")[1:-1]).upper()
    with _open(path) as lines:
        for line in lines:
            stamp, _, text = line.rstrip("\n").partition(" ")
            if text.startswith('{"lastUpdateId"'):
                yield Recorded(_seconds(stamp), None, symbol, text)
            elif (found := _stream_of(text)) is not None:
                yield Recorded(_seconds(stamp), found[0], found[1], text)


def read_cryptofeed(path: Path):
    with _open(path) as lines:
        for line in lines:
            line = line.rstrip("\n")
            if (rest := CRYPTOFEED_REST.match(line)) and "/depth" in rest.group(1):
                symbol = parse_qs(urlparse(rest.group(1)).query).get("symbol", [""])[0]
                yield Recorded(float(rest.group(2)), None, symbol, rest.group(3))
            elif (frame := CRYPTOFEED_FRAME.match(line)) and (found := _stream_of(frame.group(2))) is not None:
                yield Recorded(float(frame.group(1)), found[0], found[1], frame.group(2))


def market_type_of(path: Path) -> str:
    name = path.name
    if name.startswith("usdm_") or name.startswith("BINANCE_FUTURES"):
        return "usdm"
    if name.startswith("cm_") or name.startswith("BINANCE_DELIVERY"):
        return "coinm"
    if name.startswith("spot_") or name.startswith("BINANCE"):
        return "spot"
    raise ValueError(f"{path.name}: not a Binance recording this replayer knows (spot_/usdm_/cm_/BINANCE*).")


def load_recording(paths: list[Path]) -> list[Recorded]:
    readers = [read_capture(p) if p.name.split("_")[0] in ("spot", "usdm", "cm") else read_cryptofeed(p)
               for p in paths]
    return list(heapq.merge(*readers, key=lambda r: r.at))


class ReplayBook:
    """Levels keyed by the recorded price strings, so a snapshot repeats the recording's text."""

    def __init__(self, futures: bool):
        self.futures = futures
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.update_id: int | None = None
        self.pending: list = []  # diffs received before the snapshot line (the straddling one is among them)

    def reset(self, snapshot: dict) -> None:
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.update_id = snapshot["lastUpdateId"]
        # Binance's procedure: spot applies events with u > L, futures those with u >= L.
        buffered = [e for e in self.pending if e["u"] >= self.update_id + (0 if self.futures else 1)]
        self.pending = []
        for event in buffered:
            self.apply(event)

    def apply(self, event: dict) -> None:
        if self.update_id is None:
            self.pending = (self.pending + [event])[-200:]
            return
        if event["u"] < self.update_id + (0 if self.futures else 1):
            return
        for side, levels in (("b", self.bids), ("a", self.asks)):
            for price, qty in event[side]:
                if Decimal(qty) == 0:
                    levels.pop(price, None)
                else:
                    levels[price] = qty
        self.update_id = event["u"]

    def top(self, limit: int) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda pq: Decimal(pq[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda pq: Decimal(pq[0]))[:limit]
        return [list(pq) for pq in bids], [list(pq) for pq in asks]

    @property
    def best_bid(self):
        price = max(self.bids, key=Decimal, default=None)
        return price and (price, self.bids[price])

    @property
    def best_ask(self):
        price = min(self.asks, key=Decimal, default=None)
        return price and (price, self.asks[price])


@dataclass
class ReplayMarket:
    spec: MarketSpec
    book: ReplayBook
    snapshot_text: str | None = None  # the recorded snapshot, served until the book is established

    def usd_per_unit(self) -> float:
        return 1.0


QUOTE_ASSETS = ("USDT", "USDC", "BUSD", "FDUSD", "BTC", "ETH", "BNB", "EUR", "AUD", "BRL", "TRY", "USD")


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a recorded symbol (BTCUSDT -> BTC, USDT; BTCUSD_PERP -> BTC, USD)."""
    pair = symbol.split("_")[0]
    for quote in QUOTE_ASSETS:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return pair, ""


def _decimals(values) -> int:
    return max((len(v.rstrip("0").split(".")[1]) if "." in v.rstrip("0") else 0) for v in values) if values else 0


class ReplayVenue(Venue):
    is_replay = True

    def __init__(self, name: str, market_type: str, recording: list[Recorded], *, options, speed: float, loop: bool):
        super().__init__(VenueSpec(name, market_type, tier=1), seed=0, step_s=0.05, options=options)
        self.recording, self.speed, self.loop = recording, speed, loop
        self.position = 0
        self.started = asyncio.Event()
        futures = market_type != "spot"
        for item in recording:
            if item.symbol in self.markets:
                continue
            first_snapshot = next((r for r in recording if r.stream is None and r.symbol == item.symbol), None)
            levels = orjson.loads(first_snapshot.text) if first_snapshot else {"bids": [], "asks": []}
            prices = [p for p, _ in levels["bids"][:50] + levels["asks"][:50]]
            qtys = [q for _, q in levels["bids"][:50] + levels["asks"][:50]]
            base, quote = split_symbol(item.symbol)
            spec = MarketSpec(item.symbol, base, quote, _decimals(prices), _decimals(qtys), "0",
                              float(prices[0]) if prices else 0.0)
            self.markets[item.symbol] = ReplayMarket(spec, ReplayBook(futures))

    def depth_body(self, symbol: str, limit: int) -> dict:
        market = self.markets[symbol]
        if market.book.update_id is None:
            if market.snapshot_text is None:  # a recording without a snapshot (e.g. spot_btcusdt_20230405)
                raise ApiError(-1121, "Invalid symbol.")
            body = orjson.loads(market.snapshot_text)  # not yet reached in the replay: the recorded answer
            body["bids"], body["asks"] = body["bids"][:limit], body["asks"][:limit]
            return body
        bids, asks = market.book.top(limit)
        body = {"lastUpdateId": market.book.update_id}
        if self.protocol.is_futures:
            body.update(E=now_ms(), T=now_ms())
        return {**body, "bids": bids, "asks": asks}

    def true_book(self, symbol: str, limit: int) -> dict:
        bids, asks = self.markets[symbol].book.top(limit)
        return {"lastUpdateId": self.markets[symbol].book.update_id, "bids": bids, "asks": asks,
                "position": self.position}

    def publish_recorded(self, item: Recorded) -> None:
        prefix = f'{{"stream":"{item.stream}","data":'
        raw_data = item.text[len(prefix):-1] if item.text.startswith(prefix) and item.text.endswith("}") else None
        if raw_data is None:
            raw_data = orjson.dumps(orjson.loads(item.text)["data"]).decode()
        self.publish(item.stream, raw_data=raw_data, raw_combined=item.text)

    def _apply(self, item: Recorded) -> None:
        market = self.markets[item.symbol]
        if item.stream is None:
            if market.book.update_id is None:
                market.snapshot_text = market.snapshot_text or item.text
                market.book.reset(orjson.loads(item.text))
        elif item.stream.split("@")[1] == "depth":  # diff streams; not depth5/10/20 partial books
            market.book.apply(orjson.loads(item.text)["data"])

    async def run(self) -> None:
        """Wait for the first subscriber, then replay at `speed` (0 = as fast as clients read)."""
        for item in self.recording:  # snapshots are known up front so `depth` can answer before they are reached
            if item.stream is None and self.markets[item.symbol].snapshot_text is None:
                self.markets[item.symbol].snapshot_text = item.text
        while not any(c.subscriptions for c in self.connections):
            await asyncio.sleep(0.01)
        while True:
            await self._play()
            if not self.loop:
                return
            self.close_connections()  # update ids restart: clients must resync
            for market in self.markets.values():
                market.book = ReplayBook(self.protocol.is_futures)

    async def _play(self) -> None:
        wall_start, first_at = time.monotonic(), self.recording[0].at if self.recording else 0
        for self.position, item in enumerate(self.recording):
            if self.speed > 0:
                delay = wall_start + (item.at - first_at) / self.speed - time.monotonic()
                if delay > 0.001:
                    await asyncio.sleep(delay)
            elif self.position % 200 == 0:
                await asyncio.sleep(0)
            self._apply(item)
            if item.stream is not None:
                self.publish_recorded(item)
                while any(c.queue.qsize() > BACKPRESSURE_HIGH for c in self.connections):
                    await asyncio.sleep(0.005)
        self.position = len(self.recording)


def load_replay_venue(argument: str, *, options, speed: float, loop: bool) -> ReplayVenue:
    """`[name=]FILE[,FILE...]`; the venue is named replay-<market type> unless a name is given."""
    name, sep, files = argument.partition("=")
    if not sep:
        name, files = "", argument
    paths = [Path(f) for f in files.split(",") if f]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"Replay file not found: {path}")
    types = {market_type_of(p) for p in paths}
    if len(types) != 1:
        raise ValueError(f"Replay files mix market types ({', '.join(sorted(types))}); give one venue per type.")
    market_type = types.pop()
    name = name or f"replay-{market_type}"
    recording = load_recording(paths)
    if not recording:
        raise ValueError(f"No Binance stream messages in {files}.")
    return ReplayVenue(name, market_type, recording, options=options, speed=speed, loop=loop)
