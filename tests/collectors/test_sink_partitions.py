"""The sink's COPY into the day partitions stores exactly what a COPY into the parent table stored.

The reference is the sink's previous path: psycopg's binary COPY (`write_row`) into
compliance_sample, routed by Postgres, with the parent's statement trigger marking the minutes
(compliance/migrations/0005_minute_bars.py). Stored rows are compared as Postgres sends them back
in binary (the stored bits, NaN payloads included) together with the partition each row is in.
"""
import itertools
import math
from operator import itemgetter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection

from collectors.sink import (
    SAMPLE_COLUMNS, SAMPLE_TYPES, TimeSeriesSink, default_conninfo, rows_by_day, touched_minutes,
)
from compliance.partitions import ensure_partitions

pytestmark = pytest.mark.django_db(transaction=True)

UTC = timezone.utc
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)
NOT_NULL = {"market_id", "ts", "valid", "band_pct"}
NULLABLE = [i for i, c in enumerate(SAMPLE_COLUMNS) if c not in NOT_NULL]
FLOAT8 = [
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
    math.inf, -math.inf, math.nan, 1 / 3, 0.1, -123456.789e-300, 99_999.999_999_999_99, 3,
]
FLOAT4 = [2.0, 0.1, 1 / 3, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1e-45, -0.0,
          16_777_217.0, math.inf, -math.inf, math.nan, 2]
INT8 = [0, 1, -1, 2**63 - 1, -(2**63), 2**31]
BOOL = [True, False]
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(seconds=30)), ZoneInfo("America/New_York")]


def every_null_pattern() -> list[tuple]:
    """One row per NULL pattern of the nullable columns (2^16), with extreme values elsewhere,
    microsecond timestamps in several zones around midnight (a row exactly at midnight among them)."""
    rows = []
    for p in range(2 ** len(NULLABLE)):
        market, second = 1 + p % 512, p // 512 - 64  # 128 seconds, half of them before midnight
        micro = 0 if p % 3 == 0 else (p * 7919) % 1_000_000
        ts = (MIDNIGHT + timedelta(seconds=second, microseconds=micro)).astimezone(ZONES[p % len(ZONES)])
        values = []
        for i, (column, kind) in enumerate(zip(SAMPLE_COLUMNS, SAMPLE_TYPES)):
            if column == "market_id":
                values.append(market)
            elif column == "ts":
                values.append(ts)
            elif i in NULLABLE and p >> NULLABLE.index(i) & 1:
                values.append(None)
            else:
                pool = {"float8": FLOAT8, "float4": FLOAT4, "int8": INT8, "bool": BOOL}[kind]
                values.append(pool[(p // 7 + i) % len(pool)])
        rows.append(tuple(values))
    return rows


def copy_into_parent(rows):
    """The previous path: rows into the parent table, Postgres routing them and firing the trigger."""
    with psycopg.connect(default_conninfo()) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY compliance_sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(SAMPLE_TYPES)
            for row in rows:
                copy.write_row(row)


def stored() -> tuple[bytes, list]:
    """The stored rows in binary (each with its partition), and the dirty minutes."""
    with psycopg.connect(default_conninfo()) as conn, conn.cursor() as cur:
        query = f"SELECT tableoid::regclass::text, {', '.join(SAMPLE_COLUMNS)} FROM compliance_sample ORDER BY market_id, ts"
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            data = b"".join(bytes(block) for block in copy)
        dirty = cur.execute("SELECT market_id, minute FROM compliance_minute_dirty ORDER BY 1, 2").fetchall()
    return data, dirty


def empty():
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_minute_dirty")


@pytest.fixture(autouse=True)
def empty_tables():
    empty()  # other tests leave dirty minutes behind
    yield
    empty()


def test_stored_rows_and_dirty_minutes_equal_the_parent_path_for_every_null_pattern(tmp_path):
    rows = every_null_pattern()
    ensure_partitions(MIDNIGHT.date() - timedelta(days=1), MIDNIGHT.date())
    copy_into_parent(rows)
    reference_rows, reference_dirty = stored()
    assert len(reference_dirty) == 512 * 4  # 23:58:56 to 00:01:03
    empty()

    sink = TimeSeriesSink(name="eq", spill_dir=tmp_path)  # 50,000-row batches: the first spans midnight
    sink.accept_samples(rows)
    assert sink.close()
    ours_rows, ours_dirty = stored()
    assert ours_rows == reference_rows
    assert ours_dirty == reference_dirty

    # A replay goes through the staging table into the parent: nothing stored twice, nothing marked.
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_minute_dirty")
    replay = TimeSeriesSink(name="eq2", spill_dir=tmp_path / "b", batch_rows=10_000)
    replay.accept_samples(rows)
    assert replay.close()
    assert stored() == (reference_rows, [])


def test_a_batch_meeting_a_stored_row_is_written_whole_and_marks_only_new_minutes(tmp_path):
    """The COPY of the second day's rows fails on a stored row: the first day's COPY in the same
    transaction is rolled back too, and the staging path stores every other row once."""
    rows = [r for r in every_null_pattern() if r[0] <= 2]
    already = [r for r in rows if r[1] >= MIDNIGHT][:1]
    ensure_partitions(MIDNIGHT.date() - timedelta(days=1), MIDNIGHT.date())
    copy_into_parent(already)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_minute_dirty")
    sink = TimeSeriesSink(name="dup", spill_dir=tmp_path)
    sink.accept_samples(rows)
    assert sink.close()
    data, dirty = stored()
    empty()
    copy_into_parent(rows)
    reference, all_minutes = stored()
    assert data == reference
    new_minutes = {(r[0], r[1].astimezone(UTC).replace(second=0, microsecond=0)) for r in rows if r not in already}
    assert dirty == sorted(new_minutes) == all_minutes  # the stored row's minute has new rows too


def test_rows_by_day_splits_at_utc_midnight_and_keeps_order():
    before = (1, MIDNIGHT - timedelta(microseconds=1))
    at = (1, MIDNIGHT)
    india = (2, MIDNIGHT.astimezone(timezone(timedelta(hours=5, minutes=30))) - timedelta(microseconds=1))
    later = (3, MIDNIGHT + timedelta(days=2, hours=1))
    assert rows_by_day([before, india], 1) == [(date(2026, 3, 1), [before, india])]
    assert rows_by_day([at, before, later, india], 1) == [
        (date(2026, 3, 1), [before, india]), (date(2026, 3, 2), [at]), (date(2026, 3, 4), [later]),
    ]


def test_touched_minutes_are_utc_minutes_per_market():
    thirty_s_west = timezone(-timedelta(seconds=30))
    rows = [
        (1, datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)),
        (2, datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)),
        (1, datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        (1, datetime(2026, 3, 2, 0, 0, 59, tzinfo=UTC)),
        (2, datetime(2026, 3, 1, 23, 59, 40, tzinfo=thirty_s_west)),  # 00:00:10 UTC
        (1, datetime(2026, 3, 1, 23, 59, tzinfo=UTC)),  # out of order: a minute already there
    ]
    markets, minutes = touched_minutes(rows, itemgetter(0), 1)
    assert sorted(zip(markets, minutes)) == [
        (1, datetime(2026, 3, 1, 23, 59, tzinfo=UTC)), (1, MIDNIGHT),
        (2, datetime(2026, 3, 1, 23, 59, tzinfo=UTC)), (2, MIDNIGHT),
    ]
    assert all(m.tzinfo is UTC for m in minutes)


def test_every_null_pattern_is_there():
    rows = every_null_pattern()
    patterns = {tuple(row[i] is None for i in NULLABLE) for row in rows}
    assert len(patterns) == 2 ** 16 == len(rows)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    assert any(r[1] == MIDNIGHT for r in rows)
    assert {type(r[1].tzinfo) for r in rows} == {timezone, ZoneInfo}
    assert list(itertools.islice((r for r in rows if isinstance(r[9], int)), 1))  # an int in the float4 column


def test_a_row_twice_in_one_batch_is_stored_once_the_first_one(tmp_path):
    """The partition COPY fails on the batch's own duplicate; the staging path keeps the first."""
    rows = [r for r in every_null_pattern() if r[0] <= 3 and r[1] < MIDNIGHT][:9]
    again = (rows[4][0], rows[4][1], not rows[4][2], *rows[4][3:])
    sink = TimeSeriesSink(name="twice", spill_dir=tmp_path)
    sink.accept_samples(rows + [again])
    assert sink.close()
    data, dirty = stored()
    empty()
    copy_into_parent(rows)
    assert stored() == (data, dirty)
