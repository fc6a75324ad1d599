"""The runner's per-second work without a network: which markets give top-N evidence on which
second, and which seconds a flush's write lag is counted for."""
import asyncio
import threading
from datetime import UTC, datetime

import pytest

from collectors.binance import DepthDiff, DepthSnapshot
from collectors.runner import EVIDENCE_EVERY_S, MarketSpec, Shard, ShardRunner

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a minute boundary


class RecordingSink:
    """Takes what the runner hands over; flush() waits for `gate` when one is set and returns `result`."""

    def __init__(self):
        self.samples, self.snapshots = [], []
        self.gate: threading.Event | None = None
        self.result = True
        self.failing_since = None

    def accept_samples(self, rows):
        self.samples.extend(rows)

    def accept_snapshots(self, rows):
        self.snapshots.extend(rows)

    def flush(self):
        if self.gate is not None:
            self.gate.wait(5)
        return self.result

    def pending_rows(self):
        return 0

    def close(self):
        return True


def runner_of(n_markets, sink):
    shard = Shard("unit", 1, "spot", "http://127.0.0.1:9", "ws://127.0.0.1:9",
                  tuple(MarketSpec(i + 1, f"M{i:03d}USDT") for i in range(n_markets)))
    return ShardRunner(shard, sink=sink, record_api_calls=False)


def sync_all(runner):
    for state in runner.markets.values():
        state.sync.diff(DepthDiff(state.spec.symbol, 11, 12, None, T0_MS - 500, [["99.0", "1"]], [["101.0", "1"]]))
        state.sync.snapshot(DepthSnapshot(10, [["99.5", "2"], ["99.0", "3"]], [["100.5", "2"], ["101.0", "3"]]))
        assert state.sync.synced
        state.connected = True


async def test_each_market_gives_evidence_once_a_minute_on_a_second_of_its_own():
    sink = RecordingSink()
    runner = runner_of(130, sink)
    sync_all(runner)
    try:
        for second in range(2 * EVIDENCE_EVERY_S):
            await runner._take_samples(T0_MS + second * 1000)
            await asyncio.sleep(0)
    finally:
        await runner._shutdown()
    assert len(sink.samples) == 130 * 2 * EVIDENCE_EVERY_S and all(s.valid for s in sink.samples)
    by_market = {}
    for proof in sink.snapshots:
        by_market.setdefault(proof.market_id, []).append(proof)
    assert sorted(by_market) == list(range(1, 131))
    for market_id, proofs in by_market.items():
        seconds = [int(p.ts.timestamp()) - T0_MS // 1000 for p in proofs]
        first = -market_id % EVIDENCE_EVERY_S
        assert seconds == [first, first + EVIDENCE_EVERY_S]
        state = runner.by_id[market_id]
        # The rows are the sampler's own evidence of that second.
        assert proofs[0] == state.sampler.evidence(state.sync, T0_MS + first * 1000)
        assert proofs[0].bids == [[99.5, 2.0], [99.0, 1.0]] and proofs[0].asks == [[100.5, 2.0], [101.0, 1.0]]
    # Spread: no second carries more than its share (130 markets over 60 seconds: at most 3).
    per_second = {}
    for proof in sink.snapshots:
        per_second[proof.ts] = per_second.get(proof.ts, 0) + 1
    assert max(per_second.values()) == 3 and all(isinstance(ts, datetime) and ts.tzinfo == UTC for ts in per_second)


async def wait_flushed(runner):
    while runner._flushing is not None and not runner._flushing.done():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)  # the done callback runs on the loop


async def test_write_lag_is_counted_for_every_second_a_flush_commits():
    sink = RecordingSink()
    runner = runner_of(1, sink)
    try:
        sink.gate = threading.Event()
        runner._flush(T0_MS)  # starts, held at the gate
        runner._flush(T0_MS + 1000)  # busy: goes with the next flush
        assert runner.counts["flush_busy"] == 1
        sink.gate.set()
        await wait_flushed(runner)
        assert len(runner.sample_lag_ms) == 1  # T0 only
        runner._flush(T0_MS + 2000)  # commits the rows of T0+1 and T0+2
        await wait_flushed(runner)
        lags = list(runner.sample_lag_ms)
        assert len(lags) == 3 and lags[1] - lags[2] == pytest.approx(1000, abs=1)  # T0+1 waited a second more

        sink.result = False  # Postgres down: buffered, not written; those seconds still wait
        runner._flush(T0_MS + 3000)
        await wait_flushed(runner)
        assert len(runner.sample_lag_ms) == 3 and runner._unwritten_seconds == [T0_MS + 3000]
        sink.result = True
        runner._flush(T0_MS + 4000)
        await wait_flushed(runner)
        assert len(runner.sample_lag_ms) == 5 and runner._unwritten_seconds == []
    finally:
        await runner._shutdown()
