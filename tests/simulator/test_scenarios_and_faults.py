"""Every scenario and fault is observable from a client, through the protocol alone."""
import asyncio
import hashlib
import hmac
import time
from decimal import Decimal

import aiohttp
import orjson
import pytest

from compliance.presets import TIER_PRESETS
from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET
from simulator.scenarios import ScenarioError, parse

KEY = {"X-MBX-APIKEY": DEMO_API_KEY}


def signed_query(params):
    query = "&".join(f"{k}={v}" for k, v in {**params, "timestamp": int(time.time() * 1000)}.items())
    return query + "&signature=" + hmac.new(DEMO_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()


async def spread_pct(sim, venue, symbol):
    path = "/fapi/v1/ticker/bookTicker" if venue.endswith("usdm") else "/api/v3/ticker/bookTicker"
    _, ticker, _ = await sim.get(f"/{venue}{path}?symbol={symbol}")
    bid, ask = Decimal(ticker["bidPrice"]), Decimal(ticker["askPrice"])
    return (ask - bid) / ask * 100


async def depth_within_band_usd(sim, venue, symbol, band_pct=Decimal(2)):
    path = "/fapi/v1/depth" if venue.endswith("usdm") else "/api/v3/depth"
    limit = 1000 if venue.endswith("usdm") else 5000
    _, book, _ = await sim.get(f"/{venue}{path}?symbol={symbol}&limit={limit}")
    mid = (Decimal(book["bids"][0][0]) + Decimal(book["asks"][0][0])) / 2
    low, high = mid * (1 - band_pct / 100), mid * (1 + band_pct / 100)
    return sum(Decimal(p) * Decimal(q) for p, q in book["bids"] + book["asks"] if low <= Decimal(p) <= high)


async def test_spread_blowout_exceeds_tier_max_then_recovers(sim):
    tier_max = TIER_PRESETS[1]["spread_max_pct"]
    assert await spread_pct(sim, "binance-spot", "BTCUSDT") < tier_max
    await sim.control("/_sim/scenario", {"scenario": "spread_blowout(duration=1.5,factor=12,market=binance-spot/BTCUSDT)"})
    await asyncio.sleep(0.4)
    assert await spread_pct(sim, "binance-spot", "BTCUSDT") > tier_max
    assert await spread_pct(sim, "binance-spot", "ETHUSDT") < tier_max, "only the named market"
    await asyncio.sleep(1.6)
    assert await spread_pct(sim, "binance-spot", "BTCUSDT") < tier_max


async def test_depth_withdrawal_drops_band_depth_below_minimum(sim):
    minimum = TIER_PRESETS[1]["depth_min_usd"]
    assert await depth_within_band_usd(sim, "binance-usdm", "BTCUSDT") > minimum
    await sim.control("/_sim/scenario", {"scenario": "depth_withdrawal(duration=5,factor=0.05,market=binance-usdm/BTCUSDT)"})
    await asyncio.sleep(1.5)
    assert await depth_within_band_usd(sim, "binance-usdm", "BTCUSDT") < minimum


async def test_volatility_spike_recovers_or_not(sim):
    before = await spread_pct(sim, "binance-spot", "ETHUSDT")
    await sim.control("/_sim/scenario", {"scenario": (
        "volatility_spike(duration=1,spread=6,recover=1,market=binance-spot/ETHUSDT),"
        "volatility_spike(duration=1,spread=6,recover=0,hold=30,market=binance-spot/SOLUSDT)")})
    await asyncio.sleep(0.5)
    assert await spread_pct(sim, "binance-spot", "ETHUSDT") > 3 * before
    await asyncio.sleep(1.5)
    assert await spread_pct(sim, "binance-spot", "ETHUSDT") < 2 * before
    sol_normal = Decimal(2) * Decimal("0.08")  # desk half spread 0.08 % each side
    assert await spread_pct(sim, "binance-spot", "SOLUSDT") > 3 * sol_normal, "no recovery within the window"


async def test_cancel_storm_locks_symbol_in_api_trading_status(sim_factory):
    sim = await sim_factory(time_scale=0.05, quant_min_orders=150)
    path = "/binance-usdm/fapi/v1/apiTradingStatus?" + signed_query({"symbol": "ETHUSDT"})
    status, body, _ = await sim.get(path, headers=KEY)
    assert status == 200 and not any(row["isLocked"] for row in body["indicators"]["ETHUSDT"])
    await sim.control("/_sim/scenario", {"scenario": "cancel_storm(duration=60,market=binance-usdm/ETHUSDT),"
                                                     "cancel_storm(duration=60,market=binance-spot/SOLUSDT)"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        status, body, _ = await sim.get("/binance-usdm/fapi/v1/apiTradingStatus?" + signed_query({"symbol": "ETHUSDT"}),
                                        headers=KEY)
        rows = {row["indicator"]: row for row in body["indicators"]["ETHUSDT"]}
        if rows["GCR"]["isLocked"]:
            break
    assert rows["GCR"]["isLocked"] and rows["GCR"]["plannedRecoverTime"] > body["updateTime"]
    assert rows["GCR"]["value"] >= 0.9 and rows["GCR"]["triggerValue"] == 0.99
    assert max(row["value"] >= row["triggerValue"] for row in rows.values())

    status, spot, _ = await sim.get("/binance-spot/sapi/v1/account/apiTradingStatus?" + signed_query({}), headers=KEY)
    assert spot["data"]["isLocked"] and spot["data"]["plannedRecoverTime"] > spot["data"]["updateTime"]
    gcr = next(i for i in spot["data"]["indicators"]["SOLUSDT"] if i["i"] == "GCR")
    assert gcr["c"] >= 150 and gcr["v"] > 0.9

    # Locked: the desk's quotes are gone, so its cancel storm shows in allOrders as cancellations.
    status, orders, _ = await sim.get("/binance-usdm/fapi/v1/allOrders?" + signed_query({"symbol": "ETHUSDT"}),
                                      headers=KEY)
    assert sum(o["status"] == "CANCELED" for o in orders) > 0.9 * len(orders)


async def test_outage_closes_streams_and_refuses_reconnects(sim):
    ws = await sim.session.ws_connect(f"{sim.ws_base}/sim2-spot/ws/adausdt@bookTicker")
    await sim.control("/_sim/scenario", {"scenario": "outage(duration=1.5,venue=sim2-spot)"})
    await asyncio.sleep(0.2)
    while (msg := await asyncio.wait_for(ws.receive(), 3)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await sim.session.ws_connect(f"{sim.ws_base}/sim2-spot/ws/adausdt@bookTicker")
    assert refused.value.status == 503
    other = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/ws/btcusdt@bookTicker")
    assert (await asyncio.wait_for(other.receive(), 3)).type == aiohttp.WSMsgType.TEXT
    await asyncio.sleep(1.5)
    again = await sim.session.ws_connect(f"{sim.ws_base}/sim2-spot/ws/adausdt@bookTicker")
    assert orjson.loads((await asyncio.wait_for(again.receive(), 3)).data)["s"] == "ADAUSDT"


async def test_gap_makes_U_jump_on_spot_and_pu_break_on_futures(sim):
    spot = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/ws/btcusdt@depth@100ms")
    futures = await sim.session.ws_connect(f"{sim.ws_base}/binance-usdm/ws/btcusdt@depth@100ms")
    first_spot = orjson.loads((await spot.receive()).data)
    first_futures = orjson.loads((await futures.receive()).data)
    await sim.control("/_sim/faults", {"kind": "drop_diffs", "venue": "binance-spot", "symbol": "BTCUSDT", "count": 2})
    await sim.control("/_sim/faults", {"kind": "drop_diffs", "venue": "binance-usdm", "symbol": "BTCUSDT", "count": 1})
    spot_events = [first_spot] + [orjson.loads((await spot.receive()).data) for _ in range(4)]
    futures_events = [first_futures] + [orjson.loads((await futures.receive()).data) for _ in range(4)]
    assert any(b["U"] > a["u"] + 1 for a, b in zip(spot_events, spot_events[1:]))
    assert any(b["pu"] != a["u"] for a, b in zip(futures_events, futures_events[1:]))


async def test_malformed_unknown_delay_and_close_faults(sim):
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/stream?streams=ethusdt@bookTicker")
    await ws.receive()
    await sim.control("/_sim/faults", {"kind": "malformed_json", "venue": "binance-spot"})
    await sim.control("/_sim/faults", {"kind": "unknown_event", "venue": "binance-spot"})
    seen_malformed = seen_unknown = False
    for _ in range(20):
        text = (await asyncio.wait_for(ws.receive(), 3)).data
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            seen_malformed = True
            continue
        seen_unknown |= message["data"].get("e") == "simUnknownEvent"
        if seen_malformed and seen_unknown:
            break
    assert seen_malformed and seen_unknown

    await sim.control("/_sim/faults", {"kind": "delay_events", "venue": "binance-spot", "ms": 700, "count": 1})
    started = time.monotonic()
    await asyncio.wait_for(ws.receive(), 3)
    assert time.monotonic() - started >= 0.6

    await sim.control("/_sim/faults", {"kind": "close_sockets", "venue": "binance-spot"})
    while (msg := await asyncio.wait_for(ws.receive(), 3)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_live_subscribe_unsubscribe_list(sim):
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-usdm/ws")
    await ws.send_json({"method": "SUBSCRIBE", "params": ["xrpusdt@bookTicker", "xrpusdt@trade"], "id": 1})
    assert orjson.loads((await ws.receive()).data) == {"result": None, "id": 1}
    await ws.send_json({"method": "UNSUBSCRIBE", "params": ["xrpusdt@trade"], "id": 2})
    await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
    replies = []
    while len(replies) < 2:
        message = orjson.loads((await ws.receive()).data)
        if "id" in message:
            replies.append(message)
        else:
            assert message["e"] == "bookTicker"
    assert replies == [{"result": None, "id": 2}, {"result": ["xrpusdt@bookTicker"], "id": 3}]
    await ws.send_json({"method": "NOPE", "id": 4})
    while "id" not in (message := orjson.loads((await ws.receive()).data)):
        pass
    assert message["error"]["code"] == 2


async def test_connection_lifetime(sim_factory):
    sim = await sim_factory(connection_lifetime_s=0.5)
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/ws/btcusdt@bookTicker")
    started = time.monotonic()
    while (await asyncio.wait_for(ws.receive(), 3)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert 0.4 < time.monotonic() - started < 2


def test_scenario_syntax_errors_are_clear():
    with pytest.raises(ScenarioError, match="Unknown scenario"):
        parse("spread_blowup", time_scale=1)
    with pytest.raises(ScenarioError, match="unknown parameter"):
        parse("outage(minutes=3)", time_scale=1)
    scenarios = parse("calm,spread_blowout(start=10,duration=60,factor=2),outage", time_scale=0.5)
    assert [(s.name, s.start, s.duration) for s in scenarios] == [("spread_blowout", 5, 30), ("outage", 0, 15)]


async def test_demo_shows_compliant_warning_and_breaching_markets(sim_factory):
    sim = await sim_factory(scenario="demo", time_scale=0.02)
    await asyncio.sleep(1.6)  # XRPUSDT's blowout (start 30 s) and SOLUSDT's withdrawal (60 s) have begun
    verdicts = {}
    for venue in sim.sim.venues.values():
        preset = TIER_PRESETS[venue.spec.tier]
        for symbol in venue.markets:
            spread = await spread_pct(sim, venue.name, symbol)
            depth = await depth_within_band_usd(sim, venue.name, symbol)
            if spread > preset["spread_max_pct"] or depth < preset["depth_min_usd"]:
                verdicts[f"{venue.name}/{symbol}"] = "breach"
            elif spread > preset["spread_target_max_pct"]:
                verdicts[f"{venue.name}/{symbol}"] = "warning"
            else:
                verdicts[f"{venue.name}/{symbol}"] = "compliant"
    assert verdicts["binance-spot/BTCUSDT"] == "compliant"
    assert verdicts["binance-spot/ETHUSDT"] == "warning"
    assert verdicts["binance-usdm/XRPUSDT"] == "breach" and verdicts["binance-spot/SOLUSDT"] == "breach"
