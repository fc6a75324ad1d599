"""Minute bars (compliance/rollups.py fills them) and the queue of minutes whose samples changed.

compliance_minute_bar: one row per market per UTC minute, partitioned by day like the samples
  (partitions are created by the roll-up itself). Spread statistics are in the denominator of the
  obligation version that governs the minute (obligation_version_id, NULL when none), and the
  in-range counts use that version's limits, so a bar is a judged minute's evidence.
  judged_mask / in_range_mask have bit s set when second s of the minute had a judgeable sample /
  a sample within range: snapshot_share and random_minute pick their seconds from them.
compliance_minute_dirty: (market, minute) pairs touched by an INSERT/UPDATE/DELETE on
  compliance_sample, filled by statement-level triggers; the roll-up claims and clears them,
  which is how late or backfilled data re-evaluates exactly the minutes it touches.
"""
from django.db import migrations

SQL = """
CREATE TABLE compliance_minute_bar (
    market_id integer NOT NULL,
    minute timestamptz NOT NULL,
    obligation_version_id bigint,
    spread_denominator varchar(3) NOT NULL,
    samples smallint NOT NULL,
    valid_samples smallint NOT NULL,
    judged_samples smallint NOT NULL,
    in_range_samples smallint NOT NULL,
    spread_min double precision,
    spread_avg double precision,
    spread_max double precision,
    depth_bid_min double precision,
    depth_bid_avg double precision,
    depth_ask_min double precision,
    depth_ask_avg double precision,
    depth_total_min double precision,
    depth_incomplete_samples smallint NOT NULL,
    slip_buy_avg double precision,
    slip_sell_avg double precision,
    slip_unfillable_samples smallint NOT NULL,
    mid_low double precision,
    mid_high double precision,
    judged_mask bigint NOT NULL,
    in_range_mask bigint NOT NULL,
    presence_samples smallint NOT NULL,
    rolled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (market_id, minute)
) PARTITION BY RANGE (minute);

CREATE TABLE compliance_minute_dirty (
    market_id integer NOT NULL,
    minute timestamptz NOT NULL,
    PRIMARY KEY (market_id, minute)
);

CREATE FUNCTION compliance_mark_new_minutes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO compliance_minute_dirty (market_id, minute)
    SELECT DISTINCT market_id, date_trunc('minute', ts) FROM changed_samples
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER compliance_sample_inserted AFTER INSERT ON compliance_sample
    REFERENCING NEW TABLE AS changed_samples FOR EACH STATEMENT EXECUTE FUNCTION compliance_mark_new_minutes();
CREATE TRIGGER compliance_sample_updated AFTER UPDATE ON compliance_sample
    REFERENCING NEW TABLE AS changed_samples FOR EACH STATEMENT EXECUTE FUNCTION compliance_mark_new_minutes();
CREATE TRIGGER compliance_sample_deleted AFTER DELETE ON compliance_sample
    REFERENCING OLD TABLE AS changed_samples FOR EACH STATEMENT EXECUTE FUNCTION compliance_mark_new_minutes();
"""

REVERSE = """
DROP TRIGGER compliance_sample_deleted ON compliance_sample;
DROP TRIGGER compliance_sample_updated ON compliance_sample;
DROP TRIGGER compliance_sample_inserted ON compliance_sample;
DROP FUNCTION compliance_mark_new_minutes();
DROP TABLE compliance_minute_dirty;
DROP TABLE compliance_minute_bar;
"""


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_judged_results")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
