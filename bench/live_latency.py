"""Live path latency, simulator event → chart update in the browser, with 20 open pages (issue 6).

Run: .venv/bin/python bench/live_latency.py   (goal: p99 < 500 ms with 20 open browsers)

Everything real, each in its own process, every process's output kept in var/bench-logs/:
the simulator (`python -m simulator --scenario calm`), the demo seeded from it (`manage.py seed_demo`),
the collector (`manage.py collect --venue binance-spot --markets BTCUSDT`) → Redis channel layer
(Redis DB 2) → uvicorn's consumer → 20 Chromium pages (one browser, one login) on BTCUSDT's market page.
Each page records when `Plotly.extendTraces` resolves for each second's point; a WebSocket client
on the simulator records every depth event's exchange time E. Per chart update, two latencies:
(a) from the sample's instant (its second boundary: all a 1 s sampler can promise) to the draw;
(b) from the newest event E the sample can reflect (the last E at or before that instant).
An arbitrary event also waits 0–1000 ms for the next sample, which neither figure includes.
Own database lcm_latency, dropped at the end. Writes its section of docs/benchmarks.md.
"""
import asyncio
import bisect
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from sections import write_section  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "lcm_latency"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOGS = ROOT / "var" / "bench-logs"
PAGES, SECONDS = int(os.environ.get("BENCH_PAGES", 20)), int(os.environ.get("BENCH_SECONDS", 60))
VENUE, SYMBOL = "binance-spot", "BTCUSDT"
USER, PASSWORD = "latency-viewer", "latency-viewer-pw-1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
ENV = {
    **os.environ,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": "redis://127.0.0.1:6379/2",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "STATIC_ROOT": str(ROOT / "var" / "bench-static"),
    "PYTHONUNBUFFERED": "1",
}
os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "STATIC_ROOT")})

# Wraps Plotly.extendTraces: [time the spread chart's point was drawn (ms), the point's second (epoch ms)].
DRAWS = """() => {
  window.__draws = [];
  const extend = Plotly.extendTraces;
  Plotly.extendTraces = function (gd, update) {
    const xs = update.x[0], second = xs[xs.length - 1];
    return extend.apply(this, arguments).then(r => {
      if (gd.id === "chart-spread") window.__draws.push([Date.now(), second]);
      return r;
    });
  };
}"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every subprocess with its output in var/bench-logs/<name>.log, all stopped on exit."""

    def __init__(self):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.running: list[tuple[str, subprocess.Popen]] = []

    def run(self, name: str, *args: str):
        with open(LOGS / f"{name}.log", "w") as log:
            done = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"{name} failed ({done.returncode}); see {LOGS / f'{name}.log'}:\n{self.tail(name)}")

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(LOGS / f"{name}.log", "w")
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.running.append((name, process))
        return process

    def check(self):
        for name, process in self.running:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {LOGS / f'{name}.log'}:\n{self.tail(name)}")

    @staticmethod
    def tail(name: str) -> str:
        return (LOGS / f"{name}.log").read_text()[-3000:]

    def stop_all(self):
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.running):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_http(url: str, procs: Processes, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check()
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


class EventClock:
    """Records the exchange event time E of every depth event the simulator streams for one symbol."""

    def __init__(self, ws_base: str, symbol: str):
        self.times: list[int] = []
        self.url, self.stream = ws_base.rstrip("/") + "/stream", f"{symbol.lower()}@depth@100ms"
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.task = asyncio.run_coroutine_threadsafe(self.listen(), self.loop)

    async def listen(self):
        import orjson
        import websockets

        async with websockets.connect(self.url, max_size=None) as ws:
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": [self.stream], "id": 1}).decode())
            async for raw in ws:
                message = orjson.loads(raw)
                data = message.get("data") if isinstance(message, dict) else None
                if isinstance(data, dict) and "E" in data:
                    self.times.append(int(data["E"]))

    def stop(self):
        self.task.cancel()
        try:
            self.task.result(timeout=5)
        except BaseException:  # cancelled, or the stream had already failed: either way it is over
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


def admin(sql: str):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def make_viewer() -> int:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.db import connections

    from compliance.models import Market

    user = User.objects.create_user(USER, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    market_id = Market.objects.get(venue__name=VENUE, symbol=SYMBOL).pk
    connections.close_all()
    return market_id


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def measure(procs: Processes):
    from playwright.sync_api import sync_playwright

    sim_port, web_port = free_port(), free_port()
    sim_url, web = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{web_port}"
    procs.start("simulator", "-m", "simulator", "--scenario", "calm", "--seed", "7", "--port", str(sim_port))
    wait_http(f"{sim_url}/_sim/state", procs)
    procs.run("migrate", "manage.py", "migrate", "--noinput")
    procs.run("seed_demo", "manage.py", "seed_demo", "--sim-url", sim_url)
    procs.run("collectstatic", "manage.py", "collectstatic", "--noinput", "-v", "0")
    market_id = make_viewer()
    procs.start("uvicorn", "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(web_port),
                "--log-level", "info")
    wait_http(f"{web}/login/", procs)
    clock = EventClock(f"ws://127.0.0.1:{sim_port}/{VENUE}", SYMBOL)
    procs.start("collector", "manage.py", "collect", "--venue", VENUE, "--markets", SYMBOL)
    url = f"{web}/markets/{market_id}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # One context (one login, shared session cookie) and 20 pages: Plotly (3.5 MB) comes from the
            # browser's cache after the first page, which spares the shared 2 cores 19 downloads.
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.set_default_timeout(180_000)  # the 2 cores are shared: a page can take a while to go live
            login = context.new_page()
            login.goto(f"{web}/login/")
            login.fill("input[name=username]", USER)
            login.fill("input[name=password]", PASSWORD)
            login.click("button[type=submit]")
            login.wait_for_url(f"{web}/")
            login.close()
            pages = []
            for _ in range(PAGES):
                page = context.new_page()
                page.goto(url, wait_until="domcontentloaded")
                page.wait_for_selector("#conn[data-state='live']")
                pages.append(page)
                procs.check()
            print(f"{PAGES} pages open and live; waiting for the collector's first published sample", flush=True)
            deadline = time.monotonic() + 120
            while True:  # the collector is synced and publishing once a page draws a live point
                procs.check()
                if pages[0].evaluate("() => document.getElementById('chart-spread').data[0].y.some(v => v != null)"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no chart point within 120 s; collector log:\n{procs.tail('collector')}")
                time.sleep(1)
            for page in pages:
                page.evaluate(DRAWS)
            print(f"measuring for {SECONDS} s", flush=True)
            time.sleep(SECONDS)
            procs.check()
            draws = [d for page in pages for d in page.evaluate("window.__draws")]
            browser.close()
    finally:
        clock.stop()
    events = sorted(clock.times)
    from_event, from_sample = [], []
    for drawn_ms, second in draws:
        sample_ms = second if isinstance(second, (int, float)) else (  # epoch ms, or the UTC text pages drew before
            datetime.fromisoformat(second.replace(" ", "T").rstrip("Z") + "+00:00").timestamp() * 1000)
        from_sample.append(drawn_ms - sample_ms)
        i = bisect.bisect_right(events, sample_ms)
        if i:  # the newest event the sample can reflect
            from_event.append(drawn_ms - events[i - 1])
    return from_event, from_sample, len(events)


def main():
    # A SIGTERM (e.g. `timeout`) unwinds through the finally blocks, so no process outlives the bench.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{DB}"')
    procs = Processes()
    try:
        from_event, from_sample, events = measure(procs)
    finally:
        procs.stop_all()
        admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    if not from_sample:
        raise SystemExit(f"no chart updates recorded; logs in {LOGS}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    goal = lambda xs: "met" if pct(xs, 0.99) < 500 else "NOT met"  # noqa: E731
    text = f"""## Live path latency: simulator event → chart update, {PAGES} open browsers

`.venv/bin/python bench/live_latency.py` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, 2 cores shared with
other engineers' work (`uptime`: {load}); local PG and Redis. Simulator (`calm`), collector
(`manage.py collect --venue {VENUE} --markets {SYMBOL}`), uvicorn (one worker), each its own process;
Redis channel layer; {PAGES} Chromium pages (one browser, one logged-in context) on {SYMBOL}'s market page
for {SECONDS} s. A draw = `Plotly.extendTraces` resolved on the spread chart. {len(from_sample)} draws;
{events} depth events recorded from the simulator's stream. Goal: p99 < 500 ms.

| from | p50 | p99 | max | goal |
|---|---|---|---|---|
| (a) the sample's instant (its second boundary) | {pct(from_sample, 0.5):.0f} ms | {pct(from_sample, 0.99):.0f} ms | {max(from_sample):.0f} ms | {goal(from_sample)} |
| (b) the newest simulator event (exchange time E) the sample reflects | {pct(from_event, 0.5):.0f} ms | {pct(from_event, 0.99):.0f} ms | {max(from_event):.0f} ms | {goal(from_event)} |

The product samples every second (DESIGN.md), so an arbitrary event first waits 0–1000 ms for the next
sample; neither row includes that wait — measured from an arbitrary event, add up to 1000 ms, which alone
exceeds 500 ms. The goal is judged on (a), the part of the path after the 1 s sampler. Process output:
var/bench-logs/.
"""
    write_section("live_latency", text)
    print(text)


if __name__ == "__main__":
    main()
