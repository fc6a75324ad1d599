"""The sockets, end to end through config.asgi (session auth, origin check) and the real Redis pub/sub layer."""
import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application

from .conftest import make_market, utcnow, user_with_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The consumers' DB work runs in asgiref's shared thread; close its connection so the test DB can be dropped."""
    yield
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


def payload(market_id, spread, ts=None):
    ts = ts or utcnow()
    return {
        "market_id": market_id, "ts": ts.isoformat(), "valid": True, "best_bid": 99.95, "best_ask": 100.0, "mid": 99.975,
        "spread_ask_pct": spread, "spread_mid_pct": spread, "depth_bid_usd": 20_000.0, "depth_ask_usd": 20_000.0,
        "depth_bid_complete": True, "depth_ask_complete": False, "slip_buy_pct": 0.01, "slip_sell_pct": 0.02,
    }


@database_sync_to_async
def session_cookie(django_user_model):
    user = user_with_role(django_user_model, "vera-viewer", "viewer")
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def communicator(path, cookie=None, origin="http://localhost"):
    headers = [(b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def publish(group, body):
    await get_channel_layer().group_send(group, {"type": "market.update", "payload": body})


async def test_anonymous_socket_is_refused():
    ws = communicator("/ws/overview/")
    connected, code = await ws.connect()
    assert not connected and code == 4401


async def test_foreign_origin_is_refused(django_user_model):
    cookie = await session_cookie(django_user_model)
    ws = communicator("/ws/overview/", cookie, origin="http://evil.example")
    connected, _ = await ws.connect()
    assert not connected


async def test_overview_coalesces_to_one_judged_update_per_market_per_flush(django_user_model):
    a = await database_sync_to_async(make_market)("AAAUSDT")
    b = await database_sync_to_async(make_market)("BBBUSDT")
    cookie = await session_cookie(django_user_model)
    ws = communicator("/ws/overview/", cookie)
    connected, _ = await ws.connect()
    assert connected
    await asyncio.sleep(0.2)  # the group subscription reaches Redis
    for spread in (0.1, 0.2, 0.3, 0.4, 0.95):
        await publish("overview", payload(a.id, spread))
    await publish("overview", payload(b.id, 0.05))
    by_market, statuses, messages = {}, {}, 0
    # The burst may straddle a tick: the first payload goes out, the newest follows a second later.
    while by_market.get(a.id, {}).get("spread_pct") != 0.95 or b.id not in by_market:
        message = await ws.receive_json_from(timeout=3)
        assert message["type"] == "updates"
        messages += 1
        by_market.update({u["market_id"]: u["live"] for u in message["updates"]})
        statuses.update({u["market_id"]: u["status"] for u in message["updates"]})
    assert messages <= 2  # coalesced: not one message per payload
    assert by_market[a.id]["spread_pct"] == 0.95 and by_market[a.id]["kpis"]["spread_pct"]["status"] == "breach"
    assert by_market[a.id]["depth_lower_bound"] is True  # the ask side did not reach the band edge
    assert by_market[b.id]["kpis"]["spread_pct"]["status"] == "ok"
    # The row's overall status comes with it: a breach of the maximum; uptime not judged yet is unknown.
    assert statuses == {a.id: "breach", b.id: "unknown"}
    assert await ws.receive_nothing(timeout=1.5)  # nothing new published, nothing sent
    await ws.disconnect()


async def test_market_socket_gets_only_its_market(django_user_model):
    a = await database_sync_to_async(make_market)("AAAUSDT")
    b = await database_sync_to_async(make_market)("BBBUSDT")
    cookie = await session_cookie(django_user_model)
    ws = communicator(f"/ws/markets/{a.id}/", cookie)
    connected, _ = await ws.connect()
    assert connected
    await asyncio.sleep(0.2)
    await publish(f"market.{b.id}", payload(b.id, 0.3))
    await publish(f"market.{a.id}", payload(a.id, 0.75))
    message = await ws.receive_json_from(timeout=3)
    assert [u["market_id"] for u in message["updates"]] == [a.id]
    assert message["updates"][0]["live"]["kpis"]["spread_pct"]["status"] == "warning"  # 0.75 > 90 % of the 0.8 % max
    await ws.disconnect()


async def test_an_old_payload_is_judged_stale(django_user_model):
    a = await database_sync_to_async(make_market)("AAAUSDT")
    cookie = await session_cookie(django_user_model)
    ws = communicator(f"/ws/markets/{a.id}/", cookie)
    assert (await ws.connect())[0]
    await asyncio.sleep(0.2)
    await publish(f"market.{a.id}", payload(a.id, 0.1, ts=utcnow() - timedelta(seconds=settings.STALE_AFTER_SECONDS + 5)))
    live = (await ws.receive_json_from(timeout=3))["updates"][0]["live"]
    assert live["stale"] and live["kpis"]["spread_pct"]["status"] == "unknown"
    await ws.disconnect()


async def test_a_market_whose_data_stops_is_sent_again_as_stale(django_user_model, settings):
    settings.STALE_AFTER_SECONDS = 1
    a = await database_sync_to_async(make_market)("AAAUSDT")
    cookie = await session_cookie(django_user_model)
    ws = communicator("/ws/overview/", cookie)
    assert (await ws.connect())[0]
    await asyncio.sleep(0.2)
    await publish("overview", payload(a.id, 0.1))
    fresh = (await ws.receive_json_from(timeout=3))["updates"][0]
    assert not fresh["live"]["stale"] and fresh["live"]["kpis"]["spread_pct"]["status"] == "ok"
    stale = (await ws.receive_json_from(timeout=4))["updates"][0]  # nothing published: the server says it
    assert stale["market_id"] == a.id and stale["live"]["stale"] and stale["status"] == "unknown"
    assert await ws.receive_nothing(timeout=1.5)  # said once
    await ws.disconnect()
