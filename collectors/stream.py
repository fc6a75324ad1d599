"""One Binance combined-stream WebSocket connection, kept alive.

Limits (reference/binance-api/binance_spot_api_docs_web_socket_streams.md 'WebSocket Limits';
derivatives_usds_margined_futures_websocket_market_streams.md):
- at most 1024 streams per connection;
- incoming messages (our SUBSCRIBE, PING and PONG frames) at most 5/s on spot, 10/s on futures,
  or the connection is dropped — subscriptions are batched and paced below that;
- a connection lives at most 24 h, so we reconnect on our own terms a little before;
- the server pings (every 20 s spot, 3 min futures) and expects a pong, which `websockets`
  answers itself; our own pings (every 20 s) detect a dead connection.
Reconnects wait a jittered exponential back-off capped at 30 s (DESIGN.md 'Bad input, faults').

Frames are handed over as `websockets` parses them (FrameConnection), as bytes: no recv() per
message, no per-message timeout, no UTF-8 decode before orjson (which validates UTF-8 itself).
At thousands of frames a second those were most of the stream's cost (bench/live.py).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import Frame, Opcode

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class StreamLimits:
    max_streams: int = 1024
    messages_per_s: float = 5.0
    max_age_s: float = 24 * 3600 - 15 * 60  # reconnect 15 min before the 24 h cut
    streams_per_subscribe: int = 200


SPOT_LIMITS = StreamLimits(messages_per_s=5.0)
USDM_LIMITS = StreamLimits(messages_per_s=10.0)


class Backoff:
    """Exponential back-off with full jitter: wait U(0, min(cap, base·2^n)). Reset after a healthy connection."""

    def __init__(self, *, base_s: float = 0.5, cap_s: float = MAX_BACKOFF_S, rng: random.Random | None = None):
        if not 0 < base_s <= cap_s <= MAX_BACKOFF_S:
            raise ValueError(f"back-off needs 0 < base ({base_s}) <= cap ({cap_s}) <= {MAX_BACKOFF_S} s")
        self.base_s, self.cap_s = base_s, cap_s
        self.attempt = 0
        self.rng = rng or random.Random()
        self.longest_wait_s = 0.0

    def next_wait(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.attempt, 30))
        self.attempt += 1
        wait = self.rng.uniform(ceiling / 2, ceiling)  # half-jitter keeps a floor so a storm still spreads out
        self.longest_wait_s = max(self.longest_wait_s, wait)
        return wait

    def reset(self) -> None:
        self.attempt = 0


def chunk_streams(streams: Sequence[str], limits: StreamLimits) -> list[list[str]]:
    """Split stream names into groups of at most the per-connection limit."""
    return [list(streams[i:i + limits.max_streams]) for i in range(0, len(streams), limits.max_streams)]


class FrameConnection(ClientConnection):
    """A client connection that passes each data frame to `on_data` from the protocol callback.

    The stock connection queues frames for recv(), which costs a future, a task wake-up and a
    UTF-8 decode per message; here they go straight to the consumer. Control frames (ping, pong,
    close) and the handshake are handled by the stock code.
    """

    on_data: Callable[[Frame], None] | None = None

    def process_event(self, event) -> None:
        on_data = self.on_data
        if on_data is not None and type(event) is Frame and event.opcode in _DATA_OPCODES:
            on_data(event)
        else:
            super().process_event(event)


_DATA_OPCODES = frozenset((Opcode.TEXT, Opcode.BINARY, Opcode.CONT))
_CONTROL_REPLY_PREFIXES = (b'{"result":', b'{"id":')


class CombinedStream:
    """Connects to <ws_base>/stream, SUBSCRIBEs to `streams`, hands every data frame to `on_frame`.

    on_frame(raw: bytes, receive_ns: int): called in the loop for each frame (data or not:
    the caller decodes; control replies {"result": null, "id": n} are filtered here). Frames
    that arrive while subscribing are held and handed over, in order, right after on_up().
    An exception from on_frame ends the session and propagates out of run(), as it would from
    a receive loop.
    on_up(): after the subscriptions were sent. on_down(reason): when the connection is lost —
    the caller must treat every book of this connection as unknown until it resyncs.
    """

    def __init__(
        self,
        ws_base_url: str,
        streams: Sequence[str],
        *,
        on_frame: Callable[[str | bytes, int], None],
        on_up: Callable[[], None] = lambda: None,
        on_down: Callable[[str], None] = lambda reason: None,
        limits: StreamLimits = SPOT_LIMITS,
        backoff: Backoff | None = None,
        healthy_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        ping_interval_s: float = 20.0,
    ):
        if len(streams) > limits.max_streams:
            raise ValueError(f"{len(streams)} streams exceed the {limits.max_streams} a connection may hold")
        self.url = ws_base_url.rstrip("/") + "/stream"
        self.streams = list(streams)
        self.on_frame, self.on_up, self.on_down = on_frame, on_up, on_down
        self.limits = limits
        self.backoff = backoff or Backoff()
        self.healthy_after_s = healthy_after_s
        self.open_timeout_s, self.ping_interval_s = open_timeout_s, ping_interval_s
        self.connects = 0
        self.disconnects = 0
        self.control_replies = 0
        self.waits: list[float] = []
        self._ws = None

    async def run(self) -> None:
        """Run until cancelled."""
        while True:
            reason = await self._session()
            self.disconnects += 1
            self.on_down(reason)
            wait = self.backoff.next_wait()
            self.waits.append(wait)
            log.warning("stream %s: %s; reconnecting in %.1f s", self.url, reason, wait)
            await asyncio.sleep(wait)

    async def drop(self) -> None:
        """Close the current connection (the run loop reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    async def _session(self) -> str:
        try:
            async with websockets.connect(
                self.url, open_timeout=self.open_timeout_s, ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_interval_s, close_timeout=2, max_size=2 ** 24, max_queue=4096,
                compression=None, create_connection=FrameConnection,
            ) as ws:
                self._ws = ws
                self.connects += 1
                opened = time.monotonic()
                delivery = _Delivery(self, ws)
                ws.on_data = delivery.frame
                await self._subscribe(ws)
                self.on_up()
                delivery.release()
                return await self._receive(ws, opened, delivery)
        except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return f"cannot connect ({type(exc).__name__}: {exc})"
        except ConnectionClosed as exc:
            return f"closed ({exc})"
        finally:
            self._ws = None

    async def _subscribe(self, ws) -> None:
        # Leave one message per second for ping/pong frames.
        interval = 1.0 / max(1.0, self.limits.messages_per_s - 1)
        step = self.limits.streams_per_subscribe
        for n, start in enumerate(range(0, len(self.streams), step)):
            if n:
                await asyncio.sleep(interval)
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": self.streams[start:start + step], "id": n + 1}).decode())

    async def _receive(self, ws, opened: float, delivery: _Delivery) -> str:
        """Frames arrive through `delivery`; this waits for the connection to end or to reach its age limit."""
        remaining = opened + self.limits.max_age_s - time.monotonic()
        try:
            await asyncio.wait_for(ws.wait_closed(), timeout=max(0.0, remaining))
        except asyncio.TimeoutError:
            await ws.close()
            return "proactive reconnect before the 24 h connection limit"
        if delivery.failure is not None:
            raise delivery.failure
        raise ws.close_exc


class _Delivery:
    """Hands one connection's data frames to CombinedStream.on_frame (see FrameConnection)."""

    __slots__ = ("stream", "ws", "held", "fragments", "healthy_at_ns", "failure")

    def __init__(self, stream: CombinedStream, ws):
        self.stream, self.ws = stream, ws
        self.held: list | None = []  # frames received before on_up(); None once released
        self.fragments: list[bytes] = []
        self.healthy_at_ns = time.time_ns() + int(stream.healthy_after_s * 1e9)
        self.failure: BaseException | None = None

    def frame(self, frame: Frame) -> None:
        receive_ns = time.time_ns()
        if self.failure is not None:
            return
        if frame.opcode is Opcode.CONT or not frame.fin:  # a fragmented message (Binance sends none)
            self.fragments.append(frame.data)
            if not frame.fin:
                return
            data, self.fragments = b"".join(self.fragments), []
        else:
            data = bytes(frame.data)  # the parser hands out bytearray slices
        stream = self.stream
        if receive_ns >= self.healthy_at_ns:
            self.healthy_at_ns = 1 << 62  # once per connection
            stream.backoff.reset()
        if data.startswith(_CONTROL_REPLY_PREFIXES):
            stream.control_replies += 1
            return
        if self.held is not None:
            self.held.append((data, receive_ns))
            return
        try:
            stream.on_frame(data, receive_ns)
        except BaseException as exc:  # end the session with it: no frame after it is applied
            self.failure = exc
            self.ws.transport.abort()

    def release(self) -> None:
        held, self.held = self.held, None
        for data, receive_ns in held:
            if self.failure is not None:
                return
            try:
                self.stream.on_frame(data, receive_ns)
            except BaseException as exc:
                self.failure = exc
                self.ws.transport.abort()
