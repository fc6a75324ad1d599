"""Benchmark: rows/s written by collectors.sink into the daily-partitioned compliance_sample table.

Run: .venv/bin/python bench/sink.py [--rows 500000] [--alt-rows 50000]

Creates a dedicated database (lcm_bench_sink, dropped at the end), migrates it (so the table has
its real primary key and the roll-up's statement trigger), then writes, on the same kind of rows
(500 markets × N seconds, as the collectors produce them):
  - the sink on new rows: binary COPY straight into the table, in 50,000-row batches
    (TimeSeriesSink.flush — the production path);
  - the same rows replayed through the sink: each batch's COPY meets a stored row, so it is
    redone through the staging table + INSERT … ON CONFLICT DO NOTHING (the idempotent path);
  - plain binary COPY straight into the table (fastest, but not idempotent);
  - executemany of INSERT … ON CONFLICT DO NOTHING (the alternative), on fewer rows.
Writes its section into docs/benchmarks.md.
"""
import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sections import write_section  # bench/ is the script's directory, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "lcm_bench_sink"
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
MARKETS = 500
T0 = datetime(2026, 2, 1, 23, 50, tzinfo=timezone.utc)  # crosses midnight: two partitions


def admin(sql):
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def rows(count, first_second=0):
    """Realistic sample rows in the sink's column order, every market each second."""
    out = []
    for i in range(count):
        second, market = divmod(i, MARKETS)
        bid = 100.0 + (market % 50) + 0.001 * (second % 997)
        ask = bid * 1.002
        out.append((
            market + 1, T0 + timedelta(seconds=first_second + second), True, 10_000_000 + i, bid, ask, (bid + ask) / 2,
            0.1996, 0.1998, 2.0, 25_000.0 + market, 26_000.0 + market, True, market % 7 != 0,
            0.031, 0.029, None, None, None, None,
        ))
    return out


def count(conn):
    return conn.execute("SELECT count(*) FROM compliance_sample").fetchone()[0]


def timed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--alt-rows", type=int, default=50_000)
    args = parser.parse_args()
    admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from collectors.sink import SAMPLE_COLUMNS, SAMPLE_TYPES, TimeSeriesSink
        from compliance.partitions import ensure_partitions

        call_command("migrate", verbosity=0)
        ensure_partitions(T0.date(), T0.date() + timedelta(days=2))
        conninfo = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
        results = []
        with psycopg.connect(conninfo, autocommit=True) as check, tempfile.TemporaryDirectory() as spill:
            data = rows(args.rows)
            sink = TimeSeriesSink(name="bench", conninfo=conninfo, spill_dir=Path(spill))

            def through_sink(batch):
                sink.accept_samples(batch)
                assert sink.flush(), sink.last_error

            seconds = timed(lambda: through_sink(data))
            assert count(check) == args.rows
            results.append(("sink, new rows: COPY into the table (production path)", args.rows, seconds))
            seconds = timed(lambda: through_sink(data))
            assert count(check) == args.rows
            results.append(("sink replaying the same rows: COPY fails, staging + ON CONFLICT (nothing stored)", args.rows, seconds))
            sink.close()

            check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            cols = ", ".join(SAMPLE_COLUMNS)

            def plain_copy():
                with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
                    with cur.copy(f"COPY compliance_sample ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(SAMPLE_TYPES)
                        for row in data:
                            copy.write_row(row)

            seconds = timed(plain_copy)
            assert count(check) == args.rows
            results.append(("bare binary COPY, no sink around it (reference)", args.rows, seconds))
            # What the roll-up's statement-level trigger (transition table + DISTINCT) costs the writer.
            check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            check.execute("ALTER TABLE compliance_sample DISABLE TRIGGER compliance_sample_inserted")
            seconds = timed(plain_copy)
            check.execute("ALTER TABLE compliance_sample ENABLE TRIGGER compliance_sample_inserted")
            assert count(check) == args.rows
            results.append(("bare binary COPY with the dirty-minute trigger disabled (reference)", args.rows, seconds))

            check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            alt = rows(args.alt_rows)
            placeholders = ", ".join(["%s"] * len(SAMPLE_COLUMNS))

            def executemany():
                with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO compliance_sample ({cols}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", alt)

            seconds = timed(executemany)
            assert count(check) == args.alt_rows
            results.append(("executemany INSERT … ON CONFLICT DO NOTHING (alternative)", args.alt_rows, seconds))
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")

    table = "\n".join(f"| {name} | {n:,} | {s:.2f} | {n / s:,.0f} |" for name, n, s in results)
    sink_rate = results[0][1] / results[0][2]
    alt_rate = results[-1][1] / results[-1][2]
    text = f"""## Sink: samples into the partitioned table (`bench/sink.py`)

Command: `.venv/bin/python bench/sink.py --rows {args.rows} --alt-rows {args.alt_rows}`
Machine: 2 cores ({platform.machine()}), PostgreSQL on localhost, shared with other work.
Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

Rows: {MARKETS} markets × consecutive seconds across midnight (two daily partitions), the real
table (PK (market_id, ts), the roll-up's statement-level dirty-minute trigger), fresh database.

| path | rows | s | rows/s |
|---|---|---|---|
{table}

The sink on new rows: {sink_rate:,.0f} rows/s (goal ≥ 200,000), {sink_rate / alt_rate:.1f}× executemany; a replay
costs {results[1][2] / results[0][2]:.1f}× a first write.
"""
    print(text)
    write_section("sink", text)




if __name__ == "__main__":
    main()
