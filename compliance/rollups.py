"""Minute bars from the 1 s samples, in Postgres: one GROUP BY over the samples into a staging
table, then the windows' bars in compliance_minute_bar are replaced by its rows.

A bar is rolled from its own minute's samples only, so rolling up the same samples gives the
same bars however the samples were batched and whatever window the roll-up covers. Each minute
is judged by the obligation version in force at the minute's start: the bar stores that
version's id, its spread denominator, and the in-range counts under its limits.

Late or backfilled samples mark their minutes in compliance_minute_dirty (a trigger, migration
0005); roll_up_pending() claims exactly those minutes and rolls them up again.

The samples carry the spread with both denominators (computed by compliance.metrics); the one
formula repeated here is the own quotes' spread for `presence` (own best bid and ask rebuilt
from their deviation from the touch), because it runs inside the aggregate;
tests/compliance/test_rollups.py checks it against compliance.metrics.spread_pct.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from django.db import IntegrityError, connection, transaction

from config.env import envstr

from .evaluation import MINUTE
from .models import Market, SpreadDenominator
from .partitions import ensure_partitions
from .selectors import obligation_periods_of_markets

MINUTE_BAR_TABLE = "compliance_minute_bar"
BAND_TOLERANCE = 1e-6  # band_pct is a real; the obligation's band a 4-decimal numeric
ROLL_UP_WORK_MEM = envstr("COMPLIANCE_ROLL_UP_WORK_MEM", "1GB")  # per worker; a day of 100 markets uses ~100 MB

# A sample is judged when it is valid, an obligation governs its minute and, where depth counts,
# its depth was measured in the contracted band. It is in range when its spread is at most the
# target maximum and (where depth counts) its depth meets the minimums.
_AGGREGATE = f"""
WITH per AS (
    SELECT * FROM unnest(
        %(p_market)s::int[], %(p_lo)s::timestamptz[], %(p_hi)s::timestamptz[], %(p_version)s::bigint[],
        %(p_use_mid)s::bool[], %(p_target_max)s::float8[], %(p_max)s::float8[], %(p_depth_counts)s::bool[],
        %(p_depth_min)s::float8[], %(p_depth_side)s::float8[], %(p_band)s::float8[]
    ) AS p(market_id, lo, hi, version_id, use_mid, target_max, spread_max, depth_counts, depth_min, depth_side, band)
), judged AS (
    SELECT s.*, p.version_id, p.use_mid, p.target_max, p.spread_max, p.depth_counts, p.depth_min, p.depth_side,
           date_bin('1 minute', s.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS minute,
           1::bigint << (floor(date_part('epoch', s.ts))::bigint %% 60)::int AS second_bit,
           CASE WHEN p.use_mid THEN s.spread_mid_pct ELSE s.spread_ask_pct END AS spread,
           (s.valid AND p.version_id IS NOT NULL
                AND (NOT p.depth_counts OR abs(s.band_pct - p.band) < {BAND_TOLERANCE})) AS is_judged
    FROM compliance_sample s
    -- The pieces tile each window: a version's terms, or a NULL version where none governs. Their
    -- bounds are minute boundaries: 'the version in force at the minute's start'.
    JOIN per p ON p.market_id = s.market_id AND s.ts >= p.lo AND s.ts < p.hi
    -- Constant bounds prune the partitions; the market list lets a short window use the primary
    -- key (market_id, ts) instead of scanning the day.
    WHERE s.ts >= %(lo)s AND s.ts < %(hi)s AND s.market_id = ANY(%(w_market)s::int[])
), ranged AS (
    SELECT j.*,
           CASE WHEN j.is_judged AND j.spread <= j.target_max
                 AND (NOT j.depth_counts OR (
                     (j.depth_min IS NULL OR j.depth_bid_usd + j.depth_ask_usd >= j.depth_min)
                     AND (j.depth_side IS NULL OR least(j.depth_bid_usd, j.depth_ask_usd) >= j.depth_side)))
                THEN j.second_bit ELSE 0 END AS in_range_bit,
           -- presence (MiFID II RTS 8): own quotes on both sides, their spread within the maximum
           (j.valid AND j.version_id IS NOT NULL AND j.own_bid_dev_pct IS NOT NULL AND j.own_ask_dev_pct IS NOT NULL
                AND (j.best_ask * (1 + j.own_ask_dev_pct / 100) - j.best_bid * (1 - j.own_bid_dev_pct / 100))
                    / CASE WHEN j.use_mid
                           THEN (j.best_ask * (1 + j.own_ask_dev_pct / 100) + j.best_bid * (1 - j.own_bid_dev_pct / 100)) / 2
                           ELSE j.best_ask * (1 + j.own_ask_dev_pct / 100) END * 100 <= j.spread_max) AS present
    FROM judged j
)
-- One sample per second (the sampler's cadence; PK (market_id, ts)): the per-second masks also
-- give the judged and in-range counts. Postgres evaluates a flattened expression at each
-- reference, so every flag is referenced once. The metric columns of an invalid sample are
-- NULL (migration 0002), so plain aggregates skip it.
SELECT market_id, minute, version_id AS obligation_version_id,
       count(*) AS samples, count(*) FILTER (WHERE valid) AS valid_samples,
       bit_or(CASE WHEN is_judged THEN second_bit ELSE 0 END) AS judged_mask,
       bit_or(in_range_bit) AS in_range_mask,
       min(spread) AS spread_min, avg(spread) AS spread_avg, max(spread) AS spread_max,
       min(depth_bid_usd) AS depth_bid_min, avg(depth_bid_usd) AS depth_bid_avg,
       min(depth_ask_usd) AS depth_ask_min, avg(depth_ask_usd) AS depth_ask_avg,
       min(depth_bid_usd + depth_ask_usd) AS depth_total_min,
       count(*) FILTER (WHERE NOT depth_bid_complete OR NOT depth_ask_complete) AS depth_incomplete_samples,
       avg(slip_buy_pct) AS slip_buy_avg, avg(slip_sell_pct) AS slip_sell_avg,
       count(*) FILTER (WHERE valid AND (slip_buy_pct IS NULL OR slip_sell_pct IS NULL)) AS slip_unfillable_samples,
       min(mid) AS mid_low, max(mid) AS mid_high,
       count(*) FILTER (WHERE present) AS presence_samples
FROM ranged
GROUP BY market_id, minute, version_id  -- one version per minute: a key, not an aggregate
"""

STAGED_COLUMNS = (
    "obligation_version_id", "samples", "valid_samples", "judged_mask", "in_range_mask", "spread_min", "spread_avg",
    "spread_max", "depth_bid_min", "depth_bid_avg", "depth_ask_min", "depth_ask_avg", "depth_total_min",
    "depth_incomplete_samples", "slip_buy_avg", "slip_sell_avg", "slip_unfillable_samples", "mid_low", "mid_high",
    "presence_samples",
)
DERIVED_COLUMNS = ("spread_denominator", "judged_samples", "in_range_samples", "rolled_at")

# The aggregate runs as CREATE TABLE AS, which Postgres may run with parallel workers (an INSERT …
# SELECT never is); the bars are written from it in a second statement.
_STAGE = f"CREATE TEMP TABLE compliance_minute_bar_stage AS {_AGGREGATE}"
_STAGED_SELECT = f"""
SELECT st.market_id, st.minute, {", ".join("st." + c for c in STAGED_COLUMNS)},
       coalesce(v.spread_denominator, 'ask'), bit_count(st.judged_mask::bit(64)), bit_count(st.in_range_mask::bit(64)),
       %(stamp)s
FROM compliance_minute_bar_stage st
LEFT JOIN compliance_obligationversion v ON v.id = st.obligation_version_id
"""
_INSERT_COLUMNS = f"{MINUTE_BAR_TABLE} AS b (market_id, minute, {', '.join(STAGED_COLUMNS + DERIVED_COLUMNS)})"
# The windows' bars are replaced: delete them, then a plain INSERT, in (market, minute) order so a
# market's day of bars sits in a few dozen heap pages for the judge's reads. (INSERT … ON CONFLICT
# DO UPDATE costs twice the plain INSERT: a speculative insertion per row.)
_DELETE_WINDOWS = f"""
DELETE FROM {MINUTE_BAR_TABLE} b
USING unnest(%(w_market)s::int[], %(w_lo)s::timestamptz[], %(w_hi)s::timestamptz[]) AS w(market_id, lo, hi)
WHERE b.market_id = w.market_id AND b.minute >= w.lo AND b.minute < w.hi AND b.minute >= %(lo)s AND b.minute < %(hi)s
"""
_INSERT = f"INSERT INTO {_INSERT_COLUMNS} {_STAGED_SELECT} ORDER BY st.market_id, st.minute"
# A concurrent roll-up of the same minutes may insert between our DELETE and INSERT (a unique
# violation): then upsert, and delete what the other one wrote that our samples no longer have.
_UPSERT = f"""
INSERT INTO {_INSERT_COLUMNS} {_STAGED_SELECT}
ON CONFLICT (market_id, minute) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in STAGED_COLUMNS + DERIVED_COLUMNS)}
"""
_DELETE_STALE = _DELETE_WINDOWS + " AND b.rolled_at <> %(stamp)s"

# Claim the touched minutes and merge consecutive ones into windows (gaps and islands).
_CLAIM_DIRTY = """
WITH claimed AS (DELETE FROM compliance_minute_dirty RETURNING market_id, minute)
SELECT market_id, min(minute), max(minute) + interval '1 minute'
FROM (SELECT market_id, minute,
             minute - (row_number() OVER (PARTITION BY market_id ORDER BY minute)) * interval '1 minute' AS island
      FROM claimed) c
GROUP BY market_id, island
ORDER BY market_id, 2
"""


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    floor = floor_minute(t)
    return floor if floor == t else floor + MINUTE


def _check_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}.")


def _days(lo: datetime, hi: datetime) -> tuple[date, date]:
    lo, last = lo.astimezone(timezone.utc), (hi - timedelta(microseconds=1)).astimezone(timezone.utc)
    return lo.date(), last.date()


def _roll_up_windows(windows: list[tuple[int, datetime, datetime]]) -> int:
    """(Re)write the bars of the given (market, [lo, hi)) minute-aligned windows; returns bars written."""
    if not windows:
        return 0
    lo, hi = min(w[1] for w in windows), max(w[2] for w in windows)
    ensure_partitions(*_days(lo, hi), tables=(MINUTE_BAR_TABLE,))
    pieces = defaultdict(list)

    def piece(market_id, p_lo, p_hi, version=None):
        pieces["p_market"].append(market_id)
        pieces["p_lo"].append(p_lo)
        pieces["p_hi"].append(p_hi)
        pieces["p_version"].append(version and version.pk)
        pieces["p_use_mid"].append(version and version.spread_denominator == SpreadDenominator.MID)
        pieces["p_target_max"].append(version and float(version.spread_target_max_pct))
        pieces["p_max"].append(version and float(version.spread_max_pct))
        pieces["p_depth_counts"].append(version and version.depth_counts_for_uptime)
        pieces["p_depth_min"].append(None if version is None or version.depth_min_usd is None else float(version.depth_min_usd))
        pieces["p_depth_side"].append(
            None if version is None or version.depth_min_side_usd is None else float(version.depth_min_side_usd)
        )
        pieces["p_band"].append(version and float(version.depth_band_pct))

    periods = obligation_periods_of_markets(market_ids=sorted({w[0] for w in windows}), start=lo, end=hi)
    for market_id, w_lo, w_hi in windows:
        covered = w_lo
        for p_lo, p_hi, version in periods[market_id]:
            if p_hi <= w_lo or p_lo >= w_hi:
                continue
            p_lo, p_hi = max(p_lo, w_lo), min(p_hi, w_hi)
            p_lo, p_hi = ceil_minute(p_lo), ceil_minute(p_hi)
            if p_lo >= p_hi:
                continue  # in force for part of a minute only: the minute belongs to the version before
            if covered < p_lo:
                piece(market_id, covered, p_lo)
            piece(market_id, p_lo, p_hi, version)
            covered = p_hi
        if covered < w_hi:
            piece(market_id, covered, w_hi)
    params = {
        "w_market": [w[0] for w in windows], "w_lo": [w[1] for w in windows], "w_hi": [w[2] for w in windows],
        "lo": lo, "hi": hi,
        **pieces,
    }
    with connection.cursor() as cur:
        # Each roll-up's own stamp (not now(), which is constant within a transaction).
        cur.execute("SELECT clock_timestamp()")
        params["stamp"] = cur.fetchone()[0]
        # The planner overestimates the groups (a bar per market per minute: 144 k for 100 markets'
        # day) through the range join, and would sort 8.6 M rows to disk; hashing them in memory
        # in each parallel worker is several times faster.
        cur.execute(f"SET LOCAL work_mem = '{ROLL_UP_WORK_MEM}'")
        cur.execute("SET LOCAL enable_sort = off")
        # When the aggregate is big enough to be JIT-compiled at all (jit_above_cost: a day of tens
        # of markets, not the live minute), also inline and optimize it: the ~20 transition
        # functions a row get inlined; measured ~10 % less time for 100 markets' day.
        cur.execute("SET LOCAL jit_inline_above_cost = 0")
        cur.execute("SET LOCAL jit_optimize_above_cost = 0")
        cur.execute(_STAGE, params)
        for setting in ("enable_sort", "jit_inline_above_cost", "jit_optimize_above_cost"):
            cur.execute(f"SET LOCAL {setting} TO DEFAULT")
        cur.execute(_DELETE_WINDOWS, params)
        try:
            with transaction.atomic():  # a savepoint, to fall back on
                cur.execute(_INSERT, params)  # its ORDER BY sorts a day's bars (~35 MB) in memory
                written = cur.rowcount
        except IntegrityError:
            cur.execute(_UPSERT, params)
            written = cur.rowcount
            cur.execute(_DELETE_STALE, params)
        cur.execute("SET LOCAL work_mem TO DEFAULT")
        cur.execute("DROP TABLE compliance_minute_bar_stage")
    return written


def roll_up(*, start: datetime, end: datetime, market_ids: list[int] | None = None) -> int:
    """(Re)build the bars of every minute touching [start, end) for the markets (default: all
    markets that have samples there). Idempotent; returns the number of bars written."""
    _check_aware(start=start, end=end)
    if end <= start:
        raise ValueError(f"Empty period: end {end.isoformat()} is not after start {start.isoformat()}.")
    lo, hi = floor_minute(start), ceil_minute(end)
    if market_ids is None:
        market_ids = list(Market.objects.values_list("pk", flat=True))
    with transaction.atomic():
        return _roll_up_windows([(m, lo, hi) for m in market_ids])


def roll_up_pending() -> set[tuple[int, date]]:
    """Roll up every minute whose samples changed since the last run; returns the touched
    (market, UTC day) pairs so their day results can be judged again."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_CLAIM_DIRTY)
            windows = [(m, lo, hi) for m, lo, hi in cur.fetchall()]
        _roll_up_windows(windows)
    touched = set()
    for market_id, lo, hi in windows:
        first, last = _days(lo, hi)
        day = first
        while day <= last:
            touched.add((market_id, day))
            day += timedelta(days=1)
    return touched
