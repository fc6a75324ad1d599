"""The collector of one shard of markets: streams → local books → 1 s samples → sink and browsers.

Per market it drives the documented sync procedure (collectors.sync.BookSync): diffs from the
combined stream, REST snapshots when the state machine asks for one. Every second (exchange time,
our clock corrected by the measured offset) each market gives a Sample (collectors.sampler); the
rows go to the sink (COPY, buffered through outages) and one coalesced update per market goes to
the Channels layer from this loop. A book on a connection that is down, resyncing or crossed
gives an invalid sample: that second is unknown time, never compliant (DESIGN.md 'Uptime').

Nothing slow runs on the loop: the sink flushes in its own thread, channel-layer sends are
bounded by a timeout and skipped while the previous round is still out, snapshots are fetched
in tasks limited in number and by the venue's request weight.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from asgiref.sync import sync_to_async
from django.conf import settings

from collectors import binance
from collectors.api_health import recorder_for
from collectors.capture import CaptureWriter
from collectors.leases import run_while_held
from collectors.publish import group_send_many
from collectors.rest import BinanceRest, ExchangeError, RateLimited, Unreachable
from collectors.sampler import Sampler, utc_from_ms
from collectors.sink import TimeSeriesSink
from collectors.stream import SPOT_LIMITS, USDM_LIMITS, Backoff, CombinedStream, StreamLimits, chunk_streams
from collectors.sync import BookSync, Outcome
from config.env import envfloat, envint
from compliance.models import MarketType, QuoteConversion

log = logging.getLogger(__name__)

SHARD_SIZE = envint("COLLECTOR_SHARD_SIZE", 200)
# REQUEST_WEIGHT per minute until exchangeInfo's rateLimits say otherwise: spot 6000, USDⓈ-M 2400.
# Snapshots stop at 80 % so the desk's own trading keeps headroom.
WEIGHT_LIMIT = {MarketType.SPOT: 6000, MarketType.USDM: 2400}
EXCHANGE_INFO_PATH = {MarketType.SPOT: "/api/v3/exchangeInfo", MarketType.USDM: "/fapi/v1/exchangeInfo"}
WEIGHT_SHARE = 0.8
TIME_PATH = {MarketType.SPOT: "/api/v3/time", MarketType.USDM: "/fapi/v1/time"}
STREAM_LIMITS = {MarketType.SPOT: SPOT_LIMITS, MarketType.USDM: USDM_LIMITS}
CLOCK_RESYNC_S = 600
SAMPLING_CHUNK = 50  # markets sampled between two turns of the event loop
# A market's top-N evidence every minute, on a second of its own (market id mod 60): all markets
# on the same second made that second's flush several times slower than the others, and the
# slowest 1 % of writes.
EVIDENCE_EVERY_S = 60
OWN_QUOTES_REFRESH_S = 2.0
GIL_SWITCH_INTERVAL_S = 0.0005  # run_collector  # own orders come from the user-data collector through the database


_OUTCOME_NAMES = {outcome: outcome.value for outcome in Outcome}  # Enum.value is a slow descriptor


@dataclass(frozen=True)
class MarketSpec:
    market_id: int
    symbol: str
    band_pct: float = 2.0
    band_reference: str = "mid"
    slippage_usd: float = 10_000.0
    quote_conversion: str = QuoteConversion.STABLE
    conversion_market_id: int | None = None


@dataclass(frozen=True)
class Shard:
    name: str
    venue_id: int
    market_type: str
    rest_base_url: str
    ws_base_url: str
    markets: tuple[MarketSpec, ...]


def _market_spec(market, now) -> MarketSpec:
    from compliance.selectors import NoObligation, obligation_in_force

    try:
        terms = obligation_in_force(market_id=market.pk, at=now)
        band, reference, slippage = float(terms.depth_band_pct), terms.depth_reference, float(terms.slippage_order_usd)
    except NoObligation:
        band, reference, slippage = 2.0, "mid", 10_000.0
    return MarketSpec(
        market.pk, market.symbol, band, "touch" if reference == "touch" else "mid", slippage,
        market.quote_conversion, market.conversion_market_id,
    )


def shard_of(name: str, venue, markets, *, now=None) -> Shard:
    from django.utils import timezone

    now = now or timezone.now()
    return Shard(name, venue.pk, venue.market_type, venue.rest_base_url, venue.ws_base_url,
                 tuple(_market_spec(m, now) for m in markets))


def plan_shards(*, shard_size: int | None = None) -> list[Shard]:
    """Active markets per venue, in chunks; a market and its conversion market share a shard."""
    from django.utils import timezone

    from compliance.selectors import active_markets

    size = shard_size or SHARD_SIZE
    now = timezone.now()
    by_venue: dict = {}
    for market in active_markets().order_by("venue_id", "pk"):
        by_venue.setdefault(market.venue, []).append(market)
    shards = []
    for venue, markets in by_venue.items():
        if venue.market_type not in STREAM_LIMITS:
            continue
        # Conversion markets first, so a chunk boundary rarely separates one from its users.
        used_for_conversion = {m.conversion_market_id for m in markets if m.conversion_market_id}
        ordered = sorted(markets, key=lambda m: (m.pk not in used_for_conversion, m.pk))
        for index, start in enumerate(range(0, len(ordered), size)):
            chunk = ordered[start:start + size]
            needed = {c.conversion_market_id for c in chunk} - {c.pk for c in chunk}
            shards.append(shard_of(f"{venue.name}#{index}", venue, chunk + [m for m in ordered if m.pk in needed], now=now))
    return shards


def load_shard(name: str) -> Shard | None:
    return next((s for s in plan_shards() if s.name == name), None)


@dataclass
class MarketState:
    spec: MarketSpec
    kind: binance.BinanceMarketKind
    sync: BookSync
    sampler: Sampler
    connected: bool = False
    snapshot_task: asyncio.Task | None = None
    last_event_ms: int | None = None
    counts: Counter = field(default_factory=Counter)


class ShardRunner:
    def __init__(
        self,
        shard: Shard,
        *,
        sink: TimeSeriesSink,
        channel_layer=None,
        capture_dir: Path | None = None,
        limits: StreamLimits | None = None,
        backoff_factory=Backoff,
        publish_timeout_s: float = 0.5,
        snapshot_concurrency: int = 4,
        record_api_calls: bool = True,
    ):
        self.shard = shard
        self.sink = sink
        self.channel_layer = channel_layer
        self.capture_dir = capture_dir
        self.limits = limits or STREAM_LIMITS[shard.market_type]
        self.backoff_factory = backoff_factory
        self.publish_timeout_s = publish_timeout_s
        kind = binance.USDM if shard.market_type == MarketType.USDM else binance.SPOT
        self.markets: dict[str, MarketState] = {
            m.symbol.upper(): MarketState(
                m, kind, BookSync(chained=kind.chained),
                # Evidence is due whenever asked (evidence_every_s=1): the runner spreads it (EVIDENCE_EVERY_S).
                Sampler(m.market_id, band_pct=m.band_pct, band_reference=m.band_reference, slippage_usd=m.slippage_usd,
                        evidence_every_s=1),
            )
            for m in shard.markets
        }
        self.by_id = {state.spec.market_id: state for state in self.markets.values()}
        self._depth_streams = frozenset(state.kind.depth_stream(state.spec.symbol) for state in self.markets.values())
        self.rest = BinanceRest(
            shard.rest_base_url, time_path=TIME_PATH[shard.market_type],
            recorder=recorder_for(shard.venue_id) if record_api_calls else None,
        )
        self.streams: list[CombinedStream] = []
        self.counts: Counter = Counter()
        # Lags, for health and bench/live.py: exchange event time → applied to the book (every 8th
        # event), and a sample's second → its commit.
        self.event_lag_ms: deque = deque(maxlen=50_000)
        self.sample_lag_ms: deque = deque(maxlen=10_000)
        self.sampling_ms: deque = deque(maxlen=10_000)  # loop time of one second's sampling, all markets
        self.weight_limit = WEIGHT_LIMIT.get(shard.market_type, 1200)
        self._snapshot_slots = asyncio.Semaphore(snapshot_concurrency)
        self._snapshot_backoff = backoff_factory()
        self._sink_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{shard.name}")
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"reads-{shard.name}")
        self._flushing: asyncio.Future | None = None
        self._unwritten_seconds: list[int] = []  # seconds sampled whose rows no flush has committed yet
        self._publishing: asyncio.Task | None = None
        self._capture: CaptureWriter | None = None
        self.own: dict = {}  # market_id -> OwnQuotes, for markets whose desk orders are known
        self._tasks: list[asyncio.Task] = []

    # -- running ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        if self.capture_dir is not None:
            self.capture_dir.mkdir(parents=True, exist_ok=True)
            self._capture = CaptureWriter(self.capture_dir / f"{self.shard.name.replace('#', '_')}-{time.strftime('%Y%m%dT%H%M%S')}.gz")
        states = list(self.markets.values())
        for group in chunk_streams([s.kind.depth_stream(s.spec.symbol) for s in states], self.limits):
            members = [self.markets[name.split("@", 1)[0].upper()] for name in group]
            self.streams.append(
                CombinedStream(
                    self.shard.ws_base_url, group, on_frame=self._on_frame,
                    on_up=lambda members=members: self._connection_up(members),
                    on_down=lambda reason, members=members: self._connection_down(members, reason),
                    limits=self.limits, backoff=self.backoff_factory(),
                )
            )
        self._tasks = [asyncio.create_task(s.run(), name=f"stream-{i}") for i, s in enumerate(self.streams)]
        self._tasks.append(asyncio.create_task(self._clock_loop(), name="clock"))
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="tick"))
        self._tasks.append(asyncio.create_task(self._own_quotes_loop(), name="own-quotes"))
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()
        finally:
            stopper.cancel()
            await self._shutdown()

    async def _shutdown(self) -> None:
        tasks = self._tasks + [s.snapshot_task for s in self.markets.values() if s.snapshot_task]
        if self._publishing is not None:
            tasks.append(self._publishing)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._sink_thread, self.sink.close)
        self._sink_thread.shutdown(wait=False)
        await loop.run_in_executor(self._db_thread, _close_db_connection)
        self._db_thread.shutdown(wait=False)
        await self.rest.close()
        if self._capture is not None:
            self._capture.close()

    # -- stream frames ------------------------------------------------------------------
    def _on_frame(self, raw, receive_ns: int) -> None:
        if self._capture is not None:
            self._capture.write(receive_ns, raw)
        self.counts["messages"] += 1
        try:
            message = binance.decode(raw)
            stream, data = message.get("stream"), message.get("data")
            if not isinstance(stream, str) or not isinstance(data, dict):
                raise binance.MalformedMessage(f"not a combined-stream frame: {str(message)[:200]}")
            # The shard's own depth streams by name; anything else is classified as before.
            if stream not in self._depth_streams and binance.stream_kind(stream) != "depth":
                self.counts["other_streams"] += 1
                return
            diff = binance.parse_diff(data)
            state = self.markets.get(diff.symbol) or self.markets.get(diff.symbol.upper())
            if state is None:
                raise binance.MalformedMessage(f"depthUpdate for a symbol this shard does not collect: {diff.symbol!r}")
        except binance.MalformedMessage as exc:
            self.counts["malformed"] += 1
            if self.counts["malformed"] <= 20 or self.counts["malformed"] % 1000 == 0:
                log.warning("shard %s: malformed message #%d skipped: %s", self.shard.name, self.counts["malformed"], exc)
            return
        try:
            outcome = state.sync.diff(diff)
        except (ValueError, TypeError, KeyError) as exc:  # unusable price/qty inside a well-formed frame
            self.counts["malformed"] += 1
            log.warning("shard %s %s: unusable depth levels skipped, resyncing: %s", self.shard.name, diff.symbol, exc)
            state.sync = BookSync(chained=state.kind.chained)
            return
        state.counts[_OUTCOME_NAMES[outcome]] += 1
        state.last_event_ms = diff.event_time_ms
        if not self.counts["messages"] & 7 and diff.event_time_ms:
            self.event_lag_ms.append(time.time() * 1000 + self.rest.clock_offset_ms - diff.event_time_ms)
        if outcome is Outcome.APPLIED or outcome is Outcome.STALE:
            return  # only a synced book applies or ignores a diff: no snapshot wanted
        if outcome is Outcome.RESYNC:
            self.counts["resyncs"] += 1
        if state.sync.needs_snapshot:
            self._want_snapshot(state)

    def _connection_up(self, members: list[MarketState]) -> None:
        for state in members:
            state.connected = True

    def _connection_down(self, members: list[MarketState], reason: str) -> None:
        # Events may be lost while we are away: each book starts over from a fresh snapshot.
        self.counts["disconnects"] += 1
        for state in members:
            state.connected = False
            if state.snapshot_task is not None:
                state.snapshot_task.cancel()
                state.snapshot_task = None
            state.sync = BookSync(chained=state.kind.chained)

    # -- snapshots ----------------------------------------------------------------------
    def _want_snapshot(self, state: MarketState) -> None:
        if state.snapshot_task is None or state.snapshot_task.done():
            state.snapshot_task = asyncio.create_task(self._fetch_snapshot(state), name=f"snapshot-{state.spec.symbol}")

    async def _fetch_snapshot(self, state: MarketState) -> None:
        path, params = state.kind.snapshot_request(state.spec.symbol)
        while state.sync.needs_snapshot:
            async with self._snapshot_slots:
                used = self.rest.used_weight_1m
                if used is not None and used >= self.weight_limit * WEIGHT_SHARE:
                    # The weight window is the calendar minute (rest_api_limits.md).
                    await asyncio.sleep(60 - time.time() % 60 + 0.1)
                    self.rest.used_weight_1m = None
                try:
                    body = await self.rest.request("GET", path, params)
                    snapshot = binance.parse_snapshot(body, params.get("limit"))
                except (RateLimited, Unreachable, ExchangeError, binance.MalformedMessage) as exc:
                    self.counts["snapshot_errors"] += 1
                    wait = self._snapshot_backoff.next_wait() if not isinstance(exc, RateLimited) else 0
                    log.warning("shard %s %s: snapshot failed (%s); retrying", self.shard.name, state.spec.symbol, exc)
                    await asyncio.sleep(wait)  # a RateLimited client waits out Retry-After itself
                    continue
            self.counts["snapshots"] += 1
            outcome = state.sync.snapshot(snapshot)
            state.counts[f"snapshot_{outcome.value}"] += 1
            if outcome is Outcome.SYNCED:
                self._snapshot_backoff.reset()
            elif outcome is Outcome.SNAPSHOT_TOO_OLD:
                await asyncio.sleep(0.2)  # the stream has moved on; let events buffer before the next one
        state.snapshot_task = None

    # -- clock and limits -----------------------------------------------------------------
    async def _read_weight_limit(self) -> None:
        """The venue's REQUEST_WEIGHT per minute from exchangeInfo's rateLimits (one symbol keeps it small)."""
        params = {"symbol": self.shard.markets[0].symbol} if self.shard.markets else {}
        info = await self.rest.request("GET", EXCHANGE_INFO_PATH[self.shard.market_type], params)
        for limit in info.get("rateLimits", []) if isinstance(info, dict) else []:
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.weight_limit = int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1)))

    async def _clock_loop(self) -> None:
        backoff = self.backoff_factory()
        limits_known = False
        while True:
            try:
                if not limits_known:
                    await self._read_weight_limit()
                    limits_known = True
                await self.rest.sync_clock()
                backoff.reset()
                await asyncio.sleep(CLOCK_RESYNC_S)
            except (RateLimited, Unreachable, ExchangeError, KeyError, TypeError, ValueError) as exc:
                log.warning("shard %s: cannot read the exchange's server time or limits (%s)", self.shard.name, exc)
                await asyncio.sleep(backoff.next_wait())

    def exchange_now_ms(self) -> float:
        return time.time() * 1000 + self.rest.clock_offset_ms

    # -- every second -------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        next_ms = (self.exchange_now_ms() // 1000 + 1) * 1000
        while True:
            await asyncio.sleep(max(0.0, (next_ms - self.exchange_now_ms()) / 1000))
            now_ms = self.exchange_now_ms()
            if now_ms - next_ms > 5000:  # the loop was starved or the clock jumped: skip, do not backfill guesses
                self.counts["skipped_seconds"] += int((now_ms - next_ms) // 1000)
                next_ms = (now_ms // 1000) * 1000
            await self._take_samples(int(next_ms))
            next_ms += 1000

    async def _take_samples(self, ts_ms: int) -> None:
        started = time.perf_counter()
        samples, evidence = [], []
        second = ts_ms // 1000
        for n, state in enumerate(self.markets.values(), 1):
            if not n % SAMPLING_CHUNK:
                # Let the stream's frames in between chunks: with hundreds of markets one pass
                # would otherwise hold every book's events back for its whole duration.
                await asyncio.sleep(0)
            if state.connected:
                sample = state.sampler.sample(state.sync, ts_ms, quote_usd=self._quote_usd(state),
                                              own=self.own.get(state.spec.market_id))
            else:
                sample = state.sampler.invalid(utc_from_ms(ts_ms))  # connection down: unknown time
            samples.append(sample)
            if state.connected and not (second + state.spec.market_id) % EVIDENCE_EVERY_S:
                proof = state.sampler.evidence(state.sync, ts_ms)
                if proof is not None:
                    evidence.append(proof)
        self.sink.accept_samples(samples)
        if evidence:
            self.sink.accept_snapshots(evidence)
        self.counts["samples"] += len(samples)
        self.counts["valid_samples"] += sum(1 for s in samples if s.valid)
        self.sampling_ms.append((time.perf_counter() - started) * 1000)
        self._flush(ts_ms)
        self._publish(samples)

    async def _own_quotes_loop(self) -> None:
        from django.db import DatabaseError, connection

        from collectors.userdata import own_quotes

        def load(market_ids):
            try:
                return own_quotes(market_ids)
            except DatabaseError:
                connection.close()  # this thread's broken connection must not be reused
                raise

        while True:
            try:
                self.own = await asyncio.get_running_loop().run_in_executor(self._db_thread, load, list(self.by_id))
            except DatabaseError as exc:
                self.own = {}  # not known now: own-quote metrics stay empty rather than stale
                self.counts["own_quote_errors"] += 1
                log.warning("shard %s: own orders not refreshed (%s)", self.shard.name, exc)
            await asyncio.sleep(OWN_QUOTES_REFRESH_S)

    def _quote_usd(self, state: MarketState) -> float | None:
        if state.spec.quote_conversion == QuoteConversion.STABLE:
            return 1.0
        other = self.by_id.get(state.spec.conversion_market_id)
        if other is None or not other.connected or not other.sync.synced:
            return None
        touch = other.sync.book.touch()
        if None in touch:
            return None
        return (touch[0] + touch[1]) / 2

    def _flush(self, ts_ms: int) -> None:
        self._unwritten_seconds.append(ts_ms)
        if self._flushing is not None and not self._flushing.done():
            self.counts["flush_busy"] += 1  # this second's rows go with the next flush
            return
        seconds, self._unwritten_seconds = self._unwritten_seconds, []
        loop = asyncio.get_running_loop()
        self._flushing = loop.run_in_executor(self._sink_thread, self.sink.flush)
        self._flushing.add_done_callback(lambda f, seconds=seconds: self._flushed(f, seconds))

    def _flushed(self, future, seconds: list[int]) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            self.counts["flush_errors"] += 1
            log.error("shard %s: sink flush raised %r", self.shard.name, future.exception())
        elif future.result():
            # Every second whose rows this flush committed, a second that waited behind a busy
            # flush included: its lag is what it waited.
            now_ms = time.time() * 1000 + self.rest.clock_offset_ms
            self.sample_lag_ms.extend(now_ms - ts_ms for ts_ms in seconds)
            return
        self._unwritten_seconds[:0] = seconds  # not written (buffered or spilled): still waiting

    # -- live updates -------------------------------------------------------------------
    def _publish(self, samples) -> None:
        if self.channel_layer is None:
            return
        if self._publishing is not None and not self._publishing.done():
            self.counts["publish_skipped"] += 1  # coalesced: the browser gets the next second's values
            return
        self._publishing = asyncio.create_task(self._send_updates(samples))

    async def _send_updates(self, samples) -> None:
        try:
            await asyncio.wait_for(self._send_all(samples), timeout=self.publish_timeout_s)
            self.counts["published"] += len(samples)
        except Exception as exc:  # any channel-layer trouble: count it and carry on collecting
            self.counts["publish_errors"] += 1
            if self.counts["publish_errors"] <= 5 or self.counts["publish_errors"] % 100 == 0:
                log.warning("shard %s: live update not sent (%s: %s)", self.shard.name, type(exc).__name__, exc)

    async def _send_all(self, samples) -> None:
        # One pipeline of PUBLISHes for the whole second (collectors.publish), not an awaited
        # round trip per message.
        messages = []
        for n, sample in enumerate(samples, 1):
            if not n % SAMPLING_CHUNK:
                await asyncio.sleep(0)  # let stream frames in, as while sampling
            payload = sample._asdict()
            payload["ts"] = sample.ts.isoformat()
            message = {"type": "market.update", "payload": payload}
            messages.append(("overview", message))
            messages.append((f"market.{sample.market_id}", message))
        await group_send_many(self.channel_layer, messages)

    # -- health -------------------------------------------------------------------------
    def status(self) -> dict:
        measured = self.rest.clock_measured_at is not None
        return {
            "venue_id": self.shard.venue_id,
            # Signature errors (-1021) start with clock drift: the dashboard shows the offset per venue.
            "clock_offset_ms": round(self.rest.clock_offset_ms, 1) if measured else None,
            "clock_measured_at": self.rest.clock_measured_at,
            "markets": len(self.markets),
            "synced": sum(1 for s in self.markets.values() if s.connected and s.sync.synced),
            "messages": self.counts["messages"],
            "malformed": self.counts["malformed"],
            "resyncs": self.counts["resyncs"],
            "disconnects": self.counts["disconnects"],
            "sink_failing": self.sink.failing_since is not None,
            "sink_pending": self.sink.pending_rows(),
            "event_lag_p99_ms": _p99(list(self.event_lag_ms)[-1000:]),
            "write_lag_p99_ms": _p99(list(self.sample_lag_ms)[-100:]),
        }


def _p99(values: list) -> float | None:
    if not values:
        return None
    values.sort()
    return round(values[min(len(values) - 1, int(len(values) * 0.99))], 1)


def run_collector(coro):
    """Run a collector's coroutine to completion on a new uvloop event loop (as asyncio.run).

    uvloop's loop (Cython, libuv) costs a fraction of the stock loop per callback and socket
    read, which a collector pays thousands of times a second (bench/live.py). The GIL switch
    interval is shortened for the process: the sink's thread gives the GIL up at every libpq
    call and, with the default 5 ms, waits that long to get it back from a busy loop each time —
    a flush of 1,000 rows took ~4× its own time, and stream frames waited behind it too.

    What the process has loaded by now (Django, psycopg, the app's modules: hundreds of
    thousands of objects that live as long as the process) is moved out of the collector's
    sight with gc.freeze(): a full collection otherwise walks all of it, a 140 ms pause of the
    loop at 500 markets that was the worst second of the write lag (bench/live.py)."""
    sys.setswitchinterval(envfloat("COLLECTOR_SWITCH_INTERVAL_S", GIL_SWITCH_INTERVAL_S))
    gc.collect()
    gc.freeze()
    return asyncio.run(coro, loop_factory=uvloop.new_event_loop)


def _close_db_connection() -> None:
    from django.db import connection

    connection.close()


async def run_shard(shard: Shard | str, *, lease=None, stop: asyncio.Event | None = None, capture_dir: Path | None = None) -> None:
    """Collect one shard until stopped (or its lease is lost): the entry point of the task and the command."""
    from channels.layers import get_channel_layer

    if isinstance(shard, str):
        name = shard
        shard = await sync_to_async(load_shard)(name)
        if shard is None:
            raise LookupError(f"no shard named {name!r} (markets changed?)")
    name = shard.name
    sink = TimeSeriesSink(name=name.replace("#", "_"))
    runner = ShardRunner(shard, sink=sink, channel_layer=get_channel_layer(), capture_dir=capture_dir)
    log.info("shard %s: collecting %d markets from %s", name, len(shard.markets), shard.ws_base_url)
    if lease is None:
        await runner.run(stop)
    else:
        await run_while_held(lease, runner.run(stop), status=runner.status)
