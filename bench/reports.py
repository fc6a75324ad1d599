"""Benchmark: audit reports (issue 8's goals: a monthly report for one market from 1 s samples
under 10 s; a daily pack for 100 markets under 60 s).

Run: .venv/bin/python bench/reports.py [--markets 100] [--days 30] [--keep-db] [--reuse-db]

Creates a dedicated database (lcm_bench_reports; dropped at the end unless --keep-db; --reuse-db
skips creating and loading it when it is already there), generates the 1 s samples with
generate_series, then times reports.services.produce (roll-up of pending minutes, gather through
the compliance engine, JSON, CSV, PDF with charts, manifest) on the same data:
  - monthly report, one market: cold (every minute of the month marked for roll-up again, no
    stored day result), warm (bars rolled up: a regeneration), and with the engine's stored
    closed-day results present (what the nightly judging leaves behind);
  - daily pack, `--markets` markets, one desk report: cold and warm, side by side with the
    alternative of one report per market (same numbers, more PDFs and more queries).
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
BENCH_DB = os.environ.get("BENCH_REPORTS_DB", "lcm_bench_reports")
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
MONTH_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY_START = datetime(2026, 2, 10, tzinfo=timezone.utc)
VENUE = "Bench venue"

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
# Mark every minute of the window for roll-up again, as freshly written samples would.
MARK_DIRTY = """
INSERT INTO compliance_minute_dirty (market_id, minute)
SELECT m, t FROM unnest(%(markets)s::int[]) AS m,
     generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz - interval '1 minute', interval '1 minute') AS t
ON CONFLICT DO NOTHING
"""


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def database_exists() -> bool:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone() is not None


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
    venue, _ = Venue.objects.get_or_create(name=VENUE, defaults=dict(
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


def mark_dirty(markets, start, end):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(MARK_DIRTY, {"markets": [m.id for m in markets], "t0": start, "t1": end})


def forget_stored_results(markets):
    from compliance.models import DailyResult, LiquidityScore

    LiquidityScore.objects.filter(market__in=markets).delete()
    DailyResult.objects.filter(market__in=markets).delete()


# Where produce's time goes, by its progress notes (reports/services.py).
PHASES = ((3, "roll-up"), (5, "judging"), (70, "percentiles, statistics, scores, behaviour, fees, document"),
          (78, "JSON and CSV"), (82, "PDF and manifest"))


QUIET = {"below": None, "wait": 0.0}  # --quiet-below / --quiet-wait
LOADS: list[float] = []  # the 1-minute load average as each timed run started


def wait_for_quiet():
    """Let the shared machine settle (up to --quiet-wait s) before a timed run; note its load."""
    deadline = time.monotonic() + QUIET["wait"]
    while QUIET["below"] is not None and os.getloadavg()[0] >= QUIET["below"] and time.monotonic() < deadline:
        time.sleep(5)
    LOADS.append(os.getloadavg()[0])


def timed_produce(scope, period, markets):
    """(seconds, files, {phase: seconds})."""
    from django.utils import timezone as djtz

    from reports import services

    wait_for_quiet()
    marks = []
    t = time.perf_counter()
    files, manifest = services.produce(scope=scope, period=period, markets=markets, generated_at=djtz.now(),
                                       progress=lambda percent, note: marks.append((percent, time.perf_counter())))
    total = time.perf_counter() - t
    phases = {}
    for (name_lo, name), (next_lo, _) in zip(PHASES, [*PHASES[1:], (101, "")]):
        inside = [at for percent, at in marks if name_lo <= percent < next_lo]
        after = [at for percent, at in marks if percent >= next_lo]
        if inside:
            phases[name] = (after[0] if after else t + total) - inside[0]
    return total, files, phases


def split(phases) -> str:
    return "; ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items())


def write_section(text):
    """Replace the section; a hand-kept record of earlier runs inside it (between <!-- bench:reports:before -->
    and <!-- /bench:reports:before -->) is carried over."""
    path = ROOT / "docs" / "benchmarks.md"
    begin, end = "<!-- bench:reports -->", "<!-- /bench:reports -->"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    kept, kept_begin, kept_end = "", "<!-- bench:reports:before -->", "<!-- /bench:reports:before -->"
    if kept_begin in current and kept_end in current:
        kept = current[current.index(kept_begin): current.index(kept_end) + len(kept_end)]
    block = f"{begin}\n{text.strip()}\n\n{kept}\n{end}" if kept else f"{begin}\n{text.strip()}\n{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep-db", action="store_true", help="leave the database for another run")
    parser.add_argument("--reuse-db", action="store_true", help="use the database a --keep-db run left")
    parser.add_argument("--skip-separate", action="store_true", help="do not time the one-report-per-market alternative")
    parser.add_argument("--quiet-below", type=float, help="before each timed run, wait until the 1-min load is below this")
    parser.add_argument("--quiet-wait", type=float, default=600, help="…but no longer than this many seconds")
    args = parser.parse_args()
    QUIET.update(below=args.quiet_below, wait=args.quiet_wait)
    reuse = args.reuse_db and database_exists()
    if not reuse:
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from compliance import judging, rollups
        from compliance.models import Market
        from reports.periods import Period, day_period

        month_end = MONTH_START + timedelta(days=args.days)
        load_month = load_day = None
        if reuse:
            markets = list(Market.objects.filter(venue__name=VENUE).select_related("venue").order_by("id"))[: args.markets]
        else:
            call_command("migrate", verbosity=0)
            markets = add_markets(args.markets)
            load_month = generate([markets[0].id], MONTH_START, month_end)
            load_day = generate([m.id for m in markets], DAY_START, DAY_START + timedelta(days=1))
            rollups.roll_up_pending()
        load_before = load_average()
        month = Period("range" if args.days != 31 else "month", MONTH_START, month_end)
        scope = {"kind": "market", "label": str(markets[0]), "market_id": markets[0].id, "venue_id": None}
        forget_stored_results(markets[:1])
        mark_dirty(markets[:1], MONTH_START, month_end)
        cold, month_files, _ = timed_produce(scope, month, markets[:1])
        warm, month_files_2, month_phases = timed_produce(scope, month, markets[:1])
        same = all(month_files[n] == month_files_2[n] for n in ("report.json", "minute_bars.csv", "incidents.csv"))
        for i in range(args.days):  # what the nightly judging stores for each closed day (not timed)
            judging.judge_day(market=markets[0], day=(MONTH_START + timedelta(days=i)).date())
            judging.score_closed_day(market=markets[0], day=(MONTH_START + timedelta(days=i)).date())
        stored, _, _ = timed_produce(scope, month, markets[:1])

        day = day_period(DAY_START.date())
        desk = {"kind": "desk", "label": "whole desk", "market_id": None, "venue_id": None}
        forget_stored_results(markets)
        mark_dirty(markets, DAY_START, DAY_START + timedelta(days=1))
        pack_cold, pack_files, _ = timed_produce(desk, day, markets)
        pack_warm, _, pack_phases = timed_produce(desk, day, markets)
        separate = None
        if not args.skip_separate:
            wait_for_quiet()
            QUIET["below"] = None  # the runs inside the alternative are one measurement
            t = time.perf_counter()
            for market in markets:
                timed_produce({"kind": "market", "label": str(market), "market_id": market.id, "venue_id": None}, day, [market])
            separate = time.perf_counter() - t
        load_after = load_average()
        # one per row: cold, warm, stored, pack cold, pack warm, the alternative's start
        row_loads = [f"{x:.1f}" for x in LOADS[:5]] + ([f"{LOADS[5]:.1f}"] if len(LOADS) > 5 else ["—"])
        samples_month = args.days * 86400 - args.days * 20 * 60
        loading = ("" if load_month is None else
                   f"\nLoading the samples (not part of the figures): month {load_month:.1f} s, day pack {load_day:.1f} s.\n")
        text = f"""
## Audit reports (`bench/reports.py`)

Command: `.venv/bin/python bench/reports.py {" ".join(sys.argv[1:])}`
Machine: {os.cpu_count()} cores ({platform.machine()}), PostgreSQL on localhost, shared with other work;
load average (1/5/15 min) {load_before} before the timed runs, {load_after} after; "load" = the
1-minute load average as the row's run started.
Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

Data: 1 s samples from `generate_series` (0.5 % invalid seconds, a 20-minute collector gap per market
and day, spreads around the 0.5 % target, depth around the $25k minimum); tier-1 obligation.
Figure = `reports.services.produce`: roll-up of pending minutes, one judging of each market's span
(`judging.judge_span`), verdicts per version, per-day verdicts and liquidity scores (the engine's stored
DailyResult / LiquidityScore when current, else `evaluation.period_verdict` / `evaluation.score_minutes`
over the same judged minutes), statistics from the minute bars, spread percentiles from the
samples (one query per report, on a second connection while the markets are judged), order
behaviour, fees, JSON, two CSVs, PDF with heatmap/spread/depth charts, manifest.
Cold = every minute of the period marked for roll-up again (the engine's roll-up, `compliance/rollups.py`,
is part of the figure); warm = bars already rolled up, as the live roll-up leaves them.

| report | samples | time s | goal | load | files |
|---|---|---|---|---|---|
| monthly, 1 market, {args.days} days — cold | {samples_month:,} | {cold:.1f} | < 10 s | {row_loads[0]} | PDF {len(month_files['report.pdf']) / 1e6:.1f} MB, CSV {len(month_files['minute_bars.csv']) / 1e6:.1f} MB |
| monthly, 1 market — warm (regeneration) | {samples_month:,} | {warm:.1f} | < 10 s | {row_loads[1]} | identical JSON/CSV: {'yes' if same else 'NO'} |
| monthly, 1 market — warm, engine's closed-day results stored | {samples_month:,} | {stored:.1f} | < 10 s | {row_loads[2]} | |
| daily pack, {args.markets} markets, one desk report — cold | {args.markets * (86400 - 1200):,} | {pack_cold:.1f} | < 60 s | {row_loads[3]} | PDF {len(pack_files['report.pdf']) / 1e6:.1f} MB |
| daily pack, {args.markets} markets — warm | same | {pack_warm:.1f} | < 60 s | {row_loads[4]} | |
| alternative: {args.markets} separate market reports, warm | same | {'—' if separate is None else f'{separate:.1f}'} | | {row_loads[5]} | {args.markets} PDFs |

Where the warm runs' time goes (s): monthly — {split(month_phases)}; daily pack — {split(pack_phases)}
(PDF {pack_phases.get("PDF and manifest", 0) / args.markets:.3f} s per market).
{loading}"""
        write_section(text)
        print(text)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
