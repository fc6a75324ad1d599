"""Binance REST client (aiohttp): request weight recorded, 429/418 honoured, signed requests, clock offset.

Rules from reference/binance-api/binance_spot_api_docs_rest_api_limits.md and
binance_spot_api_docs_rest_api_endpoint_security_type.md:
- every response carries X-MBX-USED-WEIGHT-1M (and X-MBX-ORDER-COUNT-* on order endpoints);
- 429 means back off for `Retry-After` seconds; continuing leads to an IP ban, HTTP 418, whose
  `Retry-After` says when the ban ends — so a ban stops *every* request of this client;
- SIGNED endpoints take `timestamp` (ms) and `recvWindow` and a HMAC-SHA256 `signature` of the
  query string; error -1021 means our clock disagrees with the server's, so we measure the offset.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
import orjson

log = logging.getLogger(__name__)

# Without a Retry-After header (the docs allow that for order-count 429s) wait this long.
DEFAULT_RETRY_AFTER_S = 10.0
# A ban without Retry-After: the docs say bans scale "from 2 minutes to 3 days".
DEFAULT_BAN_S = 120.0
TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021


@dataclass(frozen=True)
class ApiCall:
    """What the API-health log records about one request."""

    at: float  # unix seconds when the request was sent
    method: str
    path: str
    http_status: int  # 0: no response
    error_code: int | None
    used_weight_1m: int | None
    order_counts: dict = field(default_factory=dict)
    retry_after_s: int | None = None
    latency_ms: float = 0.0


class ExchangeError(Exception):
    def __init__(self, status: int, code: int | None, message: str, path: str):
        super().__init__(f"{path}: HTTP {status}" + (f" code {code}" if code is not None else "") + f": {message}")
        self.status, self.code, self.message, self.path = status, code, message, path


class RateLimited(ExchangeError):
    """HTTP 429 (or 418, see Banned): the client refuses further requests until `retry_after_s` has passed."""

    def __init__(self, status, code, message, path, retry_after_s: float):
        super().__init__(status, code, message, path)
        self.retry_after_s = retry_after_s


class Banned(RateLimited):
    """HTTP 418: the IP is banned until Retry-After."""


class Unreachable(Exception):
    """No HTTP response (connection refused, reset, timeout)."""


Recorder = Callable[[ApiCall], Awaitable[None]]


def _retry_after(headers, default: float) -> tuple[float, int | None]:
    raw = headers.get("Retry-After")
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        value = None
    return (float(value) if value is not None else default), value


def _order_counts(headers) -> dict:
    prefix = "X-MBX-ORDER-COUNT-"
    counts = {}
    for name, value in headers.items():
        if name.upper().startswith(prefix) and value.isdigit():
            counts[name[len(prefix):].upper()] = int(value)
    return counts


def sign(secret: str, query: str) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


class BinanceRest:
    def __init__(
        self,
        base_url: str,
        *,
        time_path: str,
        api_key: str | None = None,
        secret: str | None = None,
        recorder: Recorder | None = None,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        ban_default_s: float = DEFAULT_BAN_S,
    ):
        self.base_url = base_url.rstrip("/")
        self.time_path = time_path
        self.api_key, self.secret = api_key, secret
        self.recorder = recorder
        self.recv_window_ms = recv_window_ms
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.ban_default_s = ban_default_s
        self.clock_offset_ms = 0.0  # exchange time − local time
        self.clock_measured_at: float | None = None  # epoch s of the last measurement (None: not measured yet)
        self.blocked_until = 0.0  # time.monotonic() before which no request is sent
        self.used_weight_1m: int | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    def backoff_remaining(self) -> float:
        return max(0.0, self.blocked_until - time.monotonic())

    async def sync_clock(self) -> float:
        """Measure exchange time − local time (ms), taking the round trip's midpoint as the server's instant."""
        t0 = time.time() * 1000
        body = await self.request("GET", self.time_path)
        t1 = time.time() * 1000
        try:
            server_ms = float(body["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise ExchangeError(200, None, f"unexpected server-time body {body!r:.200}", self.time_path) from None
        self.clock_offset_ms = server_ms - (t0 + t1) / 2
        self.clock_measured_at = t1 / 1000
        return self.clock_offset_ms

    async def request(self, method: str, path: str, params: dict | None = None, *, signed: bool = False, keyed: bool = False) -> Any:
        """Send one request; wait out any back-off first. Returns the decoded JSON body.

        Raises RateLimited/Banned (after arming the back-off), ExchangeError for other error
        statuses, Unreachable when no response came.
        """
        retried_clock = False
        while True:
            try:
                return await self._send(method, path, params, signed=signed, keyed=keyed or signed)
            except ExchangeError as exc:
                if exc.code == TIMESTAMP_OUTSIDE_RECV_WINDOW and signed and not retried_clock:
                    log.warning("%s: timestamp outside recvWindow; re-measuring the clock offset", path)
                    await self.sync_clock()
                    retried_clock = True
                    continue
                raise

    async def _send(self, method, path, params, *, signed, keyed):
        wait = self.backoff_remaining()
        if wait > 0:
            await asyncio.sleep(wait)
        query = dict(params or {})
        headers = {}
        if keyed:
            if not self.api_key:
                raise ValueError(f"{path} needs an API key and this client has none")
            headers["X-MBX-APIKEY"] = self.api_key
        if signed:
            if not self.secret:
                raise ValueError(f"{path} is a SIGNED endpoint and this client has no secret")
            query["timestamp"] = int(time.time() * 1000 + self.clock_offset_ms)
            query["recvWindow"] = self.recv_window_ms
            encoded = urlencode(query)
            query_string = f"{encoded}&signature={sign(self.secret, encoded)}"
        else:
            query_string = urlencode(query)
        url = f"{self.base_url}{path}" + (f"?{query_string}" if query_string else "")
        sent_at, t0 = time.time(), time.perf_counter()
        try:
            async with self._http().request(method, url, headers=headers) as response:
                raw = await response.read()
                status, resp_headers = response.status, response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            await self._record(ApiCall(sent_at, method, path, 0, None, None, latency_ms=(time.perf_counter() - t0) * 1000))
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        latency_ms = (time.perf_counter() - t0) * 1000
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        code = body.get("code") if isinstance(body, dict) and status >= 400 else None
        weight = resp_headers.get("X-MBX-USED-WEIGHT-1M") or resp_headers.get("X-MBX-USED-WEIGHT-1m")
        self.used_weight_1m = int(weight) if weight and weight.isdigit() else self.used_weight_1m
        retry_after, retry_after_header = (None, None)
        if status in (418, 429):
            retry_after, retry_after_header = _retry_after(
                resp_headers, self.ban_default_s if status == 418 else DEFAULT_RETRY_AFTER_S
            )
            self.blocked_until = max(self.blocked_until, time.monotonic() + retry_after)
        await self._record(
            ApiCall(
                sent_at, method, path, status, code if isinstance(code, int) else None,
                int(weight) if weight and weight.isdigit() else None, _order_counts(resp_headers),
                retry_after_header, latency_ms,
            )
        )
        if status < 400:
            if body is None and raw:
                raise ExchangeError(status, None, f"body is not JSON: {raw[:200]!r}", path)
            return body
        message = (body.get("msg") if isinstance(body, dict) else None) or raw[:200].decode(errors="replace")
        if status == 418:
            log.error("%s %s: IP banned (418); no requests for %.0f s", method, path, retry_after)
            raise Banned(status, code, message, path, retry_after)
        if status == 429:
            log.warning("%s %s: rate limited (429); backing off %.0f s", method, path, retry_after)
            raise RateLimited(status, code, message, path, retry_after)
        raise ExchangeError(status, code if isinstance(code, int) else None, message, path)

    async def _record(self, call: ApiCall):
        if self.recorder is None:
            return
        try:
            await self.recorder(call)
        except Exception:  # the health log must never break a request
            log.exception("could not record API response %s %s", call.method, call.path)
