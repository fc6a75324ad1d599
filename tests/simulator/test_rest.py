"""REST behaviour against the documented codes: signatures, timestamps, rate limits, filters."""
import hashlib
import hmac
import time
from urllib.parse import urlencode

from simulator.catalog import DEMO_API_KEY, DEMO_API_SECRET


def signed(params: dict, secret: str = DEMO_API_SECRET) -> str:
    query = urlencode(params)
    return query + "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def now_ms():
    return int(time.time() * 1000)


async def test_exchange_info_and_snapshot_shapes(sim):
    status, info, headers = await sim.get("/binance-spot/api/v3/exchangeInfo")
    assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "20"
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    status, info, _ = await sim.get("/binance-usdm/fapi/v1/exchangeInfo")
    xrp = next(s for s in info["symbols"] if s["symbol"] == "XRPUSDT")
    filters = {f["filterType"]: f for f in xrp["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.0001" and filters["MIN_NOTIONAL"]["notional"] == "5"

    status, depth, _ = await sim.get("/binance-usdm/fapi/v1/depth?symbol=XRPUSDT&limit=5")
    assert status == 200 and list(depth) == ["lastUpdateId", "E", "T", "bids", "asks"]
    assert len(depth["bids"]) == 5 and all(isinstance(p, str) and isinstance(q, str) for p, q in depth["bids"])
    assert float(depth["bids"][0][0]) < float(depth["asks"][0][0])
    status, body, _ = await sim.get("/binance-usdm/fapi/v1/depth?symbol=XRPUSDT&limit=7")
    assert status == 400 and body["code"] == -1130
    status, body, _ = await sim.get("/binance-spot/api/v3/depth?symbol=NOPEUSDT")
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    status, body, _ = await sim.get("/binance-spot/api/v3/depth")
    assert status == 400 and body["code"] == -1102


async def test_signed_endpoints_answer_as_binance(sim):
    path = "/binance-spot/api/v3/allOrders?"
    key = {"X-MBX-APIKEY": DEMO_API_KEY}
    params = {"symbol": "BTCUSDT", "timestamp": now_ms()}

    status, body, _ = await sim.get(path + signed(params))
    assert (status, body["code"]) == (401, -2014)
    status, body, _ = await sim.get(path + signed(params), headers={"X-MBX-APIKEY": "someone-else"})
    assert (status, body) == (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    status, body, _ = await sim.get(path + signed(params, secret="wrong"), headers=key)
    assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    old = {"symbol": "BTCUSDT", "timestamp": now_ms() - 6000}
    status, body, _ = await sim.get(path + signed(old), headers=key)
    assert (status, body["code"]) == (400, -1021) and "recvWindow" in body["msg"]
    status, body, _ = await sim.get(path + signed({**old, "recvWindow": 10000}), headers=key)
    assert status == 200
    ahead = {"symbol": "BTCUSDT", "timestamp": now_ms() + 5000}
    status, body, _ = await sim.get(path + signed(ahead), headers=key)
    assert (status, body["code"]) == (400, -1021) and "ahead" in body["msg"]
    status, body, _ = await sim.get(path + urlencode({"symbol": "BTCUSDT"}), headers=key)
    assert (status, body["code"]) == (400, -1102)

    status, orders, _ = await sim.get(path + signed(params), headers=key)
    assert status == 200 and orders, "the desk's ladder orders are listed"
    assert {o["type"] for o in orders} <= {"LIMIT", "LIMIT_MAKER"} and all(o["symbol"] == "BTCUSDT" for o in orders)
    status, restrictions, _ = await sim.get("/binance-spot/sapi/v1/account/apiRestrictions?" + signed(
        {"timestamp": now_ms()}), headers=key)
    assert status == 200 and restrictions["enableWithdrawals"] is False and restrictions["enableReading"] is True


async def test_weight_limit_429_then_418_with_retry_after(sim_factory):
    sim = await sim_factory(weight_limit=60)
    statuses = []
    for _ in range(12):  # limit 100 costs 5 (rest_api_market_data_endpoints.md): 12 × 5 = 60 is allowed
        status, _, headers = await sim.get("/binance-spot/api/v3/depth?symbol=BTCUSDT&limit=100")
        statuses.append((status, headers["X-MBX-USED-WEIGHT-1M"]))
    assert statuses[-1] == (200, "60")
    status, body, headers = await sim.get("/binance-spot/api/v3/depth?symbol=BTCUSDT&limit=100")
    assert status == 429 and body["code"] == -1003 and int(headers["Retry-After"]) > 0
    status, body, headers = await sim.get("/binance-spot/api/v3/time")
    assert status == 418 and body["code"] == -1003 and "banned" in body["msg"]
    assert int(headers["Retry-After"]) == 120
    status, _, _ = await sim.get("/binance-usdm/fapi/v1/time")
    assert status == 200, "limits are per venue"


async def test_rest_error_faults(sim):
    await sim.control("/_sim/faults", {"kind": "rest_error", "venue": "binance-usdm", "status": 503, "count": 1})
    await sim.control("/_sim/faults", {"kind": "rest_error", "venue": "binance-usdm", "status": 429, "count": 1})
    status, body, _ = await sim.get("/binance-usdm/fapi/v1/time")
    assert status == 503 and body["code"] == -1008
    status, body, headers = await sim.get("/binance-usdm/fapi/v1/time")
    assert status == 429 and "Retry-After" in headers
    status, body, _ = await sim.get("/binance-usdm/fapi/v1/time")
    assert status == 200 and body["serverTime"] > 0
    async with sim.session.post(sim.base + "/_sim/faults", json={"kind": "rest_error", "venue": "binance-usdm",
                                                                 "status": 404}) as response:
        assert response.status == 400
