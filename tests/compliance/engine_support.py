"""Factories for the judging tests: a market with an obligation, and 1 s samples written to
compliance_sample the way the collectors' sink does (one multi-row INSERT per batch)."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection

from compliance import services
from compliance.models import Market, TierPreset, Venue
from compliance.partitions import ensure_partitions

SECOND = timedelta(seconds=1)


def make_market(*, symbol="TESTUSDT", tier=1, at: datetime, user=None, **terms) -> Market:
    services.load_tier_presets()
    venue, _ = Venue.objects.get_or_create(
        name=f"venue-tier{tier}", defaults=dict(
            exchange="binance", market_type="spot", tier=tier, rest_base_url="http://127.0.0.1:9",
            ws_base_url="ws://127.0.0.1:9",
        ),
    )
    market = Market.objects.create(venue=venue, symbol=symbol, base_asset="TEST", quote_asset="USDT", tick_size=Decimal("0.01"))
    services.change_obligation(
        market=market, terms=terms, changed_by=user, reason="test contract", effective_from=at,
        preset=TierPreset.objects.get(tier=tier),
    )
    return market


@dataclass
class Sample:
    ts: datetime
    spread: float | None = 0.2  # % with the ask denominator; None = invalid second
    depth_bid: float = 20_000.0
    depth_ask: float = 20_000.0
    ask: float = 100.0
    band: float = 2.0
    slip: float | None = 0.05
    own_dev: float | None = None

    def row(self, market_id: int):
        if self.spread is None:
            return (market_id, self.ts, False, None, None, None, None, None, self.band, None, None, None, None, None, None, None, None)
        ask = self.ask
        bid = ask * (1 - self.spread / 100)  # so that (ask − bid) / ask × 100 is the spread asked for
        mid = (bid + ask) / 2
        return (
            market_id, self.ts, True, bid, ask, mid, (ask - bid) / ask * 100, (ask - bid) / mid * 100, self.band,
            self.depth_bid, self.depth_ask, True, True, self.slip, self.slip, self.own_dev, self.own_dev,
        )


BATCH = 3000  # 17 parameters a row, under Postgres' 65535
COLUMNS = (
    "market_id, ts, valid, best_bid, best_ask, mid, spread_ask_pct, spread_mid_pct, band_pct, depth_bid_usd, "
    "depth_ask_usd, depth_bid_complete, depth_ask_complete, slip_buy_pct, slip_sell_pct, own_bid_dev_pct, own_ask_dev_pct"
)


def insert_samples(market_id: int, samples: list[Sample]) -> None:
    if not samples:
        return
    days = sorted({s.ts.date() for s in samples})
    ensure_partitions(days[0], days[-1], tables=("compliance_sample",))
    rows = [s.row(market_id) for s in samples]
    with connection.cursor() as cur:
        for i in range(0, len(rows), BATCH):
            batch = rows[i : i + BATCH]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * 17) + ")"] * len(batch))
            cur.execute(
                f"INSERT INTO compliance_sample ({COLUMNS}) VALUES {placeholders} ON CONFLICT DO NOTHING",
                [v for row in batch for v in row],
            )


def seconds(start: datetime, count: int, **fields) -> list[Sample]:
    return [Sample(ts=start + i * SECOND, **fields) for i in range(count)]
