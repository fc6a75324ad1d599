"""Overview with 500 markets: server time to first byte and time to a usable page in Chromium (goal < 1 s each).

Run: .venv/bin/python bench/dashboard.py [--against REV]   (`--overview-only` is accepted: the live path has
its own bench, bench/live_latency.py). Builds its own database (lcm_bench_dashboard), 500 markets on 5
venues with obligations in force since 15 minutes ago and 15 minutes of 1 s samples each (450k rows),
rolled up and judged by the compliance engine; serves the ASGI app with uvicorn (one worker, persistent
DB connections as deployed) and loads the overview in Debian's Chromium, each load in a fresh context
(nothing cached). "Usable" is taken in the page: the frame after the 500 rows are drawn has been painted,
and the live socket is open (an init script watches for both; Playwright's own polling is not counted).
The earlier measure (Playwright waits for both, then reads `performance.now()`) is reported beside it.
`--against REV` serves git revision REV (e.g. the commit before a change) from a temporary checkout on
the same database and loads the two alternately: the before/after comparison of one run.
Side by side, in the same run: the engine's bulk `markets_status` against its per-market
`market_status` called for each row. Writes its section of docs/benchmarks.md.
"""
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sections import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "lcm_bench_dashboard"
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")  # its own Redis database: the bench clears its cache
MARKETS, MINUTES, RUNS = 500, 15, 9

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
    # The engine's verdicts as beat leaves them: minute bars, today's result per market.
    from compliance import judging
    from compliance.rollups import roll_up

    roll_up(start=since, end=now, market_ids=ids)
    for m in Market.objects.filter(pk__in=ids).select_related("venue"):
        judging.judge_day(market=m, day=now.date(), now=now)
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

    ids = list(active_markets().values_list("id", flat=True))
    t0 = time.perf_counter()
    engine.markets_status(market_ids=ids, now=now)
    bulk = time.perf_counter() - t0
    t0 = time.perf_counter()
    for market_id in ids:
        engine.market_status(market_id=market_id, now=now)
    per_market = time.perf_counter() - t0
    return bulk, per_market


# Records, in the page, when the overview became usable: the frame after body[data-ready] painted (a
# task queued from the next animation frame runs after that frame) and the live socket open.
USABLE = """(() => {
  const t = window.__usable = {};
  const check = () => {
    if (!t.ready && document.body && document.body.dataset.ready === "1") {
      t.ready = performance.now();
      requestAnimationFrame(() => setTimeout(() => { t.painted = performance.now(); }, 0));
    }
    const c = document.getElementById("conn");
    if (!t.live && c && c.dataset.state === "live") t.live = performance.now();
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeFilter: ["data-ready", "data-state"]});
})();"""


def browser_usable(urls: dict[str, str], cookie) -> dict[str, list[dict]]:
    """Each server's overview loaded RUNS times, alternating between the servers; per load the times (ms)."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS

    found = {name: [] for name in urls}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(RUNS):
            for name, url in urls.items():
                context = browser.new_context(viewport={"width": 1500, "height": 1000})
                context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": url}])
                context.add_init_script(USABLE)
                page = context.new_page()
                page.goto(url, wait_until="commit")
                page.wait_for_selector("body[data-ready='1']")
                page.wait_for_selector("#conn[data-state='live']")
                polled = page.evaluate("performance.now()")  # the earlier measure: when Playwright saw both
                page.wait_for_function("() => window.__usable.painted && window.__usable.live")
                t = page.evaluate("""() => { const n = performance.getEntriesByType("navigation")[0];
                    return {...window.__usable, ttfb: n.responseStart, html: n.responseEnd,
                            rows: document.querySelectorAll("tbody tr[data-market-id]").length}; }""")
                found[name].append({**t, "polled": polled, "usable": max(t["painted"], t["live"])})
                context.close()
        browser.close()
    return found


def checkout(rev: str) -> Path:
    """Revision `rev` of this repository in a temporary directory (git archive: no worktree bookkeeping)."""
    import subprocess
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="lcm-bench-rev-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def kept_notes() -> str:
    """A hand-kept block inside the section (between these markers) carried over when the bench rewrites it:
    the 10-minute soak's result, which this bench does not run."""
    from sections import DOC

    begin, end = "<!-- bench:dashboard:notes -->", "<!-- /bench:dashboard:notes -->"
    current = DOC.read_text() if DOC.exists() else ""
    return current[current.index(begin): current.index(end) + len(end)] if begin in current and end in current else ""


def uptime() -> str:
    import subprocess

    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    import shutil

    import django

    against = sys.argv[sys.argv.index("--against") + 1] if "--against" in sys.argv else None
    load_start = uptime()
    admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{BENCH_DB}"')
    django.setup()
    from django.core.cache import cache
    from django.db import connections

    from tests.dashboard.browser import AsgiServer

    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    user = seed(now)
    cookie = session_cookie(user)
    print(f"seeded {MARKETS} markets, {MARKETS * (MINUTES * 60 + 1)} samples in {time.perf_counter() - t0:.1f} s")
    cache.clear()
    bulk, per_market = in_process(datetime.now(timezone.utc))
    connections.close_all()
    servers, old_tree = {}, None
    try:
        # As deployed: persistent database connections (the tests' server closes them after each request).
        servers["now"] = AsgiServer(BENCH_DB, ROOT / "var" / "bench-static", DB_CONN_MAX_AGE="60")
        if against:
            old_tree = checkout(against)
            servers[against] = AsgiServer(BENCH_DB, old_tree / "var" / "bench-static", root=old_tree, DB_CONN_MAX_AGE="60")
        url = servers["now"].url
        ttfb(f"{url}/", cookie)  # warm the worker's DB connection
        overview = [ttfb(f"{url}/", cookie) for _ in range(RUNS)]
        api = [ttfb(f"{url}/api/overview/", cookie) for _ in range(RUNS)]
        loads = browser_usable({name: f"{srv.url}/" for name, srv in servers.items()}, cookie)
        cold = []
        for _ in range(3):  # the first request of a minute: the engine's verdicts read again
            cache.clear()
            cold.append(ttfb(f"{url}/", cookie)[0])
    finally:
        for srv in servers.values():
            srv.stop()
        if old_tree is not None:
            shutil.rmtree(old_tree, ignore_errors=True)
    admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    load_end = uptime()
    med = statistics.median
    ms = lambda v: f"{v:.0f} ms"  # noqa: E731
    rows = loads["now"][0]["rows"]

    def row(what, key):
        cells = [f"{ms(med([t[key] for t in loads[name]]))} / {ms(max(t[key] for t in loads[name]))}" for name in loads]
        return f"| {what} | " + " | ".join(cells) + " |"

    names = " | ".join(("this code" if name == "now" else f"`{name}`") + " (median / max)" for name in loads)
    usable = med([t["usable"] for t in loads["now"]])
    text = f"""## Dashboard overview, {MARKETS} markets

`.venv/bin/python bench/dashboard.py{f" --against {against}" if against else ""}` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, 2 cores,
local PG and Redis; `uptime` at the start: {load_start}; at the end: {load_end}.
{MARKETS} markets with {MINUTES} min of 1 s samples each, rolled up and judged by the compliance engine; uvicorn,
one worker, persistent DB connections; Chromium (Debian's, headless), viewport 1500×1000, a fresh context per
load (nothing cached){", the two servers loaded alternately" if against else ""}; {RUNS} loads each. Goal < 1 s each.

| server (urllib) | median | max | goal |
|---|---|---|---|
| time to first byte of `/` (HTML, {overview[0][1] / 1024:.0f} kB), verdicts cached for the minute | {ms(med([o[0] for o in overview]) * 1000)} | {ms(max(o[0] for o in overview) * 1000)} | < 1 s: {"met" if med([o[0] for o in overview]) < 1 else "NOT met"} |
| the same, first request of a minute (engine's verdicts read again) | {ms(med(cold) * 1000)} | {ms(max(cold) * 1000)} | |
| time to first byte of `/api/overview/` (resync JSON) | {ms(med([a[0] for a in api]) * 1000)} | {ms(max(a[0] for a in api) * 1000)} | |

| Chromium, from navigation start | {names} |
|---|{"---|" * len(loads)}
{row("first byte of the HTML", "ttfb")}
{row("last byte of the HTML", "html")}
{row(f"{rows} rows drawn (`body[data-ready]` set)", "ready")}
{row("**usable**: that frame painted and the live socket open", "usable")}
{row("the earlier measure: Playwright saw both, then read `performance.now()`", "polled")}

Usable (this code): median {ms(usable)} — goal < 1 s: {"met" if usable < 1000 else "**NOT met**"}.
In process, all {MARKETS} markets uncached: the engine's bulk `markets_status` {ms(bulk * 1000)}, against its
per-market `market_status` called once per market {ms(per_market * 1000)}.
"""
    write_section("dashboard", f"{text}\n{kept_notes()}")
    print(text)


if __name__ == "__main__":
    main()
