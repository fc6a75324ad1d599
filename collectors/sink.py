"""Batched storage of samples and book snapshots into the daily-partitioned tables.

Rows are COPYed (binary) straight into their day's partition; a batch that meets a row already
stored is redone through a session temp table and INSERT ... ON CONFLICT DO NOTHING into the
parent, so with the tables' primary key (market_id, ts) a replay of the same rows is a no-op
(compliance/migrations/0002_timeseries.py).

Why the partition and not the parent: PostgreSQL (15) COPYs into a partitioned table one row at a
time (no multi-insert) when the parent has an insert trigger with a transition table, which the
roll-up's dirty-minute trigger is (compliance/migrations/0005_minute_bars.py), and routes every
row; into a partition it batches. A statement trigger on the parent does not fire for a COPY into
a partition, so the sink marks the batch's minutes itself, with the trigger's own statement, in
the same transaction (MARK_DIRTY; PostgreSQL's copyfrom.c, "For partitioned tables we can't
support multi-inserts when there are any statement level insert triggers"). bench/sink.py
measures both paths.

Nothing accepted is lost (DESIGN.md, 'Bad input, faults, security'): when Postgres is unavailable
rows stay in memory up to a bound and for at most `spill_after_s`, then go to JSON-lines
files under VAR_DIR/spill/<name>/ (written to a temp name, then renamed, so a crash leaves no half
file). A sink opened on the same directory — after a restart, or by the worker that takes a shard
over — writes those files first, oldest first, and deletes each one only after its commit.
"""
from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from itertools import chain, groupby
from operator import itemgetter
from pathlib import Path

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, connection as django_connection
from psycopg.types.json import Jsonb

from compliance.partitions import ensure_partitions, partition_name

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = (
    "market_id", "ts", "valid", "update_id", "best_bid", "best_ask", "mid", "spread_ask_pct", "spread_mid_pct",
    "band_pct", "depth_bid_usd", "depth_ask_usd", "depth_bid_complete", "depth_ask_complete",
    "slip_buy_pct", "slip_sell_pct", "own_bid_dev_pct", "own_ask_dev_pct", "own_depth_share_pct", "own_at_touch",
)
SAMPLE_TYPES = (
    "int4", "timestamptz", "bool", "int8", "float8", "float8", "float8", "float8", "float8",
    "float4", "float8", "float8", "bool", "bool",
    "float8", "float8", "float8", "float8", "float8", "bool",
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MICROSECOND = timedelta(microseconds=1)
SNAPSHOT_COLUMNS = ("market_id", "ts", "update_id", "bids", "asks")
SNAPSHOT_TYPES = ("int4", "timestamptz", "int8", "jsonb", "jsonb")


# The body of compliance_mark_new_minutes() (migration 0005), over the batch's (market, minute)
# pairs instead of the trigger's transition table. The arrays go in binary (%b): psycopg's text
# array dumper is Python, ~5 µs per element, more than the rows' whole COPY.
MARK_DIRTY = """INSERT INTO compliance_minute_dirty (market_id, minute)
    SELECT DISTINCT market_id, date_trunc('minute', ts) FROM unnest(%b::int4[], %b::timestamptz[]) AS changed_samples (market_id, ts)
    ON CONFLICT DO NOTHING"""


class Table:
    def __init__(self, kind: str, name: str, columns: Sequence[str], types: Sequence[str], json_columns=(), marks_dirty=False):
        self.kind, self.name, self.columns, self.types = kind, name, tuple(columns), tuple(types)
        self.json_columns = tuple(self.columns.index(c) for c in json_columns)
        self.ts_index = self.columns.index("ts")
        self.marks_dirty = marks_dirty  # the parent's insert trigger marks minutes dirty (see the module docstring)
        self.cols = ", ".join(self.columns)
        self.stage = f"stage_{kind}"
        self.create_stage = f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} (LIKE {name}) ON COMMIT DELETE ROWS"
        self.copy = f"COPY {self.stage} ({self.cols}) FROM STDIN (FORMAT BINARY)"
        self.move = f"INSERT INTO {name} ({self.cols}) SELECT {self.cols} FROM {self.stage} ON CONFLICT DO NOTHING"

    def copy_into_partition(self, day: date) -> str:
        return f'COPY "{partition_name(self.name, day)}" ({self.cols}) FROM STDIN (FORMAT BINARY)'


SAMPLES = Table("sample", "compliance_sample", SAMPLE_COLUMNS, SAMPLE_TYPES, marks_dirty=True)
SNAPSHOTS = Table("snapshot", "compliance_book_snapshot", SNAPSHOT_COLUMNS, SNAPSHOT_TYPES, json_columns=("bids", "asks"))
TABLES = {t.kind: t for t in (SAMPLES, SNAPSHOTS)}


def utc_day(ts: datetime) -> date:
    """The day of the partition that holds ts (partitions are UTC days, compliance/partitions.py)."""
    return ts.astimezone(timezone.utc).date()


def rows_by_day(rows: list[tuple], ts_index: int) -> list[tuple[date, list[tuple]]]:
    """The rows grouped by partition day, days in order, rows in their order; no per-row work in
    Python when they all fall in one day, as nearly every batch does."""
    ts_of = itemgetter(ts_index)
    first, last = utc_day(min(map(ts_of, rows))), utc_day(max(map(ts_of, rows)))
    if first == last:
        return [(first, rows)]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    midnights = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in days[1:]]
    groups: list[list[tuple]] = [[] for _ in days]
    for row in rows:
        # A partition holds [midnight, next midnight): a row stamped exactly at midnight is the next day's.
        groups[bisect.bisect_right(midnights, row[ts_index])].append(row)
    return [(day, group) for day, group in zip(days, groups) if group]


def touched_minutes(rows: Iterable[tuple], market_of: Callable, ts_index: int) -> tuple[list[int], list[datetime]]:
    """The distinct (market, UTC minute) pairs of the rows, as MARK_DIRTY's two arrays."""
    markets_in: dict[datetime, set[int]] = defaultdict(set)
    # Rows come second by second, all markets of a second together: one minute per run of equal ts.
    for ts, same_ts in groupby(rows, itemgetter(ts_index)):
        utc = ts.astimezone(timezone.utc)
        markets_in[utc - timedelta(seconds=utc.second, microseconds=utc.microsecond)].update(map(market_of, same_ts))
    pairs = [(market, minute) for minute, markets in markets_in.items() for market in markets]
    return [market for market, _ in pairs], [minute for _, minute in pairs]


def default_conninfo() -> str:
    """The Django database's connection (at call time, so pytest-django's test database is used)."""
    db = django_connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
        dbname=db["NAME"], connect_timeout=5,
        # A cut connection must fail fast instead of hanging a flush.
        keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2,
    )


class TimeSeriesSink:
    """Thread-safe: `accept_*` may be called from the collector's loop while `flush` runs in a worker thread."""

    def __init__(
        self,
        *,
        name: str,
        conninfo: str | None = None,
        spill_dir: Path | None = None,
        max_memory_rows: int = 50_000,
        spill_after_s: float = 5.0,
        batch_rows: int = 50_000,
    ):
        self.name = name
        self.conninfo = conninfo
        self.spill_dir = Path(spill_dir or Path(settings.VAR_DIR) / "spill" / name)
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        self.max_memory_rows, self.spill_after_s, self.batch_rows = max_memory_rows, spill_after_s, batch_rows
        self._pending: dict[str, list[tuple]] = {kind: [] for kind in TABLES}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._days_ready: set[date] = set()
        self.failing_since: float | None = None
        self.accepted = {kind: 0 for kind in TABLES}
        self.written = {kind: 0 for kind in TABLES}  # rows handed to Postgres and committed (duplicates included)
        self.last_error: str = ""

    # -- accepting -----------------------------------------------------------------------
    def accept_samples(self, rows: Iterable[Sequence]) -> None:
        self._accept("sample", rows)

    def accept_snapshots(self, rows: Iterable[Sequence]) -> None:
        self._accept("snapshot", rows)

    def _accept(self, kind: str, rows: Iterable[Sequence]) -> None:
        rows = [tuple(r) for r in rows]
        width = len(TABLES[kind].columns)
        for row in rows:
            if len(row) != width or not isinstance(row[TABLES[kind].ts_index], datetime) or row[TABLES[kind].ts_index].tzinfo is None:
                raise ValueError(f"{kind} row must have {width} values with an aware datetime ts, got {row!r:.200}")
        with self._lock:
            self._pending[kind].extend(rows)
            self.accepted[kind] += len(rows)

    def pending_rows(self) -> int:
        with self._lock:
            memory = sum(len(v) for v in self._pending.values())
        return memory + sum(self._spilled_counts().values())

    # -- flushing ------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write spilled files, then the memory buffer. True when everything pending was committed."""
        with self._flush_lock:
            try:
                for path in self._spill_files():
                    kind, rows = self._read_spill(path)
                    self._write(TABLES[kind], rows)
                    path.unlink()
                for kind, table in TABLES.items():
                    with self._lock:
                        rows, self._pending[kind] = self._pending[kind], []
                    try:
                        self._write(table, rows)
                    except BaseException:
                        with self._lock:
                            self._pending[kind][:0] = rows
                        raise
            except (psycopg.Error, DatabaseError, OSError) as exc:
                self._on_failure(exc)
                return False
            if self.failing_since is not None:
                log.info("sink %s: Postgres is back after %.1f s; buffer flushed", self.name, time.monotonic() - self.failing_since)
            self.failing_since = None
            return True

    def close(self) -> bool:
        """Final flush; whatever cannot be written is spilled to disk for the next sink on this directory."""
        done = self.flush()
        if not done:
            self._spill_memory()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        django_connection.close()  # this thread's, opened by ensure_partitions
        return done

    def _on_failure(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
            log.warning("sink %s: cannot write (%s); buffering", self.name, self.last_error)
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
        with self._lock:
            memory = sum(len(v) for v in self._pending.values())
        if memory >= self.max_memory_rows or now - self.failing_since >= self.spill_after_s:
            self._spill_memory()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo or default_conninfo(), autocommit=False)
            with self._conn.cursor() as cur:
                for table in TABLES.values():
                    cur.execute(table.create_stage)
            self._conn.commit()
        return self._conn

    def _ensure_days(self, first: date, last: date) -> None:
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        if days <= self._days_ready:
            return
        try:
            ensure_partitions(first, last)
        except DatabaseError:
            django_connection.close()  # a broken connection must not be reused by the next attempt
            raise
        self._days_ready |= days

    def _write(self, table: Table, rows: list[tuple]) -> None:
        """Optimistic: COPY straight into the partitions, which is what new rows need. A batch
        holding a row already stored (a replay, a retry after a lost commit acknowledgement) fails
        as a whole with a unique violation, and is then written through the staging table with
        ON CONFLICT DO NOTHING into the parent (whose trigger marks the minutes) — idempotent, and
        slower, so only paid when needed."""
        for start in range(0, len(rows), self.batch_rows):
            chunk = rows[start:start + self.batch_rows]
            by_day = rows_by_day(chunk, table.ts_index)
            self._ensure_days(by_day[0][0], by_day[-1][0])
            conn = self._connection()
            try:
                self._copy_new_rows(conn, table, by_day)
            except psycopg.errors.UniqueViolation:
                conn.rollback()
                with conn.cursor() as cur:
                    self._copy_rows(cur, table.copy, table, chunk)
                    cur.execute(table.move)
                conn.commit()
            self.written[table.kind] += len(chunk)

    def _copy_new_rows(self, conn: psycopg.Connection, table: Table, by_day: list[tuple[date, list[tuple]]]) -> None:
        """Each day's rows into its partition, and their minutes marked dirty, in one transaction."""
        market_of = itemgetter(table.columns.index("market_id"))
        if table.marks_dirty:
            rows = chain.from_iterable(day_rows for _, day_rows in by_day)
            dirty = touched_minutes(rows, market_of, table.ts_index)  # in arrival order, second by second
        with conn.cursor() as cur:
            for day, day_rows in by_day:
                # Market by market (a stable sort: each market's rows keep their time order), the
                # primary key index takes each market's rows at one place in a row instead of
                # every market's in turn each second: 10–20 % less Postgres CPU (bench/sink.py).
                self._copy_rows(cur, table.copy_into_partition(day), table, sorted(day_rows, key=market_of))
            if table.marks_dirty:
                cur.execute(MARK_DIRTY, dirty)
        conn.commit()

    @staticmethod
    def _copy_rows(cur: psycopg.Cursor, statement: str, table: Table, rows: list[tuple]) -> None:
        with cur.copy(statement) as copy:
            copy.set_types(table.types)
            if table.json_columns:
                for row in rows:
                    row = list(row)
                    for i in table.json_columns:
                        row[i] = Jsonb(row[i])
                    copy.write_row(row)
            else:
                for row in rows:
                    copy.write_row(row)

    # -- spilling ------------------------------------------------------------------------
    def _spill_memory(self) -> None:
        with self._lock:
            taken = {kind: rows for kind, rows in self._pending.items() if rows}
            self._pending = {kind: [] for kind in TABLES}
        for kind, rows in taken.items():
            try:
                self._write_spill(kind, rows)
            except OSError:
                log.exception("sink %s: cannot spill %d %s rows to %s; keeping them in memory", self.name, len(rows), kind, self.spill_dir)
                with self._lock:
                    self._pending[kind][:0] = rows

    def _write_spill(self, kind: str, rows: list[tuple]) -> Path:
        ts_index = TABLES[kind].ts_index
        final = self.spill_dir / f"{time.time_ns():020d}-{os.getpid()}-{kind}.jsonl"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for row in rows:
                row = list(row)
                row[ts_index] = (row[ts_index] - EPOCH) // ONE_MICROSECOND
                f.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        log.warning("sink %s: spilled %d %s rows to %s", self.name, len(rows), kind, final)
        return final

    def _spill_files(self) -> list[Path]:
        return sorted(self.spill_dir.glob("*.jsonl"))

    def _spilled_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for path in self._spill_files():
            kind = path.stem.rsplit("-", 1)[1]
            with open(path, "rb") as f:
                counts[kind] = counts.get(kind, 0) + sum(1 for _ in f)
        return counts

    @staticmethod
    def _read_spill(path: Path) -> tuple[str, list[tuple]]:
        kind = path.stem.rsplit("-", 1)[1]
        if kind not in TABLES:
            raise ValueError(f"{path}: not a sink spill file")
        ts_index = TABLES[kind].ts_index
        rows = []
        with open(path, "rb") as f:
            for line in f:
                row = orjson.loads(line)
                row[ts_index] = EPOCH + row[ts_index] * ONE_MICROSECOND
                rows.append(tuple(row))
        return kind, rows
