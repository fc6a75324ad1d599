"""REST doors of a venue: market data, the desk's backfill endpoints, trading status and listen keys.

Every response carries X-MBX-USED-WEIGHT-1M; over the weight limit the answer is 429 with
Retry-After, and continuing is 418 (binance_spot_api_docs_rest_api_limits.md 'IP Limits').
"""
import bisect
import time
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from .auth import ApiError, check_api_key, check_rest_signature, check_timestamp
from .desk import TRIGGER_VALUES
from .venue import Venue, dumps, now_ms

NONE, API_KEY, SIGNED = "none", "api_key", "signed"
ERROR_BODIES = {
    500: (-1001, "Internal error; unable to process your request. Please try again."),
    502: (-1001, "Internal error; unable to process your request. Please try again."),
    503: (-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
    504: (-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."),
}


@dataclass(frozen=True)
class Endpoint:
    handler: Callable
    weight: Callable  # (venue, params) -> int
    security: str = NONE


def _param_int(params, name, default=None, *, low=None, high=None):
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return value


def _market(venue: Venue, params):
    symbol = params.get("symbol")
    if not symbol:
        raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    market = venue.markets.get(symbol.upper()) if symbol == symbol.upper() else None
    if market is None:
        raise ApiError(-1121, "Invalid symbol.")
    return market


# Market data ---------------------------------------------------------------------------------

def ping(venue, params):
    return {}


def server_time(venue, params):
    return {"serverTime": now_ms()}


def exchange_info(venue, params):
    specs = [m.spec for m in venue.markets.values()]
    if params.get("symbol"):
        specs = [_market(venue, params).spec]
    info = {"timezone": "UTC", "serverTime": now_ms(),
            "rateLimits": venue.protocol.rate_limits(venue.weight_limit), "exchangeFilters": []}
    if venue.protocol.is_futures:
        info["assets"] = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}]
    info["symbols"] = [venue.protocol.exchange_info_symbol(spec) for spec in specs]
    return info


def _depth_limit(venue, params) -> int:
    allowed = venue.protocol.depth_limits
    if allowed:  # futures: Order_Book.md, valid limits only
        limit = _param_int(params, "limit", 500)
        if limit not in allowed:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit
    return min(_param_int(params, "limit", 100, low=1), 5000)  # spot: over 5000 returns 5000


def depth(venue, params):
    market = _market(venue, params)
    return venue.depth_body(market.spec.symbol, _depth_limit(venue, params))


def book_ticker(venue, params):
    market = _market(venue, params)
    bid, ask = market.book.best_bid or (0, 0), market.book.best_ask or (0, 0)
    body = {"symbol": market.spec.symbol, "bidPrice": venue.protocol.price(market.spec, bid[0]),
            "bidQty": venue.protocol.qty(market.spec, bid[1]), "askPrice": venue.protocol.price(market.spec, ask[0]),
            "askQty": venue.protocol.qty(market.spec, ask[1])}
    if venue.protocol.is_futures:
        body["time"] = now_ms()
    return body


# The desk's account ------------------------------------------------------------------------

def _time_window(params):
    return _param_int(params, "startTime"), _param_int(params, "endTime")


def all_orders(venue, params):
    market = _market(venue, params)
    limit = _param_int(params, "limit", 500, low=1, high=1000)
    orders = venue.desk.record(market.spec.symbol).orders
    order_id = _param_int(params, "orderId")
    start, end = _time_window(params)
    if order_id is not None:
        rows = orders[bisect.bisect_left(orders, order_id, key=lambda o: o.order_id):][:limit]
    else:
        rows = [o for o in orders if (start is None or o.time_ms >= start) and (end is None or o.time_ms <= end)]
        rows = rows[:limit] if start is not None else rows[-limit:]
    return [venue.protocol.order(market.spec, o) for o in rows]


def account_trades(venue, params):
    market = _market(venue, params)
    limit = _param_int(params, "limit", 500, low=1, high=1000)
    fills = venue.desk.record(market.spec.symbol).fills
    order_id, from_id = _param_int(params, "orderId"), _param_int(params, "fromId")
    start, end = _time_window(params)
    rows = [f for f in fills if (order_id is None or f.order.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)]
    rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
    return [venue.protocol.fill(market.spec, f) for f in rows]


def open_orders(venue, params):
    markets = [_market(venue, params)] if params.get("symbol") else list(venue.markets.values())
    return [venue.protocol.order(m.spec, o) for m in markets
            for o in venue.desk.record(m.spec.symbol).orders if o.is_open]


def futures_trading_status(venue, params):
    """Futures_Trading_Quantitative_Rules_Indicators.md."""
    markets = [_market(venue, params)] if params.get("symbol") else list(venue.markets.values())
    stamp = now_ms()
    indicators = {}
    for market in markets:
        symbol = market.spec.symbol
        record = venue.desk.record(symbol)
        locked = record.locked_until_ms > stamp
        values = venue.desk.indicators(symbol, stamp, usd_per_unit=market.usd_per_unit())
        indicators[symbol] = [
            {"isLocked": locked, "plannedRecoverTime": record.locked_until_ms if locked else 0, "indicator": name,
             "value": round(value, 4), "triggerValue": trigger}
            for name, (value, _count), trigger in _with_triggers(values)
        ]
    return {"indicators": indicators, "updateTime": stamp}


def spot_trading_status(venue, params):
    """GET /sapi/v1/account/apiTradingStatus: account-level lock, per-symbol indicators (i, c, v, t)."""
    stamp = now_ms()
    locked_until = max((venue.desk.record(s).locked_until_ms for s in venue.markets), default=0)
    indicators = {}
    for symbol, market in venue.markets.items():
        values = venue.desk.indicators(symbol, stamp, usd_per_unit=market.usd_per_unit())
        indicators[symbol] = [{"i": name, "c": count, "v": round(value, 4), "t": trigger}
                              for name, (value, count), trigger in _with_triggers(values) if name != "DR"]
    locked = locked_until > stamp
    return {"data": {"isLocked": locked, "plannedRecoverTime": locked_until if locked else 0,
                     "triggerCondition": {"GCR": 150, "IFER": 150, "UFR": 300},
                     "indicators": indicators, "updateTime": stamp}}


def _with_triggers(values):
    return [(name, values[name], TRIGGER_VALUES[name]) for name in ("UFR", "IFER", "GCR", "DR")]


def api_restrictions(venue, params):
    return {"ipRestrict": False, "createTime": venue.desk.created_ms, "enableReading": True,
            "enableWithdrawals": False, "enableInternalTransfer": False, "enableMargin": False,
            "enableFutures": venue.protocol.is_futures, "permitsUniversalTransfer": False,
            "enableVanillaOptions": False, "enableFixApiTrade": False, "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": not venue.protocol.is_futures, "enablePortfolioMarginTrading": False}


# Listen keys (futures user_data_streams_*; spot user_data_stream_endpoints_deprecated.md) ---------

def listen_key_new(venue, params):
    return {"listenKey": venue.new_listen_key()}


def listen_key_keepalive(venue, params):
    key = params.get("listenKey") or next(iter(venue.listen_keys), None)
    if not key or not venue.listen_key_valid(key):
        raise ApiError(-1125, "This listenKey does not exist.")
    venue.listen_keys[key].expires = time.monotonic() + venue.options.listen_key_ttl_s
    return {"listenKey": key} if venue.protocol.is_futures else {}


def listen_key_close(venue, params):
    key = params.get("listenKey") or next(iter(venue.listen_keys), None)
    if key in venue.listen_keys:
        del venue.listen_keys[key]
        for conn in list(venue.user_connections):
            if conn.listen_key == key:
                conn.close()
    return {}


def _fixed(n):
    return lambda venue, params: n


def _depth_weight(venue, params):
    return venue.protocol.depth_weight(_depth_limit(venue, params))


def _status_weight(venue, params):
    return 1 if params.get("symbol") else 10


SPOT_ENDPOINTS = {
    ("GET", "/api/v3/ping"): Endpoint(ping, _fixed(1)),
    ("GET", "/api/v3/time"): Endpoint(server_time, _fixed(1)),
    ("GET", "/api/v3/exchangeInfo"): Endpoint(exchange_info, _fixed(20)),
    ("GET", "/api/v3/depth"): Endpoint(depth, _depth_weight),
    ("GET", "/api/v3/ticker/bookTicker"): Endpoint(book_ticker, _fixed(2)),
    ("GET", "/api/v3/allOrders"): Endpoint(all_orders, _fixed(20), SIGNED),
    ("GET", "/api/v3/myTrades"): Endpoint(account_trades, _fixed(20), SIGNED),
    ("GET", "/api/v3/openOrders"): Endpoint(open_orders, _fixed(6), SIGNED),
    ("GET", "/sapi/v1/account/apiRestrictions"): Endpoint(api_restrictions, _fixed(1), SIGNED),
    ("GET", "/sapi/v1/account/apiTradingStatus"): Endpoint(spot_trading_status, _fixed(1), SIGNED),
    ("POST", "/api/v3/userDataStream"): Endpoint(listen_key_new, _fixed(2), API_KEY),
    ("PUT", "/api/v3/userDataStream"): Endpoint(listen_key_keepalive, _fixed(2), API_KEY),
    ("DELETE", "/api/v3/userDataStream"): Endpoint(listen_key_close, _fixed(2), API_KEY),
}
USDM_ENDPOINTS = {
    ("GET", "/fapi/v1/ping"): Endpoint(ping, _fixed(1)),
    ("GET", "/fapi/v1/time"): Endpoint(server_time, _fixed(1)),
    ("GET", "/fapi/v1/exchangeInfo"): Endpoint(exchange_info, _fixed(1)),
    ("GET", "/fapi/v1/depth"): Endpoint(depth, _depth_weight),
    ("GET", "/fapi/v1/ticker/bookTicker"): Endpoint(book_ticker, _fixed(2)),
    ("GET", "/fapi/v1/allOrders"): Endpoint(all_orders, _fixed(5), SIGNED),
    ("GET", "/fapi/v1/userTrades"): Endpoint(account_trades, _fixed(5), SIGNED),
    ("GET", "/fapi/v1/openOrders"): Endpoint(open_orders, _fixed(1), SIGNED),
    ("GET", "/fapi/v1/apiTradingStatus"): Endpoint(futures_trading_status, _status_weight, SIGNED),
    ("GET", "/sapi/v1/account/apiRestrictions"): Endpoint(api_restrictions, _fixed(1), SIGNED),
    ("POST", "/fapi/v1/listenKey"): Endpoint(listen_key_new, _fixed(1), API_KEY),
    ("PUT", "/fapi/v1/listenKey"): Endpoint(listen_key_keepalive, _fixed(1), API_KEY),
    ("DELETE", "/fapi/v1/listenKey"): Endpoint(listen_key_close, _fixed(1), API_KEY),
}
ENDPOINTS = {"spot": SPOT_ENDPOINTS, "usdm": USDM_ENDPOINTS,
             "coinm": {(method, path.replace("/fapi/", "/dapi/")): e for (method, path), e in USDM_ENDPOINTS.items()}}


def _json(body, status=200, headers=None) -> web.Response:
    return web.Response(text=dumps(body), status=status, content_type="application/json", headers=headers)


def _refusal(status: int, retry_after: int | None, venue: Venue) -> web.Response:
    if status in (429, 418):
        msg = ("Too much request weight used; current limit is %d request weight per 1 MINUTE. Please use "
               "WebSocket Streams for live updates to avoid polling the API." % venue.weight_limit
               if status == 429 else
               "Way too much request weight used; IP banned until %d. Please use WebSocket Streams for live "
               "updates to avoid bans." % (now_ms() + (retry_after or 0) * 1000))
        return _json({"code": -1003, "msg": msg}, status, {"Retry-After": str(retry_after or 1)})
    code, msg = ERROR_BODIES[status]
    return _json({"code": code, "msg": msg}, status)


async def handle(request: web.Request, venue: Venue, path: str) -> web.Response:
    endpoint = ENDPOINTS[venue.spec.market_type].get((request.method, path))
    if endpoint is None:
        return web.Response(status=404, text="Not Found")
    body = (await request.text()) if request.can_read_body else ""
    params = dict(request.query)
    if body:
        params.update((k, v) for k, v in (p.split("=", 1) for p in body.split("&") if "=" in p))
    try:
        weight = endpoint.weight(venue, params)
    except ApiError as exc:
        return _json(exc.body(), exc.status)
    used, refused, retry_after = venue.charge(request.remote or "?", weight)
    headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
    if refused is None and venue.faults.rest_errors:
        refused = venue.faults.rest_errors.pop(0)
        retry_after = 1 if refused == 429 else int(venue.options.ban_s) if refused == 418 else None
    if refused is not None:
        response = _refusal(refused, retry_after, venue)
        response.headers.update(headers)
        return response
    try:
        if endpoint.security in (API_KEY, SIGNED):
            check_api_key(venue.options.credentials, request.headers.get("X-MBX-APIKEY"))
        if endpoint.security == SIGNED:
            check_timestamp(params, now_ms())
            check_rest_signature(venue.options.credentials, request.rel_url.raw_query_string, body)
        return _json(endpoint.handler(venue, params), 200, headers)
    except ApiError as exc:
        return _json(exc.body(), exc.status, {**headers, **exc.headers})
