"""Overview with 500 markets: server time to first byte and time to a usable page in Chromium.

Run: .venv/bin/python bench/dashboard.py   (goal: < 1 s each). Builds its own database
(lcm_bench_dashboard), 500 markets on 5 venues with obligations in force since 15 minutes ago
and 15 minutes of 1 s samples each (450k rows), serves the ASGI app with uvicorn and loads
the overview in Debian's Chromium. Side by side, in the same run: the bulk selectors the
overview uses against the compliance engine's per-market `market_status` called for each row.
Writes its section of docs/benchmarks.md.
"""
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "lcm_bench_dashboard"
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
MARKETS, MINUTES, RUNS = 500, 15, 7

SAMPLES = """
INSERT INTO compliance_sample (market_id, ts, valid, best_bid, best_ask, mid, spread_ask_pct, spread_mid_pct, band_pct,
    depth_bid_usd, depth_ask_usd, depth_bid_complete, depth_ask_complete, slip_buy_pct, slip_sell_pct)
SELECT m, ts, true, 99.8, 100, 99.9, 0.1 + 0.6 * r, 0.1 + 0.6 * r, 2, 10000 + 20000 * r, 12000 + 20000 * r,
       r > 0.1, true, 0.05, 0.05
FROM (SELECT m, ts, random() AS r FROM generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz, interval '1 second') ts,
      unnest(%(ids)s::int[]) m) g
"""


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def seed(now):
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from compliance.models import Market, Venue
    from compliance.partitions import ensure_partitions
    from compliance.services import change_obligation

    call_command("migrate", verbosity=0)
    venues = [Venue.objects.create(name=f"Venue {i}", exchange="binance", market_type="spot", tier=1 + i % 3,
                                   rest_base_url="http://127.0.0.1:1", ws_base_url="ws://127.0.0.1:1") for i in range(5)]
    since = now - timedelta(minutes=MINUTES)
    ids = []
    for i in range(MARKETS):
        m = Market.objects.create(venue=venues[i % 5], symbol=f"T{i:03d}USDT", base_asset=f"T{i:03d}", quote_asset="USDT",
                                  tick_size="0.01")
        change_obligation(market=m, terms={}, changed_by=None, reason="bench", effective_from=since)
        ids.append(m.id)
    ensure_partitions(since.date(), now.date() + timedelta(days=1))
    with connection.cursor() as cur:
        cur.execute(SAMPLES, {"t0": since, "t1": now, "ids": ids})
        cur.execute("ANALYZE compliance_sample")
    user = User.objects.create_user("bench-viewer", password="bench-viewer-pw-1")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    return user


def session_cookie(user):
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def ttfb(url, cookie):
    request = urllib.request.Request(url, headers={"Cookie": f"{cookie[0]}={cookie[1]}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        response.read(1)
        first = time.perf_counter() - t0
        size = 1 + len(response.read())
    return first, size


def in_process(now):
    from compliance import selectors as engine
    from compliance.selectors import active_markets
    from dashboard import selectors

    t0 = time.perf_counter()
    selectors.overview_rows(now=now)
    bulk = time.perf_counter() - t0
    ids = list(active_markets().values_list("id", flat=True))
    t0 = time.perf_counter()
    for market_id in ids:
        engine.market_status(market_id=market_id, now=now)
    per_market = time.perf_counter() - t0
    return bulk, per_market


def browser_usable(url, cookie):
    from playwright.sync_api import sync_playwright

    from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(RUNS):
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": url}])
            page = context.new_page()
            page.goto(url, wait_until="commit")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_selector("#conn[data-state='live']")
            # From navigation start to the table rendered and the live socket open.
            times.append(page.evaluate("performance.now()") / 1000)
            rows = page.locator("tbody tr[data-market-id]").count()
            context.close()
        browser.close()
    return times, rows


def write_section(text):
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    start, end = "<!-- bench:dashboard -->", "<!-- /bench:dashboard -->"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in current and end in current:
        current = current[: current.index(start)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def main():
    import django

    admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{BENCH_DB}"')
    django.setup()
    from django.db import connections

    from tests.dashboard.browser import AsgiServer

    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    user = seed(now)
    cookie = session_cookie(user)
    print(f"seeded {MARKETS} markets, {MARKETS * (MINUTES * 60 + 1)} samples in {time.perf_counter() - t0:.1f} s")
    bulk, per_market = in_process(datetime.now(timezone.utc))
    connections.close_all()
    static_root = ROOT / "var" / "bench-static"
    server = AsgiServer(BENCH_DB, static_root)
    try:
        ttfb(f"{server.url}/", cookie)  # warm the worker's DB connection
        overview = [ttfb(f"{server.url}/", cookie) for _ in range(RUNS)]
        api = [ttfb(f"{server.url}/api/overview/", cookie) for _ in range(RUNS)]
        usable, rows = browser_usable(f"{server.url}/", cookie)
    finally:
        server.stop()
    admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    med = lambda xs: statistics.median(xs)  # noqa: E731
    text = f"""## Dashboard overview, {MARKETS} markets

`.venv/bin/python bench/dashboard.py` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, 2 cores (shared), local PG and Redis;
{MARKETS} markets with {MINUTES} min of 1 s samples each; uvicorn, one worker; median of {RUNS} runs. Goal < 1 s each.

| what | median | max |
|---|---|---|
| server: time to first byte of `/` (HTML, {overview[0][1] / 1024:.0f} kB) | {med([o[0] for o in overview]) * 1000:.0f} ms | {max(o[0] for o in overview) * 1000:.0f} ms |
| server: time to first byte of `/api/overview/` (resync JSON) | {med([a[0] for a in api]) * 1000:.0f} ms | {max(a[0] for a in api) * 1000:.0f} ms |
| Chromium: navigation start → {rows} rows rendered and the live socket open | {med(usable) * 1000:.0f} ms | {max(usable) * 1000:.0f} ms |

The HTTP figures are with today's uptime cached (it changes only when a minute closes; the first request of
each minute recomputes it). Side by side, in process, all {MARKETS} rows uncached: the overview's bulk selectors
{bulk * 1000:.0f} ms, against the compliance engine's per-market `market_status` called once per market
{per_market * 1000:.0f} ms — which is why the overview reads in bulk.
"""
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
