"""Shard leases on the real Redis, and a real takeover: kill the worker running a shard, another takes it."""
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

from collectors import leases

PREFIX = f"lcm-test-{uuid.uuid4().hex[:6]}"


@pytest.fixture(autouse=True)
def isolated_prefix(monkeypatch):
    monkeypatch.setattr(leases, "PREFIX", PREFIX)
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{PREFIX}:*"):
        client.delete(key)
    client.close()


async def test_only_one_owner_and_only_the_owner_renews_or_releases():
    a, b = leases.ShardLease("s1", owner="A", ttl_s=5), leases.ShardLease("s1", owner="B", ttl_s=5)
    try:
        assert await a.acquire() and a.held
        assert not await b.acquire() and not b.held
        assert await a.renew({"markets": 3})
        assert not await b.renew()
        await b.release()  # not B's: nothing happens
        assert leases.lease_owner("s1") == "A"
        await a.release()
        assert leases.lease_owner("s1") is None and not a.held
        assert await b.acquire()
    finally:
        await a.close()
        await b.close()


async def test_a_lapsed_holder_learns_it_lost_the_lease_and_reports_stale():
    a, b = leases.ShardLease("s2", owner="A", ttl_s=0.5), leases.ShardLease("s2", owner="B", ttl_s=5)
    try:
        assert await a.acquire()
        assert await a.renew({"markets": 2})
        report = leases.heartbeat_report(now=time.time())["s2"]
        assert report["ok"] and report["owner"] == "A" and report["markets"] == 2 and report["age_s"] < 0.5
        await asyncio.sleep(0.7)
        assert not a.held  # fenced by its own clock, before asking Redis
        report = leases.heartbeat_report(now=time.time())["s2"]
        assert not report["ok"] and not report["held"]
        assert await b.acquire()
        assert not await a.renew() and not a.held
    finally:
        await a.close()
        await b.close()


def test_supervisor_dispatches_a_lapsed_shard_once_per_grace_period():
    sent = []
    assert leases.dispatch_lapsed(["x", "y"], dispatch=sent.append, grace_s=0.5) == ["x", "y"]
    assert leases.dispatch_lapsed(["x", "y"], dispatch=sent.append, grace_s=0.5) == []
    redis.Redis.from_url(settings.REDIS_URL).set(leases.lease_key("y"), "someone", px=5000)
    time.sleep(0.6)
    assert leases.dispatch_lapsed(["x", "y"], dispatch=sent.append, grace_s=0.5) == ["x"]
    assert sent == ["x", "y", "x"]


def test_supervisor_forgets_shards_no_longer_planned_unless_held():
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.sadd(leases.shards_key(), "gone", "held", "kept")
    client.set(leases.lease_key("held"), "someone", px=5000)
    assert leases.prune_shards(["kept"]) == ["gone"]
    assert {s.decode() for s in client.smembers(leases.shards_key())} == {"held", "kept"}
    client.close()


def assert_never_held_twice(history, ttl_s):
    """Each new owner acquired only after the previous one released or its last renewal + TTL passed."""
    holder, last_seen = None, None
    for event in history:
        if event["event"] == "acquired" and holder is not None and event["owner"] != holder:
            assert event["at"] >= last_seen + ttl_s - 0.05, f"{event['owner']} took over while {holder} held the lease"
        if event["event"] in ("acquired", "renewed"):
            holder, last_seen = event["owner"], event["at"]
        elif event["event"] == "released" and event["owner"] == holder:
            holder = None


def start_worker(name, env):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "collectors", "--pool", "solo",
         "--concurrency", "1", "--prefetch-multiplier", "1", "-n", f"{name}@%h", "--without-gossip",
         "--without-mingle", "--loglevel", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


@pytest.mark.django_db(transaction=True)
def test_killed_worker_shard_moves_to_the_other_worker(monkeypatch):
    from compliance.models import Market, Venue

    venue = Venue.objects.create(name="dead-venue", exchange="binance", market_type="spot", tier=1,
                                 rest_base_url="http://127.0.0.1:9", ws_base_url="ws://127.0.0.1:9")
    Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size="0.01")
    ttl = 3.0
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.REDIS_URL,
        "COLLECTOR_LEASE_PREFIX": PREFIX, "COLLECTOR_LEASE_TTL_S": str(ttl), "COLLECTOR_HEARTBEAT_S": "0.5",
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"], "VAR_DIR": f"/tmp/{PREFIX}",
    }
    from collectors import tasks
    from config.celery import app

    # The test plays beat: the supervisor's body, dispatching onto the real broker.
    monkeypatch.setattr(leases, "LEASE_TTL_S", ttl)
    app.conf.broker_url = settings.REDIS_URL
    workers = {name: start_worker(name, env) for name in ("w1", "w2")}
    try:
        owner = None
        deadline = time.monotonic() + 60
        while owner is None and time.monotonic() < deadline:
            tasks.supervise()
            time.sleep(0.5)
            owner = leases.lease_owner("dead-venue#0")
        assert owner, "no worker took the shard"
        pid = int(owner.split(":")[1])
        victim = next(name for name, p in workers.items() if p.pid == pid)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        new_owner = None
        while time.monotonic() - killed_at < 60:
            tasks.supervise()
            time.sleep(0.5)
            current = leases.lease_owner("dead-venue#0")
            if current and current != owner:
                new_owner = current
                break
        took_over_s = time.monotonic() - killed_at
        assert new_owner is not None, "the shard was not taken over within 60 s"
        survivor = next(p for name, p in workers.items() if name != victim)
        assert int(new_owner.split(":")[1]) == survivor.pid
        assert took_over_s < 60
        time.sleep(1.0)
        assert_never_held_twice(leases.lease_history("dead-venue#0"), ttl)
    finally:
        for p in workers.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        with connection.cursor() as cur:
            cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")
