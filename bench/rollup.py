"""Benchmark: roll-up and evaluation of 24 h of 1 s samples (issue 3's goal: 100 markets, 8.64 M
samples, under 10 s, most of it in SQL).

Run: .venv/bin/python bench/rollup.py [--markets 100] [--small 10] [--keep] [--reuse]

Creates a dedicated database (lcm_bench, or $BENCH_ROLLUP_DB; dropped at the end unless --keep;
--reuse measures on a database kept by an earlier run with the same --markets, skipping the
~2 minute load, for experiments), migrates it, generates the samples
with generate_series in time order (as the collectors write them: every market each second),
then times on the same data:
  - roll-up: compliance.rollups.roll_up over the day (the production SQL);
  - evaluation: compliance.judging.judge_day for every market (bars → verdicts, stored);
  - the alternative: the same minute statistics computed in Python from the fetched samples
    (at the small size only; it is linear in samples).
first for `--small` markets, then after adding the rest, for `--markets`. Writes its section into
docs/benchmarks.md.
"""
import argparse
import multiprocessing
import os
import platform
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sections import write_section  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("BENCH_ROLLUP_DB", "lcm_bench")
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DAY = date(2026, 1, 15)
WORKERS = 2  # the machine's cores: judging fans out one Celery task per market
DAY_START = datetime(2026, 1, 15, tzinfo=timezone.utc)

# Samples: spread mostly 0.15–0.55 % (some minutes above the 0.5 % target), 0.5 % invalid seconds,
# a 20-minute collector gap per market, depth around the $25k minimum, 1 s mid random walk.
GENERATE = """
INSERT INTO compliance_sample (market_id, ts, valid, best_bid, best_ask, mid, spread_ask_pct, spread_mid_pct, band_pct,
    depth_bid_usd, depth_ask_usd, depth_bid_complete, depth_ask_complete, slip_buy_pct, slip_sell_pct)
SELECT m, ts, NOT bad, CASE WHEN bad THEN NULL ELSE ask * (1 - sp / 100) END, CASE WHEN bad THEN NULL ELSE ask END,
       CASE WHEN bad THEN NULL ELSE ask * (1 - sp / 200) END, CASE WHEN bad THEN NULL ELSE sp END,
       CASE WHEN bad THEN NULL ELSE sp / (1 - sp / 200) END, 2,
       CASE WHEN bad THEN NULL ELSE 12000 + 8000 * r2 END, CASE WHEN bad THEN NULL ELSE 12500 + 8000 * r3 END,
       CASE WHEN bad THEN NULL ELSE true END, CASE WHEN bad THEN NULL ELSE true END,
       CASE WHEN bad THEN NULL ELSE 0.05 + 0.1 * r2 END, CASE WHEN bad THEN NULL ELSE 0.05 + 0.1 * r3 END
FROM (
    SELECT m, ts, r1 < 0.005 AS bad, 0.15 + 0.40 * r1 AS sp, r2, r3,
           100 * (1 + 0.01 * sin(extract(epoch FROM ts)::float8 / 600 + m)) AS ask
    FROM (
        SELECT m, ts, random() AS r1, random() AS r2, random() AS r3
        FROM generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz, interval '1 second') AS ts,
             generate_series(%(m0)s::int, %(m1)s::int) AS m
        WHERE NOT (ts >= %(t0)s::timestamptz + (m %% 20) * interval '1 hour'
                   AND ts < %(t0)s::timestamptz + (m %% 20) * interval '1 hour' + interval '20 minutes')
        ORDER BY ts, m
    ) r
) g
"""


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def setup_django():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def add_markets(first, last):
    """Markets first..last (ids), tier 1, each with the tier-1 obligation from the day before."""
    from compliance import services
    from compliance.models import Market, Venue

    services.load_tier_presets()
    venue, _ = Venue.objects.get_or_create(
        name="bench", defaults=dict(exchange="binance", market_type="spot", tier=1, rest_base_url="http://127.0.0.1:9",
                                    ws_base_url="ws://127.0.0.1:9"),
    )
    for i in range(first, last + 1):
        market = Market.objects.create(id=i, venue=venue, symbol=f"M{i:03d}USDT", base_asset=f"M{i}", quote_asset="USDT",
                                       tick_size="0.01")
        services.apply_tier_preset(market=market, changed_by=None, reason="bench", effective_from=DAY_START - timedelta(days=1))


def generate(first, last, *, with_trigger):
    """Load the samples; with_trigger=False skips the dirty-minute trigger (the timed roll-up
    below covers the whole day anyway) to keep the 8.64 M-row load short."""
    from django.db import connection

    from compliance.partitions import ensure_partitions

    ensure_partitions(DAY, DAY, tables=("compliance_sample",))
    t = time.perf_counter()
    with connection.cursor() as cur:
        if not with_trigger:
            cur.execute("ALTER TABLE compliance_sample DISABLE TRIGGER compliance_sample_inserted")
        cur.execute(GENERATE, {"t0": DAY_START, "t1": DAY_START + timedelta(seconds=86399), "m0": first, "m1": last})
        rows = cur.rowcount
        cur.execute("TRUNCATE compliance_minute_dirty")  # the timed roll-up below covers the whole day
    load = time.perf_counter() - t
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) compliance_sample")  # what autovacuum does after a day's inserts
    return rows, load


def python_roll_up(market_ids):
    """The alternative: fetch the samples and compute the minute statistics in Python."""
    from django.db import connection

    bars = defaultdict(lambda: [0, 0, 0, float("inf"), 0.0, 0.0, float("inf"), 0, 0])
    with connection.cursor() as cur:
        cur.execute(
            "SELECT market_id, ts, valid, spread_ask_pct, depth_bid_usd, depth_ask_usd FROM compliance_sample "
            "WHERE market_id = ANY(%s) AND ts >= %s AND ts < %s",
            [market_ids, DAY_START, DAY_START + timedelta(days=1)],
        )
        for market_id, ts, valid, spread, bid, ask in cur:
            b = bars[(market_id, ts.replace(second=0, microsecond=0))]
            b[0] += 1
            if valid:
                b[1] += 1
                ok = spread <= 0.5 and bid + ask >= 25000
                b[2] += ok
                b[3] = min(b[3], spread)
                b[4] += spread
                b[5] = max(b[5], spread)
                b[6] = min(b[6], bid + ask)
                b[7] |= 1 << ts.second
                b[8] |= ok << ts.second
    return len(bars)


JUDGED_AT = DAY_START + timedelta(days=1, minutes=30)


def judge(market_ids):
    """compliance.tasks.judge_market_day's work for these markets; returns the days passed."""
    from compliance import judging
    from compliance.models import Market

    return sum(
        bool(judging.judge_day(market=market, day=DAY, now=JUDGED_AT).passed)
        for market in Market.objects.filter(pk__in=market_ids).select_related("venue")
    )


def judge_in_processes(market_ids, processes):
    """The fan-out of one task per market over `processes` workers (forked, each its own connection)."""
    from django.db import connections

    connections.close_all()
    chunks = [market_ids[i::processes] for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.map(judge, chunks))


def measure(n_markets, *, alternative):
    from django.db import connection

    from compliance.rollups import roll_up

    ids = list(range(1, n_markets + 1))
    t = time.perf_counter()
    bars = roll_up(start=DAY_START, end=DAY_START + timedelta(days=1), market_ids=ids)
    sql_s = time.perf_counter() - t
    t = time.perf_counter()
    passed = judge(ids)
    eval_s = time.perf_counter() - t
    t = time.perf_counter()
    passed_2 = judge_in_processes(ids, WORKERS)
    eval_2_s = time.perf_counter() - t
    assert passed == passed_2
    # The live path: the beat task rolls up the last minute of every market each minute.
    minute = DAY_START + timedelta(hours=12)
    t = time.perf_counter()
    roll_up(start=minute, end=minute + timedelta(minutes=1), market_ids=ids)
    live_s = time.perf_counter() - t
    result = {"load_avg_1m": os.getloadavg()[0], "live_minute_s": live_s, "markets": n_markets, "bars": bars, "roll_up_s": sql_s, "evaluate_s": eval_s, "evaluate_2_s": eval_2_s,
              "passed": passed}
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM compliance_sample")
        result["samples"] = cur.fetchone()[0]
    if alternative:
        t = time.perf_counter()
        py_bars = python_roll_up(ids)
        result["python_roll_up_s"] = time.perf_counter() - t
        assert py_bars == bars, (py_bars, bars)
    return result




def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the bench database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure on the database a --keep run left (no load)")
    args = parser.parse_args()
    if not args.reuse:
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        setup_django()
        runs = []
        loads = []
        if args.reuse:
            from compliance.models import Market

            from django.db import connection

            assert Market.objects.count() == args.markets, "--reuse needs a database kept with the same --markets"
            with connection.cursor() as cur:  # the bars as a fresh load leaves them: none yet
                cur.execute("TRUNCATE compliance_minute_bar")
        for first, last, alternative in ((1, args.small, True), (args.small + 1, args.markets, False)):
            if not args.reuse:
                add_markets(first, last)
                loads.append(generate(first, last, with_trigger=alternative))
            runs.append(measure(last, alternative=alternative and not args.reuse))
            print(runs[-1], flush=True)
        from django.db import connections

        connections.close_all()
    finally:
        if not args.keep:
            admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    if args.reuse:
        print("--reuse: measured on a kept database (the small size among all markets' samples); docs not written")
        return
    small, big = runs
    rows = "\n".join(
        f"| {r['markets']} | {r['samples']:,} | {r['bars']:,} | {r['roll_up_s']:.2f} | {r['evaluate_s']:.2f} | "
        f"{r['evaluate_2_s']:.2f} | {r['roll_up_s'] + min(r['evaluate_s'], r['evaluate_2_s']):.2f} | "
        f"{r['live_minute_s'] * 1000:.0f} | "
        + (f"{r['python_roll_up_s']:.2f} |" if "python_roll_up_s" in r else "not run |")
        for r in runs
    )
    def total(r):
        return r["roll_up_s"] + min(r["evaluate_s"], r["evaluate_2_s"])

    growth = total(big) / total(small)
    text = f"""## Roll-up and evaluation of a day of 1 s samples (`bench/rollup.py`)

Command: `.venv/bin/python bench/rollup.py --markets {args.markets} --small {args.small}`
Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), PostgreSQL 15 on localhost, shared with
other work: 1-minute load average {small['load_avg_1m']:.1f} and {big['load_avg_1m']:.1f} at the two measurements
(a load above 2 means the figures include waiting for a core). Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

Data: 24 h of 1 s samples per market generated with `generate_series` in time order, 0.5 % invalid
seconds and a 20-minute gap per market (unknown time); tier-1 obligation. Loading took
{loads[0][1]:.1f} s for {loads[0][0]:,} rows with the dirty-minute trigger and {loads[1][1]:.1f} s for
{loads[1][0]:,} more without it (not part of the figure). Roll-up = `compliance.rollups.roll_up` over the day
(a parallel GROUP BY into a staging table, JIT-compiled with inlining, then the windows' bars replaced by a
plain INSERT in (market, minute) order); evaluation =
`compliance.judging.judge_day` for every market (bars → minute verdicts, volatility exemption, breach
budget, violations, escalation, stored), in one process and fanned out over {WORKERS} processes as the
per-market Celery tasks run; total = roll-up + the faster evaluation. Live minute = the beat task's
every-minute case, one minute of every market. Python roll-up = the alternative: fetch the samples
and compute a subset of the bar columns in Python (small size only).

| markets | samples | bars | roll-up (SQL) s | evaluation, 1 process s | evaluation, {WORKERS} processes s | total s | live minute roll-up ms | Python roll-up s |
|---|---|---|---|---|---|---|---|---|
{rows}

{args.small} → {args.markets} markets: total × {growth:.1f} for × {args.markets / args.small:.0f} the markets
(goal: under 10 s for 100 markets).

{'Met' if total(big) < 10 else 'Not met'}: the goal is 10 s; this run took {total(big):.1f} s. Where the time goes: the roll-up is one
parallel hash aggregate (leader + 2 workers) over every sample, about 20 aggregate transitions a
row; it is CPU-bound, but the two cores give it only ~1.4× (measured on this machine: the aggregate
alone took ~7 s of CPU in one process and ~10 s of CPU over leader + workers, ~6 s wall; two
single-process halves side by side were no better), so only less work per row helps. Tried and kept:
inlined, optimized JIT (~10 % less); a plain INSERT after deleting the windows' bars instead of
INSERT … ON CONFLICT DO UPDATE, in (market, minute) order, so a market's day of bars is a few dozen
heap pages for the judge's reads (it was ~1,200, one per bar); bars read in binary. Tried and
dropped: computing the per-row expressions once behind an OFFSET 0 fence (that forbids the parallel
plan: ~7 s serial), `sum/count` instead of `avg`, two single-process aggregates over halves of the
markets side by side, a set-returning-function fence (slower). In operation the day is never rolled up at once: the beat task rolls
up each minute as it closes (the live column), so the full-day figure is the cost of a backfill or
of re-running a day. Evaluation is Python per market (~1,500 minutes with their context, about 10
queries); it fans out over Celery workers, one task per market and day.
"""
    write_section("rollup", text)
    print(text)


if __name__ == "__main__":
    main()
