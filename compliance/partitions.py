"""Daily range partitions for the time-series tables, and retention by dropping them.

The parents are declared in compliance/migrations/0002_timeseries.py. A partition is named
<parent>_pYYYYMMDD and holds [day 00:00 UTC, next day 00:00 UTC).
"""
from datetime import date, datetime, timedelta, timezone

from django.db import connection, transaction

# Collectors in several processes reach a new day at the same moment; CREATE TABLE IF NOT EXISTS
# is not race-free for partitions, so creation is serialized with this advisory lock.
_PARTITION_LOCK = 0x4C434D50  # "LCMP"

PARTITIONED_TABLES = ("compliance_sample", "compliance_book_snapshot")


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def ensure_partitions(first_day: date, last_day: date, tables=PARTITIONED_TABLES) -> list[str]:
    """Create the daily partitions covering [first_day, last_day]; returns the names created."""
    created = []
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
        day = first_day
        while day <= last_day:
            lo = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            hi = lo + timedelta(days=1)
            for table in tables:
                name = partition_name(table, day)
                cur.execute("SELECT to_regclass(%s) IS NULL", [name])
                if cur.fetchone()[0]:
                    cur.execute(
                        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
                        f"FOR VALUES FROM (%s) TO (%s)",
                        [lo, hi],
                    )
                    created.append(name)
            day += timedelta(days=1)
    return created


def existing_partitions(table: str) -> list[tuple[str, date]]:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
               WHERE p.relname = %s ORDER BY c.relname""",
            [table],
        )
        names = [row[0] for row in cur.fetchall()]
    return [(n, datetime.strptime(n.rsplit("_p", 1)[1], "%Y%m%d").date()) for n in names]


def drop_partitions_before(cutoff: date, tables=PARTITIONED_TABLES) -> list[str]:
    """Retention: drop whole daily partitions older than `cutoff` (cheap, no vacuum debt)."""
    dropped = []
    with connection.cursor() as cur:
        for table in tables:
            for name, day in existing_partitions(table):
                if day < cutoff:
                    cur.execute(f'DROP TABLE IF EXISTS "{name}"')
                    dropped.append(name)
    return dropped
