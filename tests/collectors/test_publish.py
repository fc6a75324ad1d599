"""collectors.publish.group_send_many: what subscribers receive equals what group_send sends."""
import asyncio
import os
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from collectors import publish
from collectors.publish import group_send_many

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def messages(n):
    # The runner's shape: one message object sent to the overview and to its market's group.
    out = []
    for i in range(n):
        message = {"type": "market.update", "payload": {"market_id": i % 3, "ts": f"2026-01-01T00:00:{i:02d}+00:00",
                                                         "best_bid": 100.0 + i, "valid": True, "own_at_touch": None}}
        out += [("overview", message), (f"market.{i % 3}", message)]
    return out


async def receive_all(layer, channel, count):
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]


async def subscribed(layer):
    channels = {}
    for group in ("overview", "market.0", "market.1", "market.2"):
        channels[group] = await layer.new_channel()
        await layer.group_add(group, channels[group])
    return channels


@pytest.mark.parametrize("batched", [True, False])
async def test_subscribers_receive_every_message_in_order_as_group_send_delivers_it(batched, monkeypatch):
    monkeypatch.setattr(publish, "PUBLISH_CHUNK", 7)  # several script calls, split inside a market's pair
    layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=f"test-publish-{uuid.uuid4().hex[:8]}")
    try:
        channels = await subscribed(layer)
        sent = messages(30)
        if batched:
            assert await group_send_many(layer, sent) == len(sent)
        else:  # the reference: one group_send per message
            for group, message in sent:
                await layer.group_send(group, message)
        for group, channel in channels.items():
            expected = [m for g, m in sent if g == group]
            assert await receive_all(layer, channel, len(expected)) == expected
    finally:
        await layer.flush()


async def test_other_layers_get_plain_group_sends():
    # channels_redis' list-based layer, on the real Redis: not pub/sub, so no PUBLISH script for it.
    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=f"test-publish-core-{uuid.uuid4().hex[:8]}")
    try:
        channels = await subscribed(layer)
        sent = messages(6)
        assert await group_send_many(layer, sent) == len(sent)
        for group, channel in channels.items():
            expected = [m for g, m in sent if g == group]
            assert await receive_all(layer, channel, len(expected)) == expected
    finally:
        await layer.flush()


async def test_an_unreachable_redis_raises_for_the_caller_to_count():
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:9/0"])
    try:
        with pytest.raises(Exception):
            await group_send_many(layer, messages(2))
    finally:
        await layer.flush()
