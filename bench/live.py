"""Benchmark: how many simulated markets at @depth@100ms one collector process keeps up with.

Run: .venv/bin/python bench/live.py [--markets 250,500,1000,1500] [--seconds 60] [--loop uvloop|asyncio] [--no-doc]

For each size N, a feed process speaking Binance's spot protocol (FEED below: a diff per market
every 100 ms, all markets in one burst with one event time as Binance sends them, REST snapshots;
the full simulator's market engine saturates its own core at ~100 markets on this machine, so it
would measure itself) and, in this process, one ShardRunner for all N markets — streams, books,
1 s samples COPYed into a dedicated database (lcm_bench_live, dropped at the end) and live
updates to the Redis channel layer — on the event loop the product uses (collectors.runner.run_collector).
After every book has synced, it measures for `--seconds`:
  - event lag: exchange event time (E) → the event applied to the local book;
  - write lag: a sample's second → the commit of its rows (every second, one that waited behind a
    busy flush included), and the sink's flush time alone;
  - the collector's CPU (process time of all its threads / wall time) and the feed's, with the
    feed's slowest steps, to show the feed kept up (else it measures itself).
A size "keeps up" when both lags stay under 100 ms at p99 — the book a sample reads is at most
100 ms behind the exchange and the sample is stored within 100 ms of its second — with no second
skipped, every book synced, the feed keeping up and every update published.
Markets per core = the largest size that keeps up / the cores the collector process used at it.
Writes its section into docs/benchmarks.md (unless --no-doc).
"""
import argparse
import asyncio
import json
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
    # changed, ids chained U = previous u + 1), REST depth/time/exchangeInfo. As on Binance, every
    # symbol's diff of a 100 ms step carries the same event time E and they go out as one burst
    # (the multi-symbol recordings in shared/data/multi-exchange-recordings/ show E equal to the ms
    # across symbols). The level changes are drawn from a pool made at start, so a step costs
    # little more than writing the frames: the collector, not the feed, is what is measured.
    import asyncio, random, sys, time
    import orjson
    import uvloop
    from aiohttp import web, WSMsgType

    n, port = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(5)
    POOL = 32  # level-change sets per symbol
    books = {}
    for i in range(n):
        mid = 50.0 + i
        bid_prices = [round(mid - 0.01 * k, 2) for k in range(1, 201)]  # best first
        ask_prices = [round(mid + 0.01 * k, 2) for k in range(1, 201)]
        symbol, stream = f"M{i:04d}USDT", f"m{i:04d}usdt@depth@100ms"
        changes = []
        for _ in range(POOL):
            bids = [[f"{p:.2f}", f"{rng.uniform(1, 20):.3f}"] for p in rng.sample(bid_prices[:20], 2)]
            asks = [[f"{p:.2f}", f"{rng.uniform(1, 20):.3f}"] for p in rng.sample(ask_prices[:20], 2)]
            changes.append(([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks],
                            orjson.dumps(bids).decode(), orjson.dumps(asks).decode()))
        books[symbol] = {"u": 1000, "bids": dict.fromkeys(bid_prices, 10.0), "asks": dict.fromkeys(ask_prices, 10.0),
                         "stream": stream, "changes": changes,
                         "head": '{"stream":"%s","data":{"e":"depthUpdate","E":' % stream, "symbol": ',"s":"%s","U":' % symbol}
    subscribers = []
    busy = []  # seconds of each step's work (build + send), for the bench's check that the feed keeps up

    def step(now_ms):
        frames = []
        pick = rng.randrange
        for book in books.values():
            bid_changes, ask_changes, bids_text, asks_text = book["changes"][pick(POOL)]
            bids, asks = book["bids"], book["asks"]
            for p, q in bid_changes:
                bids[p] = q
            for p, q in ask_changes:
                asks[p] = q
            first, book["u"] = book["u"] + 1, book["u"] + 4
            frames.append((book["stream"], f'{book["head"]}{now_ms}{book["symbol"]}{first},"u":{book["u"]},"b":{bids_text},"a":{asks_text}}}}}'))
        return frames

    async def engine():
        next_at = time.monotonic()
        while True:
            next_at += 0.1
            await asyncio.sleep(max(0, next_at - time.monotonic()))
            started = time.perf_counter()
            frames = step(int(time.time() * 1000))
            for ws, streams in list(subscribers):
                for stream, text in frames:
                    if stream in streams and not ws.closed:
                        await ws.send_str(text)
            busy.append(time.perf_counter() - started)

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

    async def feed_busy(request):
        # Step durations since the last call (ms): the feed keeps up while they stay well under 100.
        taken = [round(b * 1000, 2) for b in busy]
        busy.clear()
        return web.json_response(taken)

    async def main():
        app = web.Application()
        app.router.add_get("/feed/stream", stream)
        app.router.add_get("/feed/api/v3/depth", depth)
        app.router.add_get("/feed/api/v3/time", server_time)
        app.router.add_get("/feed/api/v3/exchangeInfo", exchange_info)
        app.router.add_get("/_sim/state", server_time)
        app.router.add_get("/_feed/busy", feed_busy)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await engine()

    uvloop.run(main())
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
    raise TimeoutError("feed did not start")


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else float("nan")


def process_cpu_s(pid):
    """User + system CPU seconds of another process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def feed_busy_ms(port):
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_feed/busy", timeout=5).read())


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
        flush_ms = []
        flush = runner.sink.flush

        def timed_flush():  # how long the sink's COPY + commit takes, in its thread
            started = time.perf_counter()
            try:
                return flush()
            finally:
                flush_ms.append((time.perf_counter() - started) * 1000)

        runner.sink.flush = timed_flush
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        started = time.monotonic()
        while sum(s.sync.synced for s in runner.markets.values()) < n:
            if time.monotonic() - started > 120 or task.done():
                raise RuntimeError(f"{n} markets: only {sum(s.sync.synced for s in runner.markets.values())} synced")
            await asyncio.sleep(0.5)
        sync_s = time.monotonic() - started
        await asyncio.sleep(3)  # settle
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, feed_busy_ms, port)  # forget the steps so far
        runner.event_lag_ms.clear()
        runner.sample_lag_ms.clear()
        flush_ms.clear()
        counts0 = runner.counts.copy()
        cpu0, feed_cpu0, wall0 = time.process_time(), process_cpu_s(process.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        feed_cpu = process_cpu_s(process.pid) - feed_cpu0
        counts = runner.counts - counts0
        event_lags, sample_lags = list(runner.event_lag_ms), list(runner.sample_lag_ms)
        sampling = list(runner.sampling_ms)[-int(seconds):]
        unsynced = n - sum(s.sync.synced for s in runner.markets.values())
        feed_steps = await loop.run_in_executor(None, feed_busy_ms, port)
        stop.set()
        await task
    finally:
        process.terminate()
        process.wait(10)
    return {
        "n": n, "sync_s": sync_s, "msgs_per_s": counts["messages"] / wall, "cpu": cpu / wall,
        "feed_cpu": feed_cpu / wall, "feed_step_p99": p99(feed_steps),
        "event_p50": statistics.median(event_lags) if event_lags else float("nan"), "event_p99": p99(event_lags),
        "write_p50": statistics.median(sample_lags) if sample_lags else float("nan"), "write_p99": p99(sample_lags),
        "flush_p50": statistics.median(flush_ms) if flush_ms else float("nan"), "flush_p99": p99(flush_ms),
        "skipped": counts["skipped_seconds"], "unsynced": unsynced,
        "sampling_ms": statistics.median(sampling) if sampling else float("nan"),
        "published_per_s": counts["published"] / wall, "publish_errors": counts["publish_errors"],
        "publish_skipped": counts["publish_skipped"], "flush_busy": counts["flush_busy"], "resyncs": counts["resyncs"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", default="250,500,1000,1500")
    # A minute: every market's evidence second once. Below 100 s the write lag's p99 is its worst second.
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="the collector's event loop (the product runs on uvloop: collectors.runner.run_collector)")
    parser.add_argument("--no-doc", action="store_true", help="print the section without writing docs/benchmarks.md")
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
                if args.loop == "uvloop":
                    from collectors.runner import run_collector

                    result = run_collector(measure(n, args.seconds, tmp))
                else:
                    result = asyncio.run(measure(n, args.seconds, tmp))
                result["fed"] = result["msgs_per_s"] >= 0.95 * n * 10 and result["feed_step_p99"] < 50
                result["keeps_up"] = (result["event_p99"] < 100 and result["write_p99"] < 100 and not result["skipped"]
                                      and not result["unsynced"] and result["fed"]
                                      and result["published_per_s"] >= 0.95 * n and not result["publish_errors"])
                result["load"] = os.getloadavg()[0]
                print(result, flush=True)
                results.append(result)
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")

    rows = "\n".join(
        f"| {r['n']} | {r['msgs_per_s']:,.0f} | {r['cpu'] * 100:.0f} % | {r['feed_cpu'] * 100:.0f} % / {r['feed_step_p99']:.0f} ms | "
        f"{r['sampling_ms']:.1f} | {r['event_p50']:.1f} / {r['event_p99']:.1f} | "
        f"{r['write_p50']:.1f} / {r['write_p99']:.1f} | {r['flush_p50']:.1f} / {r['flush_p99']:.1f} | {r['published_per_s']:,.0f} | {r['skipped']} | {r['load']:.1f} | "
        f"{'yes' if r['keeps_up'] else 'no'} |"
        for r in results
    )
    kept = [r for r in results if r["keeps_up"]]
    best = max(kept, key=lambda r: r["n"]) if kept else None
    if best:
        verdict = (f"Largest size kept up: **{best['n']} markets**, using {best['cpu']:.2f} of a core → "
                   f"**≈ {best['n'] / max(best['cpu'], 1e-9):,.0f} markets per core** (goal ≥ 500: "
                   f"{'met' if best['n'] / max(best['cpu'], 1e-9) >= 500 else 'NOT met'}).")
    else:
        verdict = "No size kept up (goal ≥ 500 markets per core: NOT met)."
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = f"""## Live collection: markets per collector process (`bench/live.py`)

Command: `.venv/bin/python bench/live.py --markets {args.markets} --seconds {args.seconds} --loop {args.loop}`
Machine: {os.cpu_count()} cores ({platform.machine()}), shared with the feed process, Postgres, Redis and any other work;
`uptime` at the end: {uptime}. Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

One ShardRunner (collectors/runner.py, {args.loop} event loop), N spot markets on `@depth@100ms`
from a light Binance-protocol feed in its own process (200 levels a side, 4 levels changed per diff;
as on Binance, every market's diff of a 100 ms step has the same event time E and they go out as
one burst); samples COPYed every second into Postgres, one live update per market per second
published to the Redis channel layer (both groups). Measured for {args.seconds} s after every book synced:
- event lag = exchange event time E → the event applied to the local book (collector's clock; the
  feed runs on the same clock); write lag = a sample's second → the commit of its rows, every second
  counted (one that waited behind a busy flush included). Goal: both < 100 ms at p99;
- collector CPU = the collector process's CPU time (all its threads) / wall time, in cores;
- feed CPU / step p99 = the feed's own CPU, and its slowest 1 % of 100 ms steps (build + send):
  the feed keeps up while a step stays well under 100 ms and it delivers ≥ 95 % of N × 10 msgs/s;
- flush = the sink's COPY + commit of a second's rows, in its thread (part of the write lag);
- sampling = loop time of one second's samples of every market; live/s = updates published per second;
- load = 1-minute load average when that size finished (above {os.cpu_count()}, processes wait for a core).

A size keeps up when both lags are < 100 ms at p99, no second was skipped, every book stayed synced,
the feed kept up and every market's update was published each second.

| markets | msgs/s | collector CPU | feed CPU / step p99 | sampling ms/s | event lag p50 / p99 ms | write lag p50 / p99 ms | of which flush p50 / p99 ms | live/s | skipped s | load | keeps up |
|---|---|---|---|---|---|---|---|---|---|---|---|
{{rows}}

{{verdict}} Markets per core = that size / the cores the collector process used at it.
""".replace("{rows}", rows).replace("{verdict}", verdict)
    print(text)
    if not args.no_doc:
        write_section("live", text)


if __name__ == "__main__":
    main()
