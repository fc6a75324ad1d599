"""Factories for the dashboard's tests: venues, markets with obligations, 1 s samples, users per role."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from compliance.models import Market, Venue
from compliance.partitions import ensure_partitions
from compliance.services import change_obligation, load_tier_presets

SAMPLE_FIELDS = (
    "market_id", "ts", "valid", "best_bid", "best_ask", "mid", "spread_ask_pct", "spread_mid_pct", "band_pct",
    "depth_bid_usd", "depth_ask_usd", "depth_bid_complete", "depth_ask_complete", "slip_buy_pct", "slip_sell_pct",
)


def make_market(symbol="BTCUSDT", venue_name="Binance spot", tier=1, effective_from=None, **terms):
    from django.contrib.auth.models import Group

    for role in ("viewer", "operator", "admin"):  # a transactional test flushed the migration's rows
        Group.objects.get_or_create(name=role)
    load_tier_presets()
    venue, _ = Venue.objects.get_or_create(
        name=venue_name,
        defaults=dict(exchange="binance", market_type="spot", tier=tier, rest_base_url="http://127.0.0.1:1",
                      ws_base_url="ws://127.0.0.1:1"),
    )
    market = Market.objects.create(venue=venue, symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT",
                                   tick_size=Decimal("0.01"))
    change_obligation(market=market, terms=terms, changed_by=None, reason="test contract",
                      effective_from=effective_from or datetime(2020, 1, 1, tzinfo=timezone.utc))
    return market


def sample(market_id, ts, *, spread=0.05, bid_usd=20_000.0, ask_usd=20_000.0, valid=True, complete=True, mid=100.0):
    """One 1 s sample as the collectors store it (spread with both denominators)."""
    half = mid * spread / 100 / 2
    return {
        "market_id": market_id, "ts": ts, "valid": valid,
        "best_bid": mid - half if valid else None, "best_ask": mid + half if valid else None, "mid": mid if valid else None,
        "spread_ask_pct": spread if valid else None, "spread_mid_pct": spread if valid else None, "band_pct": 2.0,
        "depth_bid_usd": bid_usd if valid else None, "depth_ask_usd": ask_usd if valid else None,
        "depth_bid_complete": complete if valid else None, "depth_ask_complete": True if valid else None,
        "slip_buy_pct": 0.01 if valid else None, "slip_sell_pct": 0.01 if valid else None,
    }


def write_samples(rows):
    if not rows:
        return
    days = sorted({r["ts"].date() for r in rows})
    ensure_partitions(days[0] - timedelta(days=1), days[-1] + timedelta(days=1))
    cols = ", ".join(SAMPLE_FIELDS)
    with connection.cursor() as cur:
        cur.executemany(
            f"INSERT INTO compliance_sample ({cols}) VALUES ({', '.join(['%s'] * len(SAMPLE_FIELDS))}) ON CONFLICT DO NOTHING",
            [[r[f] for f in SAMPLE_FIELDS] for r in rows],
        )


def clear_samples():
    with connection.cursor() as cur:
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")


def user_with_role(django_user_model, username, role):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username, password="pw-" + username + "-123")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    return user


@pytest.fixture
def viewer(django_user_model):
    return user_with_role(django_user_model, "vera-viewer", "viewer")


@pytest.fixture
def operator(django_user_model):
    return user_with_role(django_user_model, "otto-operator", "operator")


@pytest.fixture
def admin(django_user_model):
    return user_with_role(django_user_model, "ada-admin", "admin")


def utcnow():
    return datetime.now(timezone.utc)


def write_book(market_id, ts, bids, asks, update_id=1):
    """A stored top-N snapshot, levels as [price, qty] strings the way the exchange sends them."""
    import json

    ensure_partitions(ts.date() - timedelta(days=1), ts.date() + timedelta(days=1))
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO compliance_book_snapshot (market_id, ts, update_id, bids, asks) VALUES (%s, %s, %s, %s, %s)",
            [market_id, ts, update_id, json.dumps([[str(p), str(q)] for p, q in bids]),
             json.dumps([[str(p), str(q)] for p, q in asks])],
        )


@pytest.fixture(autouse=True)
def no_cached_verdicts():
    """The dashboard caches the engine's verdicts per minute, keyed by ids a flushed test database reuses."""
    from django.core.cache import cache

    cache.clear()
