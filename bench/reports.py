"""Benchmark: audit reports (issue 8's goals: a monthly report for one market from 1 s samples
under 10 s; a daily pack for 100 markets under 60 s).

Run: .venv/bin/python bench/reports.py [--markets 100] [--days 30]

Creates a dedicated database (lcm_bench_reports, dropped at the end), migrates it, generates the
1 s samples with generate_series, then times reports.services.produce (gather through the
compliance engine, JSON, CSV, PDF with charts, manifest) on the same data:
  - monthly report, one market: cold (its minutes still to roll up: the engine's dirty-minute
    queue is drained first) and warm (bars already rolled up: a regeneration);
  - daily pack, `--markets` markets: one desk report holding every market, side by side with the
    alternative of one report per market (same numbers, more PDFs and more engine calls).
Writes its section into docs/benchmarks.md.
"""
import argparse
import os
import platform
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "lcm_bench_reports"
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
MONTH_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY_START = datetime(2026, 2, 10, tzinfo=timezone.utc)

# Spread mostly 0.15–0.55 % (some minutes above the 0.5 % target), 0.5 % invalid seconds, a
# 20-minute collector gap per market and day, depth around the $25k minimum.
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
        FROM generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz - interval '1 second', interval '1 second') AS ts,
             generate_series(%(m0)s::int, %(m1)s::int) AS m
        WHERE NOT (extract(hour FROM ts) = m %% 24 AND extract(minute FROM ts) < 20)
        ORDER BY ts, m
    ) r
) g
"""


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def generate(market_ids, start, end):
    from django.db import connection

    from compliance.partitions import ensure_partitions

    ensure_partitions(start.date(), (end - timedelta(seconds=1)).date())
    t = time.perf_counter()
    day = start
    with connection.cursor() as cur:
        while day < end:  # a day per statement keeps the trigger's transition table small
            cur.execute(GENERATE, {"t0": day, "t1": min(day + timedelta(days=1), end), "m0": market_ids[0], "m1": market_ids[-1]})
            day += timedelta(days=1)
    return time.perf_counter() - t


def add_markets(count):
    from compliance import services
    from compliance.models import Market, Venue

    services.load_tier_presets()
    venue, _ = Venue.objects.get_or_create(name="Bench venue", defaults=dict(
        exchange="binance", market_type="spot", tier=1, rest_base_url="https://api.binance.com",
        ws_base_url="wss://stream.binance.com:9443"))
    markets = []
    for i in range(count):
        market = Market.objects.create(venue=venue, symbol=f"BENCH{i:03d}USDT", base_asset=f"B{i:03d}", quote_asset="USDT",
                                       tick_size="0.01")
        services.change_obligation(market=market, terms={}, changed_by=None, reason="tier-1 preset",
                                   effective_from=MONTH_START - timedelta(days=1))
        markets.append(market)
    return markets


def timed_produce(scope, period, markets):
    from django.utils import timezone as djtz

    from reports import services

    t = time.perf_counter()
    files, manifest = services.produce(scope=scope, period=period, markets=markets, generated_at=djtz.now(),
                                       progress=lambda percent, note: None)
    return time.perf_counter() - t, files


def write_section(text):
    path = ROOT / "docs" / "benchmarks.md"
    begin, end = "<!-- bench:reports -->", "<!-- /bench:reports -->"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from reports.periods import Period, day_period

        markets = add_markets(args.markets)
        month_end = MONTH_START + timedelta(days=args.days)
        load_month = generate([markets[0].id], MONTH_START, month_end)
        month = Period("range" if args.days != 31 else "month", MONTH_START, month_end)
        scope = {"kind": "market", "label": str(markets[0]), "market_id": markets[0].id, "venue_id": None}
        cold, month_files = timed_produce(scope, month, markets[:1])
        warm, month_files_2 = timed_produce(scope, month, markets[:1])
        same = all(month_files[n] == month_files_2[n] for n in ("report.json", "minute_bars.csv", "incidents.csv"))

        load_day = generate([m.id for m in markets], DAY_START, DAY_START + timedelta(days=1))
        day = day_period(DAY_START.date())
        desk = {"kind": "desk", "label": "whole desk", "market_id": None, "venue_id": None}
        pack, pack_files = timed_produce(desk, day, markets)
        t = time.perf_counter()
        for market in markets:
            timed_produce({"kind": "market", "label": str(market), "market_id": market.id, "venue_id": None}, day, [market])
        separate = time.perf_counter() - t
        samples_month = args.days * 86400 - args.days * 20 * 60
        text = f"""
## Audit reports (`bench/reports.py`)

Command: `.venv/bin/python bench/reports.py --markets {args.markets} --days {args.days}`
Machine: {os.cpu_count()} cores ({platform.machine()}), PostgreSQL on localhost, shared with other work.
Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

Data: 1 s samples from `generate_series` (0.5 % invalid seconds, a 20-minute collector gap per market
and day, spreads around the 0.5 % target, depth around the $25k minimum); tier-1 obligation.
Figure = `reports.services.produce`: gather through the compliance engine (roll-up of pending
minutes, `judging.judge_span`, verdicts per version, closed-day liquidity scores, sample statistics
with percentiles), JSON, two CSVs, PDF with heatmap/spread/depth charts, manifest.

| report | samples | time s | goal | files |
|---|---|---|---|---|
| monthly, 1 market, {args.days} days — cold (minutes rolled up first) | {samples_month:,} | {cold:.1f} | < 10 s | PDF {len(month_files['report.pdf']) / 1e6:.1f} MB, CSV {len(month_files['minute_bars.csv']) / 1e6:.1f} MB |
| monthly, 1 market — warm (regeneration; bars already rolled up) | {samples_month:,} | {warm:.1f} | | identical JSON/CSV: {'yes' if same else 'NO'} |
| daily pack, {args.markets} markets, one desk report | {args.markets * (86400 - 1200):,} | {pack:.1f} | < 60 s | PDF {len(pack_files['report.pdf']) / 1e6:.1f} MB |
| alternative: {args.markets} separate market reports for the same day | same | {separate:.1f} | | {args.markets} PDFs |

Loading the samples (not part of the figures): month {load_month:.1f} s, day pack {load_day:.1f} s.
"""
        write_section(text)
        print(text)
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
