"""Binance venue adapters: only what differs between spot, USDⓈ-M and COIN-M order books.

What differs (reference/binance-api):
- stream and snapshot endpoints, and the largest snapshot (spot /api/v3/depth limit 5000;
  futures /fapi/v1/depth and /dapi/v1/depth limit 1000 — market_data_endpoints "Order Book");
- the sequencing rule: spot chains `U` to the previous `u` + 1 (web_socket_streams, "How to
  manage a local order book correctly"); futures carry `pu`, which must equal the previous
  event's `u` (How_to_manage_a_local_order_book_correctly, step 6).
Everything else (buffering, the book, sampling) is written once, in sync.py / book.py / sampler.py.

Parsing is strict about the fields it uses and lenient about the rest: a message missing `U`,
`u`, `b` or `a` raises MalformedMessage (the caller counts and skips it), anything else is
ignored. Price/quantity strings are left as strings here; the book converts them.
"""
from dataclasses import dataclass

import orjson


class MalformedMessage(ValueError):
    """An exchange message that cannot be used; the text says what was wrong."""


@dataclass(frozen=True, slots=True)
class BinanceMarketKind:
    name: str
    rest_depth_path: str
    snapshot_limit: int
    chained: bool  # True: futures `pu` chaining; False: spot `U` == previous `u` + 1

    def depth_stream(self, symbol):
        return f"{symbol.lower()}@depth@100ms"

    def book_ticker_stream(self, symbol):
        return f"{symbol.lower()}@bookTicker"

    def snapshot_request(self, symbol):
        """(path, query params) of the REST depth snapshot with the venue's deepest limit."""
        return self.rest_depth_path, {"symbol": symbol.upper(), "limit": self.snapshot_limit}


SPOT = BinanceMarketKind("spot", "/api/v3/depth", 5000, chained=False)
USDM = BinanceMarketKind("usdm", "/fapi/v1/depth", 1000, chained=True)
COINM = BinanceMarketKind("coinm", "/dapi/v1/depth", 1000, chained=True)
MARKET_KINDS = {kind.name: kind for kind in (SPOT, USDM, COINM)}


class DepthDiff:
    """One diff-depth event: update ids [first_id; final_id], futures' prev_final_id (`pu`)."""

    __slots__ = ("symbol", "first_id", "final_id", "prev_final_id", "event_time_ms", "bids", "asks")

    def __init__(self, symbol, first_id, final_id, prev_final_id, event_time_ms, bids, asks):
        self.symbol = symbol
        self.first_id = first_id
        self.final_id = final_id
        self.prev_final_id = prev_final_id
        self.event_time_ms = event_time_ms
        self.bids = bids
        self.asks = asks

    def __repr__(self):
        return f"DepthDiff({self.symbol} U={self.first_id} u={self.final_id} pu={self.prev_final_id})"


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    last_update_id: int
    bids: list
    asks: list
    limit: int | None = None  # levels requested per side, when known


@dataclass(frozen=True, slots=True)
class BookTicker:
    symbol: str
    update_id: int
    bid: float
    ask: float


def parse_diff(data):
    """A DepthDiff from the `data` object of a depthUpdate event (spot or futures)."""
    try:
        diff = DepthDiff(data["s"], data["U"], data["u"], data.get("pu"), data.get("E"), data["b"], data["a"])
    except (KeyError, TypeError) as exc:
        raise MalformedMessage(f"depthUpdate without {exc}: {str(data)[:200]}") from None
    if type(diff.first_id) is not int or type(diff.final_id) is not int or diff.first_id > diff.final_id:
        raise MalformedMessage(f"depthUpdate with bad update ids U={diff.first_id!r} u={diff.final_id!r}")
    return diff


def parse_snapshot(body, limit=None):
    """A DepthSnapshot from a REST /depth response body (already decoded)."""
    try:
        snapshot = DepthSnapshot(body["lastUpdateId"], body["bids"], body["asks"], limit)
    except (KeyError, TypeError) as exc:
        raise MalformedMessage(f"depth snapshot without {exc}: {str(body)[:200]}") from None
    if type(snapshot.last_update_id) is not int:
        raise MalformedMessage(f"depth snapshot with bad lastUpdateId {snapshot.last_update_id!r}")
    return snapshot


def parse_book_ticker(data):
    try:
        return BookTicker(data["s"], data["u"], float(data["b"]), float(data["a"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"bookTicker unusable ({exc}): {str(data)[:200]}") from None


def decode(raw):
    """Decode one raw message (bytes or str); MalformedMessage if it is not a JSON object."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON ({exc}): {raw[:120]!r}") from None
    if type(message) is not dict:
        raise MalformedMessage(f"not a JSON object: {raw[:120]!r}")
    return message


ENVELOPE = b'{"stream":"'  # how every combined-stream frame starts (web_socket_streams, "General WSS information")


def stream_data(raw):
    """The `data` object of a combined-stream frame."""
    data = decode(raw).get("data")
    if type(data) is not dict:
        raise MalformedMessage(f"stream frame without a data object: {raw[:200]!r}")
    return data


def stream_kind(stream):
    """'depth', 'bookTicker', or another stream type, from a combined-stream name."""
    _, _, kind = stream.partition("@")
    return "depth" if kind.startswith("depth") else kind


def kind_for_diff(diff):
    """Which sequencing rule a diff obeys when the venue is not stated: futures diffs carry `pu`."""
    return USDM if diff.prev_final_id is not None else SPOT
