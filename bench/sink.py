"""Benchmark: rows/s written by collectors.sink into the daily-partitioned compliance_sample table.

Run: .venv/bin/python bench/sink.py [--rows 500000] [--alt-rows 50000] [--repeat 3]

Creates a dedicated database (lcm_bench_sink, dropped at the end), migrates it (so the table has
its real primary key and the roll-up's statement trigger), then writes the same rows (500 markets
× N seconds across midnight, in the order the collectors produce them) through, side by side:
  - the sink: binary COPY into each day's partition, market by market, + the dirty minutes marked
    with the trigger's statement, 50,000-row transactions (TimeSeriesSink.flush — the production path);
  - the sink's previous path: COPY into the parent table, whose trigger marks the minutes;
  - the sink with the COPY stream built by hand (struct.Struct per NULL pattern, copy.write)
    instead of psycopg's write_row (an alternative evaluated, not used);
these three alternating, `--repeat` times each (the median is reported); then once each: the
replay of the same rows (staging + ON CONFLICT), other batch sizes, bare COPYs (references),
executemany (the alternative), 1-second flushes of one second's rows (the runner's rhythm), and
the encoders alone. Every sink path is checked to store every row and mark every minute.
Postgres backend CPU is read from /proc (local server), which stays meaningful under load.
Writes its section into docs/benchmarks.md.
"""
import argparse
import operator
import os
import platform
import statistics
import struct
import subprocess
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
PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
FIELDS = {"int4": ("i", 4), "int8": ("q", 8), "float8": ("d", 8), "float4": ("f", 4), "bool": ("?", 1), "timestamptz": ("q", 8)}
PGCOPY_HEADER, PGCOPY_TRAILER = b"PGCOPY\n\xff\r\n\0" + bytes(8), b"\xff\xff"


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


class StructEncoder:
    """The binary COPY rows built in Python: per NULL pattern, one generated function packing the
    row with one precompiled struct.Struct (int16 field count, then int32 length + big-endian value
    per field, length -1 for NULL; timestamptz = int64 µs since 2000-01-01)."""

    def __init__(self, types, ts_index):
        self.types, self.ts_index, self.by_pattern = types, ts_index, {}
        self.nones = (None,) * len(types)

    def _compile(self, pattern):
        fmt, args = [">h"], [str(len(self.types))]
        for i, (kind, null) in enumerate(zip(self.types, pattern)):
            if null:
                fmt.append("i")
                args.append("-1")
            else:
                code, size = FIELDS[kind]
                fmt.append("i" + code)
                args += [str(size), "us" if i == self.ts_index else f"r[{i}]"]
        namespace = {"pack": struct.Struct("".join(fmt)).pack}
        exec(f"def pack_row(r, us):\n    return pack({', '.join(args)})\n", namespace)
        return namespace["pack_row"]

    def encode(self, rows):
        out, last_ts, us = [], None, 0
        for r in rows:
            ts = r[self.ts_index]
            if ts != last_ts:  # all markets of a second share the conversion
                delta = ts - PG_EPOCH
                us, last_ts = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds, ts
            pattern = tuple(map(operator.is_, r, self.nones))
            pack_row = self.by_pattern.get(pattern) or self.by_pattern.setdefault(pattern, self._compile(pattern))
            out.append(pack_row(r, us))
        return b"".join(out)


def backend_cpu_s(pid):
    """user + system CPU seconds of a local Postgres backend, or None when /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--alt-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from collectors.sink import SAMPLE_COLUMNS, SAMPLE_TYPES, SAMPLES, TimeSeriesSink, rows_by_day
        from compliance.partitions import ensure_partitions, partition_name

        class PreviousSink(TimeSeriesSink):
            """The sink's write path before the partition path (commit 9d21f41) for new rows: every
            row's day computed to find the partitions to create, the rows COPYed into the parent
            table (whose trigger marks the minutes). Its staging fallback is left out: the rows
            written here are new."""

            def _write(self, table, rows):
                if not rows:
                    return
                days = {row[table.ts_index].astimezone(timezone.utc).date() for row in rows} - self._days_ready
                if days:
                    ensure_partitions(min(days), max(days))
                    self._days_ready |= {min(days) + timedelta(days=i) for i in range((max(days) - min(days)).days + 1)}
                conn = self._connection()
                for start in range(0, len(rows), self.batch_rows):
                    chunk = rows[start:start + self.batch_rows]
                    with conn.cursor() as cur:
                        self._copy_rows(cur, f"COPY {table.name} ({table.cols}) FROM STDIN (FORMAT BINARY)", table, chunk)
                    conn.commit()
                    self.written[table.kind] += len(chunk)

        encoder = StructEncoder(SAMPLE_TYPES, SAMPLES.ts_index)

        class StructSink(TimeSeriesSink):
            """The sink writing a stream built by StructEncoder instead of psycopg's write_row."""

            @staticmethod
            def _copy_rows(cur, statement, table, rows):
                with cur.copy(statement) as copy:
                    copy.write(PGCOPY_HEADER)
                    for start in range(0, len(rows), 500):  # ~90 kB writes, under psycopg's 128 kB chunk
                        copy.write(encoder.encode(rows[start:start + 500]))
                    copy.write(PGCOPY_TRAILER)

        call_command("migrate", verbosity=0)
        ensure_partitions(T0.date(), T0.date() + timedelta(days=2))
        conninfo = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
        cols = ", ".join(SAMPLE_COLUMNS)
        data = rows(args.rows)
        minutes = len({(r[0], r[1].replace(second=0)) for r in data})
        check = psycopg.connect(conninfo, autocommit=True)
        spill = tempfile.TemporaryDirectory()

        def stored(marked=True):
            count = check.execute("SELECT count(*) FROM compliance_sample").fetchone()[0]
            dirty = check.execute("SELECT count(*) FROM compliance_minute_dirty").fetchone()[0]
            assert count == args.rows and (dirty == minutes or not marked), (count, dirty)

        def through_sink(cls, batch_rows=50_000, batch=data, empty=True):
            """(wall s, backend CPU s) of accepting and flushing `batch` through a fresh sink."""
            if empty:
                check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            sink = cls(name="bench", conninfo=conninfo, spill_dir=Path(spill.name), batch_rows=batch_rows)
            pid = sink._connection().info.backend_pid
            cpu, started = backend_cpu_s(pid), time.perf_counter()
            sink.accept_samples(batch)
            assert sink.flush(), sink.last_error
            wall, cpu = time.perf_counter() - started, backend_cpu_s(pid) - cpu if cpu is not None else None
            sink.close()
            return wall, cpu

        def bare(target_of_day, sql_before=None, sql_after=None):
            """A single COPY per day with psycopg's write_row, no sink around it."""
            check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            if sql_before:
                check.execute(sql_before)
            with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
                pid = conn.info.backend_pid
                cpu, started = backend_cpu_s(pid), time.perf_counter()
                for day, day_rows in ([(None, data)] if target_of_day is None else rows_by_day(data, 1)):
                    target = target_of_day(day) if target_of_day else "compliance_sample"
                    with cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(SAMPLE_TYPES)
                        for row in day_rows:
                            copy.write_row(row)
                conn.commit()
                wall, cpu = time.perf_counter() - started, backend_cpu_s(pid) - cpu if cpu is not None else None
            if sql_after:
                check.execute(sql_after)
            return wall, cpu

        NEW = "sink: COPY into the day partitions, market by market, + dirty minutes marked (production path)"
        OLD = "sink, previous path: COPY into the parent table, the trigger marks the minutes"
        HAND = "sink, COPY stream built by hand (struct per NULL pattern) instead of write_row"
        trials = {NEW: [], OLD: [], HAND: []}
        for _ in range(args.repeat):
            for name, cls in ((NEW, TimeSeriesSink), (OLD, PreviousSink), (HAND, StructSink)):
                trials[name].append(through_sink(cls))
                stored()
        results = []
        for name, runs in trials.items():
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs) if runs[0][1] is not None else None
            results.append((name, args.rows, wall, cpu, " / ".join(f"{args.rows / w:,.0f}" for w, _ in runs)))

        through_sink(TimeSeriesSink)
        check.execute("TRUNCATE compliance_minute_dirty")
        results.append(("sink replaying the same rows: COPY fails, staging + ON CONFLICT into the parent (nothing stored)",
                        args.rows, *through_sink(TimeSeriesSink, empty=False), ""))
        stored(marked=False)
        for batch_rows in (10_000, 250_000):
            results.append((f"sink (production path) with {batch_rows:,}-row transactions", args.rows,
                            *through_sink(TimeSeriesSink, batch_rows=batch_rows), ""))
            stored()
        results.append(("bare COPY into the parent, no sink around it (reference)", args.rows, *bare(None), ""))
        stored()
        trigger = "TRIGGER compliance_sample_inserted"
        results.append(("bare COPY into the parent, dirty-minute trigger disabled (reference)", args.rows,
                        *bare(None, f"ALTER TABLE compliance_sample DISABLE {trigger}", f"ALTER TABLE compliance_sample ENABLE {trigger}"), ""))
        stored(marked=False)
        results.append(("bare COPY into the day partitions, arrival order, no minutes marked (reference)", args.rows,
                        *bare(lambda day: partition_name("compliance_sample", day)), ""))
        stored(marked=False)

        check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
        alt = rows(args.alt_rows)
        placeholders = ", ".join(["%s"] * len(SAMPLE_COLUMNS))
        with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
            started = time.perf_counter()
            cur.executemany(f"INSERT INTO compliance_sample ({cols}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", alt)
            conn.commit()
            results.append(("executemany INSERT … ON CONFLICT DO NOTHING (alternative)", args.alt_rows, time.perf_counter() - started, None, ""))

        # The runner's rhythm: one flush per second of the markets' rows.
        per_flush = {}
        for name, cls in ((NEW, TimeSeriesSink), (OLD, PreviousSink)):
            check.execute("TRUNCATE compliance_sample, compliance_minute_dirty")
            sink = cls(name="bench", conninfo=conninfo, spill_dir=Path(spill.name))
            sink._connection()
            seconds = [data[i:i + MARKETS] for i in range(0, min(len(data), 200 * MARKETS), MARKETS)]
            started = time.perf_counter()
            for second in seconds:
                sink.accept_samples(second)
                assert sink.flush(), sink.last_error
            per_flush[name] = (time.perf_counter() - started) / len(seconds)
            sink.close()

        # The encoders alone, CPU time of this process.
        sample = data[:200_000]
        from psycopg._copy_base import BinaryFormatter
        from psycopg.adapt import Transformer

        with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
            transformer = Transformer(cur)
            transformer.set_dumper_types([conn.adapters.types[t].oid for t in SAMPLE_TYPES], psycopg.pq.Format.BINARY)
            formatter = BinaryFormatter(transformer)
            started = time.process_time()
            psycopg_bytes = b"".join(bytes(b) for b in [*filter(None, map(formatter.write_row, sample)), formatter.end()])
            psycopg_cpu = time.process_time() - started
        started = time.process_time()
        hand_bytes = PGCOPY_HEADER + encoder.encode(sample) + PGCOPY_TRAILER
        hand_cpu = time.process_time() - started
        assert hand_bytes == psycopg_bytes, "the hand-built stream differs from psycopg's"
        check.close()
        spill.cleanup()
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")

    def row(name, n, wall, cpu, each):
        cpu_text = f"{cpu:.2f}" if cpu is not None else "n/a"
        return f"| {name} | {n:,} | {wall:.2f} | {n / wall:,.0f} | {cpu_text} | {each} |"

    table = "\n".join(row(*r) for r in results)
    new, old, hand = results[0], results[1], results[2]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    met = "met" if new[1] / new[2] >= 200_000 else "NOT met"
    text = f"""## Sink: samples into the partitioned table (`bench/sink.py`)

Command: `.venv/bin/python bench/sink.py --rows {args.rows} --alt-rows {args.alt_rows} --repeat {args.repeat}`
Machine: 2 cores ({platform.machine()}), PostgreSQL on localhost, shared with other work: 1-minute load
average {load_before:.1f} at the start; `uptime` at the end: {load}.
Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.

Rows: {MARKETS} markets × consecutive seconds across midnight (two daily partitions), the real table
(PK (market_id, ts), the roll-up's statement-level dirty-minute trigger), fresh database, emptied
before each run; every sink path checked to store every row and mark all {minutes:,} (market, minute)
pairs. The first three paths ran alternately {args.repeat}×: median, and each run's rows/s.
Backend CPU = the Postgres backend's own CPU seconds (from /proc), which load does not inflate much.

| path | rows | s | rows/s | backend CPU s | runs (rows/s) |
|---|---|---|---|---|---|
{table}

One flush per second of {MARKETS} rows (the runner's rhythm), mean per flush over 200 seconds:
{per_flush[NEW] * 1000:.1f} ms on the production path, {per_flush[OLD] * 1000:.1f} ms on the previous one.
Encoding alone, {len(sample):,} rows (CPU of this process, identical bytes checked): psycopg's write_row
(its C implementation) {len(sample) / psycopg_cpu:,.0f} rows/s, the hand-built struct stream
{len(sample) / hand_cpu:,.0f} rows/s — the encoding is not the bottleneck, Postgres is, so the sink
keeps write_row.

The sink on new rows: {new[1] / new[2]:,.0f} rows/s (goal ≥ 200,000: {met}); the previous path
{old[1] / old[2]:,.0f} rows/s in the same run ({old[2] / new[2]:.2f}× the time); the hand-built stream
{hand[1] / hand[2]:,.0f} rows/s. Why: PostgreSQL 15 COPYs into a partitioned table row by row (no
multi-insert) when the parent has a transition-table insert trigger, as the dirty-minute trigger is;
into a partition it batches, and the sink marks the minutes with the trigger's statement. Rows in
market order (each market's seconds together) cost the primary key index less than the arrival
order (every market each second).
"""
    print(text)
    write_section("sink", text)


if __name__ == "__main__":
    main()
