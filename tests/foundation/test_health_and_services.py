"""/healthz, and proof that the suite runs on the real PostgreSQL and Redis."""
import json
import socket
import uuid

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.django_db
def test_healthz_ok_when_everything_answers(client):
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 200, body
    assert body["database"]["ok"] and body["redis"]["ok"] and body["status"] == "ok"


@pytest.mark.django_db
def test_healthz_reports_a_stopped_redis(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.HEALTHZ_TIMEOUT_SECONDS = 1
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["redis"]["ok"] is False and "Connection" in body["redis"]["detail"]
    assert body["database"]["ok"] is True and body["status"] == "degraded"


@pytest.mark.django_db
def test_healthz_reports_a_stopped_database(client, settings):
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"], "PORT": str(_closed_port())}}
    settings.HEALTHZ_TIMEOUT_SECONDS = 1
    response = client.get("/healthz")
    body = json.loads(response.content)
    assert response.status_code == 503 and body["database"]["ok"] is False


@pytest.mark.django_db
def test_the_database_is_real_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        assert cur.fetchone()[0].startswith("PostgreSQL")
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'compliance_sample'")
        assert cur.fetchone()[0] == "p"  # declaratively partitioned


def test_redis_and_the_channel_layer_are_real():
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.info("server")["redis_version"]
    layer = get_channel_layer()
    assert type(layer).__module__.startswith("channels_redis")


async def test_channel_layer_round_trip_through_redis():
    layer = get_channel_layer()
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await layer.group_send(group, {"type": "market.update", "payload": {"x": 1}})
    message = await layer.receive(channel)
    assert message["payload"] == {"x": 1}
    await layer.group_discard(group, channel)
