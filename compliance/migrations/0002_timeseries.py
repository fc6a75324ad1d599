"""Time-partitioned tables written by the collectors with COPY and read with SQL.

compliance_sample: one row per market per second (the 1 s sample, DESIGN.md 'Book metrics').
  valid = false when the book was crossed, empty on a side or resyncing; the metric columns are
  then NULL and the second is unknown time. slip_*_pct NULL on a valid row means the book could
  not fill the order (a finding in itself). depth_*_complete = false means that side's depth is
  a lower bound (band coverage). own_* are NULL when the desk's orders are not known.
compliance_book_snapshot: periodic top-N levels as audit evidence.

The primary key (market_id, ts) makes replaying the same data idempotent
(INSERT ... ON CONFLICT DO NOTHING from a COPY-filled staging table).
"""
from django.db import migrations

SQL = """
CREATE TABLE compliance_sample (
    market_id integer NOT NULL,
    ts timestamptz NOT NULL,
    valid boolean NOT NULL,
    update_id bigint,
    best_bid double precision,
    best_ask double precision,
    mid double precision,
    spread_ask_pct double precision,
    spread_mid_pct double precision,
    band_pct real NOT NULL,
    depth_bid_usd double precision,
    depth_ask_usd double precision,
    depth_bid_complete boolean,
    depth_ask_complete boolean,
    slip_buy_pct double precision,
    slip_sell_pct double precision,
    own_bid_dev_pct double precision,
    own_ask_dev_pct double precision,
    own_depth_share_pct double precision,
    own_at_touch boolean,
    PRIMARY KEY (market_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE compliance_book_snapshot (
    market_id integer NOT NULL,
    ts timestamptz NOT NULL,
    update_id bigint NOT NULL,
    bids jsonb NOT NULL,
    asks jsonb NOT NULL,
    PRIMARY KEY (market_id, ts)
) PARTITION BY RANGE (ts);
"""

REVERSE = "DROP TABLE compliance_book_snapshot; DROP TABLE compliance_sample;"


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
