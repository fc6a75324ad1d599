"""Benchmark: how many simulated markets at @depth@100ms one collector process keeps up with.

Run: .venv/bin/python bench/live.py [--markets 100,250,500,750] [--seconds 20]

For each size N, a feed process speaking Binance's spot protocol (FEED below: a diff per market
every 100 ms, REST snapshots; the full simulator's market engine saturates its own core at ~100
markets on this machine, so it would measure itself) and, in this process, one ShardRunner for
all N markets — streams, books, 1 s samples COPYed into a dedicated database (lcm_bench_live,
dropped at the end) and live updates to the Redis channel layer.
After every book has synced, it measures for `--seconds`:
  - event lag: exchange event time (E) → the event applied to the local book;
  - write lag: a sample's second → its commit in Postgres;
  - the collector's CPU (process time / wall time; the simulator runs in its own process).
A size "keeps up" when both stay under 100 ms at p99 — the book a sample reads is at most 100 ms
behind the exchange and the sample is stored within 100 ms of its second — with no second skipped
and every book synced. Writes its section into docs/benchmarks.md.
"""
import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from sections import write_section  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "lcm_bench_live"
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FEED = textwrap.dedent("""
    # A light Binance-protocol feed: N spot symbols, a diff per symbol every 100 ms (4 levels
    # changed, ids chained U = previous u + 1), REST depth/time/exchangeInfo. It costs far less
    # than the full simulator's market engine, so the collector is what is measured.
    import asyncio, random, sys, time
    import orjson
    from aiohttp import web, WSMsgType

    n, port = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(5)
    books = {}
    for i in range(n):
        mid = 50.0 + i
        bid_prices = [round(mid - 0.01 * k, 2) for k in range(1, 201)]  # best first
        ask_prices = [round(mid + 0.01 * k, 2) for k in range(1, 201)]
        books[f"M{i:04d}USDT"] = {"u": 1000, "bids": dict.fromkeys(bid_prices, 10.0), "asks": dict.fromkeys(ask_prices, 10.0),
                                  "top_bids": bid_prices[:20], "top_asks": ask_prices[:20],
                                  "stream": f"m{i:04d}usdt@depth@100ms"}
    subscribers = []

    def step(now_ms):
        frames = []
        for symbol, book in books.items():
            bids = [[f"{p:.2f}", f"{rng.uniform(1, 20):.3f}"] for p in rng.sample(book["top_bids"], 2)]
            asks = [[f"{p:.2f}", f"{rng.uniform(1, 20):.3f}"] for p in rng.sample(book["top_asks"], 2)]
            for p, q in bids:
                book["bids"][float(p)] = float(q)
            for p, q in asks:
                book["asks"][float(p)] = float(q)
            first, book["u"] = book["u"] + 1, book["u"] + 4
            frames.append((book["stream"], orjson.dumps({"stream": book["stream"], "data": {"e": "depthUpdate", "E": now_ms,
                           "s": symbol, "U": first, "u": book["u"], "b": bids, "a": asks}}).decode()))
        return frames

    async def engine():
        next_at = time.monotonic()
        while True:
            next_at += 0.1
            await asyncio.sleep(max(0, next_at - time.monotonic()))
            frames = step(int(time.time() * 1000))
            for ws, streams in list(subscribers):
                for stream, text in frames:
                    if stream in streams and not ws.closed:
                        await ws.send_str(text)

    async def stream(request):
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        entry = (ws, set())
        subscribers.append(entry)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                req = orjson.loads(msg.data)
                entry[1].update(req.get("params", []))
                await ws.send_str(orjson.dumps({"result": None, "id": req.get("id")}).decode())
        subscribers.remove(entry)
        return ws

    async def depth(request):
        book = books[request.query["symbol"]]
        return web.json_response({"lastUpdateId": book["u"],
                                  "bids": [[f"{p:.2f}", f"{q:.3f}"] for p, q in book["bids"].items()],
                                  "asks": [[f"{p:.2f}", f"{q:.3f}"] for p, q in book["asks"].items()]})

    async def server_time(request):
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def exchange_info(request):
        return web.json_response({"rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                                  "intervalNum": 1, "limit": 10**9}]})

    async def main():
        app = web.Application()
        app.router.add_get("/feed/stream", stream)
        app.router.add_get("/feed/api/v3/depth", depth)
        app.router.add_get("/feed/api/v3/time", server_time)
        app.router.add_get("/feed/api/v3/exchangeInfo", exchange_info)
        app.router.add_get("/_sim/state", server_time)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await engine()

    asyncio.run(main())
""")


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_simulator(n):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", FEED, str(n), str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/state", timeout=2).read()
            return process, port
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("simulator did not start")


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else float("nan")


async def measure(n, seconds, tmp):
    from channels.layers import get_channel_layer

    from collectors.runner import MarketSpec, Shard, ShardRunner
    from collectors.sink import TimeSeriesSink

    process, port = start_simulator(n)
    try:
        shard = Shard(f"bench-{n}", 1, "spot", f"http://127.0.0.1:{port}/feed", f"ws://127.0.0.1:{port}/feed",
                      tuple(MarketSpec(i + 1, f"M{i:04d}USDT") for i in range(n)))
        runner = ShardRunner(shard, sink=TimeSeriesSink(name=f"bench-{n}", spill_dir=Path(tmp) / str(n)),
                             channel_layer=get_channel_layer(), record_api_calls=False, snapshot_concurrency=8)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        started = time.monotonic()
        while sum(s.sync.synced for s in runner.markets.values()) < n:
            if time.monotonic() - started > 120 or task.done():
                raise RuntimeError(f"{n} markets: only {sum(s.sync.synced for s in runner.markets.values())} synced")
            await asyncio.sleep(0.5)
        sync_s = time.monotonic() - started
        await asyncio.sleep(3)  # settle
        runner.event_lag_ms.clear()
        runner.sample_lag_ms.clear()
        skipped0, messages0 = runner.counts["skipped_seconds"], runner.counts["messages"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        messages = runner.counts["messages"] - messages0
        event_lags, sample_lags = list(runner.event_lag_ms), list(runner.sample_lag_ms)
        sampling = list(runner.sampling_ms)[-int(seconds):]
        skipped = runner.counts["skipped_seconds"] - skipped0
        unsynced = n - sum(s.sync.synced for s in runner.markets.values())
        stop.set()
        await task
    finally:
        process.terminate()
        process.wait(10)
    return {
        "n": n, "sync_s": sync_s, "msgs_per_s": messages / wall, "cpu": cpu / wall,
        "event_p50": statistics.median(event_lags) if event_lags else float("nan"), "event_p99": p99(event_lags),
        "write_p50": statistics.median(sample_lags) if sample_lags else float("nan"), "write_p99": p99(sample_lags),
        "skipped": skipped, "unsynced": unsynced, "sampling_ms": statistics.median(sampling) if sampling else float("nan"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", default="100,250,500,750")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(x) for x in args.markets.split(",")]
    admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin(f"CREATE DATABASE {BENCH_DB}")
    results = []
    try:
        import tempfile

        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                result = asyncio.run(measure(n, args.seconds, tmp))
                result["keeps_up"] = (result["event_p99"] < 100 and result["write_p99"] < 100 and not result["skipped"]
                                      and not result["unsynced"])
                print(result, flush=True)
                results.append(result)
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")

    rows = "\n".join(
        f"| {r['n']} | {r['msgs_per_s']:,.0f} | {r['cpu'] * 100:.0f} % | {r['sampling_ms']:.1f} | "
        f"{r['event_p50']:.1f} / {r['event_p99']:.1f} | "
        f"{r['write_p50']:.1f} / {r['write_p99']:.1f} | {r['skipped']} | "
        f"{'yes' if r['keeps_up'] else 'no'} |"
        for r in results
    )
    kept = [r for r in results if r["keeps_up"]]
    best = max(kept, key=lambda r: r["n"]) if kept else None
    per_core = f"{best['n'] / max(best['cpu'], 1e-9):,.0f}" if best else "n/a"
    fed = max((r for r in results if r["msgs_per_s"] >= 0.95 * r["n"] * 10), key=lambda r: r["n"], default=results[0])
    load = os.getloadavg()[0]
    text = f"""## Live collection: markets per collector process (`bench/live.py`)

Command: `.venv/bin/python bench/live.py --markets {args.markets} --seconds {args.seconds}`
Machine: 2 cores ({platform.machine()}), shared with other work and with the feed process
(1-minute load average {load:.1f} at the end: above 2, every process waits for a core). Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

One ShardRunner, N spot markets on `@depth@100ms` from a light Binance-protocol feed (200 levels a
side, 4 levels changed per diff; the full simulator saturates at ~100 markets here), samples COPYed every second
into Postgres and published to the Redis channel layer. Lags in ms (p50 / p99): event lag =
exchange event time → applied to the local book (includes the feed's own send delay on this
shared machine); write lag = the sample's second → its commit; sampling = loop time to compute
one second's samples of every market (compliance.metrics via collectors.sampler). Goal: both < 100 ms at p99.

| markets | msgs/s | collector CPU | sampling ms/s | event lag | write lag | skipped s | keeps up |
|---|---|---|---|---|---|---|---|
{rows}

Largest size kept up: {best['n'] if best else 'none'} markets at {best['cpu'] * 100 if best else 0:.0f} % of a core
→ ≈ {per_core} markets per core (goal ≥ 500). CPU alone, at the largest size the feed fully
delivered (≥ 95 % of N × 10 msgs/s): {fed['n']} markets used {fed['cpu'] * 100:.0f} % of a core
≈ {fed['n'] / max(fed['cpu'], 1e-9):,.0f} markets per core; above 100 markets the p99 lags include waiting for
a core (collector, feed and other work share 2) and the shared Postgres's commit latency.
"""
    print(text)
    write_section("live", text)


if __name__ == "__main__":
    main()
