"""apiTradingStatus polled from the simulated exchange into ExchangeIndicator rows."""
import pytest
from cryptography.fernet import Fernet

from collectors.indicators import UnusableStatus, parse_futures_status, poll_all
from collectors.models import ApiResponse, ExchangeCredential
from collectors.secrets import encrypt
from compliance.models import ExchangeIndicator, Market, Venue
from tests.collectors.live_support import SimulatorProcess, close_db_connection


def test_documented_futures_example_parses_and_garbage_is_a_clear_error():
    body = {"indicators": {"BTCUSDT": [{"isLocked": True, "plannedRecoverTime": 1545741270000, "indicator": "UFR",
                                        "value": 0.05, "triggerValue": 0.995}],
                           "ACCOUNT": [{"indicator": "TMV", "value": 10, "triggerValue": 1, "plannedRecoverTime": 1545741270000,
                                        "isLocked": True}]},
            "updateTime": 1545741270000}
    btc, account = parse_futures_status(body)
    assert (btc.symbol, btc.indicator, btc.value, btc.trigger_value, btc.is_locked) == ("BTCUSDT", "UFR", 0.05, 0.995, True)
    assert account.symbol is None and account.indicator == "TMV"
    with pytest.raises(UnusableStatus):
        parse_futures_status({"indicators": {"BTCUSDT": [{"value": "x"}]}})


@pytest.fixture
def simulator():
    sim = SimulatorProcess("--scenario", "calm").wait_ready()
    yield sim
    sim.stop()


@pytest.mark.django_db(transaction=True)
async def test_poll_stores_the_exchange_indicators_for_monitored_symbols(simulator, settings):
    from asgiref.sync import sync_to_async
    from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET

    settings.SECRETS_KEY = Fernet.generate_key().decode()

    def setup():
        for name, market_type in (("binance-usdm", "usdm"), ("binance-spot", "spot")):
            rest, ws = simulator.venue_urls(name)
            venue = Venue.objects.create(name=name, exchange="binance", market_type=market_type, tier=1, rest_base_url=rest, ws_base_url=ws)
            Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size="0.1")
            ExchangeCredential.objects.create(venue=venue, label="desk", api_key=DEMO_API_KEY, secret_encrypted=encrypt(DEMO_API_SECRET))

    await sync_to_async(setup)()
    stored = await poll_all()
    rows = await sync_to_async(list)(ExchangeIndicator.objects.select_related("market__venue").order_by("indicator"))
    assert stored == len(rows) == 4 + 3  # futures UFR/IFER/GCR/DR, spot UFR/IFER/GCR for BTCUSDT only
    assert {(r.market.venue.name, r.indicator) for r in rows} >= {("binance-usdm", "DR"), ("binance-spot", "GCR")}
    assert all(0 < r.trigger_value <= 1 for r in rows)
    assert await ApiResponse.objects.filter(path="/fapi/v1/apiTradingStatus", http_status=200).acount() == 1
    await sync_to_async(close_db_connection)()  # the thread that served sync_to_async
