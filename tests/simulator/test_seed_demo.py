"""seed_demo creates the demo's rows from the simulator's catalog, once."""
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from compliance.models import Market, ObligationVersion, Venue
from compliance.selectors import obligation_in_force
from simulator.catalog import DEMO_VENUES

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_matches_catalog():
    call_command("seed_demo", sim_url="http://127.0.0.1:9999", stdout=StringIO())
    call_command("seed_demo", sim_url="http://127.0.0.1:9999", stdout=StringIO())
    names = {v.name for v in DEMO_VENUES}
    assert set(Venue.objects.filter(name__in=names).values_list("name", flat=True)) == names
    spot = Venue.objects.get(name="binance-spot")
    assert spot.rest_base_url == "http://127.0.0.1:9999/binance-spot"
    assert spot.ws_base_url == "ws://127.0.0.1:9999/binance-spot"
    assert spot.ws_api_url == "ws://127.0.0.1:9999/binance-spot/ws-api/v3"
    assert Venue.objects.get(name="sim2-spot").tier == 2
    assert Venue.objects.get(name="binance-usdm").ws_api_url == ""
    btc = Market.objects.get(venue=spot, symbol="BTCUSDT")
    assert btc.tick_size == Decimal("0.01") and btc.min_notional == Decimal("5")
    assert ObligationVersion.objects.filter(market=btc).count() == 1
    assert ObligationVersion.objects.get(market=btc).reason == "demo seed"
    doge = Market.objects.get(venue__name="sim2-spot", symbol="DOGEUSDT")
    assert ObligationVersion.objects.filter(market=doge).count() == 2
    assert obligation_in_force(market_id=doge.id, at=timezone.now()).depth_min_usd == Decimal("8000")
    assert Market.objects.filter(venue__name__in=names).count() == sum(len(v.markets) for v in DEMO_VENUES)


def test_seed_demo_rejects_a_bad_url():
    with pytest.raises(CommandError, match="sim-url"):
        call_command("seed_demo", sim_url="127.0.0.1:8765")
