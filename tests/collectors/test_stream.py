"""The combined-stream connection: back-off bounds, per-connection limits, paced subscriptions,
proactive reconnect, and control replies kept out of the data path."""
import asyncio
import random
import time

import orjson
import pytest
import websockets

from collectors.stream import MAX_BACKOFF_S, Backoff, CombinedStream, StreamLimits, chunk_streams


def test_backoff_grows_with_jitter_and_never_exceeds_30_s():
    backoff = Backoff(base_s=0.5, rng=random.Random(1))
    waits = [backoff.next_wait() for _ in range(40)]
    assert waits[0] <= 0.5 and max(waits) <= MAX_BACKOFF_S and max(waits) > 15
    assert len(set(waits[-10:])) == 10  # jittered, not one synchronized value
    backoff.reset()
    assert backoff.next_wait() <= 0.5
    with pytest.raises(ValueError):
        Backoff(base_s=1, cap_s=60)


def test_streams_are_split_at_the_per_connection_limit():
    names = [f"s{i}@depth@100ms" for i in range(2500)]
    groups = chunk_streams(names, StreamLimits())
    assert [len(g) for g in groups] == [1024, 1024, 452] and sum(groups, []) == names
    with pytest.raises(ValueError, match="exceed"):
        CombinedStream("ws://x", names, on_frame=lambda raw, ns: None)


@pytest.fixture
async def exchange():
    """A WebSocket endpoint that records SUBSCRIBE arrival times, answers them, then sends data frames."""
    state = {"subscribes": [], "connections": 0}

    async def handler(ws):
        state["connections"] += 1
        async for text in ws:
            request = orjson.loads(text)
            state["subscribes"].append((time.monotonic(), len(request["params"])))
            await ws.send(orjson.dumps({"result": None, "id": request["id"]}).decode())
            await ws.send(orjson.dumps({"stream": request["params"][0], "data": {"e": "depthUpdate"}}).decode())

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        state["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield state


async def test_subscriptions_are_batched_and_paced_under_the_incoming_message_limit(exchange):
    frames = []
    names = [f"sym{i}usdt@depth@100ms" for i in range(450)]
    limits = StreamLimits(messages_per_s=5, streams_per_subscribe=200)
    stream = CombinedStream(exchange["url"], names, on_frame=lambda raw, ns: frames.append(raw), limits=limits)
    task = asyncio.create_task(stream.run())
    try:
        deadline = time.monotonic() + 5
        while len(frames) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    times = [t for t, _ in exchange["subscribes"]]
    assert [n for _, n in exchange["subscribes"]] == [200, 200, 50]
    assert all(b - a >= 1 / 4 - 0.01 for a, b in zip(times, times[1:]))  # ≤ 4 msg/s, one left for ping/pong
    assert len(frames) == 3 and stream.control_replies == 3  # replies were not handed over as data


async def test_reconnects_on_its_own_before_the_connection_age_limit(exchange):
    downs = []
    stream = CombinedStream(exchange["url"], ["a@depth"], on_frame=lambda raw, ns: None, on_down=downs.append,
                            limits=StreamLimits(max_age_s=0.5), backoff=Backoff(base_s=0.05, cap_s=0.1))
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(1.6)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert exchange["connections"] >= 2 and downs and all("proactive" in d for d in downs)


async def test_unreachable_exchange_retries_with_capped_waits():
    downs = []
    stream = CombinedStream("ws://127.0.0.1:9", ["a@depth"], on_frame=lambda raw, ns: None, on_down=downs.append,
                            backoff=Backoff(base_s=0.05, cap_s=0.2))
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(downs) >= 3 and all("cannot connect" in d for d in downs)
    assert max(stream.waits) <= 0.2
