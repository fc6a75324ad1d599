"""The shard runner against the simulated exchange, with every fault the exchange can throw.

Gaps, duplicates, malformed frames, dropped sockets, 429 and 418 on snapshots and a stale snapshot:
afterwards every book equals the simulator's true book, the broken seconds were stored as
unknown (invalid samples), and no reconnect waited more than 30 s.
"""
import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from collectors.models import ApiResponse
from collectors.runner import ShardRunner, plan_shards
from collectors.sink import TimeSeriesSink
from collectors.stream import Backoff
from compliance.models import Market, Venue
from tests.collectors.live_support import SimulatorProcess

pytestmark = pytest.mark.django_db(transaction=True)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@pytest.fixture
def simulator():
    sim = SimulatorProcess("--scenario", "calm", "--ban-seconds", "2", "--seed", "7").wait_ready()
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def empty_tables():
    yield
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")


def make_venue(sim, name="binance-spot", market_type="spot", symbols=SYMBOLS):
    rest, ws = sim.venue_urls(name)
    venue = Venue.objects.create(name=name, exchange="binance", market_type=market_type, tier=1, rest_base_url=rest, ws_base_url=ws)
    for symbol in symbols:
        Market.objects.create(venue=venue, symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT", tick_size="0.01")
    return venue


async def wait_for(predicate, timeout_s, what, detail=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} {detail()}")


def levels(side):
    return [(float(p), float(q)) for p, q in side]


async def assert_books_equal_truth(sim, runner, venue_name):
    await sync_to_async(sim.post)("/_sim/pause", {"paused": True})
    truth = {s: await sync_to_async(sim.get)(f"/_sim/book?venue={venue_name}&symbol={s}&limit=200") for s in runner.markets}
    await wait_for(
        lambda: all(st.sync.synced and st.sync.book.update_id == truth[s]["lastUpdateId"] for s, st in runner.markets.items()),
        15, "every book to reach the simulator's last update id",
    )
    for symbol, state in runner.markets.items():
        bids, asks = state.sync.book.top(200)
        assert levels(bids) == levels(truth[symbol]["bids"]), symbol
        assert levels(asks) == levels(truth[symbol]["asks"]), symbol


def invalid_seconds(market_ids):
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE NOT valid), count(*) FROM compliance_sample WHERE market_id = ANY(%s)", [list(market_ids)])
        return cur.fetchone()


@pytest.mark.parametrize("name,market_type,symbols", [
    ("binance-spot", "spot", SYMBOLS),  # U/u continuity
    ("binance-usdm", "usdm", ("BTCUSDT", "ETHUSDT", "XRPUSDT")),  # pu chaining
])
async def test_faults_end_with_the_true_book_and_unknown_time_recorded(simulator, tmp_path, name, market_type, symbols):
    venue = await sync_to_async(make_venue)(simulator, name, market_type, symbols)
    [shard] = await sync_to_async(plan_shards)()
    sink = TimeSeriesSink(name="sim", spill_dir=tmp_path)
    runner = ShardRunner(shard, sink=sink, backoff_factory=lambda: Backoff(base_s=0.2, cap_s=2.0), snapshot_concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    fault = lambda kind, **kw: sync_to_async(simulator.post)("/_sim/faults", {"kind": kind, "venue": venue.name, **kw})
    try:
        await wait_for(lambda: all(s.sync.synced for s in runner.markets.values()), 20, "first sync")
        # A gap on BTCUSDT whose resync is first answered with a stale snapshot (older than the stream;
        # the simulator keeps book copies for its first seconds to serve one).
        await wait_for(lambda: simulator.get("/_sim/state")["elapsed_s"] > 4, 10, "the simulator's stale book copies")
        await fault("stale_snapshot", symbol="BTCUSDT", count=1)
        await fault("drop_diffs", symbol="BTCUSDT", count=1)
        await fault("duplicate_diffs", count=3)
        await fault("malformed_json", count=3)
        await fault("unknown_event", count=2)
        btc = runner.markets["BTCUSDT"]
        await wait_for(lambda: btc.counts["snapshot_snapshot_too_old"] >= 1 and btc.sync.synced, 15, "stale snapshot refused, then resync",
                       lambda: (dict(btc.counts), dict(runner.counts)))
        await wait_for(lambda: runner.counts["malformed"] >= 3, 15, "garbage counted")
        assert runner.counts["resyncs"] >= 1 and sum(s.counts["stale"] for s in runner.markets.values()) >= 1
        # Every socket dropped, and the resync snapshots refused: a 429, then a 418 ban.
        await fault("rest_error", status=429, count=1)
        await fault("rest_error", status=418, count=1)
        await fault("close_sockets")
        await wait_for(lambda: runner.counts["disconnects"] >= 1, 10, "the disconnect")
        await wait_for(lambda: all(s.connected and s.sync.synced for s in runner.markets.values()), 30, "resync after faults")
        assert runner.counts["snapshot_errors"] >= 2
        await asyncio.sleep(1.5)  # one more valid second after recovery
        await assert_books_equal_truth(simulator, runner, venue.name)
    finally:
        stop.set()
        await task
    waits = [w for s in runner.streams for w in s.waits]
    assert waits and max(waits) <= 30
    invalid, total = await sync_to_async(invalid_seconds)([m.market_id for m in shard.markets])
    assert invalid >= 3 and total > invalid  # the broken seconds are stored as unknown, the rest valid
    statuses = set(await sync_to_async(list)(ApiResponse.objects.filter(venue=venue).values_list("http_status", flat=True)))
    assert 429 in statuses and 418 in statuses
    await sync_to_async(lambda: connection.close())()  # the recorder thread's connection
