"""WebSocket doors: market streams (raw /ws/<stream> and combined /stream?streams=), user-data
streams on a listen key, and the spot WebSocket API's user-data subscription.

Behaviour from binance_spot_api_docs_web_socket_streams.md ('General WSS information', 'Live
Subscribing/Unsubscribing to streams', 'Error Messages') and websocket_api_*.md.
"""
import asyncio
import re
import time

import orjson
from aiohttp import WSMsgType, web

from .auth import ApiError, check_timestamp, check_ws_signature
from .venue import StreamConnection, Venue, dumps, now_ms

STREAM_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


async def _send_loop(conn: StreamConnection, ws: web.WebSocketResponse) -> None:
    try:
        while True:
            item = await conn.queue.get()
            if item is None:
                break
            not_before, text = item
            delay = not_before - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send_str(text)
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        await ws.close()


async def _serve(request: web.Request, venue: Venue, conn: StreamConnection, ws, on_text) -> web.WebSocketResponse:
    sender = asyncio.create_task(_send_loop(conn, ws))
    lifetime = asyncio.get_running_loop().call_later(venue.options.connection_lifetime_s, conn.close)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                reply = on_text(msg.data)
                if reply is not None:
                    conn.send(dumps(reply))
    finally:
        lifetime.cancel()
        venue.connections.discard(conn)
        venue.user_connections.discard(conn)
        conn.close()
        await sender
    return ws


def refuse_during_outage(venue: Venue) -> web.Response | None:
    if venue.in_outage:
        retry = max(1, int(venue.outage_until - time.monotonic()) + 1)
        return web.Response(status=503, text="Service Unavailable", headers={"Retry-After": str(retry)})
    return None


async def market_stream(request: web.Request, venue: Venue, rest: str) -> web.StreamResponse:
    """`rest` is the path after the venue prefix: "ws", "ws/<stream>" or "stream"."""
    refused = refuse_during_outage(venue)
    if refused:
        return refused
    if rest == "stream":
        combined, names = True, [s for s in request.query.get("streams", "").split("/") if s]
    else:
        combined, names = False, [s for s in rest[len("ws/"):].split("/") if s] if rest.startswith("ws/") else []
    ws = web.WebSocketResponse(heartbeat=venue.options.ping_interval_s, autoping=True)
    await ws.prepare(request)
    conn = StreamConnection(ws, combined=combined)
    for name in names:
        if venue.listen_key_valid(name):
            conn.listen_key = name
            venue.user_connections.add(conn)
        else:
            conn.subscriptions.add(name)
    venue.connections.add(conn)
    return await _serve(request, venue, conn, ws, lambda text: control_message(conn, text))


def control_message(conn: StreamConnection, text: str) -> dict | None:
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
    if not isinstance(request, dict):
        return {"error": {"code": 3, "msg": "Invalid JSON: expected an object"}}
    request_id = request.get("id")
    if not (request_id is None or (isinstance(request_id, int) and not isinstance(request_id, bool))
            or (isinstance(request_id, str) and STREAM_ID.match(request_id))):
        return {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                "id": None}
    method, params = request.get("method"), request.get("params", [])
    if method not in METHODS:
        return {"error": {"code": 2, "msg": f"Invalid request: unknown variant {method}, expected one of "
                          "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` "
                          "at line 1 column 28"}, "id": request_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(conn.subscriptions), "id": request_id}
    if not isinstance(params, list):
        return {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": request_id}
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        if not params or not isinstance(params[0], str):
            return {"error": {"code": 2, "msg": "Invalid request: property name must be a string"}, "id": request_id}
        if params[0] != "combined":
            return {"error": {"code": 0, "msg": "Unknown property", "id": request_id}}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": request_id}
        if len(params) < 2 or not isinstance(params[1], bool):
            return {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": request_id}
        conn.combined = params[1]
        return {"result": None, "id": request_id}
    if not all(isinstance(p, str) for p in params):
        return {"error": {"code": 2, "msg": "Invalid request: stream names must be strings"}, "id": request_id}
    if method == "SUBSCRIBE":
        conn.subscriptions.update(params)
    else:
        conn.subscriptions.difference_update(params)
    return {"result": None, "id": request_id}


class WsApiSession:
    """One spot WebSocket API connection (websocket_api_*.md): logon and user-data subscription."""

    def __init__(self, venue: Venue, conn: StreamConnection):
        self.venue, self.conn = venue, conn
        self.connected_since = now_ms()
        self.authorized_key: str | None = None
        self.authorized_since: int | None = None

    def handle(self, text: str) -> dict:
        try:
            request = orjson.loads(text)
            request_id, method = request["id"], request["method"]
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return self._error(None, ApiError(-1000, "Invalid JSON request"))
        handler = getattr(self, "m_" + str(method).replace(".", "_"), None)
        if handler is None:
            return self._error(request_id, ApiError(-1000, f"Unknown method '{method}'."))
        try:
            result = handler(params)
        except ApiError as exc:
            return self._error(request_id, exc)
        return {"id": request_id, "status": 200, "result": result, "rateLimits": self._rate_limits()}

    def _rate_limits(self) -> list:
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.venue.weight_limit, "count": 2}]

    def _error(self, request_id, exc: ApiError) -> dict:
        return {"id": request_id, "status": exc.status, "error": exc.body(), "rateLimits": self._rate_limits()}

    def _status(self) -> dict:
        return {"apiKey": self.authorized_key, "authorizedSince": self.authorized_since,
                "connectedSince": self.connected_since, "returnRateLimits": True, "serverTime": now_ms(),
                "userDataStream": self.conn in self.venue.user_connections}

    def m_ping(self, params) -> dict:
        return {}

    def m_time(self, params) -> dict:
        return {"serverTime": now_ms()}

    def _signed(self, params, *, ed25519: bool) -> None:
        credentials = self.venue.options.credentials
        expected = credentials.ed25519_api_key if ed25519 else credentials.api_key
        if params.get("apiKey") != expected:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        check_timestamp(params, now_ms())
        check_ws_signature(credentials, params, ed25519=ed25519)

    def m_session_logon(self, params) -> dict:
        self._signed(params, ed25519=True)  # session.logon accepts only Ed25519 keys
        self.authorized_key, self.authorized_since = params["apiKey"], now_ms()
        return self._status()

    def m_session_status(self, params) -> dict:
        return self._status()

    def m_session_logout(self, params) -> dict:
        self.authorized_key = self.authorized_since = None
        return self._status()

    def m_userDataStream_subscribe(self, params) -> dict:
        if self.authorized_key is None:
            raise ApiError(-1002, "You are not authorized to execute this request.", status=401)
        self.conn.ws_api = True
        self.venue.user_connections.add(self.conn)
        return {}

    def m_userDataStream_subscribe_signature(self, params) -> dict:
        self._signed(params, ed25519=False)
        self.conn.ws_api = True
        self.venue.user_connections.add(self.conn)
        return {"subscriptionId": 0}

    def m_userDataStream_unsubscribe(self, params) -> dict:
        self.venue.user_connections.discard(self.conn)
        return {}


async def ws_api(request: web.Request, venue: Venue) -> web.StreamResponse:
    refused = refuse_during_outage(venue)
    if refused:
        return refused
    ws = web.WebSocketResponse(heartbeat=venue.options.ping_interval_s, autoping=True)
    await ws.prepare(request)
    conn = StreamConnection(ws, combined=False)
    session = WsApiSession(venue, conn)
    venue.connections.add(conn)  # no market subscriptions; listed so outages and faults close it
    return await _serve(request, venue, conn, ws, session.handle)
