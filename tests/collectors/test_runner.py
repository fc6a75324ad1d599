"""The runner's live side: one coalesced update per market per second on the real Redis channel
layer, sent from the collector's loop; a stalled channel layer never stalls collection."""
import asyncio
import socket

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import connection

from collectors.runner import ShardRunner, plan_shards
from collectors.sink import TimeSeriesSink
from collectors.stream import Backoff
from tests.collectors.test_runner_simulator import make_venue, simulator, wait_for  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_tables():
    yield
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")


async def collect_for(shard, seconds, tmp_path, layer):
    runner = ShardRunner(shard, sink=TimeSeriesSink(name="live", spill_dir=tmp_path), channel_layer=layer,
                         backoff_factory=lambda: Backoff(base_s=0.2, cap_s=1.0), record_api_calls=False)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return runner


async def test_each_market_gets_one_update_per_second_on_its_group_and_the_overview(simulator, tmp_path):
    await sync_to_async(make_venue)(simulator)
    [shard] = await sync_to_async(plan_shards)()
    layer = get_channel_layer()
    btc = next(m.market_id for m in shard.markets if m.symbol == "BTCUSDT")
    market_channel, overview_channel = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(f"market.{btc}", market_channel)
    await layer.group_add("overview", overview_channel)
    received = {"market": [], "overview": []}

    async def listen(name, channel):
        while True:
            received[name].append(await layer.receive(channel))

    listeners = [asyncio.create_task(listen("market", market_channel)), asyncio.create_task(listen("overview", overview_channel))]
    try:
        runner = await collect_for(shard, 4.5, tmp_path, layer)
        await asyncio.sleep(0.3)
    finally:
        for t in listeners:
            t.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    seconds = runner.counts["samples"] // len(shard.markets)
    assert 3 <= len(received["market"]) <= seconds
    message = received["market"][-1]
    assert message["type"] == "market.update"
    payload = message["payload"]
    assert payload["market_id"] == btc and payload["ts"].endswith("+00:00")
    assert payload["valid"] and payload["best_bid"] < payload["best_ask"] and payload["spread_ask_pct"] > 0
    assert len({m["payload"]["ts"] for m in received["market"]}) == len(received["market"])  # one per second
    assert {m["payload"]["market_id"] for m in received["overview"]} == {m.market_id for m in shard.markets}


def blackhole_port():
    """A port that accepts TCP connections and never answers: a Redis that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    return sock


async def test_a_hanging_channel_layer_never_stalls_collection(simulator, tmp_path):
    await sync_to_async(make_venue)(simulator)
    [shard] = await sync_to_async(plan_shards)()
    hole = blackhole_port()
    layer = RedisPubSubChannelLayer(hosts=[f"redis://127.0.0.1:{hole.getsockname()[1]}/0"])
    try:
        runner = await collect_for(shard, 5.5, tmp_path, layer)
    finally:
        hole.close()
    seconds = runner.counts["samples"] // len(shard.markets)
    assert seconds >= 4 and runner.counts["skipped_seconds"] == 0  # a sample every second regardless
    assert runner.counts["valid_samples"] > 0 and runner.counts["publish_errors"] >= 1 and runner.counts["published"] == 0

    def stored():
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM compliance_sample")
            count = cur.fetchone()[0]
        connection.close()
        return count

    assert await sync_to_async(stored)() == runner.counts["samples"]


async def test_own_quote_metrics_come_from_the_desk_orders_the_user_data_collector_stores(simulator, tmp_path, settings):
    from cryptography.fernet import Fernet

    from collectors.models import ExchangeCredential
    from collectors.secrets import encrypt
    from collectors.userdata import UserDataCollector
    from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET

    settings.SECRETS_KEY = Fernet.generate_key().decode()
    venue = await sync_to_async(make_venue)(simulator)
    venue.ws_api_url = venue.ws_base_url + "/ws-api/v3"
    await venue.asave()
    await ExchangeCredential.objects.acreate(venue=venue, label="desk", api_key=DEMO_API_KEY, secret_encrypted=encrypt(DEMO_API_SECRET))
    [shard] = await sync_to_async(plan_shards)()
    desk = UserDataCollector(venue=venue, api_key=DEMO_API_KEY, secret=DEMO_API_SECRET)
    desk_task = asyncio.create_task(desk.run())
    try:
        await asyncio.wait_for(desk.backfilled.wait(), 20)
        await collect_for(shard, 5.5, tmp_path, None)
    finally:
        desk_task.cancel()
        await asyncio.gather(desk_task, return_exceptions=True)

    def own_columns():
        with connection.cursor() as cur:
            cur.execute("""SELECT count(*), count(own_at_touch), count(own_bid_dev_pct), max(own_depth_share_pct)
                           FROM compliance_sample WHERE valid""")
            row = cur.fetchone()
        connection.close()
        return row

    valid, with_touch, with_dev, max_share = await sync_to_async(own_columns)()
    # The simulated desk quotes every market from the start, so once its orders are loaded every
    # valid second carries own-quote metrics (the first second or two may precede the first load).
    assert valid > 0 and with_touch >= valid - 2 * len(shard.markets) and with_dev > 0
    assert 0 < max_share <= 100
