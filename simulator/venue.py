"""One simulated venue under its URL prefix: its markets, the streams it publishes, its
connections, the desk account, rate-limit state and pending faults.
"""
import asyncio
import math
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

import orjson

from .book import StepDiff
from .catalog import VenueSpec
from .desk import DeskAccount
from .market import SyntheticMarket
from .protocol import PROTOCOLS

SLOW_CONSUMER_QUEUE = 20_000  # messages waiting for one connection before it is dropped
STALE_SNAPSHOT_AGE_S = 3  # a stale snapshot is this old: older than the slowest diff stream's events
REST_ERROR_STATUSES = (429, 418, 500, 502, 503, 504)


def now_ms() -> int:
    return int(time.time() * 1000)


def dumps(payload) -> str:
    return orjson.dumps(payload).decode()


@dataclass(eq=False)
class StreamConnection:
    """A market-stream or user-data socket; messages go out through its own queue and sender task."""

    ws: object
    combined: bool
    subscriptions: set = field(default_factory=set)
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    opened: float = field(default_factory=time.monotonic)
    closing: bool = False
    ws_api: bool = False  # user-data events wrapped as {"event": ...} (websocket_api_event_format.md)
    listen_key: str | None = None

    def send(self, text: str, not_before: float = 0.0) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= SLOW_CONSUMER_QUEUE:
            self.closing = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((not_before, text))

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(None)


@dataclass
class Faults:
    """Faults waiting to happen, counted down as they fire."""

    drop: dict = field(default_factory=lambda: defaultdict(int))  # (symbol, depth stream suffix) -> events
    duplicate: dict = field(default_factory=lambda: defaultdict(int))
    delay_ms: int = 0
    delay_count: int = 0
    malformed: int = 0
    unknown_event: int = 0
    rest_errors: list = field(default_factory=list)  # statuses, in order
    stale_snapshot: dict = field(default_factory=lambda: defaultdict(int))  # symbol -> snapshots


@dataclass
class RateState:
    window_start: float = 0.0
    used: int = 0
    warned: bool = False
    banned_until: float = 0.0


@dataclass
class ListenKey:
    key: str
    expires: float  # monotonic


class Venue:
    is_replay = False

    def __init__(self, spec: VenueSpec, *, seed: int, step_s: float, options):
        self.spec = spec
        self.name = spec.name
        self.protocol = PROTOCOLS[spec.market_type]
        self.options = options
        self.step_s = step_s
        scale = options.time_scale
        if spec.market_type == "spot":  # GET /sapi/v1/account/apiTradingStatus triggerCondition
            min_orders = {"UFR": 300, "IFER": 150, "GCR": 150}
        elif options.quant_min_orders:
            min_orders = dict.fromkeys(("UFR", "IFER", "GCR", "DR"), options.quant_min_orders)
        else:  # Binance's 2020 futures rules (DESIGN.md 'Order behaviour')
            min_orders = {"UFR": 10_000, "IFER": 5_000, "GCR": 5_000, "DR": 10_000}
        self.desk = DeskAccount(market_type=spec.market_type, maker_fee=spec.maker_fee, taker_fee=spec.taker_fee,
                                cycle_s=600 * scale, lock_s=options.lock_s * scale, min_orders=min_orders)
        self.desk.listeners.append(self._on_order_event)
        self.desk.created_ms = now_ms()
        self.markets = {
            m.symbol: SyntheticMarket(m, market_type=spec.market_type, desk=self.desk, seed=seed, step_s=step_s)
            for m in spec.markets
        }
        self.connections: set[StreamConnection] = set()
        self.user_connections: set[StreamConnection] = set()
        for market in self.markets.values():
            market.warm_up(now_ms())
        self.listen_keys: dict[str, ListenKey] = {}
        self.faults = Faults()
        self.rates: dict[str, RateState] = {}
        self.outage_until = 0.0
        self._acc: dict = {}  # (symbol, suffix) -> StepDiff accumulating for that stream
        self._last_final_id: dict = {}  # (symbol, suffix) -> u of the stream's previous event
        self._last_touch: dict = {}
        self._stale: dict = defaultdict(lambda: deque(maxlen=STALE_SNAPSHOT_AGE_S))  # symbol -> book copies, 1/s
        self._execution_id = 0
        self.steps = 0
        self.weight_limit = options.weight_limit or self.protocol.weight_limit

    # Publishing ------------------------------------------------------------------------------

    def subscribers(self, stream: str):
        return [c for c in self.connections if stream in c.subscriptions]

    def publish(self, stream: str, payload: dict | None = None, *, raw_data: str | None = None,
                raw_combined: str | None = None) -> int:
        """Send one event to every connection subscribed to `stream`; returns how many got it."""
        targets = self.subscribers(stream)
        if not targets:
            return 0
        data = raw_data if raw_data is not None else dumps(payload)
        combined = raw_combined if raw_combined is not None else f'{{"stream":"{stream}","data":{data}}}'
        not_before = 0.0
        if self.faults.delay_count > 0:
            self.faults.delay_count -= 1
            not_before = time.monotonic() + self.faults.delay_ms / 1000
        for conn in targets:
            conn.send(combined if conn.combined else data, not_before)
        self._inject_garbage(targets)
        return len(targets)

    def _inject_garbage(self, targets) -> None:
        if self.faults.malformed > 0:
            self.faults.malformed -= 1
            for conn in targets:
                conn.send('{"stream":"broken","data":{"e":"depthUpdate","E":')
        if self.faults.unknown_event > 0:
            self.faults.unknown_event -= 1
            event = {"e": "simUnknownEvent", "E": now_ms(), "note": "injected by the simulator"}
            for conn in targets:
                conn.send(dumps({"stream": "simunknown", "data": event}) if conn.combined else dumps(event))

    def stream_names(self, symbol: str) -> list[str]:
        low = symbol.lower()
        return [f"{low}@depth{s}" for s in self.protocol.depth_speeds] + [f"{low}@bookTicker", f"{low}@trade"]

    # The engine step -------------------------------------------------------------------------

    def step(self) -> None:
        self.steps += 1
        stamp = now_ms()
        for market in self.markets.values():
            market.step(stamp)
            self._emit(market, market.book.drain(), stamp, flush=False)
            if self.steps % max(1, round(1 / self.step_s)) == 0:
                self._stale[market.spec.symbol].append(market.book.copy_levels())

    def flush(self) -> None:
        """Send every partly accumulated diff now (pausing makes the streams catch up with the book)."""
        stamp = now_ms()
        for market in self.markets.values():
            self._emit(market, market.book.drain(), stamp, flush=True)

    def _emit(self, market: SyntheticMarket, diff: StepDiff | None, stamp: int, *, flush: bool) -> None:
        spec = market.spec
        low = spec.symbol.lower()
        for suffix, interval_ms in self.protocol.depth_speeds.items():
            key = (spec.symbol, suffix)
            if diff is not None:
                if key in self._acc:
                    self._acc[key].merge(StepDiff(diff.first_id, diff.last_id, dict(diff.bids), dict(diff.asks)))
                else:
                    self._acc[key] = StepDiff(diff.first_id, diff.last_id, dict(diff.bids), dict(diff.asks))
            every = max(1, round(interval_ms / 1000 / self.step_s))
            if key not in self._acc or not (flush or self.steps % every == 0):
                continue
            pending = self._acc.pop(key)
            previous = self._last_final_id.get(key, pending.first_id - 1)
            self._last_final_id[key] = pending.last_id
            stream = f"{low}@depth{suffix}"
            if self.faults.drop[key] > 0:
                self.faults.drop[key] -= 1
                continue
            if not self.subscribers(stream):
                continue
            event = self.protocol.depth_update(spec, pending, previous, stamp)
            self.publish(stream, event)
            if self.faults.duplicate[key] > 0:
                self.faults.duplicate[key] -= 1
                self.publish(stream, event)
        touch = (market.book.best_bid, market.book.best_ask)
        if touch != self._last_touch.get(spec.symbol) and None not in touch:
            self._last_touch[spec.symbol] = touch
            stream = f"{low}@bookTicker"
            if self.subscribers(stream):
                self.publish(stream, self.protocol.book_ticker(spec, market.book.update_id, *touch, stamp))
        for trade in market.trades:
            if self.subscribers(f"{low}@trade"):
                self.publish(f"{low}@trade", self.protocol.trade(spec, trade, stamp))
        market.trades.clear()

    def _on_order_event(self, kind, order, fill) -> None:
        if not self.user_connections:
            return
        self._execution_id += 1
        spec = self.markets[order.symbol].spec
        event = self.protocol.order_event(spec, kind, order, fill, now_ms(), self._execution_id)
        for conn in list(self.user_connections):
            self.send_user_event(conn, event)

    @staticmethod
    def send_user_event(conn: StreamConnection, event: dict) -> None:
        if conn.ws_api:
            conn.send(dumps({"event": event}))
        elif conn.combined:
            conn.send(dumps({"stream": conn.listen_key, "data": event}))
        else:
            conn.send(dumps(event))

    # Faults and outages ----------------------------------------------------------------------

    def add_fault(self, kind: str, *, symbol: str | None = None, count: int = 1, ms: int = 0,
                  status: int | None = None) -> None:
        symbols = [symbol] if symbol else list(self.markets)
        for sym in symbols:
            if sym not in self.markets:
                raise ValueError(f"Venue {self.name} has no symbol {sym!r}.")
        if kind in ("drop_diffs", "duplicate_diffs"):
            board = self.faults.drop if kind == "drop_diffs" else self.faults.duplicate
            for sym in symbols:
                for suffix in self.protocol.depth_speeds:
                    board[(sym, suffix)] += count
        elif kind == "delay_events":
            self.faults.delay_ms, self.faults.delay_count = ms, count
        elif kind == "malformed_json":
            self.faults.malformed += count
        elif kind == "unknown_event":
            self.faults.unknown_event += count
        elif kind == "close_sockets":
            self.close_connections()
        elif kind == "rest_error":
            if status not in REST_ERROR_STATUSES:
                raise ValueError(f"rest_error needs a status among {REST_ERROR_STATUSES}.")
            self.faults.rest_errors.extend([status] * count)
        elif kind == "stale_snapshot":
            for sym in symbols:
                self.faults.stale_snapshot[sym] += count
        elif kind == "outage":
            self.start_outage(ms / 1000)
        else:
            raise ValueError(f"Unknown fault kind {kind!r}.")

    def start_outage(self, seconds: float) -> None:
        self.outage_until = max(self.outage_until, time.monotonic() + seconds)
        self.close_connections()

    @property
    def in_outage(self) -> bool:
        return time.monotonic() < self.outage_until

    def close_connections(self) -> None:
        for conn in list(self.connections) + list(self.user_connections):
            conn.close()

    def depth_body(self, symbol: str, limit: int) -> dict:
        """A REST depth snapshot: the live book, or a copy from a moment ago when a fault asks for it."""
        if self.faults.stale_snapshot[symbol] > 0 and self._stale[symbol]:
            self.faults.stale_snapshot[symbol] -= 1
            update_id, bids, asks = self._stale[symbol][0]
            bids, asks = bids[:limit], asks[:limit]
        else:
            book = self.markets[symbol].book
            update_id, (bids, asks) = book.update_id, book.top(limit)
        return self.protocol.snapshot(self.markets[symbol].spec, update_id, bids, asks, now_ms())

    def true_book(self, symbol: str, limit: int) -> dict:
        """The book as it is (for /_sim/book), formatted like a snapshot."""
        book = self.markets[symbol].book
        return self.protocol.snapshot(self.markets[symbol].spec, book.update_id, *book.top(limit), now_ms())

    # Rate limits -----------------------------------------------------------------------------

    def charge(self, ip: str, weight: int) -> tuple[int, int | None, int | None]:
        """Count a request's weight: (used weight, HTTP status to refuse with or None, Retry-After)."""
        now = time.monotonic()
        window = self.options.weight_window_s
        state = self.rates.setdefault(ip, RateState(window_start=now))
        if now - state.window_start >= window:
            state.window_start, state.used, state.warned = now, 0, False
        if state.banned_until > now:
            return state.used, 418, math.ceil(state.banned_until - now)
        state.used += weight
        if state.used <= self.weight_limit:
            return state.used, None, None
        if state.warned:
            # binance_spot_api_docs_rest_api_limits.md: continuing after a 429 gets an IP ban (418).
            state.banned_until = now + self.options.ban_s
            return state.used, 418, math.ceil(self.options.ban_s)
        state.warned = True
        return state.used, 429, max(1, math.ceil(state.window_start + window - now))

    # Listen keys -----------------------------------------------------------------------------

    def new_listen_key(self) -> str:
        ttl = self.options.listen_key_ttl_s
        active = [k for k in self.listen_keys.values() if k.expires > time.monotonic()]
        if active and self.protocol.is_futures:
            # Start_User_Data_Stream.md: an active key is returned again and extended.
            active[0].expires = time.monotonic() + ttl
            return active[0].key
        key = secrets.token_hex(32)
        self.listen_keys[key] = ListenKey(key, time.monotonic() + ttl)
        return key

    def listen_key_valid(self, key: str) -> bool:
        entry = self.listen_keys.get(key)
        return entry is not None and entry.expires > time.monotonic()

    def expire_listen_keys(self) -> list[str]:
        expired = [k for k, v in self.listen_keys.items() if v.expires <= time.monotonic()]
        for key in expired:
            del self.listen_keys[key]
        return expired
