"""CombinedStream hands frames over from the protocol callback (FrameConnection): same frames,
same order, as bytes; held while subscribing; fragments joined; a failing consumer ends the run."""
import asyncio

import orjson
import pytest
import websockets

from collectors.stream import CombinedStream, StreamLimits


def frame(stream, n):
    return orjson.dumps({"stream": stream, "data": {"e": "depthUpdate", "n": n}}).decode()


@pytest.fixture
async def exchange():
    """Answers each SUBSCRIBE, then sends 3 data frames per subscribed batch, one of them fragmented."""
    state = {}

    async def handler(ws):
        count = 0
        async for text in ws:
            request = orjson.loads(text)
            await ws.send(orjson.dumps({"result": None, "id": request["id"]}).decode())
            stream = request["params"][0]
            for _ in range(3):
                count += 1
                text = frame(stream, count)
                if count % 3 == 2:
                    await ws.send([text[:10], text[10:25], text[25:]])  # a message in three fragments
                else:
                    await ws.send(text)

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        state["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield state


async def run_until(stream, predicate, timeout_s=5):
    task = asyncio.create_task(stream.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate() and asyncio.get_running_loop().time() < deadline and not task.done():
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
    return results[0]


async def test_frames_arrive_in_order_as_bytes_after_the_subscriptions_with_fragments_joined(exchange):
    events = []
    names = [f"s{i}@depth@100ms" for i in range(3)]
    # One stream per SUBSCRIBE, paced: frames of the first batch arrive while the others are sent.
    stream = CombinedStream(exchange["url"], names, on_frame=lambda raw, ns: events.append(("frame", raw, ns)),
                            on_up=lambda: events.append(("up",)),
                            limits=StreamLimits(messages_per_s=5, streams_per_subscribe=1))
    await run_until(stream, lambda: len(events) >= 10)
    assert events[0] == ("up",)
    frames = [e for e in events if e[0] == "frame"]
    assert [raw for _, raw, _ in frames] == [frame(names[(n - 1) // 3], n).encode() for n in range(1, 10)]
    assert all(type(raw) is bytes for _, raw, _ in frames)
    receive_ns = [ns for _, _, ns in frames]
    assert receive_ns == sorted(receive_ns)
    assert stream.control_replies == 3


async def test_an_exception_from_the_consumer_ends_the_run_and_no_later_frame_is_handed_over(exchange):
    seen = []

    def on_frame(raw, ns):
        seen.append(raw)
        if len(seen) == 2:
            raise RuntimeError("consumer bug")

    stream = CombinedStream(exchange["url"], ["a@depth@100ms"], on_frame=on_frame)
    outcome = await run_until(stream, lambda: False)
    assert isinstance(outcome, RuntimeError) and str(outcome) == "consumer bug"
    assert len(seen) == 2
