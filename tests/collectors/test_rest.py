"""The REST client over real HTTP: weight headers, 429/418 back-off, signatures, clock offset, -1021."""
import hashlib
import hmac
import time
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from collectors.rest import ApiCall, Banned, BinanceRest, ExchangeError, RateLimited, Unreachable

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # Binance docs' example


def exchange(server_skew_ms=0, statuses=()):
    """A small HTTP exchange: serves /api/v3/time and /api/v3/thing, answering `statuses` in turn, then 200."""
    pending = list(statuses)
    seen = []

    async def server_time(request):
        return web.json_response({"serverTime": int(time.time() * 1000) + server_skew_ms}, headers={"X-MBX-USED-WEIGHT-1M": "1"})

    async def thing(request):
        seen.append(request)
        query = request.query_string
        if "signature" in request.query:
            payload, _, signature = query.rpartition("&signature=")
            expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if signature != expected or request.headers.get("X-MBX-APIKEY") != "key-1":
                return web.json_response({"code": -1022, "msg": "Signature for this request is not valid."}, status=400)
            ts = int(dict(parse_qsl(payload))["timestamp"])
            if abs(ts - (time.time() * 1000 + server_skew_ms)) > 1000:
                return web.json_response({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, status=400)
        if pending:
            status, headers = pending.pop(0)
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=status, headers=headers)
        return web.json_response({"ok": True}, headers={"X-MBX-USED-WEIGHT-1M": "42", "X-MBX-ORDER-COUNT-10S": "3", "X-MBX-ORDER-COUNT-1D": "17"})

    app = web.Application()
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/api/v3/thing", thing)
    return app, seen


@pytest.fixture
async def serve():
    runners = []

    async def start(app):
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_records_weight_and_order_count_headers(serve):
    app, _ = exchange()
    calls: list[ApiCall] = []

    async def record(call):
        calls.append(call)

    async with BinanceRest(await serve(app), time_path="/api/v3/time", recorder=record) as rest:
        assert await rest.request("GET", "/api/v3/thing", {"symbol": "BTCUSDT"}) == {"ok": True}
        assert rest.used_weight_1m == 42
    [call] = calls
    assert (call.method, call.path, call.http_status, call.used_weight_1m) == ("GET", "/api/v3/thing", 200, 42)
    assert call.order_counts == {"10S": 3, "1D": 17} and call.latency_ms > 0


async def test_429_arms_the_back_off_for_retry_after_and_the_next_request_waits(serve):
    app, seen = exchange(statuses=[(429, {"Retry-After": "1"})])
    calls = []

    async def record(call):
        calls.append(call)

    async with BinanceRest(await serve(app), time_path="/api/v3/time", recorder=record) as rest:
        with pytest.raises(RateLimited) as err:
            await rest.request("GET", "/api/v3/thing")
        assert err.value.retry_after_s == 1 and err.value.code == -1003
        assert 0.8 < rest.backoff_remaining() <= 1
        started = time.monotonic()
        assert await rest.request("GET", "/api/v3/thing") == {"ok": True}
        assert time.monotonic() - started >= 0.9  # waited out Retry-After before sending
    assert [c.http_status for c in calls] == [429, 200] and calls[0].retry_after_s == 1


async def test_418_is_a_ban_that_blocks_every_request_for_its_duration(serve):
    app, seen = exchange(statuses=[(418, {"Retry-After": "2"})])
    async with BinanceRest(await serve(app), time_path="/api/v3/time") as rest:
        with pytest.raises(Banned):
            await rest.request("GET", "/api/v3/thing")
        assert 1.8 < rest.backoff_remaining() <= 2
    # A ban without Retry-After still stops the client for the default ban period.
    app, _ = exchange(statuses=[(418, {})])
    async with BinanceRest(await serve(app), time_path="/api/v3/time", ban_default_s=7) as rest:
        with pytest.raises(Banned) as err:
            await rest.request("GET", "/api/v3/thing")
        assert err.value.retry_after_s == 7 and rest.backoff_remaining() > 6


async def test_signed_request_with_a_skewed_clock_measures_the_offset_after_1021(serve):
    app, seen = exchange(server_skew_ms=5_000)
    async with BinanceRest(await serve(app), time_path="/api/v3/time", api_key="key-1", secret=SECRET) as rest:
        assert await rest.request("GET", "/api/v3/thing", {"symbol": "BTCUSDT"}, signed=True) == {"ok": True}
        assert rest.clock_offset_ms == pytest.approx(5_000, abs=200)
    assert len(seen) == 2  # rejected once with -1021, then accepted


async def test_a_bad_signature_is_an_exchange_error_with_the_code(serve):
    app, _ = exchange()
    async with BinanceRest(await serve(app), time_path="/api/v3/time", api_key="key-1", secret="wrong") as rest:
        with pytest.raises(ExchangeError) as err:
            await rest.request("GET", "/api/v3/thing", signed=True)
    assert err.value.code == -1022 and err.value.status == 400


async def test_no_server_is_unreachable_and_recorded_as_status_0():
    calls = []

    async def record(call):
        calls.append(call)

    async with BinanceRest("http://127.0.0.1:9", time_path="/api/v3/time", recorder=record, timeout_s=2) as rest:
        with pytest.raises(Unreachable):
            await rest.request("GET", "/api/v3/thing")
    assert calls[0].http_status == 0


async def test_signed_request_without_secret_is_a_clear_error(serve):
    app, _ = exchange()
    async with BinanceRest(await serve(app), time_path="/api/v3/time") as rest:
        with pytest.raises(ValueError, match="needs an API key"):
            await rest.request("GET", "/api/v3/thing", signed=True)


@pytest.mark.django_db(transaction=True)
async def test_api_health_counts_errors_per_hour_and_exports_the_last_24h(serve):
    from datetime import datetime, timedelta, timezone

    from asgiref.sync import sync_to_async

    from collectors import api_health
    from compliance.models import Venue

    venue = await Venue.objects.acreate(
        name="sim", exchange="binance", market_type="spot", tier=1, rest_base_url="http://x", ws_base_url="ws://x"
    )
    app, _ = exchange(statuses=[(429, {"Retry-After": "0"}), (418, {"Retry-After": "0"})])
    async with BinanceRest(await serve(app), time_path="/api/v3/time", recorder=api_health.recorder_for(venue.pk)) as rest:
        for _ in range(2):
            with pytest.raises(RateLimited):
                await rest.request("GET", "/api/v3/thing")
        await rest.request("GET", "/api/v3/thing")
    now = datetime.now(timezone.utc)
    [hour] = await sync_to_async(api_health.error_counts_per_hour)(since=now - timedelta(hours=1))
    assert (hour["requests"], hour["http_429"], hour["http_418"], hour["http_401"], hour["clock_1021"]) == (3, 1, 1, 0, 0)
    lines = (await sync_to_async(api_health.export_csv)(now=now + timedelta(seconds=1))).splitlines()
    assert lines[0].startswith("at,venue,method,path,http_status") and len(lines) == 4
    assert lines[-1].split(",")[4:7] == ["200", "", "42"] and "10S=3;1D=17" in lines[-1]
