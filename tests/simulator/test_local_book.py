"""A client following Binance's documented local-book procedure rebuilds the simulator's true book.

The reference client here is written from the docs alone, independent of the product's collector:
spot: binance_spot_api_docs_web_socket_streams.md 'How to manage a local order book correctly';
futures: derivatives_usds_margined_futures_websocket_market_streams_How_to_manage_a_local_order_book_correctly.md.
"""
import asyncio
from decimal import Decimal

import orjson
import pytest


class ReferenceBook:
    """Local book of one symbol, kept by the documented procedure; counts resyncs and gaps."""

    def __init__(self, running, venue: str, symbol: str, *, futures: bool, stream_suffix: str):
        self.running, self.venue, self.symbol, self.futures = running, venue, symbol, futures
        self.stream = f"{symbol.lower()}@depth{stream_suffix}"
        self.bids: dict = {}
        self.asks: dict = {}
        self.update_id: int | None = None
        self.previous_u: int | None = None
        self.resyncs = 0
        self.gaps = 0
        self.stale_snapshots = 0
        self.events: asyncio.Queue = asyncio.Queue()
        self.first_u_seen: list[int] = []

    async def connect(self):
        self.ws = await self.running.session.ws_connect(f"{self.running.ws_base}/{self.venue}/ws/{self.stream}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for msg in self.ws:
            await self.events.put(orjson.loads(msg.data))

    async def close(self):
        self.reader.cancel()
        await self.ws.close()

    async def _snapshot(self):
        path = "/fapi/v1/depth" if self.futures else "/api/v3/depth"
        limit = 1000 if self.futures else 5000
        status, body, _ = await self.running.get(f"/{self.venue}{path}?symbol={self.symbol}&limit={limit}")
        assert status == 200, body
        return body

    async def synchronise(self):
        """Steps 2-6: buffer, snapshot (again while it is older than the first buffered event), align."""
        buffered = [await self.events.get()]
        first_u = buffered[0]["U"]
        while True:
            snapshot = await self._snapshot()
            last_id = snapshot["lastUpdateId"]
            if last_id >= first_u or self.futures:
                break
            self.stale_snapshots += 1
        if self.futures and last_id < first_u:
            self.stale_snapshots += 1
            return await self.resync_from_scratch()
        while True:  # buffer until an event reaches past the snapshot
            while not self.events.empty():
                buffered.append(self.events.get_nowait())
            if buffered[-1]["u"] >= last_id + (0 if self.futures else 1):
                break
            buffered.append(await self.events.get())
        if self.futures:
            buffered = [e for e in buffered if e["u"] >= last_id]  # step 4: drop u < lastUpdateId
            assert buffered[0]["U"] <= last_id <= buffered[0]["u"]  # step 5
        else:
            buffered = [e for e in buffered if e["u"] > last_id]  # step 5: discard u <= lastUpdateId
            assert buffered[0]["U"] <= last_id + 1 <= buffered[0]["u"]
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.update_id, self.previous_u = last_id, None
        for event in buffered:
            if not self.apply(event, first=event is buffered[0]):
                return await self.resync_from_scratch()

    async def resync_from_scratch(self):
        self.resyncs += 1
        while not self.events.empty():  # the documented restart: drop the local book and buffer afresh
            self.events.get_nowait()
        await self.synchronise()

    def apply(self, event, *, first=False) -> bool:
        """The update procedure; False when the sequence broke and the book must be rebuilt."""
        if event["u"] <= self.update_id:
            return True  # older than the book (or a duplicate): ignore
        if self.futures:
            if not first and event["pu"] != self.previous_u:
                self.gaps += 1
                return False
        elif event["U"] > self.update_id + 1:
            # The docs say "U > the local update ID"; the local id is the previous u, so a
            # continuous stream has U == id + 1 and a gap is U > id + 1.
            self.gaps += 1
            return False
        for side, levels in (("b", self.bids), ("a", self.asks)):
            for price, qty in event[side]:
                if Decimal(qty) == 0:
                    levels.pop(Decimal(price), None)
                else:
                    levels[Decimal(price)] = Decimal(qty)
        self.update_id = self.previous_u = event["u"]
        return True

    async def follow(self, seconds: float):
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                event = await asyncio.wait_for(self.events.get(), left)
            except asyncio.TimeoutError:
                return
            if not self.apply(event):
                await self.resync_from_scratch()

    async def catch_up(self, target_id: int):
        while self.update_id < target_id:
            event = await asyncio.wait_for(self.events.get(), 5)
            if not self.apply(event):
                await self.resync_from_scratch()
        assert self.update_id == target_id

    def as_levels(self):
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        return bids, asks


def truth_levels(body):
    return ([(Decimal(p), Decimal(q)) for p, q in body["bids"]], [(Decimal(p), Decimal(q)) for p, q in body["asks"]])


async def compare_with_truth(running, books):
    await running.control("/_sim/pause", {"paused": True})
    try:
        for book in books:
            status, truth, _ = await running.get(f"/_sim/book?venue={book.venue}&symbol={book.symbol}&limit=5000")
            assert status == 200
            await book.catch_up(truth["lastUpdateId"])
            assert book.as_levels() == truth_levels(truth)
            assert len(truth["bids"]) > 20 and len(truth["asks"]) > 20
    finally:
        await running.control("/_sim/pause", {"paused": False})


@pytest.mark.parametrize(
    "venue,symbol,futures,suffix",
    [("binance-spot", "BTCUSDT", False, "@100ms"), ("binance-spot", "ETHUSDT", False, ""),
     ("binance-usdm", "BTCUSDT", True, ""), ("binance-usdm", "XRPUSDT", True, "@100ms")],
)
async def test_reference_client_rebuilds_true_book_through_gaps(sim, venue, symbol, futures, suffix):
    book = ReferenceBook(sim, venue, symbol, futures=futures, stream_suffix=suffix)
    await book.connect()
    try:
        await book.synchronise()
        await book.follow(1.0)
        await compare_with_truth(sim, [book])

        await sim.control("/_sim/faults", {"kind": "drop_diffs", "venue": venue, "symbol": symbol, "count": 1})
        await sim.control("/_sim/faults", {"kind": "stale_snapshot", "venue": venue, "symbol": symbol})
        await book.follow(2.5)
        assert book.gaps >= 1 and book.resyncs >= 1
        assert book.stale_snapshots >= 1

        await sim.control("/_sim/faults", {"kind": "duplicate_diffs", "venue": venue, "symbol": symbol, "count": 2})
        await book.follow(1.0)
        await compare_with_truth(sim, [book])
    finally:
        await book.close()
