"""Fixtures for report tests: a market with obligations and 1 s samples written as the collectors write them."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from compliance.models import Market, Venue
from compliance.partitions import ensure_partitions
from compliance.services import change_obligation, load_tier_presets

UTC = timezone.utc
SAMPLE_COLUMNS = (
    "market_id", "ts", "valid", "best_bid", "best_ask", "mid", "spread_ask_pct", "spread_mid_pct", "band_pct",
    "depth_bid_usd", "depth_ask_usd", "depth_bid_complete", "depth_ask_complete", "slip_buy_pct", "slip_sell_pct",
)


def sample_row(market_id, ts, best_bid, best_ask, depth_bid=40_000.0, depth_ask=40_000.0, valid=True,
               slip_buy=0.01, slip_sell=0.01):
    if not valid:
        return (market_id, ts, False) + (None,) * 5 + (2.0,) + (None,) * 6
    mid = (best_bid + best_ask) / 2
    return (market_id, ts, True, best_bid, best_ask, mid, (best_ask - best_bid) / best_ask * 100,
            (best_ask - best_bid) / mid * 100, 2.0, depth_bid, depth_ask, True, True, slip_buy, slip_sell)


def write_samples(rows) -> int:
    """COPY rows into compliance_sample (creating the daily partitions they need)."""
    rows = list(rows)
    days = sorted({r[1].date() for r in rows})
    if days:
        ensure_partitions(days[0], days[-1])
    with connection.cursor() as cur:
        with cur.cursor.copy(f"COPY compliance_sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


def seconds(start: datetime, end: datetime):
    t = start
    while t < end:
        yield t
        t += timedelta(seconds=1)


@pytest.fixture
def market(db):
    load_tier_presets()
    venue = Venue.objects.create(name="Binance spot", exchange="binance", market_type="spot", tier=1,
                                 rest_base_url="https://api.binance.com", ws_base_url="wss://stream.binance.com:9443")
    m = Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"))
    change_obligation(market=m, terms={}, changed_by=None, reason="Tier-1 preset at listing",
                      effective_from=datetime(2024, 1, 1, tzinfo=UTC))
    return m


DAY = date(2024, 8, 8)
DAY_START = datetime(2024, 8, 8, tzinfo=UTC)


def write_sample_tuples(samples) -> int:
    """COPY collectors.sampler.Sample tuples (all columns of compliance_sample, in order)."""
    samples = list(samples)
    if samples:
        ensure_partitions(min(s.ts for s in samples).date(), max(s.ts for s in samples).date())
    with connection.cursor() as cur:
        with cur.cursor.copy(f"COPY compliance_sample ({', '.join(samples[0]._fields)}) FROM STDIN") as copy:
            for sample in samples:
                copy.write_row(sample)
    return len(samples)
