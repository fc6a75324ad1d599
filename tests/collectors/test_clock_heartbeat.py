"""The clock offset to the exchange leaves the collector's memory: measured by the REST client,
carried in the shard heartbeat (Redis), where the dashboard reads it per venue."""
import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from collectors.leases import ShardLease, forget_shard, heartbeat_report
from collectors.rest import BinanceRest
from collectors.runner import ShardRunner, plan_shards, run_while_held
from collectors.sink import TimeSeriesSink
from collectors.stream import Backoff
from tests.collectors.live_support import close_db_connection
from tests.collectors.test_rest import exchange, serve  # noqa: F401  (fixture)
from tests.collectors.test_runner_simulator import make_venue, simulator, wait_for  # noqa: F401  (fixture)


async def test_sync_clock_records_the_offset_and_when_it_was_measured(serve):
    app, _ = exchange(server_skew_ms=2_000)
    async with BinanceRest(await serve(app), time_path="/api/v3/time") as rest:
        assert rest.clock_measured_at is None  # 0 ms until measured: not a measurement
        before = time.time()
        await rest.sync_clock()
        assert rest.clock_offset_ms == pytest.approx(2_000, abs=200)
        assert before <= rest.clock_measured_at <= time.time()


@pytest.mark.django_db(transaction=True)
async def test_the_shard_heartbeat_carries_the_venue_and_its_clock_offset(simulator, tmp_path):
    venue = await sync_to_async(make_venue)(simulator)
    [shard] = await sync_to_async(plan_shards)()
    runner = ShardRunner(shard, sink=TimeSeriesSink(name="clock", spill_dir=tmp_path),
                         backoff_factory=lambda: Backoff(base_s=0.2, cap_s=1.0), record_api_calls=False)
    lease = ShardLease(shard.name, ttl_s=4.0)
    assert await lease.acquire()
    stop = asyncio.Event()
    task = asyncio.create_task(run_while_held(lease, runner.run(stop), status=runner.status, heartbeat_s=0.2))

    def beat():
        return heartbeat_report(time.time()).get(shard.name, {})

    try:
        await wait_for(lambda: beat().get("clock_offset_ms") is not None, 10, "a heartbeat with the clock offset", beat)
        reported = beat()
        assert reported["venue_id"] == venue.pk
        assert abs(reported["clock_offset_ms"]) < 1_000  # the simulator runs on this machine's clock
        assert reported["clock_measured_at"] == pytest.approx(time.time(), abs=15)
    finally:
        stop.set()
        await task
        await lease.release()
        await lease.close()
        forget_shard(shard.name)
        await sync_to_async(close_db_connection)()
