"""Replayed recordings come out identical to the recording, and the REST snapshot follows the replay."""
import asyncio
import gzip
from pathlib import Path

import orjson
import pytest

from simulator.replay import load_replay_venue
from simulator.server import Options

from .test_local_book import ReferenceBook, truth_levels

CAPTURES = Path("/work/shared/data/binance-captures")
RECORDINGS = Path("/work/shared/data/multi-exchange-recordings")


def recorded_frames(path: Path, streams: set[str]) -> list[str]:
    """The recording's stream messages, read independently of the simulator's reader."""
    frames = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            text = line.rstrip("\n").split(" ", 1)[1]
            if text.startswith('{"stream"') and orjson.loads(text)["stream"] in streams:
                frames.append(text)
    return frames


async def test_capture_replays_byte_identical_at_full_speed(sim_factory):
    path = CAPTURES / "spot_ethusdt_20240808.gz"
    replay = load_replay_venue(str(path), options=Options(), speed=0, loop=False)
    sim = await sim_factory(replays=[replay])
    streams = {"ethusdt@depth@100ms", "ethusdt@bookTicker", "ethusdt@trade"}
    expected = recorded_frames(path, streams)
    combined = await sim.session.ws_connect(f"{sim.ws_base}/replay-spot/stream?streams=" + "/".join(sorted(streams)))
    raw = await sim.session.ws_connect(f"{sim.ws_base}/replay-spot/ws/ethusdt@depth@100ms")
    received = [(await asyncio.wait_for(combined.receive(), 10)).data for _ in expected]
    assert received == expected
    depth_only = [orjson.loads(t)["data"] for t in expected if '"ethusdt@depth@100ms"' in t[:40]]
    raw_received = []
    while len(raw_received) < 200:  # the raw socket joined a moment later; it gets the payloads alone
        raw_received.append(orjson.loads((await asyncio.wait_for(raw.receive(), 10)).data))
    start = depth_only.index(raw_received[0])
    assert raw_received == depth_only[start:start + 200]


@pytest.mark.parametrize("files,symbol,futures", [
    (["BINANCE.http.0.0", "BINANCE.ws.1.0"], "NKNUSDT", False),
    (["BINANCE_FUTURES.http.0.0", "BINANCE_FUTURES.ws.1.0"], "SUSHIUSDT", True),
])
async def test_reference_client_rebuilds_replayed_book(sim_factory, files, symbol, futures):
    argument = "replay=" + ",".join(str(RECORDINGS / f) for f in files)
    sim = await sim_factory(replays=[load_replay_venue(argument, options=Options(), speed=15, loop=False)])
    book = ReferenceBook(sim, "replay", symbol, futures=futures, stream_suffix="@100ms")
    await book.connect()
    try:
        await book.synchronise()
        replay = sim.sim.venues["replay"]
        while replay.position < len(replay.recording):
            await book.follow(0.3)
        status, truth, _ = await sim.get(f"/_sim/book?venue=replay&symbol={symbol}&limit=5000")
        await book.catch_up(truth["lastUpdateId"])
        assert book.as_levels() == truth_levels(truth)
        status, snapshot, _ = await sim.get(f"/replay{'/fapi/v1' if futures else '/api/v3'}/depth?symbol={symbol}"
                                            f"&limit={1000 if futures else 5000}")
        limit = len(snapshot["bids"])
        assert snapshot["lastUpdateId"] == truth["lastUpdateId"] and snapshot["bids"] == truth["bids"][:limit]
        assert book.resyncs == 0 and book.gaps == 0, "a real recording has no gaps"
    finally:
        await book.close()


async def test_replay_rejects_unknown_files(tmp_path):
    bogus = tmp_path / "OKX.ws.1.0"
    bogus.write_text("1.0: {}\n")
    with pytest.raises(ValueError, match="not a Binance recording"):
        load_replay_venue(str(bogus), options=Options(), speed=1, loop=False)
    with pytest.raises(ValueError, match="not found"):
        load_replay_venue(str(tmp_path / "spot_x_1.gz"), options=Options(), speed=1, loop=False)
