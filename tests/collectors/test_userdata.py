"""The desk's orders and fills: parsing real user-data samples, idempotent upserts, and end to end
against the simulated desk (spot WebSocket API and futures listenKey, with a gap and backfill)."""
import asyncio
import copy
import glob
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db.models import Sum

from collectors.stream import Backoff
from collectors.userdata import (
    MalformedUserEvent, UserData, UserDataCollector, parse_execution_report, parse_order_trade_update, parse_user_event,
)
from compliance.models import Market, OwnFill, OwnOrder, Venue
from tests.collectors.live_support import SimulatorProcess, close_db_connection

SAMPLES = Path("/work/shared/data/user-data-samples")


def sample_events(name):
    return [orjson.loads(line) for line in (SAMPLES / "portfolio-margin-2024-09-26" / name).read_text().splitlines() if line.strip()]


def test_sample_files_parse_into_the_documented_mix():
    spot = [parse_user_event(e) for e in sample_events("executionReport.log")]
    futures = [parse_user_event(e) for e in sample_events("ORDER_TRADE_UPDATE.log")]
    # SOURCE.txt: executionReport NEW=23, TRADE=36; ORDER_TRADE_UPDATE NEW=29, TRADE=27, CANCELED=8.
    assert (sum(f is None for _, f in spot), sum(f is not None for _, f in spot)) == (23, 36)
    assert sum(f is not None for _, f in futures) == 27
    assert sum(o.status == "CANCELED" for o, _ in futures) == 8
    order, fill = spot[1]  # BNBUSDT market buy, filled at once, fee in BNB
    assert (order.status, order.order_type, order.time_in_force, order.executed_qty) == ("FILLED", "MARKET", "GTC", Decimal("0.02"))
    assert (fill.trade_id, fill.price, fill.qty, fill.commission, fill.commission_asset, fill.is_maker) == (
        808340393, Decimal("589.1"), Decimal("0.02"), Decimal("0.00000412"), "BNB", False)
    assert fill.quote_qty == Decimal("11.782")
    order, fill = futures[1]  # WLDUSDT maker sell filled
    assert (order.status, fill.is_maker, fill.price * fill.qty, fill.commission_asset) == ("FILLED", True, Decimal("20.6230000"), "USDT")


def test_documentation_examples_and_other_events():
    doc = SAMPLES / "binance-doc-examples"
    order, fill = parse_user_event(orjson.loads((doc / "spot_user_executionReport.json").read_text()))
    assert order.symbol == "ETHBTC" and order.status == "NEW" and fill is None
    order, fill = parse_user_event(orjson.loads((doc / "usdm_user_ORDER_TRADE_UPDATE.json").read_text()))
    assert order.order_type == "TRAILING_STOP_MARKET" and fill is None
    for name in ("usdm_user_ACCOUNT_UPDATE.json", "spot_user_balanceUpdate.json", "spot_user_outboundAccountPosition.json"):
        assert parse_user_event(orjson.loads((doc / name).read_text())) is None
    for line in (SAMPLES / "binance-us-2021" / "binanceus_userstream_payloads.jsonl").read_text().splitlines():
        parse_user_event(orjson.loads(line))  # the combined-stream envelope is accepted


def test_malformed_events_are_clear_errors():
    event = sample_events("executionReport.log")[0]
    broken = {k: v for k, v in event.items() if k != "X"}
    with pytest.raises(MalformedUserEvent, match="without X"):
        parse_execution_report(broken)
    with pytest.raises(MalformedUserEvent, match="not a number"):
        parse_execution_report({**event, "q": "lots"})
    with pytest.raises(MalformedUserEvent, match="order object"):
        parse_order_trade_update({"e": "ORDER_TRADE_UPDATE", "o": "x"})


def order_of(event):
    return event["o"] if event["e"] == "ORDER_TRADE_UPDATE" else event


def markets_for(venue_name, market_type, events):
    venue = Venue.objects.create(name=venue_name, exchange="binance", market_type=market_type, tier=1,
                                 rest_base_url="http://127.0.0.1:9", ws_base_url="ws://127.0.0.1:9")
    symbols = {order_of(e)["s"] for e in events}
    for s in symbols:
        Market.objects.create(venue=venue, symbol=s, base_asset=s[:-4], quote_asset="USDT", tick_size="0.0001")
    return venue


@pytest.mark.django_db
def test_upserts_are_idempotent_and_only_move_orders_forward():
    spot_events, futures_events = sample_events("executionReport.log"), sample_events("ORDER_TRADE_UPDATE.log")
    spot = UserData(markets_for("s", "spot", spot_events).pk)
    futures = UserData(markets_for("f", "usdm", futures_events).pk)
    for _ in range(2):  # the second pass is a replay: nothing changes
        for e in spot_events:
            spot.apply(*parse_user_event(e))
        for e in futures_events:
            futures.apply(*parse_user_event(e))
    assert OwnFill.objects.count() == 36 + 27
    assert spot.counts["fills_known"] == 36 and futures.counts["fills_known"] == 27
    orders = OwnOrder.objects.all()
    assert orders.count() == len({order_of(e)["i"] for e in spot_events + futures_events})
    assert set(orders.values_list("status", flat=True)) == {"FILLED", "CANCELED"}  # every lifecycle in the samples ends
    for order in orders.filter(status="FILLED"):
        filled = OwnFill.objects.filter(market=order.market, order_id=order.order_id).aggregate(q=Sum("qty"))["q"]
        assert filled == order.executed_qty and order.closed_at is not None
    # An old NEW event arriving after the fill does not reopen the order.
    new_event = next(e for e in spot_events if e["X"] == "NEW" and any(f["i"] == e["i"] and f["X"] == "FILLED" for f in spot_events))
    spot.apply(*parse_user_event(new_event))
    assert OwnOrder.objects.get(order_id=new_event["i"]).status == "FILLED"


@pytest.mark.django_db
def test_every_state_and_time_in_force_is_stored():
    base = sample_events("ORDER_TRADE_UPDATE.log")[0]
    venue = markets_for("f", "usdm", [base])
    store = UserData(venue.pk)
    cases = [("GTC", "NEW"), ("GTX", "REJECTED"), ("IOC", "EXPIRED"), ("FOK", "EXPIRED"), ("GTC", "CANCELED"),
             ("GTC", "PARTIALLY_FILLED"), ("GTC", "FILLED")]
    for n, (tif, status) in enumerate(cases):
        event = copy.deepcopy(base)
        event["o"].update(i=1000 + n, f=tif, X=status, x="TRADE" if "FILLED" in status else status, t=5000 + n,
                          l="1", z="1" if "FILLED" in status else "0", L="2.0623", n="0.001", N="BNB", m=n % 2 == 0)
        store.apply(*parse_user_event(event))
    stored = {(o.time_in_force, o.status) for o in OwnOrder.objects.filter(order_id__gte=1000)}
    assert stored == set(cases)
    assert sorted(OwnFill.objects.values_list("commission_asset", flat=True)) == ["BNB", "BNB"]
    assert OwnOrder.objects.get(order_id=1003).closed_at is not None and OwnOrder.objects.get(order_id=1000).closed_at is None


# -- end to end against the simulated desk ------------------------------------------------------

@pytest.fixture
def simulator():
    sim = SimulatorProcess("--scenario", "calm").wait_ready()
    yield sim
    sim.stop()


def sim_venue(sim, name, market_type):
    from simulator.catalog import DEMO_VENUES

    rest, ws = sim.venue_urls(name)
    venue = Venue.objects.create(name=name, exchange="binance", market_type=market_type, tier=1, rest_base_url=rest,
                                 ws_base_url=ws, ws_api_url=f"{ws}/ws-api/v3" if market_type == "spot" else "")
    spec = next(v for v in DEMO_VENUES if v.name == name)
    for m in spec.markets:
        Market.objects.create(venue=venue, symbol=m.symbol, base_asset=m.symbol[:-4], quote_asset="USDT", tick_size="0.01")
    return venue


async def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name,market_type", [("binance-usdm", "usdm"), ("binance-spot", "spot")])
async def test_end_to_end_against_the_simulated_desk_with_a_gap(simulator, name, market_type):
    from collectors.rest import BinanceRest
    from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET

    venue = await sync_to_async(sim_venue)(simulator, name, market_type)
    collector = UserDataCollector(venue=venue, api_key=DEMO_API_KEY, secret=DEMO_API_SECRET,
                                  backoff=Backoff(base_s=0.2, cap_s=1.0))
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.backfilled.wait(), 20)
        await wait_for(lambda: _true(collector.counts["order_events"] >= 5), 20, "live order events")
        # A gap: every socket closed; what happens meanwhile only the backfill can recover.
        collector.backfilled.clear()
        await sync_to_async(simulator.post)("/_sim/faults", {"kind": "close_sockets", "venue": name})
        await asyncio.sleep(1.0)
        await asyncio.wait_for(collector.backfilled.wait(), 20)
        assert collector.counts["disconnects"] >= 1
        await sync_to_async(simulator.post)("/_sim/pause", {"paused": True})
        await asyncio.sleep(1.0)
        futures = market_type == "usdm"
        async with BinanceRest(venue.rest_base_url, time_path="/fapi/v1/time" if futures else "/api/v3/time",
                               api_key=DEMO_API_KEY, secret=DEMO_API_SECRET) as rest:
            await rest.sync_clock()
            truth_orders, truth_fills = {}, set()
            for symbol in collector.store.market_ids:
                for row in await rest.request("GET", "/fapi/v1/allOrders" if futures else "/api/v3/allOrders",
                                              {"symbol": symbol, "limit": 1000}, signed=True):
                    truth_orders[(symbol, row["orderId"])] = (row["status"], Decimal(row["executedQty"]), row["timeInForce"])
                for row in await rest.request("GET", "/fapi/v1/userTrades" if futures else "/api/v3/myTrades",
                                              {"symbol": symbol, "limit": 1000}, signed=True):
                    truth_fills.add((symbol, row["id"]))
        assert truth_orders, "the simulated desk placed no orders"

        def stored():
            orders = {(o.market.symbol, o.order_id): (o.status, o.executed_qty, o.time_in_force)
                      for o in OwnOrder.objects.filter(market__venue=venue).select_related("market")}
            fills = {(f.market.symbol, f.trade_id) for f in OwnFill.objects.filter(market__venue=venue).select_related("market")}
            return orders, fills

        orders, fills = await sync_to_async(stored)()
        assert {k: orders.get(k) for k in truth_orders} == truth_orders
        assert truth_fills <= fills
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sync_to_async(close_db_connection)()  # the thread that served sync_to_async


async def _true(value):
    return value
