"""The desk's own orders reach a client through the user-data streams, as Binance sends them."""
import asyncio
import base64
import hashlib
import hmac
import time

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET, DEMO_ED25519_API_KEY, DEMO_ED25519_SEED_HEX

KEY = {"X-MBX-APIKEY": DEMO_API_KEY}


async def receive_json(ws, timeout=5):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    return orjson.loads(msg.data)


async def test_futures_listen_key_order_trade_updates(sim_factory):
    sim = await sim_factory(listen_key_ttl_s=3)
    async with sim.session.post(sim.base + "/binance-usdm/fapi/v1/listenKey") as response:
        assert response.status == 401 and (await response.json())["code"] == -2014
    async with sim.session.post(sim.base + "/binance-usdm/fapi/v1/listenKey", headers=KEY) as response:
        listen_key = (await response.json())["listenKey"]
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-usdm/ws/{listen_key}")
    kinds, fills = set(), []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and not ({"NEW", "TRADE"} <= kinds and fills):
        event = await receive_json(ws)
        assert event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["s"] in {"BTCUSDT", "ETHUSDT", "XRPUSDT"}
        kinds.add(event["o"]["x"])
        if event["o"]["x"] == "TRADE":
            fills.append(event["o"])
    assert {"NEW", "TRADE"} <= kinds
    fill = fills[0]
    assert fill["N"] == "USDT" and float(fill["l"]) > 0 and fill["t"] > 0

    # The fill is in the REST backfill with the same trade id.
    query = f"symbol={fill['s']}&timestamp={int(time.time() * 1000)}"
    signature = hmac.new(DEMO_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    async with sim.session.get(f"{sim.base}/binance-usdm/fapi/v1/userTrades?{query}&signature={signature}",
                               headers=KEY) as response:
        trades = await response.json()
    assert fill["t"] in {t["id"] for t in trades}

    # Without keepalive the key expires: listenKeyExpired, then the socket closes.
    async with sim.session.put(sim.base + "/binance-usdm/fapi/v1/listenKey", headers=KEY) as response:
        assert response.status == 200
    while True:
        event = await receive_json(ws, timeout=8)
        if event["e"] == "listenKeyExpired":
            break
    assert event["listenKey"] == listen_key
    assert (await asyncio.wait_for(ws.receive(), 5)).type.name in ("CLOSE", "CLOSING", "CLOSED")
    async with sim.session.put(sim.base + "/binance-usdm/fapi/v1/listenKey", headers=KEY) as response:
        assert (await response.json())["code"] == -1125


def ws_api_request(request_id, method, params=None):
    return {"id": request_id, "method": method, **({"params": params} if params is not None else {})}


async def test_spot_ws_api_logon_and_execution_reports(sim):
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/ws-api/v3")
    await ws.send_json(ws_api_request("a", "userDataStream.subscribe"))
    reply = await receive_json(ws)
    assert reply["status"] == 401 and reply["error"]["code"] == -1002

    params = {"apiKey": DEMO_ED25519_API_KEY, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(DEMO_ED25519_SEED_HEX))
    bad = {**params, "signature": base64.b64encode(private_key.sign(b"something else")).decode()}
    await ws.send_json(ws_api_request("b", "session.logon", bad))
    reply = await receive_json(ws)
    assert reply["error"] == {"code": -1022, "msg": "Signature for this request is not valid."}
    good = {**params, "signature": base64.b64encode(private_key.sign(payload.encode())).decode()}
    await ws.send_json(ws_api_request("c", "session.logon", good))
    reply = await receive_json(ws)
    assert reply["status"] == 200 and reply["result"]["apiKey"] == DEMO_ED25519_API_KEY
    await ws.send_json(ws_api_request("d", "userDataStream.subscribe"))
    reply = await receive_json(ws)
    assert reply == {**reply, "id": "d", "status": 200, "result": {}}

    reports = []
    while len(reports) < 3:
        message = await receive_json(ws)
        if "event" in message:
            reports.append(message["event"])
    assert all(r["e"] == "executionReport" for r in reports)
    assert reports[0]["s"] in {"BTCUSDT", "ETHUSDT", "SOLUSDT"} and isinstance(reports[0]["q"], str)


async def test_spot_ws_api_hmac_subscription(sim):
    ws = await sim.session.ws_connect(f"{sim.ws_base}/binance-spot/ws-api/v3")
    params = {"apiKey": DEMO_API_KEY, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = hmac.new(DEMO_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    await ws.send_json(ws_api_request(7, "userDataStream.subscribe.signature", params))
    reply = await receive_json(ws)
    assert reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}
    while "event" not in (message := await receive_json(ws)):
        pass
    assert message["event"]["e"] == "executionReport"


async def test_spot_deprecated_listen_key_stream(sim):
    async with sim.session.post(sim.base + "/sim2-spot/api/v3/userDataStream", headers=KEY) as response:
        listen_key = (await response.json())["listenKey"]
    ws = await sim.session.ws_connect(f"{sim.ws_base}/sim2-spot/stream?streams={listen_key}")
    message = await receive_json(ws)
    assert message["stream"] == listen_key
    assert message["data"]["e"] == "executionReport" and message["data"]["s"] in {"ADAUSDT", "DOGEUSDT"}
    async with sim.session.delete(f"{sim.base}/sim2-spot/api/v3/userDataStream?listenKey={listen_key}",
                                  headers=KEY) as response:
        assert response.status == 200 and await response.json() == {}
    while (msg := await asyncio.wait_for(ws.receive(), 5)).type.name == "TEXT":
        pass
    assert msg.type.name in ("CLOSE", "CLOSING", "CLOSED")
